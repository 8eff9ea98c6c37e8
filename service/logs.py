"""Structured logs: one JSON object per line.

Call sites pass their fields through ``extra={"fields": {...}}``; only those fields, the
logger name, level, time and message are written. By rule nothing logged by the service
carries transcript text or media: handlers log sizes, counts, durations, codes and ids only,
and :data:`FORBIDDEN_KEYS` are dropped from the fields as a second line of defence.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Any

__all__ = [
    "JsonFormatter",
    "configure_logging",
    "log_event",
    "FORBIDDEN_KEYS",
    "native_stderr_silenced",
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


def configure_logging(fmt: str = "json", level: str = "info", stream=None) -> None:
    """Route the root logger to ``stream`` (stderr) in ``fmt`` (json or text)."""
    handler = logging.StreamHandler(stream or sys.stderr)
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
