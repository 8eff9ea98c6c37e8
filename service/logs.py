"""Structured logs: one JSON object per line.

Call sites pass their fields through ``extra={"fields": {...}}``; only those fields, the
logger name, level, time and message are written. By rule nothing logged by the service
carries transcript text or media: handlers log sizes, counts, durations, codes and ids only,
and :data:`FORBIDDEN_KEYS` are dropped from the fields as a second line of defence.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = [
    "JsonFormatter",
    "configure_logging",
    "log_event",
    "FORBIDDEN_KEYS",
    "native_stderr_silenced",
    "native_stderr_logged",
    "NATIVE_LOGGER",
]

FORBIDDEN_KEYS = frozenset({"text", "transcript", "words", "media", "data", "audio", "image"})


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...fields}``; exceptions as type and message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in FORBIDDEN_KEYS and key not in out:
                    out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error_type"] = record.exc_info[0].__name__
            out["error"] = str(record.exc_info[1])[:500]
        return json.dumps(out, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):
    """A stream handler that never reports a failed native record on stderr: while
    :func:`native_stderr_logged` is on, stderr comes back as records, so the report of a
    failure would come back as a record that fails again, without end."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not getattr(record, "native", False):
            super().handleError(record)


def configure_logging(fmt: str = "json", level: str = "info", stream=None) -> None:
    """Route the root logger to ``stream`` (stderr) in ``fmt`` (json or text)."""
    handler = _Handler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root.setLevel(numeric)


def log_event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields`` (ids, sizes, codes, durations; never content)."""
    logger.log(level, msg, extra={"fields": fields})


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


NATIVE_LOGGER = "ahmer.native"
_NATIVE_LINE_MAX = 1000
# Where the native libraries say how severe a line is: glog (MediaPipe, LiteRT:
# "W0000 00:00:..."), TensorFlow Lite ("INFO: ..."), ONNX Runtime ("... [W:onnxruntime:...").
_NATIVE_MARKS = (
    re.compile(r"^([IWEF])\d{4} "),
    re.compile(r"^(VERBOSE|INFO|WARNING|ERROR): "),
    re.compile(r"\[([VIWEF]):onnxruntime"),
)
_LEVEL_OF = {
    "V": logging.DEBUG, "VERBOSE": logging.DEBUG, "I": logging.DEBUG, "INFO": logging.DEBUG,
    "W": logging.WARNING, "WARNING": logging.WARNING,
    "E": logging.ERROR, "ERROR": logging.ERROR, "F": logging.CRITICAL,
}  # fmt: skip


def native_level(line: str) -> int:
    """The level of one line a library wrote to stderr: its own info chatter is debug, its
    warnings and errors keep their level; a line without a known mark (a Python warning, a
    traceback printed by a thread) is info."""
    for mark in _NATIVE_MARKS:
        found = mark.search(line)
        if found:
            return _LEVEL_OF[found.group(1)]
    return logging.INFO


@contextmanager
def native_stderr_logged(enabled: bool = True) -> Iterator[TextIO | None]:
    """For as long as the block runs, whatever is written to file descriptor 2 becomes log
    records of :data:`NATIVE_LOGGER`, one per line, and the block's log handler writes to
    the stream yielded (the original stderr, duplicated): the server's stderr then carries
    only JSON lines.

    Native libraries (LiteRT, MediaPipe, ONNX Runtime) print from C++ straight to fd 2,
    from any thread, at any time: the server creates face models per live session, so
    swapping fd 2 around each model load (:func:`native_stderr_silenced`) would race. Here
    fd 2 is pointed once at a pipe that a daemon thread reads; ``sys.stderr`` goes the same
    way, so Python warnings and thread tracebacks become records too. Levels are read from
    the lines (:func:`native_level`), so ``--log-level`` drops the libraries' info chatter
    and keeps their warnings. What reaches fd 2 is the libraries' own text, never what the
    service passes them, and the service hands no library a transcript to print; lines are
    cut at 1000 characters and carry no fields, so :data:`FORBIDDEN_KEYS` hold as for every
    record. A line written just before the process dies (a native abort) may be lost with
    the thread. Yields None, and changes nothing, when ``enabled`` is false."""
    if not enabled:
        yield None
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    try:  # room for a burst (a long traceback) while the relay waits for the log lock
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):
        pass
    os.dup2(write_end, 2)
    os.close(write_end)
    stream = open(original, "w", encoding="utf-8", errors="backslashreplace", buffering=1)
    relay = threading.Thread(
        target=_relay, args=(read_end,), name="ahmer-native-stderr", daemon=True
    )
    relay.start()
    try:
        yield stream
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes fd 2's end of the pipe: the relay reads to its end
        relay.join(5.0)


def _relay(read_end: int) -> None:
    log = logging.getLogger(NATIVE_LOGGER)
    with open(read_end, "rb") as pipe:
        for raw in pipe:
            line = raw.decode("utf-8", "backslashreplace").rstrip()
            if line.strip():
                level = native_level(line)
                log.log(level, "%s", line[:_NATIVE_LINE_MAX], extra={"native": True})
