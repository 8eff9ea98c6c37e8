"""Replay a media file as a live session: the requests a camera and microphone would send.

Video is decoded at the source rate (``ahmer.preprocessing.media.iter_frames`` with
``fps=None``), each frame JPEG-encoded; audio is decoded to 16 kHz mono and cut into PCM16
chunks of ``chunk_s`` (100 ms). Both are interleaved by timestamp, each request with the
stream time at which a live client would have it ready (a frame at its pts, an audio chunk at
its end), so a caller can pace them in real time.
"""

from __future__ import annotations

import heapq
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ahmer.preprocessing.timeline import SAMPLE_RATE
from ahmer.v1 import live_pb2, options_pb2

from .live import audio_request, stream_config, video_request

__all__ = ["replay_requests", "replay_config"]


def replay_config(
    path: str | Path,
    fps: float = 0.0,
    session_id: str = "",
    provisional: bool = False,
    strict: bool | None = None,
) -> live_pb2.StreamRequest:
    """The config a replay of ``path`` starts with: the streams the file has, JPEG and
    PCM16, analysed at ``fps`` (0: the server's rate); ``strict`` as in the options (None:
    the server's default)."""
    from ahmer.preprocessing.media import probe

    info = probe(Path(path))
    options = options_pb2.AnalysisOptions(fps=fps)
    if strict is not None:
        options.strict = strict
    return stream_config(
        session_id, info.has_video, info.has_audio, options, provisional=provisional
    )


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _video(path: Path, max_side: int, quality: int) -> Iterator[tuple[float, int, object]]:
    from ahmer.preprocessing.media import iter_frames

    for frame in iter_frames(path, fps=None, max_side=max_side):
        yield frame.time, 0, video_request(_jpeg(frame.image, quality), frame.time)


def _audio(path: Path, chunk_s: float) -> Iterator[tuple[float, int, object]]:
    from ahmer.preprocessing.media import iter_audio

    position = 0
    for chunk in iter_audio(path, SAMPLE_RATE, chunk_seconds=chunk_s):
        pcm = (np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes()
        start = position / SAMPLE_RATE
        position += len(chunk)
        yield position / SAMPLE_RATE, 1, audio_request(pcm, start)


def replay_requests(
    path: str | Path,
    chunk_s: float = 0.1,
    max_side: int = 640,
    quality: int = 85,
    video: bool = True,
    audio: bool = True,
) -> Iterator[tuple[float, live_pb2.StreamRequest]]:
    """``(ready_time, request)`` pairs for the media of ``path`` (config not included)."""
    from ahmer.preprocessing.media import probe

    path = Path(path)
    info = probe(path)
    sources = []
    if video and info.has_video:
        sources.append(_video(path, max_side, quality))
    if audio and info.has_audio:
        sources.append(_audio(path, chunk_s))
    for t, _, request in heapq.merge(*sources, key=lambda item: (item[0], item[1])):
        yield t, request
