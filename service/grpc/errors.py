"""Errors a handler ends a call with, and the mapping from pipeline exceptions to status
codes. Messages are plain language and never quote media or transcript content."""

from __future__ import annotations

import grpc

__all__ = ["RequestError", "Undecodable", "backend_unavailable", "status_for"]


class RequestError(Exception):
    """End the call with ``code`` and ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Undecodable(RequestError):
    """A request message that protobuf could not parse (INVALID_ARGUMENT). The call's
    deserializer returns one instead of raising, so that the call ends with this status
    rather than the ``UNKNOWN``/``INTERNAL`` a raising deserializer gets from grpc.aio; it is
    raised (or its status sent) where the handler would have read the message."""

    def __init__(self, type_name: str) -> None:
        super().__init__(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid {type_name} message (protobuf cannot parse it)",
        )


# Exceptions whose message describes bad input (by class name, so this module needs no
# import of the pipeline): the input is at fault, the message is safe to return.
_BAD_INPUT = {
    "MediaError": "media",
    "TranscriptError": "transcript",
    "FaceError": "video frame",
    "FrameError": "video frame",
    "VadError": "audio",
    "ProsodyError": "audio",
    "EncoderError": "input",
    "ValueError": "request",
}


def backend_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the inference backend's ``BackendUnavailable`` (Triton down): a
    transient fault, not the request's (by class name, like :data:`_BAD_INPUT`)."""
    return any(cls.__name__ == "BackendUnavailable" for cls in type(exc).__mro__)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status and message for an exception raised while analysing a request."""
    if isinstance(exc, RequestError):
        return exc.code, exc.message
    if backend_unavailable(exc):
        # the inference server (Triton) is down: transient, the client may retry
        return grpc.StatusCode.UNAVAILABLE, f"{exc}; retry shortly"
    for cls in type(exc).__mro__:
        what = _BAD_INPUT.get(cls.__name__)
        if what is not None:
            return grpc.StatusCode.INVALID_ARGUMENT, f"invalid {what}: {exc}"
    if isinstance(exc, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "the server ran out of memory for this input"
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
