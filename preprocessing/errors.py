"""The one root of ahmer's errors, and its branches named by what went wrong.

Every error the library raises derives from :class:`AhmerError` through one branch, so a
caller decides what to do by meaning, never by class name:

- :class:`InvalidInput` — the caller's input is at fault (media, transcript, options, a
  dataset); the message says what and is safe to show them. ``what`` names the kind of input.
- :class:`Unavailable` — something the work depends on is unreachable for now (Triton);
  retrying later may succeed.
- :class:`Cancelled` — the work was stopped on purpose (a client went away, a stop signal).
- :class:`ResourceExhausted` — a limit was reached (memory, disk, a quota).
- :class:`FailedPrecondition` — a protocol's order was broken (e.g. a live session that ended
  before any media).
- :class:`Internal` — a fault of ours or of the installation (a missing model, a failed
  conversion); the message is for the operator.

It lives at the bottom layer (``preprocessing``) so that ``models`` and ``service`` can derive
from it; the gRPC status of each branch is chosen once, in ``ahmer.service.grpc.errors``, and
the client's errors (``ahmer.client``) carry the same names. Branches that replaced a builtin
base (``ValueError``, ``RuntimeError``, ``OSError``) keep it as a second base, so existing
``except ValueError`` handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "AhmerError",
    "InvalidInput",
    "Unavailable",
    "Cancelled",
    "ResourceExhausted",
    "FailedPrecondition",
    "Internal",
]


class AhmerError(Exception):
    """The root of every error ahmer raises."""


class InvalidInput(AhmerError):
    """The caller's input is at fault; ``what`` names the input (``"media"``, ``"audio"``...)."""

    what = "request"


class Unavailable(AhmerError):
    """A service the work depends on cannot be reached now; a later retry may succeed."""


class Cancelled(AhmerError):
    """The work was stopped on purpose before it finished."""


class ResourceExhausted(AhmerError):
    """A limit was reached: memory, disk space, or a configured quota."""


class FailedPrecondition(AhmerError):
    """An operation came in an order its protocol does not allow."""


class Internal(AhmerError):
    """A fault of ahmer or of its installation, not of the caller's input."""
