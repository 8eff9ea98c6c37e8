"""Request limits and option checks: session slots, upload size, stream duration, analysis
options. Each violation is a :class:`~ahmer.service.errors.RequestError` with its status."""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from ahmer.v1 import options_pb2

from .errors import RequestError
from .settings import CALL_FPS

__all__ = [
    "SessionSlots",
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


@dataclass(frozen=True)
class ResolvedOptions:
    fps: float
    language: str | None
    frames: bool
    explanation: int  # options_pb2.ExplanationDetail, never UNSPECIFIED


def resolve_options(options: options_pb2.AnalysisOptions, default_fps: float) -> ResolvedOptions:
    """Check the request's options and fill in the server defaults."""
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
    return ResolvedOptions(fps=float(fps), language=language, frames=frames, explanation=detail)


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
