"""Warm-up before the server reports SERVING: one tiny clip made in memory goes through the
whole pipeline (decoding, faces, VAD, fusion), and the ASR model decodes one second, so the
first real request does not pay for lazy initialisation."""

from __future__ import annotations

import io
import logging
import time
import weakref
from fractions import Fraction

import av
import numpy as np

from ahmer.models.contract import SAMPLE_RATE

__all__ = ["warm_up", "tiny_clip"]

log = logging.getLogger(__name__)

_WARM: weakref.WeakSet = weakref.WeakSet()  # analyzers already warmed (servers may share one)


def tiny_clip(seconds: float = 1.0, fps: int = 10, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A short MP4 (grey frames with a moving square, a 220 Hz tone), made with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.time_base = Fraction(1, fps)
        audio = out.add_stream("aac", rate=sample_rate, layout="mono")
        for i in range(int(seconds * fps)):
            img = np.full((120, 160, 3), 100, np.uint8)
            img[40:80, 10 + 5 * i : 50 + 5 * i] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        pcm = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            chunk = np.ascontiguousarray(pcm[start : start + 1024].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return buf.getvalue()


def warm_up(analyzer) -> float:
    """Run the warm-up once per analyzer; returns its duration in seconds."""
    from ahmer.preprocessing.timeline import Segment

    if analyzer in _WARM:
        return 0.0
    t = time.perf_counter()
    analyzer.analyze(tiny_clip())
    times = np.arange(SAMPLE_RATE) / SAMPLE_RATE  # one second
    tone = (0.1 * np.sin(2 * np.pi * 220 * times)).astype(np.float32)
    try:
        analyzer.transcriber.transcribe(tone, vad_segments=[Segment(0.0, 1.0)])
    except Exception as exc:  # ASR warm-up is best effort; real requests report errors
        log.warning("ASR warm-up failed: %s", exc)
    _WARM.add(analyzer)
    seconds = time.perf_counter() - t
    log.info("warm-up done in %.2fs", seconds)
    return seconds
