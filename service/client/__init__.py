"""Python client for the ahmer gRPC service.

:class:`AhmerClient` (blocking) and :class:`AsyncAhmerClient` (asyncio) call every RPC:
``analyze_file`` (one message), ``upload_file`` (chunked), ``stream_file`` (replays a media
file as a live session), ``get_models`` and ``health``; both take a bearer ``token`` and TLS
files (``ca``, ``cert``, ``key``) as keyword arguments or a :class:`ClientOptions`.
:func:`result_to_dict` turns a result message into the ``ahmer.result/1`` JSON form.
"""

from __future__ import annotations

from .aio import AsyncAhmerClient
from .channel import ClientOptions
from .replay import replay_requests, stream_config
from .requests import make_options
from .sync import AhmerClient

__all__ = [
    "AhmerClient",
    "AsyncAhmerClient",
    "ClientOptions",
    "make_options",
    "replay_requests",
    "stream_config",
    "result_to_dict",
]


def result_to_dict(result) -> dict:
    """``AnalysisResult`` message -> the ``ahmer.result/1`` JSON form (plus ``skipped``)."""
    from ahmer.service.convert import to_dict

    return to_dict(result)
