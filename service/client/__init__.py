"""Python client for the ahmer gRPC service.

:class:`AhmerClient` (blocking) and :class:`AsyncAhmerClient` (asyncio) call every RPC:
``analyze_file`` (one message), ``upload_file`` (chunked), ``stream_file`` (replays a media
file as a live session), ``session`` (a live session the app feeds frame by frame:
:class:`Session`, :class:`AsyncSession`), ``get_models`` and ``health``; both take a bearer
``token``, TLS files (``ca``, ``cert``, ``key``) and ``retries`` as keyword arguments or a
:class:`ClientOptions`. Every call raises an :class:`AhmerError` subclass for its gRPC
status. :func:`result_to_dict` turns a result message into the ``ahmer.result/1`` JSON form.

Names load on first use (PEP 562), so ``import ahmer.client`` is cheap: gRPC comes with the
clients, numpy and the media decoder only with file replay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if __name__ != "ahmer.client":  # pragma: no cover - an editable install's second path
    # service/client is installed as ``ahmer.client``; importing it again as
    # ``ahmer.service.client`` would make a second copy with distinct classes
    raise ImportError("import the client SDK as ahmer.client, not " + __name__)

__all__ = [
    "AhmerClient",
    "AsyncAhmerClient",
    "Session",
    "AsyncSession",
    "ClientOptions",
    "make_options",
    "stream_config",
    "replay_requests",
    "result_to_dict",
    "AhmerError",
    "InvalidInput",
    "FailedPrecondition",
    "OutOfRange",
    "Unauthenticated",
    "PermissionDenied",
    "Unavailable",
    "ResourceExhausted",
    "DeadlineExceeded",
    "Cancelled",
    "Internal",
]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .aio import AsyncAhmerClient
    from .aio_session import AsyncSession
    from .channel import ClientOptions
    from .errors import (
        AhmerError,
        Cancelled,
        DeadlineExceeded,
        FailedPrecondition,
        Internal,
        InvalidInput,
        OutOfRange,
        PermissionDenied,
        ResourceExhausted,
        Unauthenticated,
        Unavailable,
    )
    from .live import stream_config
    from .replay import replay_requests
    from .requests import make_options
    from .session import Session
    from .sync import AhmerClient

# the submodule defining each lazy name; the rest of __all__ (the errors) is in .errors
_WHERE = {
    "AhmerClient": "sync",
    "AsyncAhmerClient": "aio",
    "Session": "session",
    "AsyncSession": "aio_session",
    "ClientOptions": "channel",
    "make_options": "requests",
    "stream_config": "live",
    "replay_requests": "replay",
}


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_WHERE.get(name, 'errors')}", __name__)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def result_to_dict(result) -> dict:
    """``AnalysisResult`` message -> the ``ahmer.result/1`` JSON form (plus ``skipped``)."""
    from ahmer.service.convert import to_dict

    return to_dict(result)
