"""Prosody on real signals: synthetic tones with a known pitch, silence, espeak-ng speech."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from media import CONFIDENT, HEDGING, have_espeak, read_wav, speak
from scipy.signal import resample_poly

from ahmer.preprocessing.prosody import (
    Prosody,
    ProsodyError,
    compute_prosody,
    pauses,
    pitch_track,
)
from ahmer.preprocessing.timeline import Segment, Word

SR = 16000
FOX = "The quick brown fox jumps over the lazy dog and then runs away into the forest."


def _tone(f0: float, seconds: float = 2.0, sr: int = SR, harmonics: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, harmonics + 1))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _times(seconds: float, fps: float = 5.0) -> np.ndarray:
    return np.arange(int(seconds * fps)) / fps


def _speech(text: str, tmp: Path, wpm: int = 150) -> tuple[np.ndarray, list[Segment]]:
    """espeak-ng speech at 16 kHz and one speech segment from its first to last sound."""
    wav, rate = read_wav(speak(text, tmp / f"s{wpm}.wav", words_per_minute=wpm))
    x = resample_poly(wav[:, 0], SR, rate).astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return x, [Segment(loud[0] / SR, loud[-1] / SR)]


@pytest.mark.parametrize("f0", [120.0, 220.0])
@pytest.mark.parametrize("harmonics", [1, 8])
def test_known_pitch(f0, harmonics):
    audio = _tone(f0, harmonics=harmonics)
    times = _times(2.0)[1:]  # away from the start edge
    p = compute_prosody(audio, SR, times, [Segment(0, 2)])
    assert isinstance(p, Prosody)
    assert p.voiced.mean() > 0.9
    assert np.nanmedian(p.f0_hz) == pytest.approx(f0, rel=0.03)
    assert np.all(np.abs(p.f0_hz[p.voiced] / f0 - 1) < 0.03)  # no octave errors anywhere
    assert all(a.dtype == np.float32 for a in (p.energy_db, p.f0_hz, p.speech_rate, p.pause_s))
    assert p.voiced.dtype == bool and len(p.voiced) == len(times)


@pytest.mark.parametrize("sr", [8000, 44100, 48000])
def test_pitch_at_other_sample_rates(sr):
    p = compute_prosody(_tone(150.0, sr=sr, harmonics=5), sr, _times(2.0)[1:], [])
    assert np.nanmedian(p.f0_hz) == pytest.approx(150.0, rel=0.03)


def test_silence_and_noise_are_unvoiced():
    times = _times(2.0)
    silent = compute_prosody(np.zeros(2 * SR, np.float32), SR, times, [])
    assert not silent.voiced.any() and np.all(np.isnan(silent.f0_hz))
    assert np.all(silent.energy_db <= -90)
    noise = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1
    noisy = compute_prosody(noise, SR, times, [])
    assert noisy.voiced.mean() < 0.1
    assert np.all(np.abs(noisy.energy_db - 20 * np.log10(0.1)) < 1.0)


def test_energy_is_rms_dbfs_centred_on_each_time():
    audio = np.zeros(3 * SR, np.float32)
    audio[SR : 2 * SR] = _tone(200.0, 1.0)  # 0.3 peak: -13.5 dBFS RMS
    times = np.array([0.5, 1.0, 1.5, 2.5])
    p = compute_prosody(audio, SR, times, [Segment(1, 2)])
    level = 20 * np.log10(0.3 / np.sqrt(2))
    assert p.energy_db[2] == pytest.approx(level, abs=0.2)
    assert p.energy_db[1] == pytest.approx(level - 3.0, abs=0.3)  # half the window is sound
    assert p.energy_db[0] < -90 and p.energy_db[3] < -90


def test_espeak_speech_is_voiced_in_a_speaking_range(tmp_path):
    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    audio, speech = _speech(HEDGING, tmp_path)
    times = _times(len(audio) / SR, fps=10)
    p = compute_prosody(audio, SR, times, speech)
    inside = (times > speech[0].start) & (times < speech[0].end)
    assert 0.3 < p.voiced[inside].mean() < 0.95
    assert 70 < np.nanmedian(p.f0_hz) < 300
    assert np.all((p.f0_hz[p.voiced] > 60) & (p.f0_hz[p.voiced] < 500))
    assert np.nanmean(p.energy_db[inside]) > np.nanmean(p.energy_db[~inside]) + 20


def test_pause_length_inside_a_gap():
    audio = np.zeros(4 * SR, np.float32)
    audio[int(0.5 * SR) : int(1.5 * SR)] = _tone(150.0, 1.0)
    audio[int(2.3 * SR) : 3 * SR] = _tone(150.0, 0.7)
    speech = [Segment(2.3, 3.0), Segment(0.5, 1.5)]  # unsorted on purpose
    times = np.array([0.2, 1.0, 1.6, 1.9, 2.2, 2.5, 3.5, 5.0])
    p = compute_prosody(audio, SR, times, speech)
    expected = [0.5, 0.0, 0.8, 0.8, 0.8, 0.0, 1.0, 0.0]  # 5.0 s is after the audio
    assert p.pause_s == pytest.approx(expected, abs=1e-6)
    assert np.isnan(p.energy_db[-1]) and np.isnan(p.speech_rate[-1]) and not p.voiced[-1]


def test_pauses_list():
    speech = [Segment(0.5, 1.5), Segment(1.4, 2.0), Segment(2.1, 3.0), Segment(3.6, 3.9)]
    assert pauses(speech, 5.0) == [Segment(3.0, 3.6)]  # overlap merged; 0.1 s gap too short
    assert pauses(speech, 5.0, min_pause=0.05) == [Segment(2.0, 2.1), Segment(3.0, 3.6)]
    with_edges = pauses(speech, 5.0, edges=True)
    assert with_edges == [Segment(0.0, 0.5), Segment(3.0, 3.6), Segment(3.9, 5.0)]
    assert pauses([], 2.0) == [] and pauses([], 2.0, edges=True) == [Segment(0.0, 2.0)]
    with pytest.raises(ProsodyError):
        pauses(speech, float("nan"))


def test_speech_rate_from_words():
    words = [Word(1.0 + 0.4 * i, 1.3 + 0.4 * i, f"w{i}") for i in range(10)]  # 1.0 .. 4.9 s
    audio = np.zeros(8 * SR, np.float32)
    times = np.array([3.0, 7.0, 0.0])
    p = compute_prosody(audio, SR, times, [Segment(1.0, 4.9)], words=words)
    assert p.rate_source == "words"
    # window 2..4 s: words 3-6 whole, 0.1 s of word 2 (1.8-2.1), 0.2 s of word 7 (3.8-4.1)
    assert p.speech_rate[0] == pytest.approx((4 + 0.1 / 0.3 + 0.2 / 0.3) / 2.0, abs=1e-5)
    assert p.speech_rate[1] == 0.0
    assert p.speech_rate[2] == pytest.approx(0.0)  # window 0..1 s (clipped) holds none


def test_speech_rate_estimate_from_syllables(tmp_path):
    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    rates = {}
    for wpm in (100, 220):
        audio, speech = _speech(FOX, tmp_path, wpm)
        times = _times(len(audio) / SR, fps=10)
        p = compute_prosody(audio, SR, times, speech)
        assert p.rate_source == "syllables"
        # the rate integrates to the number of words (windows are 2 s, sampled every 0.1 s)
        estimated_words = float(np.sum(p.speech_rate) * 0.1)
        print(f"{wpm} wpm: ~{estimated_words:.1f} words estimated of {len(FOX.split())}")
        assert estimated_words == pytest.approx(len(FOX.split()), rel=0.4)
        inside = (times > speech[0].start + 1) & (times < speech[0].end - 1)
        rates[wpm] = float(np.mean(p.speech_rate[inside]))
    assert rates[220] > 1.5 * rates[100]
    # no speech segments: no syllables are counted
    audio, _ = _speech(CONFIDENT, tmp_path)
    assert not compute_prosody(audio, SR, _times(2.0), []).speech_rate.any()


def test_pitch_track_shape():
    track = pitch_track(_tone(200.0, 1.0), SR)
    assert len(track.times) == len(track.f0_hz) == len(track.voiced) == 101
    assert track.times[1] == pytest.approx(0.01)
    assert np.nanmedian(track.f0_hz) == pytest.approx(200.0, rel=0.01)
    assert np.median(track.aperiodicity[track.voiced]) < 0.1


def test_empty_audio_and_no_times():
    p = compute_prosody(np.zeros(0, np.float32), SR, [0.0, 0.2], [])
    assert np.all(np.isnan(p.energy_db)) and not p.voiced.any()
    q = compute_prosody(_tone(100.0), SR, [], [])
    assert len(q.energy_db) == 0 and len(q.pause_s) == 0


def test_bad_input():
    with pytest.raises(ProsodyError, match="mono"):
        compute_prosody(np.zeros((100, 2), np.float32), SR, [0.0], [])
    with pytest.raises(ProsodyError, match="NaN"):
        compute_prosody(np.full(100, np.nan, np.float32), SR, [0.0], [])
    with pytest.raises(ProsodyError, match="sample_rate"):
        compute_prosody(np.zeros(100, np.float32), 0, [0.0], [])
    with pytest.raises(ProsodyError, match="times"):
        compute_prosody(np.zeros(100, np.float32), SR, [np.inf], [])


def test_speed_of_a_30_s_clip():
    rng = np.random.default_rng(1)
    audio = np.concatenate([_tone(110.0 + 40 * (i % 3), 1.0) for i in range(30)])
    audio += 0.01 * rng.standard_normal(len(audio)).astype(np.float32)
    speech = [Segment(i + 0.1, i + 0.8) for i in range(30)]
    compute_prosody(audio, SR, _times(30.0), speech)  # warm-up
    t = time.perf_counter()
    p = compute_prosody(audio, SR, _times(30.0), speech)
    print(f"prosody of 30 s at 5 fps: {time.perf_counter() - t:.3f} s")
    assert len(p.f0_hz) == 150
