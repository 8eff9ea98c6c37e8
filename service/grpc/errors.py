"""Errors a handler ends a call with, and the mapping from ahmer's errors to status codes
(by the branch of the one error root, :mod:`ahmer.preprocessing.errors`). Messages are plain
language and never quote media or transcript content."""

from __future__ import annotations

import grpc

from ahmer.preprocessing.errors import (
    AhmerError,
    Cancelled,
    FailedPrecondition,
    InvalidInput,
    ResourceExhausted,
    Unavailable,
)

__all__ = ["RequestError", "Undecodable", "backend_unavailable", "status_for"]


class RequestError(AhmerError):
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


def backend_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says a service the pipeline depends on (Triton) is down: a transient
    fault, not the request's."""
    return isinstance(exc, Unavailable)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status and message for an exception raised while analysing a request, chosen by
    the branch of :class:`~ahmer.preprocessing.errors.AhmerError` it belongs to."""
    if isinstance(exc, RequestError):
        return exc.code, exc.message
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE, f"{exc}; retry shortly"
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT, f"invalid {exc.what}: {exc}"
    if isinstance(exc, ValueError):  # a library's own check of a request value
        return grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {exc}"
    if isinstance(exc, FailedPrecondition):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, Cancelled):
        return grpc.StatusCode.CANCELLED, "the analysis was cancelled"
    if isinstance(exc, (ResourceExhausted, MemoryError)):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "the server ran out of memory for this input"
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
