"""Building AnalyzeClip and UploadClip requests from files and keyword options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ahmer.v1 import options_pb2, service_pb2

__all__ = ["analyze_request", "upload_requests", "file_options", "make_options", "transcript"]

_DETAIL = {
    None: options_pb2.EXPLANATION_DETAIL_UNSPECIFIED,
    "none": options_pb2.EXPLANATION_NONE,
    "summary": options_pb2.EXPLANATION_SUMMARY,
    "full": options_pb2.EXPLANATION_FULL,
}
_FORMATS = {
    None: options_pb2.Transcript.FORMAT_UNSPECIFIED,
    "text": options_pb2.Transcript.TEXT,
    "txt": options_pb2.Transcript.TEXT,
    "vtt": options_pb2.Transcript.VTT,
    "srt": options_pb2.Transcript.SRT,
    "json": options_pb2.Transcript.JSON,
}
_OPTION_KEYS = ("fps", "language", "frames", "explanation")


def make_options(
    fps: float = 0.0, language: str = "", frames: bool | None = None, explanation: str | None = None
) -> options_pb2.AnalysisOptions:
    if explanation not in _DETAIL:
        raise ValueError(f"explanation must be one of none, summary, full; got {explanation!r}")
    opts = options_pb2.AnalysisOptions(
        fps=fps or 0.0, language=language or "", explanation=_DETAIL[explanation]
    )
    if frames is not None:
        opts.frames = frames
    return opts


def transcript(data, fmt: str | None = None) -> options_pb2.Transcript | None:
    """A transcript from a path, text or bytes; the format from ``fmt`` or the suffix."""
    if data is None or isinstance(data, options_pb2.Transcript):
        return data
    if isinstance(data, Path):
        fmt = fmt or data.suffix.lstrip(".").lower() or None
        data = data.read_bytes()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if fmt not in _FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}: use text, vtt, srt or json")
    return options_pb2.Transcript(data=data, format=_FORMATS[fmt])


def file_options(kwargs: dict) -> dict:
    """Normalise keyword options: ``transcript``/``transcript_format`` -> Transcript,
    option keys -> AnalysisOptions."""
    out = dict(kwargs)
    text = transcript(out.pop("transcript", None), out.pop("transcript_format", None))
    if text is not None:
        out["transcript"] = text
    opts = {k: out.pop(k) for k in _OPTION_KEYS if k in out}
    if opts or "options" not in out:
        out["options"] = make_options(**opts)
    return out


def analyze_request(
    media: bytes, container: str = "", transcript=None, options=None, request_id: str = ""
) -> service_pb2.AnalyzeClipRequest:
    """The request; ``transcript`` and ``options`` as made by :func:`file_options`."""
    return service_pb2.AnalyzeClipRequest(
        media=media,
        container=container,
        transcript=transcript,
        options=options,
        request_id=request_id,
    )


def upload_requests(
    path: Path,
    chunk_size: int,
    container: str = "",
    transcript=None,
    options=None,
    request_id: str = "",
) -> Iterator[service_pb2.UploadRequest]:
    size = path.stat().st_size
    yield service_pb2.UploadRequest(
        header=service_pb2.UploadHeader(
            container=container,
            transcript=transcript,
            options=options,
            request_id=request_id,
            total_size=size,
        )
    )
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            yield service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=chunk))
