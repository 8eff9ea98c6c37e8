"""Fusion contract 2: the embedding inputs, the learned terms and their explanations, the face
embedding of ``fer_emotion`` and the voice embedding from Whisper's encoder.

The graphs are the real ONNX models run by ONNX Runtime; the face model, Whisper and the
analyzer are the store's; the speech is espeak-ng's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from ahmer.models.contract import (
    EMBED_DIM,
    FACE_EMBED_DIM,
    FUSION_CONTRACT,
    MASK_NAMES,
    VOICE_EMBED_DIM,
)
from ahmer.models.fusion.cues import CUE_NAMES, compute_cues
from ahmer.models.fusion.explain import explain
from ahmer.models.fusion.graph import (
    CONTRIB_NAMES,
    EMBEDDING_INPUTS,
    FEATURE_NAMES,
    HALF_TAPS,
    LEARNED_NAMES,
    LearnedTerm,
    build_fusion_model,
)
from ahmer.models.fusion.prior import BIAS, zeroshot_weights
from ahmer.preprocessing.timeline import MediaInfo, Segment, Timeline, Word

FPS = 5.0


def _random_embed(texts):
    rng = np.random.default_rng(len(texts))
    e = rng.normal(size=(len(texts), EMBED_DIM)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _session(weights) -> tuple[ort.InferenceSession, dict[str, str]]:
    model = build_fusion_model(weights)
    meta = {p.key: p.value for p in model.metadata_props}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess, meta


def _run(sess, feed):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feed), strict=True))


def _random_feed(rng, b=2, t=60, fps=FPS):
    text = rng.normal(size=(b, t, EMBED_DIM)).astype(np.float32)
    text /= np.linalg.norm(text, axis=-1, keepdims=True)
    text[:, rng.uniform(size=t) < 0.3] = 0.0
    feed = {
        "cues": rng.uniform(size=(b, t, len(CUE_NAMES))).astype(np.float32),
        "masks": (rng.uniform(size=(b, t, 3)) < 0.8).astype(np.float32),
        "emotion": rng.dirichlet(np.ones(7), size=(b, t)).astype(np.float32),
        "text_emb": text,
        "face_emb": rng.normal(size=(b, t, FACE_EMBED_DIM)).astype(np.float32),
        "voice_emb": rng.normal(size=(b, t, VOICE_EMBED_DIM)).astype(np.float32),
        "valid": np.ones((b, t), np.float32),
        "fps": np.array([fps], np.float32),
    }
    feed["valid"][-1, t // 2 :] = 0.0  # padding
    feed["face_emb"][:, : t // 3] = 0.0  # no face embedding at the start
    return feed


def _smooth(x: np.ndarray, valid: np.ndarray, fps: float, sigma: float) -> np.ndarray:
    """The graph's temporal smoothing in numpy: a Gaussian-weighted average over valid
    frames, ``x`` [B, T]."""
    taps = np.arange(-HALF_TAPS, HALF_TAPS + 1) / fps
    g = np.exp(-0.5 * (taps / sigma) ** 2)
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        num = np.convolve(x[i] * valid[i], g, mode="same")
        den = np.convolve(valid[i], g, mode="same")
        out[i] = num / np.maximum(den, 1e-6)
    return out


def _learned_weights(rng, active=LEARNED_NAMES):
    weights = zeroshot_weights(_random_embed)
    for name in active:
        dim = EMBEDDING_INPUTS[name][1]
        weights.learned[name] = LearnedTerm(
            mean=rng.normal(size=dim).astype(np.float32) * 0.1,
            scale=rng.uniform(0.5, 2.0, size=dim).astype(np.float32),
            weight=rng.normal(size=dim).astype(np.float32) * 0.05,
        )
    weights.weights_id = "test-learned@1"
    return weights


# -- the graph ---------------------------------------------------------------------------


def test_contract_names_and_shapes():
    assert FUSION_CONTRACT == "ahmer.fusion/3"
    assert CONTRIB_NAMES == (*FEATURE_NAMES, *LEARNED_NAMES)
    assert len(FEATURE_NAMES) == 21 and len(CONTRIB_NAMES) == 24
    sess, meta = _session(zeroshot_weights(_random_embed))
    assert meta["contract"] == FUSION_CONTRACT and meta["uses_embeddings"] == "0"
    assert meta["contrib_names"].split(",") == list(CONTRIB_NAMES)
    assert meta["feature_names"].split(",") == list(FEATURE_NAMES)
    inputs = {i.name: i.shape for i in sess.get_inputs()}
    assert inputs["face_emb"] == ["B", "T", FACE_EMBED_DIM]
    assert inputs["voice_emb"] == ["B", "T", VOICE_EMBED_DIM]
    out = _run(sess, _random_feed(np.random.default_rng(0), t=40))
    assert out["cue_contrib"].shape == (2, 40, 24)
    assert out["cue_features"].shape == (2, 40, 21)
    assert out["prototype_match"].shape == (2, 40, 2)


def test_prior_ignores_the_embeddings():
    """The prior's learned weights are zero: any face/voice embedding gives the outputs of
    zero embeddings (those of contract 1 on the same cues), bit for bit."""
    sess, _ = _session(zeroshot_weights(_random_embed))
    rng = np.random.default_rng(1)
    for fps in (5.0, 25.0):
        feed = _random_feed(rng, fps=fps)
        zero = dict(feed, face_emb=np.zeros_like(feed["face_emb"]))
        zero["voice_emb"] = np.zeros_like(feed["voice_emb"])
        got, want = _run(sess, feed), _run(sess, zero)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert not got["cue_contrib"][..., len(FEATURE_NAMES) :].any()
        np.testing.assert_allclose(
            got["cue_contrib"].sum(-1) + BIAS, got["frame_ah_logit"], atol=1e-5
        )


def test_cue_features_are_the_unweighted_features():
    weights = zeroshot_weights(_random_embed)
    sess, _ = _session(weights)
    feed = _random_feed(np.random.default_rng(2))
    out = _run(sess, feed)
    gate = np.stack([_gate(feed["masks"], n) for n in CUE_NAMES], -1)
    n_cue = len(CUE_NAMES)
    np.testing.assert_allclose(out["cue_features"][..., :n_cue], feed["cues"] * gate, atol=1e-6)
    # weighted, divided by the shares present and smoothed, a feature is its cue_contrib column
    w = weights.weight_vector()
    presence = _presence(weights, feed)
    for j in (0, 6, 10, n_cue - 1, n_cue, n_cue + 1, n_cue + 2):
        x = out["cue_features"][..., j] * w[j] * presence
        want = _smooth(x, feed["valid"], FPS, weights.sigma_s)
        valid = feed["valid"] > 0
        np.testing.assert_allclose(out["cue_contrib"][..., j][valid], want[valid], atol=1e-4)


def _gate(masks: np.ndarray, cue: str) -> np.ndarray:
    from ahmer.models.fusion.cues import CUE_GATES

    return np.prod([masks[..., MASK_NAMES.index(m)] for m in CUE_GATES[cue]], axis=0)


def test_learned_terms_move_the_logit_by_their_linear_amount():
    rng = np.random.default_rng(3)
    learned = _learned_weights(rng)
    prior_sess, _ = _session(zeroshot_weights(_random_embed))
    sess, meta = _session(learned)
    assert meta["uses_embeddings"] == "1"
    feed = _random_feed(rng)
    base, out = _run(prior_sess, feed), _run(sess, feed)
    valid = feed["valid"] > 0
    total = np.zeros(feed["valid"].shape)
    for name in LEARNED_NAMES:
        emb_name, _, group = EMBEDDING_INPUTS[name]
        term = learned.learned[name]
        emb = feed[emb_name].astype(np.float64)
        raw = ((emb - term.mean) * term.scale) @ term.weight.astype(np.float64)
        has = (np.square(emb).sum(-1) > 0).astype(np.float64)
        raw = raw * has * feed["masks"][..., MASK_NAMES.index(group)] * _presence(learned, feed)
        smooth = _smooth(raw, feed["valid"], FPS, learned.sigma_s)
        col = CONTRIB_NAMES.index(name)
        np.testing.assert_allclose(out["cue_contrib"][..., col][valid], smooth[valid], atol=2e-4)
        total += smooth
        assert np.abs(smooth[valid]).max() > 0.1  # the term is not trivially small
    # frames without a face embedding: no face term even though (0 - mean) @ w is not 0
    face_col = CONTRIB_NAMES.index("learned_face")
    assert np.abs(out["cue_contrib"][:, :10, face_col]).max() < 1e-6  # 10+ frames (2 s) away
    delta = out["frame_ah_logit"] - base["frame_ah_logit"]
    np.testing.assert_allclose(delta[valid], total[valid], atol=3e-4)
    # the other contributions are untouched, and the sum still makes the logit
    n = len(FEATURE_NAMES)
    np.testing.assert_allclose(out["cue_contrib"][..., :n], base["cue_contrib"][..., :n])
    np.testing.assert_allclose(out["cue_contrib"].sum(-1) + BIAS, out["frame_ah_logit"], atol=1e-4)


def test_attribution_stays_leave_one_modality_out_with_learned_terms():
    rng = np.random.default_rng(4)
    sess, _ = _session(_learned_weights(rng))
    feed = _random_feed(rng, b=1)
    out = _run(sess, feed)
    logit = out["frame_ah_logit"]
    p = 1 / (1 + np.exp(-logit))
    groups = {"visual": [], "vocal": [], "verbal": [], "cross_modal": []}
    for j, name in enumerate(CONTRIB_NAMES):
        groups[_contrib_group(name)].append(j)
    for m, cols in enumerate(groups.values()):
        without = logit - out["cue_contrib"][..., cols].sum(-1)
        np.testing.assert_allclose(
            out["attribution"][..., m], p - 1 / (1 + np.exp(-without)), atol=1e-5
        )
    assert np.abs(out["attribution"][..., 1]).max() > 0.01


def _presence(weights, feed) -> np.ndarray:
    """The graph's presence scaling: 1 / the shares of the modalities present per frame."""
    shares = np.asarray(weights.modality_shares, np.float64)
    return 1.0 / np.maximum(feed["masks"] @ shares, weights.share_floor)


