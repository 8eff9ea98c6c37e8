"""Request limits and option checks: session slots, upload size, clip media held in memory,
stream duration, analysis options. Each violation is a
:class:`~ahmer.service.errors.RequestError` with its status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from ahmer.v1 import options_pb2

from .errors import RequestError
from .settings import CALL_FPS

__all__ = [
    "SessionSlots",
    "MediaBudget",
    "Hold",
    "ResolvedOptions",
    "resolve_options",
    "check_id",
    "check_upload_size",
    "TRANSCRIPT_FORMATS",
]

_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
TRANSCRIPT_FORMATS = {
    options_pb2.Transcript.FORMAT_UNSPECIFIED: None,
    options_pb2.Transcript.TEXT: "text",
    options_pb2.Transcript.VTT: "vtt",
    options_pb2.Transcript.SRT: "srt",
    options_pb2.Transcript.JSON: "json",
}


class SessionSlots:
    """At most ``limit`` live sessions at once (event-loop confined: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> None:
        if self.active >= self.limit:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many live sessions: the server allows {self.limit} at once; retry later",
            )
        self.active += 1

    def release(self) -> None:
        self.active = max(0, self.active - 1)


class MediaBudget:
    """At most ``limit`` bytes of clip media held in memory by all calls together (uploads
    being received, their copy for the analysis, clips being analysed), so that many
    concurrent uploads cannot exhaust the server's memory even when each is under the
    per-upload limit. A call holds its bytes through :meth:`hold`, which gives them all back
    when the call ends, however it ends (event-loop confined: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextmanager
    def hold(self) -> Iterator[Hold]:
        held = Hold(self)
        try:
            yield held
        finally:
            held.drop(held.size)


class Hold:
    """The bytes one call holds of a :class:`MediaBudget`."""

    def __init__(self, budget: MediaBudget) -> None:
        self.budget = budget
        self.size = 0

    def add(self, size: int) -> None:
        """Reserve ``size`` more bytes, or refuse the call (RESOURCE_EXHAUSTED)."""
        budget = self.budget
        if size > 0 and budget.held + size > budget.limit:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too much clip media in memory: {size} more bytes would take the server "
                f"over its limit of {budget.limit} bytes for all calls together "
                f"({budget.held} held now); retry later",
            )
        budget.held += max(0, size)
        self.size += max(0, size)

    def drop(self, size: int) -> None:
        """Give back ``size`` of the bytes held (what the call no longer keeps)."""
        size = min(max(0, size), self.size)
        self.size -= size
        self.budget.held -= size


@dataclass(frozen=True)
class ResolvedOptions:
    fps: float
    language: str | None
    frames: bool
    explanation: int  # options_pb2.ExplanationDetail, never UNSPECIFIED
    strict: bool = False  # partial media is an error (INVALID_ARGUMENT), not a warning


def resolve_options(
    options: options_pb2.AnalysisOptions, default_fps: float, default_strict: bool = False
) -> ResolvedOptions:
    """Check the request's options and fill in the server defaults (``default_strict``: the
    server's ``--strict`` / ``AHMER_STRICT``, used when the request leaves ``strict``
    unset)."""
    fps = options.fps or default_fps
    if CALL_FPS.problem(fps):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"options.fps {CALL_FPS.text}, got {options.fps:g}"
        )
    language = options.language.strip().lower() or None
    if language is not None and not _LANGUAGE.match(language):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "options.language must be an ISO 639-1 code such as 'en'",
        )
    detail = options.explanation or options_pb2.EXPLANATION_FULL
    if detail not in options_pb2.ExplanationDetail.values():
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "unknown options.explanation")
    frames = options.frames if options.HasField("frames") else True
    strict = options.strict if options.HasField("strict") else default_strict
    return ResolvedOptions(
        fps=float(fps), language=language, frames=frames, explanation=detail, strict=strict
    )


def check_id(value: str, what: str) -> str:
    """An optional client id: empty, or 1..128 printable ASCII characters."""
    if value and not _ID.match(value):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what} must be 1..128 printable ASCII characters without spaces",
        )
    return value


def check_upload_size(size: int, limit: int) -> None:
    if size > limit:
        raise RequestError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"upload too large: {size} bytes is over the server's limit of {limit} bytes",
        )
