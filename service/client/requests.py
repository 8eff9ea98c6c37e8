"""Building AnalyzeClip and UploadClip requests from files and keyword options."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ahmer.v1 import options_pb2, service_pb2

__all__ = [
    "analyze_request",
    "upload_requests",
    "file_options",
    "make_options",
    "split_options",
    "transcript",
]

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
_OPTION_KEYS = ("fps", "language", "frames", "explanation", "strict")


def make_options(
    fps: float = 0.0,
    language: str = "",
    frames: bool | None = None,
    explanation: str | None = None,
    strict: bool | None = None,
) -> options_pb2.AnalysisOptions:
    """The request options; ``None`` leaves an option to the server's default. ``strict``:
    partial media (cut or damaged, or live audio and video ending apart) fails the call
    with INVALID_ARGUMENT instead of returning a result with a warning."""
    if explanation not in _DETAIL:
        raise ValueError(f"explanation must be one of none, summary, full; got {explanation!r}")
    opts = options_pb2.AnalysisOptions(
        fps=fps or 0.0, language=language or "", explanation=_DETAIL[explanation]
    )
    if frames is not None:
        opts.frames = frames
    if strict is not None:
        opts.strict = strict
    return opts


def transcript(data, fmt: str | None = None) -> options_pb2.Transcript | None:
    """A ``Transcript`` message from ``data``, which means, by its type:

    - ``pathlib.Path`` (any ``os.PathLike``): a file to read; the format from ``fmt`` or
      the file's suffix (``.txt``, ``.vtt``, ``.srt``, ``.json``);
    - ``str``: the transcript text itself, never a file name (a string that happens to
      name a file is still sent as text; wrap it in ``Path`` to send the file);
    - ``bytes``: the transcript's UTF-8 bytes;
    - a ``Transcript`` message: sent as is.

    Without ``fmt`` (and for a file, without a known suffix) the server guesses the
    format from the content.
    """
    if data is None or isinstance(data, options_pb2.Transcript):
        return data
    if isinstance(data, os.PathLike):
        path = Path(os.fspath(data))
        suffix = path.suffix.lstrip(".").lower()
        fmt = fmt or (suffix if suffix in _FORMATS else None)
        data = path.read_bytes()
    elif isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes | bytearray | memoryview):
        kind = type(data).__name__
        raise TypeError(f"transcript must be a Path (a file), str (the text) or bytes: {kind}")
    if fmt not in _FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}: use text, vtt, srt or json")
    return options_pb2.Transcript(data=bytes(data), format=_FORMATS[fmt])


def split_options(kwargs: dict) -> tuple[options_pb2.AnalysisOptions, dict]:
    """``(AnalysisOptions, the other keyword arguments)``: ``fps``, ``language``, ``frames``,
    ``explanation`` and ``strict`` go into the options (see :func:`make_options`)."""
    rest = dict(kwargs)
    opts = {k: rest.pop(k) for k in _OPTION_KEYS if k in rest}
    return make_options(**opts), rest


def file_options(kwargs: dict) -> dict:
    """Normalise keyword options: ``transcript``/``transcript_format`` -> Transcript,
    option keys -> AnalysisOptions (unless ``options`` is given and no option key is)."""
    out = dict(kwargs)
    text = transcript(out.pop("transcript", None), out.pop("transcript_format", None))
    if text is not None:
        out["transcript"] = text
    if "options" not in out or any(k in out for k in _OPTION_KEYS):
        options, out = split_options(out)
        out["options"] = options
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
