"""Voice activity: speech segments and per-frame speech probability from Silero VAD.

faster-whisper bundles Silero VAD v6 as an ONNX graph run by ONNX Runtime (no torch). The
graph scores each 512-sample window (32 ms at 16 kHz) with a speech probability. One pass
over the audio gives both products of this module:

- speech segments, by the same hysteresis rules as ``faster_whisper.vad.get_speech_timestamps``
  (ported below so that the probabilities are computed once, not twice), and
- the probability at any analysis time, interpolated between window centres.

Defaults are tuned for conversational answers, where pauses are a cue in themselves:

- ``threshold=0.5``: Silero's documented general-purpose value; a window at or above it starts
  speech, one below ``threshold - 0.15`` may end it.
- ``min_silence_ms=300``: a silence must last 300 ms to split segments. Hesitation pauses in
  speech research are usually counted from 200-250 ms; 300 ms keeps stop-consonant closures
  and breaths inside a segment while separating real pauses. (faster-whisper's own default,
  2000 ms, is meant for cutting long recordings for ASR and would hide every hesitation.)
- ``speech_pad_ms=100``: segments grow 100 ms each side so that soft onsets and word endings
  are kept; it is less than half of ``min_silence_ms``, so padding never erases a pause.
- ``min_speech_ms=100``: shorter bursts (clicks, lip smacks) are dropped; a filled pause such as
  "um" lasts longer than that.

Audio is 16 kHz mono float32 (``preprocessing.media.load_audio`` produces it); other rates
are refused rather than silently misread, because the graph only knows 16 kHz.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidInput
from .timeline import SAMPLE_RATE, Segment

__all__ = [
    "WINDOW_SAMPLES",
    "VadError",
    "VadResult",
    "check_audio",
    "run_vad",
    "speech_segments",
    "frame_speech_probability",
]

WINDOW_SAMPLES = 512  # Silero's analysis window at 16 kHz (32 ms)
WINDOW_S = WINDOW_SAMPLES / SAMPLE_RATE
_CONTEXT_SAMPLES = 64  # each window is scored with the previous window's last samples
# windows per ONNX run (32 s of audio): ``check`` is asked between runs. The graph carries
# its recurrent state from run to run, so the probabilities do not depend on this size
# (tests/test_cancel.py compares them with faster-whisper's single run)
_BATCH_WINDOWS = 1000

DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_SILENCE_MS = 300
DEFAULT_SPEECH_PAD_MS = 100
DEFAULT_MIN_SPEECH_MS = 100


class VadError(InvalidInput, ValueError):
    """The audio or the options cannot be analysed (wrong shape, rate, or values)."""

    what = "audio"


@dataclass(frozen=True)
class VadResult:
    """One VAD pass.

    ``segments``: speech spans in seconds from the start of the audio, sorted, disjoint.
    ``probabilities``: Silero's speech probability per 32 ms window (float32, window ``i``
    covers ``[i * hop_s, (i + 1) * hop_s)``). ``probabilities_at_times``: the probability at
    each requested time (float32), or ``None`` when no times were given.
    """

    segments: list[Segment]
    probabilities: np.ndarray = field(repr=False)
    probabilities_at_times: np.ndarray | None = field(default=None, repr=False)
    duration: float = 0.0
    hop_s: float = WINDOW_S

    @property
    def speech_seconds(self) -> float:
        """Total duration of the speech segments."""
        return float(sum(s.end - s.start for s in self.segments))


def run_vad(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    times: Sequence[float] | np.ndarray | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_silence_ms: int = DEFAULT_MIN_SILENCE_MS,
    speech_pad_ms: int = DEFAULT_SPEECH_PAD_MS,
    min_speech_ms: int = DEFAULT_MIN_SPEECH_MS,
    check: Callable[[], None] | None = None,
) -> VadResult:
    """Run Silero VAD once over ``audio`` (16 kHz mono float) and return segments and, when
    ``times`` (seconds) are given, the speech probability at each of those times.

    ``check()`` is called before each 32 s of audio is scored; an exception it raises stops
    the pass and propagates (a caller's way to cancel VAD over a long recording)."""
    audio = check_audio(audio, sample_rate)
    if not 0.0 < threshold < 1.0:
        raise VadError(f"threshold must lie in (0, 1), got {threshold}")
    if min(min_silence_ms, speech_pad_ms, min_speech_ms) < 0:
        raise VadError("min_silence_ms, speech_pad_ms and min_speech_ms must be >= 0")
    probs = _window_probabilities(audio, check)
    samples = _segments_from_probabilities(
        probs,
        len(audio),
        threshold=threshold,
        min_silence_samples=SAMPLE_RATE * min_silence_ms / 1000,
        speech_pad_samples=SAMPLE_RATE * speech_pad_ms / 1000,
        min_speech_samples=SAMPLE_RATE * min_speech_ms / 1000,
    )
    segments = [Segment(s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in samples]
    duration = len(audio) / SAMPLE_RATE
    at_times = None if times is None else _sample_at(probs, duration, times)
    return VadResult(segments, probs, at_times, duration)


def speech_segments(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    threshold: float = DEFAULT_THRESHOLD,
    min_silence_ms: int = DEFAULT_MIN_SILENCE_MS,
    speech_pad_ms: int = DEFAULT_SPEECH_PAD_MS,
    min_speech_ms: int = DEFAULT_MIN_SPEECH_MS,
) -> list[Segment]:
    """Speech spans (seconds) in ``audio``; see the module docstring for the defaults."""
    return run_vad(
        audio,
        sample_rate,
        threshold=threshold,
        min_silence_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
        min_speech_ms=min_speech_ms,
    ).segments


def frame_speech_probability(
    audio: np.ndarray, sample_rate: int, times: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Speech probability (float32, 0..1) at each time in ``times`` (seconds)."""
    result = run_vad(audio, sample_rate, times)
    assert result.probabilities_at_times is not None
    return result.probabilities_at_times


# -- internals -----------------------------------------------------------------------------


def check_audio(
    audio: np.ndarray, sample_rate: int, error: type[Exception] = VadError, stage: str = "VAD"
) -> np.ndarray:
    """16 kHz mono float32 ``audio`` as a contiguous 1-D array, or ``error`` saying why not
    (``stage`` names the step in the message)."""
    if sample_rate != SAMPLE_RATE:
        raise error(
            f"{stage} needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz: resample first "
            "(preprocessing.media.load_audio does)"
        )
    audio = np.asarray(audio)
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise error(f"{stage} needs mono audio as a 1-D array, got shape {audio.shape}")
    if audio.dtype.kind != "f":
        raise error(f"{stage} needs float audio in [-1, 1], got dtype {audio.dtype}")
    audio = np.ascontiguousarray(audio, np.float32)
    if not np.all(np.isfinite(audio)):
        raise error("audio holds NaN or infinite samples")
    return audio


def _window_probabilities(audio: np.ndarray, check: Callable[[], None] | None = None):
    """Silero probability per 512-sample window: ``faster_whisper.vad.SileroVADModel``'s
    call (the same padding, context and graph), run :data:`_BATCH_WINDOWS` windows at a time
    with the recurrent state handed on, and ``check()`` asked before each run."""
    from faster_whisper.vad import get_vad_model

    padded = np.pad(audio, (0, WINDOW_SAMPLES - audio.shape[0] % WINDOW_SAMPLES))
    windows = padded.reshape(-1, WINDOW_SAMPLES)
    # faster-whisper zeroes the last window's context through a view of the audio, which
    # also zeroes that window's own last samples: done here too, for the same probabilities
    windows[-1, -_CONTEXT_SAMPLES:] = 0
    context = np.roll(windows[:, -_CONTEXT_SAMPLES:], 1, axis=0)
    batch = np.concatenate([context, windows], axis=1)
    session = get_vad_model().session
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    probs = []
    for start in range(0, len(batch), _BATCH_WINDOWS):
        if check is not None:
            check()
        out, h, c = session.run(
            None, {"input": batch[start : start + _BATCH_WINDOWS], "h": h, "c": c}
        )
        probs.append(out)
    return np.asarray(np.concatenate(probs), np.float32).reshape(-1)


def _segments_from_probabilities(
    probs: np.ndarray,
    n_samples: int,
    threshold: float,
    min_silence_samples: float,
    speech_pad_samples: float,
    min_speech_samples: float,
) -> list[tuple[int, int]]:
    """Speech spans in samples from window probabilities.

    A port of ``faster_whisper.vad.get_speech_timestamps`` (itself adapted from Silero VAD,
    MIT) without a maximum segment length, so that the probabilities are computed only once.
    ``tests/test_vad.py`` checks that both give the same spans.
    """
    window = WINDOW_SAMPLES
    neg_threshold = max(threshold - 0.15, 0.01)
    triggered = False
    speeches: list[dict[str, int]] = []
    current: dict[str, int] = {}
    temp_end = 0  # where the current silence began (0: none)
    for i, p in enumerate(probs.tolist()):
        if p >= threshold and temp_end:
            temp_end = 0
        if p >= threshold and not triggered:
            triggered = True
            current["start"] = window * i
            continue
        if p < neg_threshold and triggered:
            if not temp_end:
                temp_end = window * i
            if window * i - temp_end < min_silence_samples:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech_samples:
                speeches.append(current)
            current = {}
            temp_end = 0
            triggered = False
    if current and n_samples - current["start"] > min_speech_samples:
        current["end"] = n_samples
        speeches.append(current)

    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - speech_pad_samples))
        if i != len(speeches) - 1:
            silence = speeches[i + 1]["start"] - speech["end"]
            if silence < 2 * speech_pad_samples:
                speech["end"] += int(silence // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - silence // 2))
            else:
                speech["end"] = int(min(n_samples, speech["end"] + speech_pad_samples))
                speeches[i + 1]["start"] = int(
                    max(0, speeches[i + 1]["start"] - speech_pad_samples)
                )
        else:
            speech["end"] = int(min(n_samples, speech["end"] + speech_pad_samples))
    return [(s["start"], s["end"]) for s in speeches if s["end"] > s["start"]]


def _sample_at(
    probs: np.ndarray, duration: float, times: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Probability at ``times``: linear interpolation between window centres, held flat to
    the audio's edges, 0 outside ``[0, duration]`` (no audio, no speech)."""
    t = np.asarray(times, np.float64).reshape(-1)
    if not np.all(np.isfinite(t)):
        raise VadError("times must be finite")
    if len(probs) == 0 or duration <= 0:
        return np.zeros(len(t), np.float32)
    centres = (np.arange(len(probs)) + 0.5) * WINDOW_S
    out = np.interp(t, centres, probs.astype(np.float64))
    out[(t < 0) | (t > duration)] = 0.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)
