"""Live sessions over the analysis pipeline, transport-free: frames and audio in, final frame
results, rolling updates and the whole-session result out. It imports nothing of gRPC; the
stream handler in :mod:`ahmer.service.grpc.stream` adapts it."""

from .session import FrameOut, LiveConfig, LiveError, LiveSession, NoticeOut, RollingOut

__all__ = ["FrameOut", "LiveConfig", "LiveError", "LiveSession", "NoticeOut", "RollingOut"]
