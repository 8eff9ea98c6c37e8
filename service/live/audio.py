"""Live audio: PCM16 chunks in any rate and channel count -> 16 kHz mono float32, kept in a
fixed-size ring buffer (memory stays flat however long the session runs).

Sample ``i`` of the output is at ``i / 16000`` s on the session clock: chunks that start
later than the end of the previous one are preceded by silence; the caller refuses chunks
that overlap (see :mod:`ahmer.service.grpc.stream`).
"""

from __future__ import annotations

import av
import numpy as np

from ahmer.models.contract import SAMPLE_RATE

__all__ = ["AudioRing", "PcmResampler"]


class PcmResampler:
    """Interleaved PCM16 at ``rate`` Hz with ``channels`` -> 16 kHz mono float32.

    Channels are averaged (as :func:`ahmer.preprocessing.media.iter_audio` does), then
    FFmpeg's resampler converts the rate; it keeps its filter state across chunks, so chunk
    boundaries leave no clicks. ``flush`` returns what the filter still holds."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate, self.channels = rate, channels
        self._resampler = None
        if rate != SAMPLE_RATE:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._pts = 0

    def frames_in(self, data: bytes) -> int:
        """Input frames (samples per channel) held by ``data``."""
        return len(data) // (2 * self.channels)

    def convert(self, data: bytes | np.ndarray) -> np.ndarray:
        if isinstance(data, np.ndarray):
            mono = data.astype(np.float32, copy=False)
        else:
            pcm = np.frombuffer(data, "<i2").reshape(-1, self.channels)
            mono = pcm.astype(np.float32).mean(axis=1) / 32768.0
        if self._resampler is None or len(mono) == 0:
            return mono.astype(np.float32, copy=False)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mono, np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate, frame.pts = self.rate, self._pts
        self._pts += len(mono)
        return self._collect(self._resampler.resample(frame))

    def silence(self, frames: int) -> np.ndarray:
        """``frames`` input frames of silence, converted (keeps the resampler in step)."""
        return self.convert(np.zeros(frames, np.float32))

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames) -> np.ndarray:
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


class AudioRing:
    """The last ``capacity_s`` seconds of 16 kHz audio, addressed by absolute sample index."""

    def __init__(self, capacity_s: float) -> None:
        self.capacity = max(SAMPLE_RATE, int(capacity_s * SAMPLE_RATE))
        self._buf = np.zeros(self.capacity, np.float32)
        self.end = 0  # absolute index one past the newest sample

    @property
    def start(self) -> int:
        """Oldest absolute sample still held."""
        return max(0, self.end - self.capacity)

    @property
    def seconds(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def complete(self) -> bool:
        """True while every sample since the session start is still held."""
        return self.start == 0

    def append(self, samples: np.ndarray) -> None:
        n = len(samples)
        if n == 0:
            return
        if n >= self.capacity:
            samples, self.end = samples[-self.capacity :], self.end + n - self.capacity
            n = self.capacity
        pos = self.end % self.capacity
        first = min(n, self.capacity - pos)
        self._buf[pos : pos + first] = samples[:first]
        self._buf[: n - first] = samples[first:]
        self.end += n

    def get(self, start: int, end: int) -> np.ndarray:
        """A copy of samples ``[start, end)`` (clipped to what is held)."""
        start, end = max(start, self.start), min(end, self.end)
        if end <= start:
            return np.zeros(0, np.float32)
        a = start % self.capacity
        n = end - start
        if a + n <= self.capacity:
            return self._buf[a : a + n].copy()
        return np.concatenate([self._buf[a:], self._buf[: a + n - self.capacity]])
