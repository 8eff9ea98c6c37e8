"""The fusion graph contract, the cue features and the explanation, on constructed timelines
(numbers in, numbers out: the graph itself is the real ONNX model run by ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from ahmer.models.contract import (
    ATTRIBUTION_NAMES,
    EMBED_DIM,
    FACE_EMBED_DIM,
    FUSION_CONTRACT,
    VOICE_EMBED_DIM,
)
from ahmer.models.fusion.cues import CUE_NAMES, compute_cues, lexical_hits
from ahmer.models.fusion.explain import explain, segments_from
from ahmer.models.fusion.graph import (
    CONTRIB_GROUPS,
    CONTRIB_NAMES,
    FEATURE_NAMES,
    LEARNED_NAMES,
    FusionWeights,
    build_fusion_model,
)
from ahmer.models.fusion.prior import BIAS, CUES, LEARNED_DOCS, cue_table_markdown, zeroshot_weights
from ahmer.preprocessing.timeline import MediaInfo, Segment, Timeline, Word

ROOT = Path(__file__).resolve().parents[1]


def _random_embed(texts):
    rng = np.random.default_rng(len(texts))
    e = rng.normal(size=(len(texts), EMBED_DIM)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def session():
    weights = zeroshot_weights(_random_embed)
    model = build_fusion_model(weights)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _feed(t=50, b=1, fps=5.0):
    return {
        "cues": np.zeros((b, t, len(CUE_NAMES)), np.float32),
        "masks": np.ones((b, t, 3), np.float32),
        "emotion": np.zeros((b, t, 7), np.float32),
        "text_emb": np.zeros((b, t, EMBED_DIM), np.float32),
        "face_emb": np.zeros((b, t, FACE_EMBED_DIM), np.float32),
        "voice_emb": np.zeros((b, t, VOICE_EMBED_DIM), np.float32),
        "valid": np.ones((b, t), np.float32),
        "fps": np.array([fps], np.float32),
    }


def _run(session, feed):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed), strict=True))


def test_contract_and_no_cue_gives_bias(session):
    out = _run(session, _feed())
    assert out["frame_ah_logit"].shape == (1, 50)
    assert out["cue_contrib"].shape == (1, 50, len(CONTRIB_NAMES))
    assert out["attribution"].shape == (1, 50, len(ATTRIBUTION_NAMES))
    np.testing.assert_allclose(out["frame_ah_logit"], BIAS, atol=1e-5)
    w = zeroshot_weights(_random_embed)
    np.testing.assert_allclose(out["clip_ah_logit"], BIAS * w.clip_scale + w.clip_bias, atol=1e-4)


def test_contributions_sum_to_logit_and_attribution_is_leave_one_out(session):
    feed = _feed()
    rng = np.random.default_rng(1)
    feed["cues"][:] = rng.uniform(0, 1, feed["cues"].shape)
    out = _run(session, feed)
    np.testing.assert_allclose(out["cue_contrib"].sum(-1) + BIAS, out["frame_ah_logit"], atol=1e-4)
    # leave-one-modality-out: removing the visual contributions lowers p by attribution
    visual = [CONTRIB_NAMES.index(n) for n, g in CONTRIB_GROUPS.items() if g == "visual"]
    p = 1 / (1 + np.exp(-out["frame_ah_logit"]))
    without = out["frame_ah_logit"] - out["cue_contrib"][..., visual].sum(-1)
    np.testing.assert_allclose(
        out["attribution"][..., 0], p - 1 / (1 + np.exp(-without)), atol=1e-4
    )


def test_a_missing_channel_is_not_evidence_against(session):
    """The same vocal and verbal evidence scores higher without a face than beside a face that
    shows nothing: the contributions are divided by the shares of the channels present."""
    feed = _feed()
    feed["cues"][0, 20:30, CUE_NAMES.index("filler")] = 1.0
    feed["cues"][0, 20:30, CUE_NAMES.index("pause")] = 1.0
    with_face = _run(session, feed)
    audio_only = {k: v.copy() for k, v in feed.items()}
    audio_only["masks"][..., 0] = 0
    without_face = _run(session, audio_only)
    assert float(without_face["clip_ah_logit"][0]) > float(with_face["clip_ah_logit"][0]) + 0.3
    # ... while no evidence at all stays at the bias, with or without a face
    empty = _feed()
    empty["masks"][..., 0] = 0
    np.testing.assert_allclose(_run(session, empty)["frame_ah_logit"], BIAS, atol=1e-5)


def test_masked_modality_does_not_count(session):
    feed = _feed()
    feed["cues"][0, :, CUE_NAMES.index("hedge")] = 1.0
    feed["masks"][..., 2] = 0  # no transcript
    out = _run(session, feed)
    np.testing.assert_allclose(out["frame_ah_logit"], BIAS, atol=1e-5)


def test_smoothing_spreads_a_spike_and_respects_fps(session):
    outs = {}
    for fps in (5.0, 25.0):
        t = int(10 * fps)
        feed = _feed(t=t, fps=fps)
        feed["cues"][0, t // 2, CUE_NAMES.index("pause")] = 1.0
        logit = _run(session, feed)["frame_ah_logit"][0]
        times = np.arange(t) / fps
        outs[fps] = (times, logit)
        assert logit[t // 2] == logit.max()
        assert logit[t // 2 + 1] > BIAS + 1e-4  # neighbours raised: smoothed
    # the same time span is covered at both rates: width at half height in seconds agrees
    widths = []
    for times, logit in outs.values():
        above = times[logit - BIAS >= (logit.max() - BIAS) / 2]
        widths.append(above[-1] - above[0])
    assert abs(widths[0] - widths[1]) <= 0.25


def test_padding_does_not_change_clip_result(session):
    feed = _feed(t=40)
    feed["cues"][0, 10:15, CUE_NAMES.index("hedge")] = 1.0
    single = _run(session, feed)
    batch = _feed(t=60, b=2)
    batch["cues"][0, :40] = feed["cues"][0]
    batch["valid"][0, 40:] = 0
    batch["cues"][1, 30:35, CUE_NAMES.index("pause")] = 1.0
    out = _run(session, batch)
    np.testing.assert_allclose(out["clip_ah_logit"][0], single["clip_ah_logit"][0], atol=1e-4)
    np.testing.assert_allclose(
        out["frame_ah_logit"][0, :40], single["frame_ah_logit"][0], atol=1e-4
    )


def test_emotion_support_and_valence(session):
    feed = _feed(t=30)
    feed["emotion"][0, :, 3] = 1.0  # happy everywhere
    feed["masks"][0, 20:, 0] = 0  # face lost after frame 20
    out = _run(session, feed)
    probs = np.exp(out["frame_emotion_logits"][0])
    assert probs[:15, 3].min() > 0.99
    assert out["emotion_support"][0, :15].min() > 0.99
    assert out["emotion_support"][0, 29] < 0.05
    assert out["frame_valence"][0, :15].min() > 0.99


def test_discord_needs_both_modalities(session):
    weights = zeroshot_weights(_random_embed)
    feed = _feed(t=20)
    feed["emotion"][0, :, 4] = 1.0  # sad face
    pos = weights.anchors[:, 2]  # words that sit exactly on the positive anchor
    feed["text_emb"][0, :] = pos
    out = _run(session, feed)
    discord = out["cue_contrib"][0, :, CONTRIB_NAMES.index("valence_discord")]
    assert discord.min() > 0.1
    feed["masks"][..., 0] = 0  # no face: no discord
    out = _run(session, feed)
    assert np.abs(out["cue_contrib"][0, :, CONTRIB_NAMES.index("valence_discord")]).max() < 1e-6


def test_bad_weights_rejected():
    with pytest.raises(ValueError, match="anchors"):
        build_fusion_model(FusionWeights("x@0", 0.0, {}, np.zeros((3, 4), np.float32)))
    with pytest.raises(ValueError, match="lack"):
        build_fusion_model(FusionWeights("x@0", 0.0, {}, np.zeros((EMBED_DIM, 4), np.float32)))


def test_cue_doc_matches_code():
    """models/CUES.md carries the same table the code generates: docs cannot drift."""
    text = (ROOT / "models" / "CUES.md").read_text()
    assert cue_table_markdown() in text
    assert "not a model trained on BAH" in text
    assert [c.name for c in (*CUES, *LEARNED_DOCS)] == list(CONTRIB_NAMES)
    assert [c.name for c in CUES] == list(FEATURE_NAMES)
    assert [c.name for c in LEARNED_DOCS] == list(LEARNED_NAMES)


def _timeline(words, duration=6.0, fps=5.0):
    times = np.arange(int(duration * fps)) / fps
    info = MediaInfo("wav", duration, has_video=False, has_audio=True, sample_rate=16000)
    tl = Timeline.empty(times, fps, info)
    tl.words = words
    tl.transcript_source = "client"
    tl.masks["audio"][:] = True
    tl.speech = [Segment(0.5, 2.0), Segment(3.5, 5.5)]
    tl.masks["speech"] = ((times >= 0.5) & (times < 2.0)) | ((times >= 3.5) & (times < 5.5))
    tl.pause_s = np.where((times >= 2.0) & (times < 3.5), 1.5, 0.0).astype(np.float32)
    return tl


def test_lexical_hits_and_cue_columns():
    words = [
        Word(0.5, 0.8, "I"),
        Word(0.8, 1.1, "guess,"),
        Word(1.1, 1.4, "maybe"),
        Word(3.6, 3.9, "but"),
        Word(3.9, 4.1, "I'm"),
        Word(4.1, 4.4, "not"),
        Word(4.4, 4.8, "sure."),
        Word(4.9, 5.1, "Um"),
    ]
    hits = lexical_hits(words)
    found = {(h.cue, " ".join(words[i].text for i in h.words)) for h in hits}
    assert ("uncertainty", "I guess,") in found
    assert ("hedge", "maybe") in found
    assert ("contrast", "but") in found
    assert ("uncertainty", "not sure.") in found
    assert ("filler", "Um") in found
    tl = _timeline(words)
    cues = compute_cues(tl, None)
    col = CUE_NAMES.index("hedge")
    assert cues.cues[int(1.2 * 5), col] > 0.5  # at "maybe"
    assert cues.cues[int(5.9 * 5), CUE_NAMES.index("contrast")] == 0  # "but" out of window
    pause_col = CUE_NAMES.index("pause")
    assert cues.cues[int(2.5 * 5), pause_col] > 0.5  # inside the 1.5 s pause
    assert cues.masks[:, 0].sum() == 0  # no face: visual masked
    assert cues.masks[:, 2].all()


def test_explanation_cites_words_at_their_times(session):
    words = [Word(0.5, 0.8, "I"), Word(0.8, 1.1, "guess"), Word(1.1, 1.5, "maybe")]
    tl = _timeline(words)
    cues = compute_cues(tl, None)
    feed = _feed(t=len(tl))
    feed["cues"][0] = cues.cues
    feed["masks"][0] = cues.masks
    out = {k: v[0] for k, v in _run(session, feed).items()}
    clip_p = float(1 / (1 + np.exp(-out["clip_ah_logit"])))
    exp = explain(tl, cues, out["cue_contrib"], None, out["frame_valence"], clip_p)
    by_cue = {c.cue: c for c in exp.cues}
    # "guess" and "maybe" are hedges 0 s apart: one cue citing both, at their times
    hedge = by_cue["hedge"]
    assert [o["words"] for o in hedge.evidence["occurrences"]] == ["guess", "maybe"]
    assert [o["start"] for o in hedge.evidence["occurrences"]] == [0.8, 1.1]
    assert hedge.start == 0.8 and hedge.end == 1.5
    assert by_cue["uncertainty"].evidence["words"] == "I guess"
    assert by_cue["pause"].evidence["pause_s"] == 1.5
    assert by_cue["pause"].type == "vocal"
    assert "maybe" in exp.summary or "guess" in exp.summary
    assert exp.cues == tuple(sorted(exp.cues, key=lambda c: -c.weight))


def test_segments_from_probabilities():
    times = np.arange(20) / 5.0
    prob = np.zeros(20)
    prob[5:9] = 0.8
    prob[10:12] = 0.9  # gap of one frame (0.2 s) -> merged
    segs = segments_from(prob, times, 5.0)
    assert len(segs) == 1
    assert segs[0].start == pytest.approx(1.0) and segs[0].end == pytest.approx(2.4)
    assert segs[0].peak_probability == pytest.approx(0.9)


def test_store_fusion_artifact_is_the_zeroshot_prior(model_store):
    import onnx

    from ahmer.models.fusion.prior import WEIGHTS_ID

    entry = model_store.manifest().entries["ah_fusion_zeroshot"]
    assert entry.version == WEIGHTS_ID
    model = onnx.load(str(model_store.path("ah_fusion_zeroshot")))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["weights_id"] == WEIGHTS_ID
    assert meta["contract"] == FUSION_CONTRACT
    assert meta["uses_embeddings"] == "0"
    assert "not trained on BAH" in meta["kind"]
    assert {t.name for t in entry.inputs} == {
        "cues",
        "masks",
        "emotion",
        "text_emb",
        "face_emb",
        "voice_emb",
        "valid",
        "fps",
    }
    assert "cue_features" in {t.name for t in entry.outputs}
