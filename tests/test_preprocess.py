"""`ahmer preprocess` and the preprocessing pipeline end to end, on media made at test time:
one timeline from good media, a partial timeline or a clear error from bad media."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from media import (
    HEDGING,
    canvas,
    make_clip,
    portrait,
    read_wav,
    speak,
    word_error_rate,
)
from scipy.signal import resample_poly

from ahmer.models.store.assets import preprocess_config
from ahmer.preprocessing.media import MediaError
from ahmer.preprocessing.pipeline import preprocess
from ahmer.preprocessing.timeline import SCHEMA, Timeline


@pytest.fixture(scope="module")
def config(model_store):
    return preprocess_config(model_store, fps=5.0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    wav, rate = read_wav(speak(HEDGING, tmp_path_factory.mktemp("speech") / "h.wav"))
    return wav[:, 0], rate


def _at(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    return resample_poly(audio, target, rate).astype(np.float32)


@pytest.fixture(scope="module")
def frontal(tmp_path_factory, speech):
    audio, rate = speech
    folder = tmp_path_factory.mktemp("frontal")
    return make_clip(folder / "frontal.mp4", canvas(portrait()), audio, rate)


def test_cli_preprocess_writes_a_full_timeline(frontal, tmp_path, model_store):
    out = tmp_path / "timeline.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", "preprocess", str(frontal), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == SCHEMA
    tl = Timeline.from_json(out.read_text())
    assert tl.masks["face"].mean() >= 0.95
    assert np.all(np.diff(tl.times) > 0)
    assert abs(tl.times[1] - tl.times[0] - 0.2) < 0.05
    assert tl.transcript_source == "asr"
    hypothesis = " ".join(w.text for w in tl.words)
    assert word_error_rate(HEDGING, hypothesis) <= 0.25
    assert tl.speech and tl.masks["speech"].any() and tl.masks["words"].any()
    assert np.isfinite(tl.f0_hz[tl.voiced]).all() and tl.voiced.any()
    assert len(tl.blendshape_names) == 52
    assert np.isfinite(tl.head_pose[tl.masks["face"]]).all()
    for word in tl.words:
        assert 0 <= word.start <= word.end <= tl.duration + 0.1
    for stage in ("decode", "faces", "vad", "asr", "prosody"):
        assert stage in tl.timings


def test_timeline_json_round_trip(frontal, config):
    tl = preprocess(frontal, config)
    again = Timeline.from_json(tl.to_json())
    assert again.to_json() == tl.to_json()
    assert tl.crops is not None and again.crops is None  # media stays in memory only


def test_client_transcript_replaces_asr(frontal, config):
    vtt = b"WEBVTT\n\n00:00.000 --> 00:04.000\nI guess maybe I could try\n"
    tl = preprocess(frontal, config, transcript=vtt)
    assert tl.transcript_source == "client"
    assert [w.text for w in tl.words][:3] == ["I", "guess", "maybe"]
    assert "asr" not in tl.timings


@pytest.mark.parametrize(
    "rate,channels,codec,suffix",
    [(8000, 1, "flac", "mkv"), (48000, 2, "libopus", "webm"), (44100, 2, "aac", "mp4")],
)
def test_any_sample_rate_and_layout(tmp_path, speech, config, rate, channels, codec, suffix):
    audio, src = speech
    pcm = _at(audio, src, rate)
    if channels == 2:
        pcm = np.stack([pcm, pcm * 0.5], axis=1)
    video_codec = "libvpx-vp9" if suffix == "webm" else "libx264"
    clip = make_clip(
        tmp_path / f"a.{suffix}",
        canvas(portrait(), size=(320, 180)),
        pcm,
        rate,
        audio_codec=codec,
        video_codec=video_codec,
    )
    tl = preprocess(clip, config)
    assert tl.sample_rate == 16000 and tl.audio.ndim == 1
    assert abs(len(tl.audio) / 16000 - len(pcm) / rate) < 0.1
    hypothesis = " ".join(w.text for w in tl.words)
    assert word_error_rate(HEDGING, hypothesis) <= 0.35, hypothesis


def test_no_audio_track_masks_audio(tmp_path, config):
    clip = make_clip(tmp_path / "v.mp4", canvas(portrait()), None, duration=2.0)
    tl = preprocess(clip, config)
    assert not tl.masks["audio"].any() and not tl.words
    assert tl.masks["face"].mean() >= 0.95
    assert any("no audio track" in w for w in tl.warnings)


def test_no_video_track_gives_an_audio_timeline(tmp_path, speech, config):
    audio, rate = speech
    clip = make_clip(tmp_path / "a.m4a", None, audio, rate)
    tl = preprocess(clip, config)
    assert not tl.masks["video"].any() and not tl.masks["face"].any()
    assert tl.masks["audio"].all() and tl.words
    assert abs(tl.times[1] - tl.times[0] - 0.2) < 1e-6


def test_no_face_and_several_faces(tmp_path, config):
    empty = make_clip(tmp_path / "empty.mp4", canvas(None), None, duration=2.0)
    tl = preprocess(empty, config)
    assert not tl.masks["face"].any() and (tl.face_count == 0).all()
    assert tl.masks["video"].all()

    face = portrait()
    two = np.concatenate([canvas(face, size=(640, 360)), canvas(face, size=(480, 360))], axis=1)
    both = make_clip(tmp_path / "two.mp4", two, None, duration=2.0)
    tl = preprocess(both, config)
    assert (tl.face_count[tl.masks["face"]] == 2).mean() >= 0.8
    assert len(set(tl.face_track[tl.masks["face"]].tolist())) == 1  # one primary, kept
    # the primary is the larger face (the left one, 640 px wide canvas)
    assert np.nanmean(tl.face_box[:, 0]) < 0.5


def test_4k_frames(tmp_path, config):
    frame = canvas(portrait(), size=(3840, 2160))
    clip = make_clip(tmp_path / "4k.mp4", frame, None, duration=1.0, fps=5)
    tl = preprocess(clip, config)
    assert tl.masks["face"].all()
    assert tl.info.width == 3840


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty input"),
        (b"\x00\x01 this is not a video at all" * 50, "not a media file"),
    ],
)
def test_bad_bytes_give_a_clear_error(content, message, config):
    with pytest.raises(MediaError, match=message):
        preprocess(content, config)


def test_truncated_file_gives_partial_timeline_or_clear_error(frontal, config):
    data = frontal.read_bytes()
    for fraction in (0.4, 0.9):
        try:
            tl = preprocess(data[: int(len(data) * fraction)], config)
        except MediaError as exc:
            assert "truncated" in str(exc) or "not a media file" in str(exc)
        else:
            assert len(tl) > 0 and tl.warnings


def test_cli_bad_inputs_exit_with_one_line(tmp_path, model_store):
    """Not media: 1 (the work failed); a missing file: 2 (a usage error, as in every command)."""
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    for path, code in ((text, 1), (tmp_path / "missing.mp4", 2)):
        proc = subprocess.run(
            [sys.executable, "-m", "ahmer.service.cli", "preprocess", str(path), "--out",
             str(tmp_path / "t.json")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == code
        assert "Traceback" not in proc.stderr and "error:" in proc.stderr
        assert not (tmp_path / "t.json").exists()


def test_face_engines_give_the_same_timeline_faces(frontal, model_store):
    """The default LiteRT face engine against MediaPipe Tasks on a whole clip (no ASR)."""
    timelines = {
        engine: preprocess(
            frontal, preprocess_config(model_store, fps=5.0, asr=False, face_engine=engine)
        )
        for engine in ("litert", "tasks")
    }
    ours, tasks = timelines["litert"], timelines["tasks"]
    assert np.array_equal(ours.masks["face"], tasks.masks["face"]) and ours.masks["face"].all()
    assert np.abs(ours.face_box - tasks.face_box).max() < 0.02
    assert np.abs(ours.head_pose[:, 0] - tasks.head_pose[:, 0]).max() < 7  # yaw
    assert np.abs(ours.head_pose[:, 2] - tasks.head_pose[:, 2]).max() < 3  # roll
    assert np.abs(ours.blendshapes - tasks.blendshapes).mean() < 0.02
    with pytest.raises(ValueError, match="face engine"):
        preprocess_config(model_store, face_engine="mediapipe")
