"""Files the commands and the batch write and read: atomic writes (readers never see a
partial file) and plain-worded checks of input and output paths."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ahmer.preprocessing.errors import Internal, InvalidInput

__all__ = [
    "PathError",
    "WriteError",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "fail_if_unreadable",
    "read_input_bytes",
    "write_output_bytes",
    "write_output_text",
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
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


class WriteError(Internal, OSError):
    """An output could not be written (a full disk, a file-size limit, a read-only or
    vanished folder): the message names the file and the system's reason; nothing partial is
    left (see :func:`atomic_write_bytes`)."""

    def __str__(self) -> str:
        return str(self.strerror)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask() is process-wide, not thread-safe


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class PathError(InvalidInput, ValueError):
    """A path the user named cannot be used as given: an input that is missing, not a regular
    file or unreadable, or an output that cannot be written. Found before any work; the CLI
    reports it as a usage error (exit code 2)."""


def fail_if_unreadable(path: Path) -> None:
    """Raise :class:`PathError` with a plain message for a missing or unreadable input, or
    one that is not a regular file (a FIFO or a device would block or never end)."""
    if not path.exists():
        raise PathError(f"{path}: no such file")
    if path.is_dir():
        raise PathError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise PathError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise PathError(f"{path}: not readable")


def read_input_bytes(path: Path, limit: int, what: str = "file") -> bytes:
    """The content of a small input file (a transcript): a readable regular file of at most
    ``limit`` bytes, else ``ValueError`` (:class:`PathError` for the path itself) with a plain
    message. Never blocks on a FIFO nor reads an endless device into memory."""
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
    """Before any work, raise :class:`PathError` when ``path`` cannot be written as an output
    file: it is a folder, it is one of ``inputs``, or its folder (made when missing) cannot be
    made or written. Nothing is created here."""
    path = Path(path)
    if path.is_dir():
        raise PathError(f"{path}: is a directory, expected a file name")
    if path.exists():
        for source in inputs:
            if source is not None and source.exists() and os.path.samefile(path, source):
                raise PathError(f"{path}: is an input of this command; choose another name")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise PathError(f"{path}: cannot be created ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PathError(f"{path}: cannot write in {parent} (read-only or no permission)")


def write_output_text(path: Path, text: str) -> None:
    """:func:`atomic_write_text` for a file the user named: a failure is a ``ValueError``
    naming ``path`` (not the temporary file)."""
    write_output_bytes(path, text.encode("utf-8"))


def write_output_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write_bytes` for a file the user named (see :func:`write_output_text`)."""
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from exc