def _contrib_group(name: str) -> str:
    from ahmer.models.fusion.graph import CONTRIB_GROUPS

    return CONTRIB_GROUPS[name]


def test_bad_learned_terms_are_refused():
    weights = zeroshot_weights(_random_embed)
    weights.learned["learned_face"] = LearnedTerm.zero(FACE_EMBED_DIM + 1)
    with pytest.raises(ValueError, match=r"learned_face\.mean must be \[128\]"):
        build_fusion_model(weights)
    weights.learned = {"learned_smell": LearnedTerm.zero(3)}
    with pytest.raises(ValueError, match="unknown learned terms"):
        build_fusion_model(weights)
    weights.learned = {"learned_voice": LearnedTerm.zero(VOICE_EMBED_DIM)}
    weights.learned["learned_voice"].weight[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        build_fusion_model(weights)


# -- explanations ---------------------------------------------------------------------------


def _voice_timeline(t: int) -> Timeline:
    times = np.arange(t) / FPS
    info = MediaInfo("wav", t / FPS, has_video=False, has_audio=True, sample_rate=16000)
    tl = Timeline.empty(times, FPS, info)
    tl.masks["audio"][:] = True
    tl.words = [Word(0.4, 0.8, "well"), Word(5.0, 5.4, "fine")]
    tl.transcript_source = "client"
    tl.speech = [Segment(0.2, float(t / FPS))]
    tl.masks["speech"][:] = True
    tl.pause_s = np.zeros(t, np.float32)
    return tl


def test_explanation_names_a_learned_voice_pattern_with_its_frames():
    t = 40
    rng = np.random.default_rng(5)
    direction = rng.normal(size=VOICE_EMBED_DIM).astype(np.float32)
    direction /= np.linalg.norm(direction)
    weights = zeroshot_weights(_random_embed)
    weights.learned["learned_voice"] = LearnedTerm(
        np.zeros(VOICE_EMBED_DIM, np.float32), np.ones(VOICE_EMBED_DIM, np.float32), direction
    )
    sess, _ = _session(weights)
    prior_sess, _ = _session(zeroshot_weights(_random_embed))
    tl = _voice_timeline(t)
    cues = compute_cues(tl, None)
    voice = rng.normal(size=(t, VOICE_EMBED_DIM)).astype(np.float32) * 0.01
    voice[15:21] += 3.0 * direction  # the pattern, frames 15-20 (3.0-4.0 s)
    feed = {
        "cues": cues.cues[None],
        "masks": cues.masks[None],
        "emotion": np.zeros((1, t, 7), np.float32),
        "text_emb": np.zeros((1, t, EMBED_DIM), np.float32),
        "face_emb": np.zeros((1, t, FACE_EMBED_DIM), np.float32),
        "voice_emb": voice[None],
        "valid": np.ones((1, t), np.float32),
        "fps": np.array([FPS], np.float32),
    }
    for sess_, learned in ((sess, True), (prior_sess, False)):
        out = {k: v[0] for k, v in _run(sess_, feed).items()}
        clip_p = float(1 / (1 + np.exp(-out["clip_ah_logit"])))
        exp = explain(tl, cues, out["cue_contrib"], None, out["frame_valence"], clip_p)
        found = [c for c in exp.cues if c.cue in LEARNED_NAMES]
        if not learned:
            assert found == []  # the prior never cites a learned pattern
            continue
        assert [c.cue for c in found] == ["learned_voice"]
        cue = found[0]
        assert cue.type == "vocal"
        assert cue.text.startswith("a learned voice pattern at ")
        assert 2.0 <= cue.start <= 3.0 and 4.0 <= cue.end <= 5.0  # scaled up: no face here
        col = CONTRIB_NAMES.index("learned_voice")
        assert cue.evidence["contribution"] == pytest.approx(out["cue_contrib"][:, col].max(), 1e-3)
        assert set(range(15, 21)) <= set(cue.evidence["frames"])
        assert cue.evidence["frame_times"] == [round(i / FPS, 3) for i in cue.evidence["frames"]]
        assert 3.0 <= cue.evidence["peak_time"] <= 4.0
        assert "learned voice pattern" in exp.summary


# -- the face embedding ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_encoder(model_path):
    from ahmer.models.backends.factory import make_backend
    from ahmer.models.fusion.encoders import FaceEmotionEncoder

    backend = make_backend(intra_op_threads=1)
    yield FaceEmotionEncoder(backend, model_path("fer_emotion"), batch_size=4)
    backend.close()


def test_face_embedding_shape_determinism_and_missing_rows(face_encoder):
    import cv2
    from media import face_photo

    face = cv2.resize(face_photo()[20:200, 150:330], (112, 112), interpolation=cv2.INTER_AREA)
    crops = np.stack([face, face[:, ::-1], np.zeros_like(face), cv2.GaussianBlur(face, (9, 9), 0)])
    valid = np.array([True, True, False, True])
    probs, emb = face_encoder.encode(crops, valid, with_embedding=True)
    assert emb.shape == (4, FACE_EMBED_DIM) and emb.dtype == np.float32
    assert np.isnan(emb[2]).all() and np.isnan(probs[2]).all()
    assert np.isfinite(emb[valid]).all() and np.abs(emb[valid]).sum(1).min() > 1.0
    # the same pass gives the same probabilities as without the embedding
    np.testing.assert_array_equal(probs, face_encoder.encode(crops, valid))
    # deterministic, and batching does not change a row
    again = face_encoder.encode(crops, valid, with_embedding=True)[1]
    np.testing.assert_array_equal(emb[valid], again[valid])
    single = face_encoder.encode(crops[3:4], with_embedding=True)[1]
    np.testing.assert_allclose(single[0], emb[3], atol=1e-5)
    # the mirrored face is nearer the face than a blank grey crop or the face on its side
    others = face_encoder.encode(np.stack([np.full_like(face, 128), np.rot90(face)]), None, True)
    unit = [v / np.linalg.norm(v) for v in (emb[0], emb[1], *others[1])]
    assert unit[0] @ unit[1] > 0.6 > max(unit[0] @ unit[2], unit[0] @ unit[3])


# -- the voice embedding ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def transcriber(model_path):
    from ahmer.preprocessing.asr import Transcriber

    return Transcriber(model_path("whisper_tiny_en"), cpu_threads=2).load()


@pytest.fixture(scope="module")
def speech_audio(tmp_path_factory) -> np.ndarray:
    """1.5 s of silence, an espeak-ng sentence, 1.5 s of silence (16 kHz mono)."""
    from media import HEDGING, read_wav, speak
    from scipy.signal import resample_poly

    folder = tmp_path_factory.mktemp("voice")
    audio, rate = read_wav(speak(HEDGING, Path(folder) / "s.wav"))
    audio = resample_poly(audio[:, 0], 16000, rate).astype(np.float32)
    silence = np.zeros(24000, np.float32)
    return np.concatenate([silence, audio, silence])


def test_pool_states_means_each_frames_window():
    from ahmer.preprocessing.voice import pool_states

    states = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # 2 s
    pooled = pool_states(states, np.array([0.0, 0.5, 1.0, 1.99, 2.5]), fps=5.0)
    # frame at 0.5 s: window [0.4, 0.6) holds state centres 0.41 .. 0.59 = states 20..29
    np.testing.assert_allclose(pooled[1], np.arange(20, 30).mean())
    np.testing.assert_allclose(pooled[0], np.arange(0, 5).mean())  # clipped at the start
    assert pooled[4].tolist() == [0.0, 0.0, 0.0]  # past the audio
    fast = pool_states(states, np.array([0.505]), fps=200.0)  # no centre in a 5 ms window
    np.testing.assert_allclose(fast[0], 25.0)  # the nearest state: centre 0.51 s


def test_voice_embedding_is_zero_on_silence_and_not_on_speech(transcriber, speech_audio):
    from ahmer.preprocessing.vad import run_vad
    from ahmer.preprocessing.voice import speech_frames, voice_embedding

    duration = len(speech_audio) / 16000
    times = np.arange(int(duration * FPS)) / FPS
    speech = run_vad(speech_audio).segments
    assert speech and speech[0].start > 1.0 and speech[-1].end < duration - 1.0
    got = voice_embedding(transcriber, speech_audio, times, FPS, speech, VOICE_EMBED_DIM)
    assert got.warning is None
    assert got.values.shape == (len(times), VOICE_EMBED_DIM)
    voiced = speech_frames(times, FPS, speech)
    assert voiced.sum() >= 0.5 * len(times) and (~voiced).sum() >= 10
    norms = np.linalg.norm(got.values, axis=1)
    assert (norms[~voiced] == 0).all()
    assert (norms[voiced] > 1.0).all()
    # speech frames differ from one another (the states follow the sound)
    rows = got.values[voiced]
    assert np.abs(rows[0] - rows[len(rows) // 2]).max() > 0.1
    # deterministic
    again = voice_embedding(transcriber, speech_audio, times, FPS, speech, VOICE_EMBED_DIM)
    np.testing.assert_allclose(again.values, got.values, atol=1e-5)
    # all silence: zeros, and nothing to encode
    silent = voice_embedding(transcriber, np.zeros(48000, np.float32), times[:15], FPS, [], 384)
    assert silent.values.shape == (15, VOICE_EMBED_DIM) and not silent.values.any()


def test_voice_embedding_of_another_width_is_zeros_with_a_warning(transcriber, speech_audio):
    from ahmer.preprocessing.voice import voice_embedding

    times = np.arange(20) / FPS
    got = voice_embedding(transcriber, speech_audio, times, FPS, [Segment(1.6, 3.5)], 512)
    assert got.values.shape == (20, 512) and not got.values.any()
    assert "384 wide" in got.warning and "needs 512" in got.warning


# -- the analyzer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer(model_store):
    from serving import shared_analyzer

    return shared_analyzer()


@pytest.fixture(scope="module")
def hedging_timeline(analyzer, tmp_path_factory):
    from media import HEDGING
    from serving import speech_clip

    clip = speech_clip(tmp_path_factory.mktemp("clip"), HEDGING, "hedging", lead=1.0)
    return analyzer.preprocess(clip)


def test_predict_feed_and_embeddings_on_a_real_clip(analyzer, hedging_timeline):
    tl = hedging_timeline
    n = len(tl)
    assert tl.audio is not None  # the timeline keeps the audio for the voice encoder
    plain = analyzer.predict(tl)  # the prior: no embeddings computed
    assert "voice" not in plain.timings
    assert not plain.feed["face_emb"].any() and not plain.feed["voice_emb"].any()
    full = analyzer.predict(tl, embeddings=True)
    shapes = {k: v.shape for k, v in full.feed.items()}
    assert shapes == {
        "cues": (n, len(CUE_NAMES)),
        "masks": (n, 3),
        "emotion": (n, 7),
        "text_emb": (n, EMBED_DIM),
        "face_emb": (n, FACE_EMBED_DIM),
        "voice_emb": (n, VOICE_EMBED_DIM),
        "valid": (n,),
        "fps": (1,),
    }
    assert all(v.dtype == np.float32 for v in full.feed.values())
    face_rows = np.abs(full.feed["face_emb"]).sum(1) > 0
    assert (face_rows == tl.masks["face"]).all() and face_rows.any()
    voice_rows = np.abs(full.feed["voice_emb"]).sum(1) > 0
    assert voice_rows.any() and not voice_rows[: int(0.6 * tl.fps)].any()  # the 1 s lead
    assert full.outputs["cue_features"].shape == (n, len(FEATURE_NAMES))
    # the prior's outputs do not depend on the embeddings
    for name, value in plain.outputs.items():
        np.testing.assert_allclose(full.outputs[name], value, atol=1e-6, err_msg=name)


def test_a_fusion_that_uses_embeddings_gets_them_and_is_explained(
    analyzer, hedging_timeline, tmp_path
):
    """A graph whose learned voice weight is non-zero: predict computes the voice embedding
    by itself (metadata uses_embeddings), the logit moves and the explanation cites it."""
    tl = hedging_timeline
    base = analyzer.predict(tl, embeddings=True)
    voice = base.feed["voice_emb"]
    rows = voice[np.abs(voice).sum(1) > 0]
    mean = rows.mean(0)
    weights = zeroshot_weights(analyzer.text_encoder.encode)
    # +3 logit for a frame at the clip's mean voice state
    weights.learned["learned_voice"] = LearnedTerm(
        np.zeros(VOICE_EMBED_DIM, np.float32),
        np.ones(VOICE_EMBED_DIM, np.float32),
        (3.0 * mean / float(mean @ mean)).astype(np.float32),
    )
    weights.weights_id = "test-voice@1"
    onnx_path = tmp_path / "learned.onnx"
    onnx_path.write_bytes(build_fusion_model(weights).SerializeToString())
    analyzer.backend.load("test_learned_voice", onnx_path)
    learned = copy.copy(analyzer)
    learned.fusion_name = "test_learned_voice"
    pred = learned.predict(tl)  # embeddings=None: the graph says it uses them
    assert "voice" in pred.timings and pred.feed["voice_emb"].any()
    col = CONTRIB_NAMES.index("learned_voice")
    assert pred.outputs["cue_contrib"][:, col].max() > 1.0
    np.testing.assert_allclose(
        pred.outputs["frame_ah_logit"] - base.outputs["frame_ah_logit"],
        pred.outputs["cue_contrib"][:, col],
        atol=1e-4,
    )
    result = learned.postprocess(tl, pred)
    cited = [c for c in result.explanation.cues if c.cue == "learned_voice"]
    assert cited and cited[0].type == "vocal"
    assert cited[0].text.startswith("a learned voice pattern at")
    assert cited[0].evidence["frames"]
    prior_result = analyzer.postprocess(tl, analyzer.predict(tl))
    assert not [c for c in prior_result.explanation.cues if c.cue.startswith("learned_")]


def test_a_live_session_keeps_the_embeddings_a_fusion_uses(analyzer, tmp_path):
    """Live sessions encode frame by frame and keep no images: with a fusion that uses
    embeddings they keep each frame's face embedding and the voice embedding from the audio,
    and the session result gets the same learned terms as a recorded clip would."""
    from media import HEDGING, canvas, portrait, read_wav, speak
    from scipy.signal import resample_poly

    from ahmer.service.live import LiveConfig, LiveSession

    audio, rate = read_wav(speak(HEDGING, tmp_path / "s.wav"))
    audio = resample_poly(audio[:, 0], 16000, rate).astype(np.float32)
    audio = np.concatenate([np.zeros(16000, np.float32), audio, np.zeros(8000, np.float32)])
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    frame = canvas(portrait())
    h, w = frame.shape[:2]

    weights = zeroshot_weights(analyzer.text_encoder.encode)
    rng = np.random.default_rng(7)
    for name in ("learned_face", "learned_voice"):
        dim = EMBEDDING_INPUTS[name][1]
        weights.learned[name] = LearnedTerm(
            np.zeros(dim, np.float32), np.ones(dim, np.float32), rng.normal(size=dim) * 1e-3
        )
    weights.weights_id = "test-live@1"
    (tmp_path / "live.onnx").write_bytes(build_fusion_model(weights).SerializeToString())
    analyzer.backend.load("test_live_fusion", tmp_path / "live.onnx")
    learned = copy.copy(analyzer)
    learned.fusion_name = "test_live_fusion"
    assert learned.uses_embeddings() and not analyzer.uses_embeddings()

    config = LiveConfig(fps=5.0, video="rgb24", width=w, height=h, audio_rate=16000)
    sessions = {"learned": LiveSession(learned, config), "prior": LiveSession(analyzer, config)}
    for session in sessions.values():
        try:
            step = 3200  # 0.2 s of audio per frame
            for i in range(len(pcm) // step):
                session.add_video(i / 5, frame.tobytes())
                session.add_audio(pcm[i * step : (i + 1) * step].tobytes())
            session.result = session.finish()[1]
        finally:
            session.close()
    live = sessions["learned"]
    assert sessions["prior"].store.embeddings(0, 3) == {}  # the prior keeps none
    kept = live.store.embeddings(0, len(live.store))
    face_rows = np.abs(kept["face_emb"]).sum(1) > 0
    assert face_rows.mean() > 0.8
    voice_rows = np.abs(kept["voice_emb"]).sum(1) > 0
    assert voice_rows.any() and not voice_rows[:4].any()  # the first second is silent
    # the learned terms moved the session's frames away from the prior's
    a = [f.ah_probability for f in live.result.frames]
    b = [f.ah_probability for f in sessions["prior"].result.frames]
    assert len(a) == len(b) and np.abs(np.subtract(a, b)).max() > 1e-4


def test_results_name_their_contract_and_older_results_still_load(analyzer, hedging_timeline):
    from ahmer.models.contract import FUSION_CONTRACT_V1
    from ahmer.models.results import AnalysisResult

    tl = hedging_timeline
    result = analyzer.postprocess(tl, analyzer.predict(tl))
    assert result.models["fusion_contract"] == FUSION_CONTRACT
    data = result.to_dict()
    assert AnalysisResult.from_dict(data).models["fusion_contract"] == FUSION_CONTRACT
    # a result written before contract 2 names none: it loads, and readers take it as v1
    del data["models"]["fusion_contract"]
    data["models"]["ah_fusion_zeroshot"] = "ahmer-ah-zeroshot@1"
    old = AnalysisResult.from_dict(data)
    assert old.models.get("fusion_contract", FUSION_CONTRACT_V1) == FUSION_CONTRACT_V1
    assert old.to_dict() == data
