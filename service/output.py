"""Small helpers for command-line output: atomic writes, input checks, progress lines."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ahmer.preprocessing.face_options import DEFAULT_ENGINE, DEFAULT_LANDMARK_FPS, ENGINES

__all__ = [
    "atomic_write_text",
    "add_media_arguments",
    "analysis_fps",
    "landmark_rate",
    "decision_threshold",
    "atomic_write_bytes",
    "check_output_path",
    "fail_if_unreadable",
    "read_input_bytes",
    "write_output_text",
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
    """Raise ``FileNotFoundError`` with a plain message for a missing or unreadable input, or
    one that is not a regular file (a FIFO or a device would block or never end)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise FileNotFoundError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise FileNotFoundError(f"{path}: not readable")


def read_input_bytes(path: Path, limit: int, what: str = "file") -> bytes:
    """The content of a small input file (a transcript): a readable regular file of at most
    ``limit`` bytes, else ``ValueError``/``FileNotFoundError`` with a plain message. Never
    blocks on a FIFO nor reads an endless device into memory."""
    path = Path(path)
    fail_if_unreadable(path)
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{path}: the {what} is {size} bytes, more than {limit}")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    if len(data) > limit:
        raise ValueError(f"{path}: the {what} is more than {limit} bytes")
    return data


def check_output_path(path: Path, inputs: tuple[Path, ...] = ()) -> None:
    """Before any work, raise ``ValueError`` when ``path`` cannot be written as an output file:
    it is a folder, it is one of ``inputs``, or its folder (made when missing) cannot be made
    or written. Nothing is created here."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file name")
    if path.exists():
        for source in inputs:
            if source is not None and source.exists() and os.path.samefile(path, source):
                raise ValueError(f"{path}: is an input of this command; choose another name")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{path}: cannot be created ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: cannot write in {parent} (read-only or no permission)")


def write_output_text(path: Path, text: str) -> None:
    """:func:`atomic_write_text` for a file the user named: a failure is a ``ValueError``
    naming ``path`` (not the temporary file)."""
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from exc


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


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def analysis_fps(text: str) -> float:
    """argparse type: analysis frames per second, in (0, 120]."""
    value = _number(text)
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"must be in (0, 120], got {text}")
    return value


def landmark_rate(text: str) -> float:
    """argparse type: landmark frames per second, >= 0 (0: every analysis frame)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def decision_threshold(text: str) -> float:
    """argparse type: an A/H decision threshold, strictly between 0 and 1."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_media_arguments(p) -> None:
    """The options ``analyze`` and ``preprocess`` share: the media, its transcript and how
    densely it is analysed."""
    p.add_argument("media", type=Path, help="video or audio file (any format FFmpeg reads)")
    p.add_argument(
        "--transcript",
        type=Path,
        help="transcript to use instead of ASR (.txt, .vtt, .srt or .json words)",
    )
    p.add_argument("--fps", type=analysis_fps, default=5.0, help="analysis frames per second (5)")
    p.add_argument("--whisper-model", help="CTranslate2 Whisper model folder or name")
    add_face_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_face_arguments(p) -> None:
    """``--landmark-fps`` and ``--face-engine``: how faces are analysed."""
    p.add_argument(
        "--landmark-fps",
        type=landmark_rate,
        default=DEFAULT_LANDMARK_FPS,
        help="full face landmarks at about this rate, keypoint tracking between "
        f"({DEFAULT_LANDMARK_FPS:g}; 0 = on every analysis frame)",
    )
    p.add_argument(
        "--face-engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help="how MediaPipe's face models run: litert (direct, the default) or tasks "
        "(MediaPipe Tasks, the reference; ~2x slower)",
    )
