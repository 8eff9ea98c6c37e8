"""Voice embeddings per analysis frame: Whisper encoder states pooled in time (numpy in/out).

The vocal channel's learned representation. Whisper's encoder (the ASR model already loaded,
run by :meth:`~ahmer.preprocessing.asr.Transcriber.encoder_states`) gives one state per
20 ms; each analysis frame at time ``t`` gets the mean of the states whose centre lies in
``[t - 1/(2 fps), t + 1/(2 fps))`` (the nearest state when none does: above 50 fps).

Only speech is embedded: frames whose window overlaps no speech segment (VAD) are zero rows,
and 30 s encoder windows without speech are not run at all. A zero row means "no voice
here" to the fusion graph (its learned voice term counts only non-zero rows), so silence,
music-free pauses and missing audio all read the same way. A Whisper model whose width is
not ``dim`` (the fusion contract's) gives zeros and a warning: its states would not fit
the learned weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .asr import ENCODER_HOP_S, ENCODER_WINDOW_S, Transcriber
from .timeline import SAMPLE_RATE, Segment

__all__ = ["VoiceEmbedding", "pool_states", "speech_frames", "voice_embedding"]


@dataclass(frozen=True)
class VoiceEmbedding:
    """``values [T, dim]`` float32 (zero rows: no speech) and a warning when none could be
    computed for a reason the user should know (else ``None``)."""

    values: np.ndarray
    warning: str | None = None


def speech_frames(times: np.ndarray, fps: float, speech: Sequence[Segment]) -> np.ndarray:
    """``[T]`` bool: whether each frame's window ``t +- 1/(2 fps)`` overlaps a speech
    segment."""
    times = np.asarray(times, np.float64)
    half = 0.5 / fps
    out = np.zeros(len(times), bool)
    for seg in speech:
        out |= (times + half > seg.start) & (times - half < seg.end)
    return out


def pool_states(
    states: np.ndarray, times: np.ndarray, fps: float, hop: float = ENCODER_HOP_S
) -> np.ndarray:
    """Mean of ``states [S, D]`` (state ``k`` centred at ``(k + 0.5) * hop``) over each
    frame's window ``[t - 1/(2 fps), t + 1/(2 fps))``: ``[T, D]`` float32; a window holding
    no centre takes the nearest state, a frame past the last state a zero row."""
    times = np.asarray(times, np.float64)
    states = np.asarray(states, np.float32)
    n, dim = states.shape
    out = np.zeros((len(times), dim), np.float32)
    if n == 0 or len(times) == 0:
        return out
    centres = (np.arange(n) + 0.5) * hop
    half = 0.5 / fps
    lo = np.searchsorted(centres, times - half, side="left")
    hi = np.searchsorted(centres, times + half, side="left")
    cums = np.concatenate([np.zeros((1, dim)), np.cumsum(states, axis=0, dtype=np.float64)])
    counts = hi - lo
    some = counts > 0
    out[some] = ((cums[hi[some]] - cums[lo[some]]) / counts[some, None]).astype(np.float32)
    inside = ~some & (times - half < n * hop) & (times + half > 0)
    nearest = np.clip(np.rint(times[inside] / hop - 0.5).astype(int), 0, n - 1)
    out[inside] = states[nearest]
    return out


def voice_embedding(
    transcriber: Transcriber,
    audio: np.ndarray | None,
    times: np.ndarray,
    fps: float,
    speech: Sequence[Segment],
    dim: int,
    check: Callable[[], None] | None = None,
) -> VoiceEmbedding:
    """The voice embedding ``[T, dim]`` of ``audio`` (16 kHz mono float32) at the frame
    ``times``; zeros without audio or speech. ``check()`` is called before each encoder call
    (raise to stop)."""
    times = np.asarray(times, np.float64)
    zeros = np.zeros((len(times), dim), np.float32)
    if audio is None or len(audio) == 0 or len(times) == 0:
        return VoiceEmbedding(zeros)
    voiced = speech_frames(times, fps, speech)
    if not voiced.any():
        return VoiceEmbedding(zeros)
    width = transcriber.encoder_width()
    if width != dim:
        return VoiceEmbedding(
            zeros,
            f"voice embedding left out: the Whisper model's encoder is {width} wide, the "
            f"fusion needs {dim} (Whisper tiny)",
        )
    duration = len(audio) / SAMPLE_RATE
    windows = set()
    half = 0.5 / fps
    for t in times[voiced]:
        first = int(max(0.0, t - half) // ENCODER_WINDOW_S)
        last = int(min(duration, t + half) // ENCODER_WINDOW_S)
        windows.update(range(first, last + 1))
    states = transcriber.encoder_states(audio, windows=sorted(windows), check=check)
    values = pool_states(states, times, fps)
    values[~voiced] = 0.0
    return VoiceEmbedding(values)
