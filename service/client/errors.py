"""The errors every client call raises: one class per gRPC status a caller handles
differently, all under :class:`AhmerError`.

Each keeps the status (``code()``, ``details()``, as on the ``grpc.RpcError`` gRPC raises)
and is raised ``from`` that original error. :class:`AhmerError` subclasses
``grpc.RpcError``, so code written against the raw gRPC errors (``except grpc.RpcError as
e: e.code()``) keeps working unchanged; ``code`` and ``details`` stay methods for the same
reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

__all__ = [
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
    "error_from",
    "translated",
]


class AhmerError(grpc.RpcError):
    """A call ended with a status other than OK (the base of every client error).

    ``code()`` is the ``grpc.StatusCode``, ``details()`` the server's message saying why,
    ``trailing_metadata()`` what the server sent with the status.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: tuple = (),
    ) -> None:
        super().__init__(f"{code.name}: {details}" if details else code.name)
        self._code = code
        self._details = details
        self._trailing = tuple(trailing_metadata or ())

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


class InvalidInput(AhmerError):
    """INVALID_ARGUMENT: undecodable media, an unparsable transcript, an option out of
    range, a bad id, or (live) frames out of order, overlapping audio, a bad frame."""


class FailedPrecondition(AhmerError):
    """FAILED_PRECONDITION (live): the session protocol was not followed (media before the
    config, a second config, media the config did not declare, no media at all)."""


class OutOfRange(AhmerError):
    """OUT_OF_RANGE (live): stream time went past the server's longest session."""


class Unauthenticated(AhmerError):
    """UNAUTHENTICATED: a missing, malformed or wrong bearer token."""


class PermissionDenied(AhmerError):
    """PERMISSION_DENIED: the credentials are valid but not allowed this call."""


class Unavailable(AhmerError):
    """UNAVAILABLE: the server cannot be reached (or refused the TLS handshake), is still
    loading its models, or is shutting down; worth retrying later."""


class ResourceExhausted(AhmerError):
    """RESOURCE_EXHAUSTED: a message or upload over the size limit, or too many concurrent
    calls or live sessions."""


class DeadlineExceeded(AhmerError):
    """DEADLINE_EXCEEDED: the call's ``timeout`` passed, or (live) the session stayed open
    longer than the server allows."""


class Cancelled(AhmerError):
    """CANCELLED: the call was cancelled (by this client, or the server went away)."""


class Internal(AhmerError):
    """INTERNAL: a server bug; the message carries no media or transcript content."""


_BY_CODE: dict[grpc.StatusCode, type[AhmerError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
}


def error_from(exc: grpc.RpcError) -> AhmerError:
    """The :class:`AhmerError` subclass for ``exc``'s status (``exc`` itself when it is one).

    gRPC's errors are also call objects with ``code()``/``details()``; anything else
    (an ``RpcError`` without a status) becomes UNKNOWN with its text.
    """
    if isinstance(exc, AhmerError):
        return exc
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    code = code or grpc.StatusCode.UNKNOWN
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    trailing = exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else ()
    return _BY_CODE.get(code, AhmerError)(code, details or "", trailing or ())


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise a ``grpc.RpcError`` from the block as its :class:`AhmerError`, chained
    (``__cause__``) from the original. Works around ``await`` and ``yield`` too."""
    try:
        yield
    except AhmerError:
        raise
    except grpc.RpcError as exc:
        raise error_from(exc) from exc
