"""Python client for the ahmer gRPC service.

:class:`AhmerClient` (blocking) and :class:`AsyncAhmerClient` (asyncio) call every RPC:
``analyze_file`` (one message), ``upload_file`` (chunked), ``stream_file`` (replays a media
file as a live session), ``get_models`` and ``health``; both take a bearer ``token`` and TLS
files (``ca``, ``cert``, ``key``) as keyword arguments or a :class:`ClientOptions`.
:func:`result_to_dict` turns a result message into the ``ahmer.result/1`` JSON form.
"""

from __future__ import annotations

if __name__ != "ahmer.client":  # pragma: no cover - an editable install's second path
    # service/client is installed as ``ahmer.client``; importing it again as
    # ``ahmer.service.client`` would make a second copy with distinct classes
    raise ImportError("import the client SDK as ahmer.client, not " + __name__)

from .aio import AsyncAhmerClient  # noqa: E402
from .channel import ClientOptions  # noqa: E402
from .replay import replay_requests, stream_config  # noqa: E402
from .requests import make_options  # noqa: E402
from .sync import AhmerClient  # noqa: E402

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
