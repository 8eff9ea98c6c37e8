"""The whole pipeline on media made at test time: real face photo, espeak-ng speech, real
models from the store, the embedded ONNX Runtime backend."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media import (
    CONFIDENT,
    HEDGING,
    canvas,
    make_clip,
    portrait,
    read_wav,
    speak,
)
from scipy.signal import resample_poly

from ahmer.models.analyzer import Analyzer, AnalyzerConfig
from ahmer.models.contract import RESULT_SCHEMA
from ahmer.models.fusion.cues import CUE_REVISION
from ahmer.models.results import AnalysisResult
from ahmer.service.batch.tables import FRAME_COLUMNS

SR = 16000


@pytest.fixture(scope="module")
def analyzer(model_store):
    a = Analyzer(AnalyzerConfig(fps=5.0), store=model_store).load()
    yield a
    a.close()


def _speech(text: str, tmp: Path) -> np.ndarray:
    wav, rate = read_wav(speak(text, tmp / f"{abs(hash(text))}.wav"))
    return resample_poly(wav[:, 0], SR, rate).astype(np.float32)


def _onset(audio: np.ndarray, threshold: float = 0.02) -> float:
    """First sample louder than ``threshold``, in seconds: ground truth from the signal."""
    return float(np.flatnonzero(np.abs(audio) > threshold)[0]) / SR


def _timed(parts: list[tuple[float, str]], tmp: Path, total: float) -> tuple[np.ndarray, dict]:
    """Utterances placed at known offsets; returns the audio and each one's true onset."""
    audio = np.zeros(int(total * SR), np.float32)
    onsets = {}
    for offset, text in parts:
        speech = _speech(text, tmp)
        start = int(offset * SR)
        audio[start : start + len(speech)] += speech[: len(audio) - start]
        onsets[text] = offset + _onset(speech)
    return audio, onsets


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analyze")
    face = canvas(portrait())
    hedging, onsets = _timed(
        [(0.3, "I guess I could try,"), (2.6, "but maybe not,"), (4.6, "um, I don't know.")],
        tmp,
        7.0,
    )
    confident = np.concatenate([np.zeros(int(0.3 * SR), np.float32), _speech(CONFIDENT, tmp)])
    confident = np.concatenate([confident, np.zeros(int(0.5 * SR), np.float32)])
    return {
        "hedging": make_clip(tmp / "hedging.mp4", face, hedging, SR),
        "confident": make_clip(tmp / "confident.mp4", face, confident, SR),
        "onsets": onsets,
        "no_face": make_clip(tmp / "no_face.mp4", canvas(None), _speech(HEDGING, tmp), SR),
        "no_speech": make_clip(tmp / "no_speech.mp4", face, None, duration=3.0),
        "audio_only": make_clip(tmp / "audio_only.m4a", None, _speech(HEDGING, tmp), SR),
        "tmp": tmp,
    }


@pytest.fixture(scope="module")
def results(analyzer, clips):
    names = ("hedging", "confident", "no_face", "no_speech", "audio_only")
    return {name: analyzer.analyze(clips[name]) for name in names}


def test_hedging_scores_higher_than_confident(results):
    hedging, confident = results["hedging"].clip, results["confident"].clip
    assert hedging.ah_probability > confident.ah_probability + 0.3
    assert hedging.ah_label == 1 and confident.ah_label == 0
    assert hedging.segments, "the hedging clip has at least one A/H segment"


def test_smiling_face_is_happy(results):
    clip = results["confident"].clip
    assert clip.dominant_emotion == "happy"
    labelled = [f.emotion_label for f in results["confident"].frames if f.emotion_label]
    assert len(labelled) >= 0.9 * len(results["confident"].frames)
    assert labelled.count("happy") >= 0.9 * len(labelled)


def test_explanation_cites_hedges_at_spoken_times(results, clips):
    exp = results["hedging"].explanation
    cited = {}
    for cue in exp.cues:
        for occ in cue.evidence.get("occurrences", []):
            cited.setdefault(occ["words"].lower(), []).append(occ["start"])
    onsets = clips["onsets"]
    # "maybe" opens nothing but is spoken ~0.3 s after "but maybe not," starts
    assert "maybe" in cited and any(abs(t - onsets["but maybe not,"]) < 0.8 for t in cited["maybe"])
    assert "i don't know" in cited or "don't know" in cited
    know = cited.get("i don't know", []) + cited.get("don't know", [])
    assert any(abs(t - onsets["um, I don't know."]) < 0.9 for t in know)
    guess = cited.get("i guess", []) + cited.get("guess", [])
    assert any(abs(t - onsets["I guess I could try,"]) < 0.5 for t in guess)
    assert exp.cues[0].type == "verbal"
    # the summary is made of the cited cues only
    assert any(c.text in exp.summary for c in exp.cues[:3])


def test_word_times_match_the_speech(results, clips):
    words = {w.text.strip(",.").lower(): w.start for w in results["hedging"].transcript}
    assert abs(words["guess"] - clips["onsets"]["I guess I could try,"]) < 0.6
    assert abs(words["but"] - clips["onsets"]["but maybe not,"]) < 0.5


