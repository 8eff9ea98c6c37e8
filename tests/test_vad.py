"""Voice activity on real espeak-ng speech: segments, per-frame probability, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper.vad import VadOptions, get_speech_timestamps
from media import CONFIDENT, HEDGING, have_espeak, read_wav, speak
from scipy.signal import resample_poly

from ahmer.preprocessing.timeline import Segment
from ahmer.preprocessing.vad import (
    VadError,
    VadResult,
    frame_speech_probability,
    run_vad,
    speech_segments,
)

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
SR = 16000


def speech_16k(text: str, tmp_path: Path) -> np.ndarray:
    """espeak-ng speech of ``text`` as 16 kHz mono float32."""
    audio, rate = read_wav(speak(text, tmp_path / f"s{abs(hash(text))}.wav"))
    return resample_poly(audio[:, 0], 320, 441).astype(np.float32) if rate == 22050 else audio


def sounding(audio: np.ndarray) -> float:
    """Seconds until the last audible sample (espeak-ng ends its WAVs with ~0.4 s of silence
    and starts them with none)."""
    return (np.nonzero(np.abs(audio) > 1e-3)[0][-1] + 1) / SR


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SR)), np.float32)


@pytest.fixture(scope="module")
def two_utterances(tmp_path_factory):
    """1 s silence, HEDGING, 1.5 s silence, CONFIDENT, 1 s silence; with the spans that sound."""
    tmp = tmp_path_factory.mktemp("vad")
    first, second = speech_16k(HEDGING, tmp), speech_16k(CONFIDENT, tmp)
    audio = np.concatenate([silence(1.0), first, silence(1.5), second, silence(1.0)])
    t2 = 1.0 + len(first) / SR + 1.5
    spoken = [(1.0, 1.0 + sounding(first)), (t2, t2 + sounding(second))]
    return audio, spoken


def test_two_utterances_give_two_segments_where_spoken(two_utterances):
    audio, spoken = two_utterances
    segments = speech_segments(audio)
    assert len(segments) == 2
    assert all(isinstance(s, Segment) for s in segments)
    for seg, (start, end) in zip(segments, spoken, strict=True):
        # segments are padded by 100 ms each side
        assert start - 0.15 <= seg.start <= start
        assert end - 0.1 <= seg.end <= end + 0.15
    assert 0.0 <= segments[0].start < segments[0].end < segments[1].start < segments[1].end
    assert segments[1].end <= len(audio) / SR
    # the pause (1.5 s + espeak's 0.4 s tail) is kept: padding takes 100 ms per side
    assert segments[1].start - segments[0].end > 1.5


def test_segments_match_faster_whisper_for_the_same_options(two_utterances, tmp_path):
    """The segmentation is ported so that probabilities are computed once: same spans."""
    audio, _ = two_utterances
    # add short pauses too, where the hysteresis rules matter
    words = [speech_16k(w, tmp_path) for w in ("well", "I am not sure", "um", "maybe")]
    gaps = [0.25, 0.4, 0.6, 0.2]
    pieces = [audio]
    for word, gap in zip(words, gaps, strict=True):
        pieces += [word, silence(gap)]
    clip = np.concatenate(pieces)
    for threshold, silence_ms, pad_ms, min_ms in [(0.5, 300, 100, 100), (0.35, 100, 30, 250)]:
        ours = speech_segments(
            clip,
            threshold=threshold,
            min_silence_ms=silence_ms,
            speech_pad_ms=pad_ms,
            min_speech_ms=min_ms,
        )
        options = VadOptions(
            threshold=threshold,
            min_silence_duration_ms=silence_ms,
            speech_pad_ms=pad_ms,
            min_speech_duration_ms=min_ms,
        )
        theirs = get_speech_timestamps(clip, options)
        assert len(ours) >= 3
        assert [(s.start, s.end) for s in ours] == [
            (t["start"] / SR, t["end"] / SR) for t in theirs
        ]


def test_min_silence_decides_whether_a_pause_splits(tmp_path):
    a, b = speech_16k("I think so", tmp_path), speech_16k("but maybe not", tmp_path)
    clip = np.concatenate([silence(0.3), a, silence(0.6), b, silence(0.3)])
    assert len(speech_segments(clip)) == 2  # default 300 ms: a 0.6 s pause is a pause
    assert len(speech_segments(clip, min_silence_ms=1200)) == 1


def test_probabilities_high_in_speech_low_in_silence(two_utterances):
    audio, spoken = two_utterances
    (s1, e1), (s2, e2) = spoken
    times = np.array([0.3, (s1 + e1) / 2, (e1 + s2) / 2, s2 + 0.5, e2 + 0.7, 99.0, -1.0])
    probs = frame_speech_probability(audio, SR, times)
    assert probs.dtype == np.float32 and probs.shape == (len(times),)
    assert probs[0] < 0.1 and probs[2] < 0.1 and probs[4] < 0.1
    assert probs[1] > 0.5 and probs[3] > 0.5
    assert probs[5] == 0.0 and probs[6] == 0.0  # outside the audio
    # one pass serves both products
    result = run_vad(audio, SR, times)
    assert isinstance(result, VadResult)
    np.testing.assert_array_equal(result.probabilities_at_times, probs)
    assert result.segments == speech_segments(audio)
    assert len(result.probabilities) == len(audio) // 512 + 1
    assert 0.0 <= result.probabilities.min() and result.probabilities.max() <= 1.0
    assert result.duration == pytest.approx(len(audio) / SR)
    assert run_vad(audio).probabilities_at_times is None


def test_most_of_the_speech_is_covered(two_utterances):
    audio, spoken = two_utterances
    result = run_vad(audio)
    spoken_s = sum(e - s for s, e in spoken)
    assert 0.85 * spoken_s < result.speech_seconds < spoken_s + 0.5


def test_silence_and_quiet_noise_have_no_speech():
    rng = np.random.default_rng(0)
    for audio in (silence(3.0), (0.003 * rng.standard_normal(3 * SR)).astype(np.float32)):
        result = run_vad(audio, SR, np.arange(0, 3, 0.2))
        assert result.segments == []
        assert result.probabilities_at_times.max() < 0.3
    assert speech_segments(np.zeros(0, np.float32)) == []
    assert speech_segments(silence(0.01)) == []


def test_column_vector_is_accepted_as_mono(two_utterances):
    audio, _ = two_utterances
    assert speech_segments(audio[:, None]) == speech_segments(audio)
    assert speech_segments(audio.astype(np.float64)) == speech_segments(audio)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros((SR, 2), np.float32), SR, "mono"),
        (np.zeros(SR, np.int16), SR, "float"),
        (np.full(SR, np.nan, np.float32), SR, "NaN"),
        (np.zeros(SR, np.float32), 44100, "16000 Hz"),
        (np.zeros(SR, np.float32), 8000, "resample"),
    ],
)
def test_bad_audio_raises_vad_error(audio, rate, message):
    with pytest.raises(VadError, match=message):
        run_vad(audio, rate)


def test_bad_options_and_times_raise_vad_error():
    audio = silence(1.0)
    with pytest.raises(VadError, match="threshold"):
        speech_segments(audio, threshold=1.5)
    with pytest.raises(VadError, match=">= 0"):
        speech_segments(audio, min_silence_ms=-1)
    with pytest.raises(VadError, match="finite"):
        frame_speech_probability(audio, SR, [0.1, float("nan")])
