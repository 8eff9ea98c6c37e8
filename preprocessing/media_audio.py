"""Audio decoding and resampling: the audio track as mono float32 at the analysis rate (16
kHz by default), aligned sample for sample to the media origin, in chunks or whole; channels
are averaged here rather than by FFmpeg's downmix. Public through :mod:`.media`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import closing

import av
import numpy as np

from .media_container import (
    DecodeReport,
    MediaError,
    MediaSource,
    audio_stream,
    check_end,
    demux_packets,
    media_origin,
    open_media,
    seekable,
    start_seconds,
    video_stream,
)
from .timeline import SAMPLE_RATE

__all__ = ["iter_audio", "load_audio"]


def iter_audio(
    source: MediaSource,
    sample_rate: int = SAMPLE_RATE,
    chunk_seconds: float = 5.0,
    report: DecodeReport | None = None,
) -> Iterator[np.ndarray]:
    """Yield the audio track as mono float32 chunks of ``chunk_seconds`` at ``sample_rate``
    (the last one shorter), aligned to the media origin (leading silence added, or samples
    before the origin dropped). Any codec, rate and channel layout; FFmpeg's resampler
    downmixes and resamples. Raises :class:`MediaError` ("no audio track") without audio."""
    if sample_rate < 1000 or sample_rate > 384000:
        raise MediaError(f"sample_rate out of range: {sample_rate!r}")
    if not chunk_seconds > 0:
        raise MediaError(f"chunk_seconds must be positive, got {chunk_seconds!r}")
    report = report if report is not None else DecodeReport()
    chunk = max(1, int(round(chunk_seconds * sample_rate)))
    wav_declared = _wav_declared(source)  # before FFmpeg moves a file object on
    with open_media(source) as container:
        audio = audio_stream(container)
        if audio is None:
            raise MediaError("no audio track")
        origin = media_origin(container, video_stream(container), audio)
        audio.thread_type = "AUTO"
        # Keep the channels through the resampler and average them here: FFmpeg's own
        # stereo->mono downmix adds the channels at -3 dB each, which makes a stereo file
        # 3 dB louder than the same sound in mono.
        resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
        # Encoders pad the last frame (AAC to 1024 samples): stop at the stream's declared
        # end when the container states one.
        limit = _audio_end(audio, origin, sample_rate)
        pending: list[np.ndarray] = []
        held = 0  # samples in pending
        emitted = 0  # samples yielded or pending
        skip = 0  # samples still to drop before the origin
        started = False
        for samples, first_time in _resampled(container, audio, resampler, report):
            if not started:
                started = True
                start = first_time if first_time is not None else origin
                offset = int(round((start - origin) * sample_rate))
                if offset > 0:
                    pending.append(np.zeros(offset, np.float32))
                    held += offset
                    emitted += offset
                else:
                    skip = -offset
            if skip:
                cut = min(skip, len(samples))
                samples = samples[cut:]
                skip -= cut
            if limit is not None:
                samples = samples[: max(0, limit - emitted)]
            if len(samples) == 0:
                continue
            pending.append(samples)
            held += len(samples)
            emitted += len(samples)
            while held >= chunk:
                joined = np.concatenate(pending)
                yield joined[:chunk]
                rest = joined[chunk:]
                pending, held = ([rest] if len(rest) else []), len(rest)
        declared = wav_declared if container.format.name == "wav" else None
        check_end(container, audio, origin, emitted / sample_rate, "audio", report, None, declared)
        if not started:
            raise MediaError("the audio track yielded no decodable samples")
        if held:
            yield np.concatenate(pending)


def _audio_end(audio, origin: float, sample_rate: int) -> int | None:
    """Sample index (at ``sample_rate``, from the origin) where the audio stream's declared
    duration ends, or None when the container does not declare one."""
    start = start_seconds(audio)
    if not audio.duration or audio.time_base is None:
        return None
    end = (start if start is not None else origin) + float(audio.duration * audio.time_base)
    return max(0, int(round((end - origin) * sample_rate)))


def load_audio(
    source: MediaSource,
    sample_rate: int = SAMPLE_RATE,
    report: DecodeReport | None = None,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """The whole audio track as mono float32 ``(samples,)`` at ``sample_rate``, aligned to
    the media origin (see :func:`iter_audio`). ``check()`` is called after each 10 s
    decoded; an exception it raises stops decoding and propagates (a caller's way to cancel
    the decoding of a long recording)."""
    chunks = []
    with closing(iter_audio(source, sample_rate, chunk_seconds=10.0, report=report)) as pieces:
        for chunk in pieces:
            chunks.append(chunk)
            if check is not None:
                check()
    if not chunks:
        return np.zeros(0, np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _resampled(container, audio, resampler, report: DecodeReport):
    """Resampled mono chunks ``(samples, time of the first input frame or None)``."""
    first_time: float | None = None
    seen_first = False

    def out(frames):
        for f in frames:
            data = f.to_ndarray()
            if data.ndim == 2:
                data = data.mean(axis=0) if data.shape[0] > 1 else data[0]
            if data.size:
                yield data.astype(np.float32, copy=False)

    for packet in demux_packets(container, audio, report):
        try:
            frames = audio.decode(packet)
        except av.error.FFmpegError as exc:
            report.corrupt_packets += 1
            report.note(f"audio packet skipped: {exc}")
            continue
        for frame in frames:
            if not seen_first:
                seen_first = True
                if frame.pts is not None and frame.time_base is not None:
                    first_time = float(frame.pts * frame.time_base)
            try:
                for data in out(resampler.resample(frame)):
                    yield data, first_time
            except (av.error.FFmpegError, ValueError) as exc:  # e.g. a layout change
                report.corrupt_packets += 1
                report.note(f"audio frame skipped: {exc}")
    try:
        tail = audio.decode(None)
    except av.error.FFmpegError:
        tail = []
    for frame in tail:
        if not seen_first:
            seen_first = True
            if frame.pts is not None and frame.time_base is not None:
                first_time = float(frame.pts * frame.time_base)
        for data in out(resampler.resample(frame)):
            yield data, first_time
    if seen_first:
        for data in out(resampler.resample(None)):
            yield data, first_time


def _wav_declared(source: MediaSource) -> float | None:
    """Seconds of audio a WAV header declares (its ``data`` chunk size over the ``fmt``
    chunk's byte rate), or None. FFmpeg's demuxer ignores a ``data`` size larger than the
    file and estimates the duration from the file size instead, so a cut WAV would look
    whole: the header says what was recorded. Streaming writers' placeholder sizes (0 and
    0xFFFFFFFF) declare nothing."""
    head = _read_head(source, 1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        kind, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if kind == b"fmt " and pos + 20 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        elif kind == b"data":
            if byte_rate <= 0 or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        pos += 8 + size + (size & 1)
    return None


def _read_head(source: MediaSource, size: int) -> bytes:
    """The first ``size`` bytes of ``source`` (a file object: from where it is now, and put
    back there; b"" when they cannot be read)."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source[:size])
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(size)
        if seekable(source):
            at = source.tell()
            try:
                return source.read(size)
            finally:
                source.seek(at)
    except (OSError, ValueError):
        pass
    return b""