def test_no_face_still_gives_verbal_and_vocal(results):
    r = results["no_face"]
    assert r.clip.dominant_emotion is None and r.clip.emotion_distribution is None
    assert all(f.face is None and f.emotion is None for f in r.frames)
    assert not any(f.modalities["visual"] for f in r.frames)
    assert all(f.modalities["verbal"] and f.modalities["vocal"] for f in r.frames)
    assert {c.type for c in r.explanation.cues} & {"verbal", "vocal"}
    assert r.clip.ah_label == 1  # the hedging words alone carry it
    assert all(f.attribution["visual"] == 0 for f in r.frames)


def test_no_speech_still_gives_visual(results):
    r = results["no_speech"]
    assert r.transcript == [] and r.transcript_source == "none"
    assert r.clip.dominant_emotion == "happy"
    assert all(f.modalities["visual"] and not f.modalities["vocal"] for f in r.frames)
    assert any("no audio track" in w for w in r.warnings)
    assert r.clip.ah_label == 0


def test_audio_only_file(results):
    r = results["audio_only"]
    assert r.media["has_video"] is False
    assert len(r.frames) >= 5 * 3  # a 5 fps grid over the speech
    assert r.clip.ah_label == 1


def test_result_json_schema(results):
    data = json.loads(results["hedging"].to_json())
    assert data["schema"] == RESULT_SCHEMA
    assert data["models"]["ah_fusion_zeroshot"] == "ahmer-ah-zeroshot@3"
    assert data["models"]["fusion_contract"] == "ahmer.fusion/3"
    assert data["models"]["face_engine"] == "litert"  # the default face engine
    assert data["models"]["face_landmark_fps"] == "1"  # the default landmark rate
    assert data["models"]["cues"] == CUE_REVISION  # which measurement made the cues
    assert "not from a model trained on BAH" in data["notice"]
    frame = data["frames"][0]
    assert set(frame) == {
        "time", "face", "emotion", "emotion_label", "valence", "ah_probability", "ah_label",
        "attribution", "modalities",
    }  # fmt: skip
    assert set(frame["attribution"]) == {"visual", "vocal", "verbal", "cross_modal"}
    assert set(data["clip"]) >= {"ah_probability", "ah_label", "segments", "dominant_emotion"}
    for stage in ("decode", "faces", "vad", "asr", "emotion", "text", "fusion", "total"):
        assert stage in data["timings"]
    times = [f["time"] for f in data["frames"]]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_result_json_reads_back_typed(results):
    for result in results.values():
        data = json.loads(result.to_json())
        assert AnalysisResult.from_dict(data).to_dict() == data == result.to_dict()


def test_cli_analyze_writes_json_and_csv(clips, model_store):
    tmp = clips["tmp"]
    out = subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", "analyze", str(clips["hedging"]),
         "--json", str(tmp / "r.json"), "--csv", str(tmp / "f.csv"), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "A/H (p=" in out.stdout and "dominant emotion: happy" in out.stdout
    assert "Traceback" not in out.stderr
    data = json.loads((tmp / "r.json").read_text())
    rows = list(csv.DictReader((tmp / "f.csv").open()))
    assert len(rows) == len(data["frames"])
    assert rows[0]["emotion_label"] == "happy"
    assert list(rows[0]) == list(FRAME_COLUMNS)  # the frame table of ahmer score, less id


@pytest.mark.parametrize(
    "content,message",
    [(b"", "empty input"), (b"hello, not a video", "not a media file")],
)
def test_cli_analyze_bad_input(tmp_path, content, message, model_store):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    out = subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", "analyze", str(bad), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr


def test_same_clip_same_result_whatever_ran_before(analyzer, clips, results):
    """Face analyzers are pooled and reused: a clip's result (track ids, every number) must
    not depend on the clips analysed before it."""
    again = analyzer.analyze(clips["confident"]).to_dict()
    first = results["confident"].to_dict()
    again.pop("timings"), first.pop("timings")
    assert again == first
    assert {f["face"]["track_id"] for f in again["frames"] if f["face"]} == {0}


def test_cancel_stops_the_analysis(analyzer, clips):
    """``cancel`` is asked before every frame and between the stages: once it says so, the
    analysis raises Cancelled (and gives its face analyzer back for the next clip)."""
    from ahmer.models.analyzer import Cancelled

    with pytest.raises(Cancelled):
        analyzer.analyze(clips["hedging"], cancel=lambda: True)
    asked, stages = [], []
    result = analyzer.analyze(
        clips["no_speech"],
        progress=lambda stage, fraction: stages.append(stage),
        cancel=lambda: asked.append(1) and False,
    )
    # after the probe, before each of the 15 frames, before predict's 4 stages and postprocess
    assert len(asked) == 1 + len(result.frames) + 4 + 1 and stages[-1] == "done"
    assert len(result.frames) == 15 and result.timings["total"] > 0
