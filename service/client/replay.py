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

__all__ = ["replay_requests", "stream_config"]


def stream_config(
    session_id: str = "",
    video: bool = True,
    audio: bool = True,
    options: options_pb2.AnalysisOptions | None = None,
    client_transcript: bool = False,
) -> live_pb2.StreamRequest:
    config = live_pb2.StreamConfig(session_id=session_id, client_transcript=client_transcript)
    if video:
        config.video.encoding = live_pb2.VideoFormat.JPEG
    if audio:
        config.audio.encoding = live_pb2.AudioFormat.PCM16
        config.audio.sample_rate = SAMPLE_RATE
        config.audio.channels = 1
    if options is not None:
        config.options.CopyFrom(options)
    return live_pb2.StreamRequest(config=config)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _video(path: Path, max_side: int, quality: int) -> Iterator[tuple[float, int, object]]:
    from ahmer.preprocessing.media import iter_frames

    for frame in iter_frames(path, fps=None, max_side=max_side):
        data = _jpeg(frame.image, quality)
        yield (
            frame.time,
            0,
            live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=frame.time, data=data)),
        )


def _audio(path: Path, chunk_s: float) -> Iterator[tuple[float, int, object]]:
    from ahmer.preprocessing.media import iter_audio

    position = 0
    for chunk in iter_audio(path, SAMPLE_RATE, chunk_seconds=chunk_s):
        pcm = (np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes()
        start = position / SAMPLE_RATE
        position += len(chunk)
        yield (
            position / SAMPLE_RATE,
            1,
            live_pb2.StreamRequest(audio=live_pb2.AudioChunk(start_time=start, data=pcm)),
        )


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
