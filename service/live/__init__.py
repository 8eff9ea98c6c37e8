"""Live sessions over the analysis pipeline, transport-free: frames and audio in, final frame
results, rolling updates and the whole-session result out. It imports nothing of gRPC; the
stream handler in :mod:`ahmer.service.grpc.stream` adapts it.

Names load on first use (PEP 562): :class:`LiveConfig` comes from the light
:mod:`.config`, so the server's settings read it without importing the pipeline."""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import LiveConfig
    from .session import FrameOut, LiveError, LiveSession, NoticeOut, RollingOut

__all__ = ["FrameOut", "LiveConfig", "LiveError", "LiveSession", "NoticeOut", "RollingOut"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(".config" if name == "LiveConfig" else ".session", __name__)
    value = getattr(module, name)
    globals()[name] = value
    return value
