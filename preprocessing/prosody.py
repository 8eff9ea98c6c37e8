"""Prosody at the analysis frame times: loudness, pitch, voicing, speech rate, pauses.

numpy and scipy only, vectorised (its cost: the ``prosody`` stage in ``bench/README.md``).

Definitions (all times in seconds on the media clock, audio sample ``i`` at ``i / sr``):

- ``energy_db``: RMS level in dBFS over a 50 ms rectangular window centred on each time
  (full scale = 1.0, so a full-scale sine reads -3 dB); floored at -100 dB (digital silence).
- ``f0_hz`` / ``voiced``: a YIN pitch track (de Cheveigné & Kawahara 2002) on 40 ms frames
  every 10 ms, searching 60-500 Hz, on the audio resampled to 8 kHz. A frame is voiced when
  its cumulative-mean-normalised difference at the chosen lag (the aperiodicity) is below
  ``VOICING_THRESHOLD`` and its level is above -50 dBFS and within 40 dB of the clip's loud
  frames. At each requested time the (up to) five track frames within +-20 ms vote: voiced
  when most are, and ``f0_hz`` is the median of the voiced ones (NaN when unvoiced).
- ``speech_rate``: words per second in a 2 s window centred on each time (clipped to the
  audio). From word timestamps when given (each word counts by the fraction of it inside
  the window); otherwise estimated from syllable nuclei (de Jong & Wempe 2009, simplified):
  peaks of the 10 ms energy envelope (smoothed over 30 ms) that are voiced, inside speech,
  at most 30 dB below the clip's loud frames, at least 2 dB above the dips around them and
  80 ms apart; syllables are turned into words with ``SYLLABLES_PER_WORD`` (1.4, a rough
  English figure, so this is an estimate; how many syllables it finds on espeak-ng speech:
  ``bench/README.md``, "Measured by hand").
  ``Prosody.rate_source`` says which was used.
- ``pause_s``: 0 inside a speech segment; otherwise the length of the silence the time lies
  in, from the end of the previous speech segment (or the start of the audio) to the start
  of the next (or the end of the audio). Gaps of any length count here; :func:`pauses`
  lists the gaps of at least ``min_pause``.

Times outside the audio get NaN energy, pitch and rate, ``voiced`` False and pause 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy.signal import find_peaks, resample_poly

from .errors import InvalidInput
from .timeline import Segment, Word

__all__ = [
    "ProsodyError",
    "Prosody",
    "PitchTrack",
    "compute_prosody",
    "pitch_track",
    "pauses",
    "ENERGY_WINDOW",
    "RATE_WINDOW",
    "F0_MIN",
    "F0_MAX",
    "VOICING_THRESHOLD",
    "SYLLABLES_PER_WORD",
]

ENERGY_WINDOW = 0.05  # s, RMS window centred on each time
RATE_WINDOW = 2.0  # s, speech-rate window centred on each time
FRAME = 0.04  # s, pitch analysis frame (lag range + integration window)
HOP = 0.01  # s, pitch track hop
F0_MIN, F0_MAX = 60.0, 500.0
DIP_THRESHOLD = 0.15  # YIN absolute threshold: first dip below it is the period
VOICING_THRESHOLD = 0.3  # aperiodicity above this is unvoiced
FLOOR_DB = -100.0
GATE_DB = -50.0  # absolute level below which nothing is voiced
GATE_RANGE_DB = 40.0  # ... nor anything this far below the clip's loud frames
SYLLABLES_PER_WORD = 1.4  # rough English average in conversational answers
PITCH_RATE = 8000  # Hz, audio is resampled to this rate for the pitch track
_BLOCK = 2048  # frames per vectorised block (bounds memory on long audio)


class ProsodyError(InvalidInput, ValueError):
    """Invalid input to the prosody functions (shape, rate, non-finite samples)."""

    what = "audio"


@dataclass(frozen=True)
class Prosody:
    """Per-frame prosody aligned to the ``times`` it was computed for (see the module
    docstring for each definition). Arrays have length ``T``: ``energy_db``, ``f0_hz``,
    ``speech_rate`` and ``pause_s`` float32, ``voiced`` bool. ``rate_source`` is
    ``"words"`` or ``"syllables"``."""

    energy_db: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    speech_rate: np.ndarray
    pause_s: np.ndarray
    rate_source: str


@dataclass(frozen=True)
class PitchTrack:
    """The 10 ms pitch track: frame centre ``times``, ``f0_hz`` (NaN unvoiced), ``voiced``,
    ``aperiodicity`` (YIN's normalised difference at the chosen lag, 0 = periodic) and
    ``level_db`` (frame RMS, dBFS)."""

    times: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    aperiodicity: np.ndarray
    level_db: np.ndarray


# -- public ---------------------------------------------------------------------------------


def compute_prosody(
    audio: np.ndarray,
    sample_rate: int,
    times: Sequence[float] | np.ndarray,
    speech: Sequence[Segment],
    words: Sequence[Word] | None = None,
) -> Prosody:
    """Prosody of mono ``audio`` at ``times``; ``speech`` are the voice-activity segments,
    ``words`` optional word timestamps (they make ``speech_rate`` exact)."""
    audio = _check_audio(audio, sample_rate)
    times = np.asarray(times, np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ProsodyError("times must be finite")
    duration = len(audio) / sample_rate
    inside = (times >= 0) & (times < duration) if len(audio) else np.zeros(len(times), bool)

    energy = np.full(len(times), np.nan, np.float32)
    energy[inside] = _rms_db(audio, sample_rate, times[inside], ENERGY_WINDOW)

    track = pitch_track(audio, sample_rate)
    f0, voiced = _pitch_at(track, times)
    f0[~inside], voiced[~inside] = np.nan, False

    segments = _merged(speech, duration)
    if words is not None:
        rate = _word_rate(words, times, duration)
        source = "words"
    else:
        nuclei = _syllable_nuclei(track, segments)
        rate = _event_rate(nuclei, times, duration) / SYLLABLES_PER_WORD
        source = "syllables"
    rate = rate.astype(np.float32)
    rate[~inside] = np.nan

    pause = _pause_at(segments, times, duration)
    pause[~inside] = 0.0
    return Prosody(
        energy_db=energy,
        f0_hz=f0.astype(np.float32),
        voiced=voiced,
        speech_rate=rate,
        pause_s=pause.astype(np.float32),
        rate_source=source,
    )


def pauses(
    speech: Sequence[Segment], duration: float, min_pause: float = 0.25, edges: bool = False
) -> list[Segment]:
    """Silent gaps of at least ``min_pause`` seconds between speech segments (overlapping or
    touching segments merged first, everything clipped to ``[0, duration]``). With
    ``edges`` the silence before the first and after the last segment counts too (the
    whole clip when there is no speech)."""
    if not math.isfinite(duration) or duration < 0:
        raise ProsodyError(f"duration must be finite and >= 0, got {duration!r}")
    segments = _merged(speech, duration)
    gaps = []
    if not segments:
        return [Segment(0.0, float(duration))] if edges and duration >= min_pause else []
    if edges and segments[0].start >= min_pause:
        gaps.append(Segment(0.0, segments[0].start))
    for a, b in zip(segments, segments[1:], strict=False):
        if b.start - a.end >= min_pause:
            gaps.append(Segment(a.end, b.start))
    if edges and duration - segments[-1].end >= min_pause:
        gaps.append(Segment(segments[-1].end, float(duration)))
    return gaps


def pitch_track(audio: np.ndarray, sample_rate: int) -> PitchTrack:
    """YIN pitch track of mono ``audio``: 40 ms frames every 10 ms, 60-500 Hz."""
    audio = _check_audio(audio, sample_rate)
    sr = sample_rate
    if sr > PITCH_RATE:  # pitch lives below 4 kHz: analyse at 8 kHz, 4x less work
        g = math.gcd(sr, PITCH_RATE)
        audio = resample_poly(audio, PITCH_RATE // g, sr // g).astype(np.float32)
        sr = PITCH_RATE
    hop = max(1, int(round(HOP * sr)))
    tau_min = max(2, int(math.floor(sr / F0_MAX)))
    tau_max = int(math.ceil(sr / F0_MIN))
    length = max(int(round(FRAME * sr)), tau_max + tau_min + 2)
    window = length - tau_max - 1  # integration window (lags up to tau_max + 1 fit)
    n = 0 if len(audio) == 0 else 1 + len(audio) // hop
    centres = np.arange(n) * hop
    empty = np.zeros(0, np.float32)
    if n == 0:
        return PitchTrack(np.zeros(0), empty, np.zeros(0, bool), empty, empty)
    # Frames start half a frame before their centre; zero padding at both ends.
    padded = np.concatenate(
        [np.zeros(length // 2, np.float32), audio, np.zeros(length, np.float32)]
    )
    f0 = np.full(n, np.nan, np.float64)
    aper = np.ones(n, np.float64)
    level = np.full(n, FLOOR_DB, np.float64)
    nfft = 1 << int(math.ceil(math.log2(length + window)))
    for lo in range(0, n, _BLOCK):
        idx = centres[lo : lo + _BLOCK]
        frames = np.lib.stride_tricks.sliding_window_view(padded, length)[idx].astype(np.float64)
        frames = frames - frames.mean(axis=1, keepdims=True)
        power = np.mean(frames**2, axis=1)
        level[lo : lo + len(idx)] = 10 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10)))
        tau, dprime = _yin(frames, window, tau_min, tau_max, nfft)
        with np.errstate(divide="ignore", invalid="ignore"):
            f0[lo : lo + len(idx)] = sr / tau
        aper[lo : lo + len(idx)] = dprime
    loud = np.percentile(level, 95) if n else FLOOR_DB
    gate = max(GATE_DB, loud - GATE_RANGE_DB)
    voiced = (aper < VOICING_THRESHOLD) & (level > gate) & np.isfinite(f0)
    voiced &= (f0 >= F0_MIN * 0.95) & (f0 <= F0_MAX * 1.05)
    f0 = np.where(voiced, f0, np.nan)
    return PitchTrack(
        times=centres / sr,
        f0_hz=f0.astype(np.float32),
        voiced=voiced,
        aperiodicity=aper.astype(np.float32),
        level_db=level.astype(np.float32),
    )


# -- internals ------------------------------------------------------------------------------


def _check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if not isinstance(sample_rate, (int, np.integer)) or not 1000 <= sample_rate <= 384000:
        raise ProsodyError(f"sample_rate must be an integer in 1000..384000, got {sample_rate!r}")
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ProsodyError(f"audio must be mono (1-D), got shape {audio.shape}")
    if audio.dtype.kind not in "fiu":
        raise ProsodyError(f"audio must be numeric, got {audio.dtype}")
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ProsodyError("audio contains NaN or infinite samples")
    return audio


def _yin(frames: np.ndarray, window: int, tau_min: int, tau_max: int, nfft: int):
    """Period (fractional lag, NaN when none) and aperiodicity per frame."""
    m = len(frames)
    head = frames[:, :window]
    spec = sfft.rfft(frames, nfft) * np.conj(sfft.rfft(head, nfft))
    r = sfft.irfft(spec, nfft)[:, : tau_max + 2]  # r[t] = sum_j x_j x_{j+t}, j < window
    sq = np.concatenate([np.zeros((m, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(tau_max + 2)
    e_lag = sq[:, lags + window] - sq[:, lags]  # energy of x[t : t + window]
    d = np.maximum(e_lag[:, :1] + e_lag - 2 * r, 0.0)  # difference function d(t)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    dprime = np.ones_like(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        dprime[:, 1:] = np.where(cum > 0, d[:, 1:] * lags[1:] / cum, 1.0)
    search = dprime[:, tau_min : tau_max + 1]
    # First dip below the threshold, walked down to its local minimum; else the global min.
    below = search < DIP_THRESHOLD
    has_dip = below.any(axis=1)
    first = np.argmax(below, axis=1)
    rising = np.zeros_like(below)
    rising[:, :-1] = search[:, :-1] <= search[:, 1:]
    rising[:, -1] = True
    cols = np.arange(search.shape[1])
    local = np.argmax(rising & (cols >= first[:, None]), axis=1)
    best = np.where(has_dip, local, np.argmin(search, axis=1))
    tau = best + tau_min
    rows = np.arange(m)
    # Parabolic interpolation around the chosen lag.
    left = dprime[rows, np.maximum(tau - 1, 1)]
    mid = dprime[rows, tau]
    right = dprime[rows, np.minimum(tau + 1, tau_max + 1)]
    denom = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / denom, 0.0)
    shift = np.clip(shift, -1.0, 1.0)
    aper = np.clip(mid, 0.0, None)
    silent = e_lag[:, 0] <= 1e-12
    period = np.where(silent, np.nan, tau + shift)
    aper = np.where(silent, 1.0, aper)
    return period, aper


def _rms_db(audio: np.ndarray, sr: int, times: np.ndarray, width: float) -> np.ndarray:
    if len(times) == 0:
        return np.zeros(0, np.float32)
    cs = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    half = width * sr / 2
    a = np.clip(np.round(times * sr - half).astype(np.int64), 0, len(audio))
    b = np.clip(np.round(times * sr + half).astype(np.int64), 0, len(audio))
    b = np.maximum(b, np.minimum(a + 1, len(audio)))
    power = (cs[b] - cs[a]) / np.maximum(b - a, 1)
    floor = 10 ** (FLOOR_DB / 10)
    return (10 * np.log10(np.maximum(power, floor))).astype(np.float32)


def _pitch_at(track: PitchTrack, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vote of the five track frames within +-20 ms of each time."""
    n = len(track.times)
    f0 = np.full(len(times), np.nan, np.float64)
    voiced = np.zeros(len(times), bool)
    if n == 0 or len(times) == 0:
        return f0, voiced
    centre = np.rint(times / HOP).astype(np.int64)
    offsets = np.arange(-2, 3)
    idx = centre[:, None] + offsets[None, :]
    valid = (idx >= 0) & (idx < n)
    idx = np.clip(idx, 0, n - 1)
    v = track.voiced[idx] & valid
    voiced = 2 * v.sum(axis=1) > valid.sum(axis=1)  # a majority of the frames in range
    values = np.where(v, track.f0_hz[idx].astype(np.float64), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: unvoiced anyway
        med = np.nanmedian(values, axis=1)
    f0 = np.where(voiced, med, np.nan)
    return f0, voiced


def _merged(speech: Sequence[Segment], duration: float) -> list[Segment]:
    """Speech segments sorted, clipped to ``[0, duration]``, overlaps merged."""
    spans = []
    for seg in speech:
        start, end = float(seg.start), float(seg.end)
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ProsodyError("speech segments must have finite times")
        start, end = max(0.0, start), min(float(duration), end)
        if end > start:
            spans.append((start, end))
    spans.sort()
    out: list[list[float]] = []
    for start, end in spans:
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [Segment(s, e) for s, e in out]


def _pause_at(segments: list[Segment], times: np.ndarray, duration: float) -> np.ndarray:
    if not segments:
        return np.full(len(times), float(duration))
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    # index of the last segment starting at or before t
    k = np.searchsorted(starts, times, side="right") - 1
    in_speech = (k >= 0) & (times < ends[np.clip(k, 0, None)])
    gap_start = np.where(k >= 0, ends[np.clip(k, 0, None)], 0.0)
    nxt = k + 1
    gap_end = np.where(nxt < len(starts), starts[np.clip(nxt, 0, len(starts) - 1)], duration)
    return np.where(in_speech, 0.0, np.maximum(gap_end - gap_start, 0.0))


def _window_bounds(times: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.clip(times - RATE_WINDOW / 2, 0.0, duration)
    hi = np.clip(times + RATE_WINDOW / 2, 0.0, duration)
    return lo, hi


def _word_rate(words: Sequence[Word], times: np.ndarray, duration: float) -> np.ndarray:
    lo, hi = _window_bounds(times, duration)
    span = np.maximum(hi - lo, 1e-9)
    if not words:
        return np.zeros(len(times))
    ws = np.array([w.start for w in words], np.float64)
    we = np.array([w.end for w in words], np.float64)
    if not (np.all(np.isfinite(ws)) and np.all(np.isfinite(we))):
        raise ProsodyError("word times must be finite")
    length = np.maximum(we - ws, 1e-3)
    overlap = np.clip(np.minimum(we[None, :], hi[:, None]) - np.maximum(ws[None, :], lo[:, None]),
                      0.0, None)  # fmt: skip
    # zero-length words count when their instant lies inside the window
    point = (we - ws <= 0)[None, :] & (ws[None, :] >= lo[:, None]) & (ws[None, :] < hi[:, None])
    count = np.where(point, 1.0, overlap / length[None, :]).sum(axis=1)
    return count / span


def _event_rate(events: np.ndarray, times: np.ndarray, duration: float) -> np.ndarray:
    lo, hi = _window_bounds(times, duration)
    span = np.maximum(hi - lo, 1e-9)
    events = np.sort(events)
    count = np.searchsorted(events, hi, side="left") - np.searchsorted(events, lo, side="left")
    return count / span


def _syllable_nuclei(track: PitchTrack, segments: list[Segment]) -> np.ndarray:
    """Times of syllable nuclei: voiced, prominent peaks of the smoothed level inside speech."""
    if len(track.times) < 3 or not segments:
        return np.zeros(0)
    level = track.level_db.astype(np.float64)
    smooth = np.convolve(level, np.ones(3) / 3, mode="same")  # 30 ms smoothing
    loud = np.percentile(level, 95)
    peaks, _ = find_peaks(
        smooth,
        height=max(GATE_DB, loud - 30.0),
        prominence=2.0,
        distance=max(1, int(round(0.08 / HOP))),
    )
    if len(peaks) == 0:
        return np.zeros(0)
    t = track.times[peaks]
    # voiced at the peak or one frame beside it
    v = track.voiced
    near = v[peaks] | v[np.maximum(peaks - 1, 0)] | v[np.minimum(peaks + 1, len(v) - 1)]
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    k = np.searchsorted(starts, t, side="right") - 1
    in_speech = (k >= 0) & (t < ends[np.clip(k, 0, None)])
    return t[near & in_speech]
