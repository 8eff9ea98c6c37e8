"""Files the commands and the batch write and read: atomic writes (readers never see a
partial file) and plain-worded checks of input and output paths."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from ahmer.preprocessing.errors import Internal, InvalidInput

__all__ = [
    "PathError",
    "UsageError",
    "WriteError",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "fail_if_unreadable",
    "path_problem",
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


class UsageError(InvalidInput, ValueError):
    """The command line cannot be used as given: options that contradict each other, a value
    no option takes, a path that cannot be used. Found before any work; every ``ahmer``
    command reports it with exit code 2, as the argument parser's own errors."""


class PathError(UsageError):
    """A path the user named cannot be used as given: an input that is missing, a symlink
    loop, not a regular file or unreadable, or an output that cannot be written."""


def path_problem(path: Path, folder_ok: bool = False) -> str | None:
    """Why ``path`` cannot be read as an input (``"no such file"``, ``"symlink loop"``,
    ``"not a regular file"``...), or None; a folder is an input only when ``folder_ok``.
    The one wording of these problems in every command."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "no such file" + (" or directory" if folder_ok else "")  # a dangling link too
        if exc.errno == errno.EACCES:
            return "not readable (no permission)"
        return (exc.strerror or type(exc).__name__).lower()
    if stat.S_ISDIR(mode):
        if not folder_ok:
            return "is a directory, expected a file"
        return None if os.access(path, os.R_OK | os.X_OK) else "folder not readable"
    if not stat.S_ISREG(mode):
        return "not a regular file"  # a FIFO or a device would block or never end
    return None if os.access(path, os.R_OK) else "not readable (no permission)"


def fail_if_unreadable(path: Path, folder_ok: bool = False) -> None:
    """Raise :class:`PathError` naming ``path`` and :func:`path_problem`'s reason."""
    problem = path_problem(path, folder_ok)
    if problem:
        raise PathError(f"{path}: {problem}")


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
