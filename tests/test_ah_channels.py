"""A/H from every channel (issue 20): delivery, meaning, scope, absent channels, head/word
conflict, the earlier prior kept for comparison, and the challenge set per category.

The fusion graph is the store's prior (``ahmer-ah-zeroshot@3``) run by the real analyzer
(ONNX Runtime, the store's MiniLM); timelines are built by hand where a test needs one cue
alone, and the challenge set (``tests/ahgen.py``: espeak-ng speech, the real face rendered
with real head rotations) goes through ``ahmer features`` like any dataset.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ahmer.models.fusion.cues import CUE_NAMES, answer_hits, compute_cues, lexical_hits
from ahmer.models.fusion.graph import FEATURE_NAMES
from ahmer.models.fusion.prior import PROTOTYPES, WEIGHTS_ID, WEIGHTS_ID_V2
from ahmer.preprocessing.timeline import MediaInfo, Segment, Timeline, Word

FPS = 5.0


def _validity():
    """``bench/validity.py`` as a module (bench/ is on sys.path only while it imports: its
    triton.py would shadow the triton package)."""
    bench = str(Path(__file__).resolve().parents[1] / "bench")
    sys.path.insert(0, bench)
    try:
        return importlib.import_module("validity")
    finally:
        sys.path.remove(bench)


@pytest.fixture(scope="module")
def analyzer(model_store):
    from serving import shared_analyzer

    return shared_analyzer()


def _words(text: str, start: float = 0.5, step: float = 0.3) -> list[Word]:
    return [Word(start + i * step, start + i * step + 0.25, t) for i, t in enumerate(text.split())]


def _timeline(
    seconds: float,
    words: list[Word],
    speech: list[tuple[float, float]],
    face: bool = False,
    rate: float = 2.6,
) -> Timeline:
    """An answer's timeline: audio throughout, speech in ``speech``, ``words`` as a client
    transcript, a steady speech rate while speaking, pauses measured between segments."""
    times = np.arange(int(seconds * FPS)) / FPS
    info = MediaInfo("mp4", seconds, has_video=face, has_audio=True, sample_rate=16000)
    tl = Timeline.empty(times, FPS, info, n_blendshapes=0)
    tl.masks["audio"][:] = True
    tl.speech = [Segment(a, b) for a, b in speech]
    tl.words = words
    tl.transcript_source = "client"
    speaking = np.zeros(len(times), bool)
    for a, b in speech:
        speaking |= (times >= a) & (times < b)
    tl.masks["speech"][:] = speaking
    tl.speech_rate[:] = np.where(speaking, rate, np.nan)
    tl.energy_db[:] = np.where(speaking, -20.0, -80.0)
    edges = [0.0, *[x for seg in speech for x in seg], seconds]
    for gap_start, gap_end in zip(edges[::2], edges[1::2], strict=True):
        inside = (times >= gap_start) & (times < gap_end)
        tl.pause_s[inside] = gap_end - gap_start
    if face:
        tl.masks["face"][:] = True
        tl.head_pose[:] = 0.0
    return tl


def _result(analyzer, tl):
    return analyzer.postprocess(tl, analyzer.predict(tl))


# -- scope ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kept",
    [
        ("There is no doubt in my mind, I will quit.", []),
        ("My friends said maybe next year; I said this week.", []),
        ("Without a doubt, I am going to walk.", []),
        ('Mum keeps saying "maybe later" to me.', []),
        ("I said maybe, I don't know.", ["maybe,", "I don't know."]),
        ("I'm not sure, I might.", ["not sure,", "might."]),
    ],
)
def test_negated_and_reported_hedges_do_not_fire(text, kept):
    words = _words(text)
    hits = [h for h in lexical_hits(words) if h.cue in ("hedge", "uncertainty", "contrast")]
    assert [" ".join(words[i].text for i in h.words) for h in hits] == kept


def test_restarts_and_verbal_yes_no_are_found_with_their_times():
    words = _words("I, I will go. We will, we will try. No doubt. No, I am not sure.")
    restarts = [h for h in lexical_hits(words) if h.cue == "restart"]
    found = [" ".join(words[i].text for i in h.words) for h in restarts]
    assert found == ["I, I", "We will, we will"]
    assert restarts[0].start == words[0].start and restarts[0].end == words[1].end
    said = [(h.cue, words[h.words[0]].text) for h in answer_hits(words)]
    # "No doubt" negates, "not sure" is no yes; "I will", "we will" state a commitment
    assert said == [("yes_word", "I"), ("yes_word", "We"), ("yes_word", "we"), ("no_word", "No,")]


@pytest.mark.parametrize(
    "text, found",
    [
        ("I will eat more fruit.", ["yes_word"]),
        ("I'm going to walk more.", ["yes_word"]),
        ("I will not change my diet.", []),  # a negated commitment is no yes
        ("My friends said I will quit.", []),  # reported, not the speaker's own
        ("Yes, definitely.", ["yes_word", "yes_word"]),
    ],
)
def test_a_stated_commitment_is_a_verbal_yes(text, found):
    assert [h.cue for h in answer_hits(_words(text))] == found


# -- delivery ---------------------------------------------------------------------------------


def test_a_long_mid_sentence_pause_carries_an_answer_on_its_own(analyzer):
    words = _words("I will start", 0.5) + _words("walking every morning.", 4.4)
    tl = _timeline(7.0, words, [(0.5, 1.4), (4.2, 5.4)])  # a 2.8 s silence mid-sentence
    result = _result(analyzer, tl)
    assert result.clip.ah_probability >= 0.5
    top = result.explanation.cues[0]
    assert top.cue == "pause" and top.evidence["pause_s"] == pytest.approx(2.8, abs=0.25)
    assert top.evidence["mid_sentence"] is True and "mid-sentence pause" in top.text
    # the same silence after a finished sentence counts less
    done = _words("I will start.", 0.5) + _words("Walking every morning.", 4.4)
    after = _result(analyzer, _timeline(7.0, done, [(0.5, 1.4), (4.2, 5.4)]))
    assert after.clip.ah_probability < result.clip.ah_probability


def test_slow_speech_latency_and_restarts_are_cues_with_their_evidence(analyzer):
    words = _words("I, I will cut down on sugar.", 3.0, 0.5)
    tl = _timeline(7.0, words, [(3.0, 6.5)], rate=1.0)  # 1 word/s, after a 3 s wait
    cues = compute_cues(tl, None).cues
    for name in ("latency", "slow_speech", "restart"):
        assert cues[:, CUE_NAMES.index(name)].max() > 0.5, name
    result = _result(analyzer, tl)
    found = {c.cue: c for c in result.explanation.cues}
    assert found["latency"].evidence["latency_s"] == pytest.approx(3.0, abs=0.01)
    assert found["slow_speech"].evidence["reference_words_per_s"] == 2.5  # short: population
    assert found["restart"].evidence["words"] == "I, I"
    assert result.clip.ah_probability >= 0.5


def test_slow_speech_is_measured_against_the_speakers_own_rate(analyzer):
    words = _words("I know what I want and I am going to do it, I will start", 0.3, 0.3)
    tl = _timeline(10.0, words, [(0.3, 9.6)], rate=3.0)
    assert compute_cues(tl, None).cues[:, CUE_NAMES.index("slow_speech")].max() == 0.0
    tl.speech_rate[tl.times >= 6.0] = 1.0  # the same speaker slows down for the last 3.6 s
    slow = compute_cues(tl, None).cues[:, CUE_NAMES.index("slow_speech")]
    late = (tl.times >= 7.0) & tl.masks["speech"]
    assert slow[late].min() > 0.5 and slow[tl.times < 5.0].max() == 0.0


# -- meaning ----------------------------------------------------------------------------------


def test_stated_ambivalence_is_recognised_from_meaning_and_named(analyzer):
    text = "I want to quit smoking, and I want to keep smoking too."
    assert not [h for h in lexical_hits(_words(text)) if h.cue != "negation"]  # no hedge word
    tl = _timeline(6.0, _words(text, 0.5, 0.4), [(0.5, 5.3)])
    pred = analyzer.predict(tl)
    col = FEATURE_NAMES.index("stated_ambivalence")
    assert pred.outputs["cue_features"][:, col].max() > 0.3
    result = analyzer.postprocess(tl, pred)
    cue = next(c for c in result.explanation.cues if c.cue == "stated_ambivalence")
    assert cue.evidence["prototype"] in PROTOTYPES["ambivalent"]
    assert 0.3 < cue.evidence["similarity"] <= 1.0
    assert "smoking" in cue.evidence["words"] and cue.evidence["prototype"] in cue.text
    committed = "I will definitely quit smoking next week, my plan is clear."
    plain = analyzer.predict(_timeline(6.0, _words(committed, 0.5, 0.4), [(0.5, 5.3)]))
    assert plain.outputs["cue_features"][:, col].max() < 0.1


# -- absent channels and conflict -------------------------------------------------------------


def test_a_missing_face_is_not_evidence_against_and_is_named(analyzer):
    words = _words("Um, I guess, uh, I could try, maybe.", 0.5, 0.35)
    audio_only = _result(analyzer, _timeline(4.0, words, [(0.5, 3.3)]))
    with_face = _result(analyzer, _timeline(4.0, words, [(0.5, 3.3)], face=True))
    assert audio_only.clip.ah_probability > with_face.clip.ah_probability
    assert audio_only.clip.ah_probability >= 0.5
    assert "Absent: face" in audio_only.explanation.summary
    assert "Absent" not in with_face.explanation.summary


@pytest.mark.parametrize("said, axis", [("Yes, I will quit next month.", 0), ("No.", 1)])
def test_yes_with_a_head_shake_and_no_with_a_nod_conflict(analyzer, said, axis):
    words = _words(said, 0.6, 0.35)
    tl = _timeline(4.0, words, [(0.6, 0.6 + 0.35 * len(words))], face=True)
    still = compute_cues(tl, None).cues[:, CUE_NAMES.index("yes_no_conflict")]
    assert still.max() == 0.0
    tl.head_pose[:, axis] = 12.0 * np.sin(2 * np.pi * 2.0 * tl.times)  # 2 Hz, +-12 degrees
    moving = compute_cues(tl, None).cues[:, CUE_NAMES.index("yes_no_conflict")]
    assert moving.max() >= 0.5
    result = _result(analyzer, tl)
    cue = next(c for c in result.explanation.cues if c.cue == "yes_no_conflict")
    assert cue.type == "cross-modal"
    assert cue.evidence["head"] == ("shake" if axis == 0 else "nod")
    assert cue.evidence["range_deg"] > 10


def test_tiered_faces_see_a_nod_between_landmark_frames(model_path):
    """Whole clips run the face mesh once a second; a nod (2 Hz, +-14 degrees, a real rotation
    of the face mesh as the challenge set renders it) lies between landmark frames, so pitch
    must follow the detector keypoints there, as yaw does (measured: the nod's full swing in
    tiered pitch, about as the mesh on every frame sees it; carried pitch saw none)."""
    from ahgen import _Heads

    from ahmer.preprocessing.face_tiers import interpolate_landmark_gaps
    from ahmer.preprocessing.faces import FaceAnalyzer

    heads = _Heads(0, model_path("face_landmarker"))
    times = np.arange(0.0, 3.0, 0.2)  # 5 fps; the nod from 0.6 s to 2.6 s
    frames = [heads.frame(t, [(0.6, 2.6, "pitch")]) for t in times]
    common = {"detector_path": model_path("face_detector_full_range"), "max_faces": 1}
    pitch = {}
    for every in (1, 5):
        with FaceAnalyzer(model_path("face_landmarker"), landmarks_every=every, **common) as fa:
            found = [fa.process(f, float(t)) for f, t in zip(frames, times, strict=True)]
        found = interpolate_landmark_gaps(found, list(times))
        pitch[every] = np.array([faces[0].pose[1] for faces in found])
    nod = (times > 0.6) & (times < 2.6)
    swing = {k: float(np.ptp(v[nod])) for k, v in pitch.items()}
    assert swing[1] > 12  # the mesh on every frame sees the nod
    assert swing[5] > 0.6 * swing[1], swing  # and so do the tiered faces
    assert np.corrcoef(pitch[1][nod], pitch[5][nod])[0, 1] > 0.7


def test_the_earlier_prior_stays_reachable_under_its_name(model_store):
    import onnx

    from ahmer.models.fusion.registry import resolve_fusion

    v3, v2 = resolve_fusion(model_store, ""), resolve_fusion(model_store, WEIGHTS_ID_V2)
    assert v3.version == WEIGHTS_ID and v2.version.startswith(WEIGHTS_ID_V2 + "#")
    meta = {p.key: p.value for p in onnx.load(str(v2.path)).metadata_props}
    assert meta["weights_id"] == WEIGHTS_ID_V2 and not v2.trained
    assert resolve_fusion(model_store, WEIGHTS_ID_V2).sha256 == v2.sha256  # built once


# -- the challenge set ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def challenge(model_store, tmp_path_factory):
    """3 participants answering once in each category, through `ahmer features`."""
    from ahgen import make_ah_challenge

    root = tmp_path_factory.mktemp("challenge")
    made = make_ah_challenge(
        root / "set", participants=3, seed=11, landmarker=model_store.path("face_landmarker")
    )
    out = root / "features"
    cmd = [sys.executable, "-m", "ahmer.service.cli", "features", str(made.root), "--out"]
    proc = subprocess.run(
        [*cmd, str(out), "--label-fps", "12", "--workers", "2", "--quiet"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return made, out


def test_every_category_of_the_challenge_set_is_above_chance(challenge, model_store):
    from ahmer.models.fusion.registry import resolve_fusion

    validity = _validity()
    made, features = challenge
    scores = validity.score_graph(features, made.root, resolve_fusion(model_store, "").path, None)
    assert len(scores) == len(made.clips) == 30
    rows = validity.category_rows(scores)
    assert len(rows) == 10
    for category, (measure, value, count, _, brier) in rows.items():
        assert count == 3
        assert value > 0.5, f"{category}: {measure} {value:.2f}"
        assert 0.0 <= brier < 0.25, f"{category}: Brier {brier:.3f} (0.25: p = 0.5 everywhere)"
    assert all(validity.beats({"a": rows, "b": rows}, "a", "b")[c] is False for c in rows)


def test_challenge_frame_labels_follow_the_ah_segments(challenge):
    from ahmer.models.training.featureset import FeatureSet

    made, features = challenge
    fs = FeatureSet.open(features)
    cats = _validity().categories_of(features, made.root)
    assert sorted(cats.values()) == sorted(c.category for c in made.clips)
    for row in fs.rows:
        clip = fs.load(row)
        labels = clip.frame_labels[clip.labelled()]
        if clip.label == 1:  # the hesitant or ambivalent part, not the whole clip
            assert 0 < labels.mean() < 1, (cats[row.id], labels.mean())
        else:
            assert not labels.any(), cats[row.id]


def test_a_frames_text_keeps_to_its_sentence():
    from ahmer.models.fusion.encoders import words_window_texts

    words = _words("I feel strong. Yes, I am ready.", 0.0, 0.3)
    plain, kept = (words_window_texts(words, [0.8], sentences=s)[0] for s in (False, True))
    assert plain == "I feel strong. Yes, I am ready."
    assert kept == "I feel strong."
    assert words_window_texts(words, [1.6], sentences=True) == ["Yes, I am ready."]


def test_asr_keeps_fillers_and_the_vad_finds_the_pause_without_words(analyzer, tmp_path):
    """An audio-only answer, no transcript: Whisper (with the filler prompt) keeps the filled
    pause, and the 2 s silence in the middle of the sentence is found by the VAD, whatever
    the words say."""
    from bahgen import RATE, _pcm, _silence
    from media import make_clip

    cache: dict = {}
    first = _pcm("Um, I will start", tmp_path, "en-us", 140, cache)
    second = _pcm("walking, uh, every morning.", tmp_path, "en-us", 140, cache)
    audio = np.concatenate([_silence(0.5), first, _silence(2.0), second, _silence(0.5)])
    clip = make_clip(tmp_path / "answer.m4a", None, audio, RATE, duration=len(audio) / RATE)
    result = analyzer.analyze(clip)
    assert result.transcript_source == "asr"
    said = " ".join(w.text.lower() for w in result.transcript)
    assert any(f in said for f in ("um", "uh")), "the fillers were dropped"
    pause = next(c for c in result.explanation.cues if c.cue == "pause")
    assert pause.evidence["pause_s"] == pytest.approx(2.0, abs=0.35)
    assert "Absent: face" in result.explanation.summary
