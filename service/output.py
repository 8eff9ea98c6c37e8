"""Small helpers for command-line output: atomic writes, input checks, progress lines."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_write_text",
    "add_media_arguments",
    "atomic_write_bytes",
    "fail_if_unreadable",
    "native_stderr_silenced",
    "stderr_progress",
]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see a
    partial file, and an interrupted write leaves the old file (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # as an ordinary open() would (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask() is process-wide, not thread-safe


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fail_if_unreadable(path: Path) -> None:
    """Raise ``FileNotFoundError`` with a plain message for a missing or unreadable input."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise FileNotFoundError(f"{path}: is a directory, expected a file")
    if not os.access(path, os.R_OK):
        raise FileNotFoundError(f"{path}: not readable")


def stderr_progress(label: str, min_interval: float = 0.5):
    """A ``progress(stage, fraction)`` callback printing to stderr: an updating line on a
    terminal, a plain line at most every few seconds otherwise."""
    tty = sys.stderr.isatty()
    last = [0.0]
    interval = min_interval if tty else 5.0

    def progress(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < interval:
            return
        last[0] = now
        line = f"{label}: {stage} {fraction:5.0%}"
        if tty:
            end = "\n" if stage == "done" else ""
            sys.stderr.write(f"\r{line:<60}{end}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return progress


@contextmanager
def native_stderr_silenced(enabled: bool = True):
    """MediaPipe and LiteRT print start-up chatter from C++ straight to file descriptor 2;
    hide it while models load (``-v`` or ``AHMER_NATIVE_LOGS=1`` keep it). Python errors
    still propagate."""
    if not enabled or os.environ.get("AHMER_NATIVE_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def add_media_arguments(p) -> None:
    """The options ``analyze`` and ``preprocess`` share: the media, its transcript and how
    densely it is analysed."""
    p.add_argument("media", type=Path, help="video or audio file (any format FFmpeg reads)")
    p.add_argument(
        "--transcript",
        type=Path,
        help="transcript to use instead of ASR (.txt, .vtt, .srt or .json words)",
    )
    p.add_argument("--fps", type=float, default=5.0, help="analysis frames per second (5)")
    p.add_argument("--whisper-model", help="CTranslate2 Whisper model folder or name")
    p.add_argument(
        "--landmark-fps",
        type=float,
        default=1.7,
        help="full face landmarks at about this rate, keypoint tracking between (1.7; "
        "0 = on every analysis frame)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
