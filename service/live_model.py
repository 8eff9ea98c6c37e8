"""Encoders and fusion for live windows: :meth:`Analyzer.predict` without the face-emotion
step (live sessions run it per frame as frames arrive and keep only the 7 probabilities, not
the crops), with a per-session cache of text embeddings (the frame windows of the words
repeat from one evaluation to the next)."""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict

import numpy as np

from ahmer.models.analyzer import FUSION, Analyzer, Prediction
from ahmer.models.cues import compute_cues
from ahmer.models.encoders import words_window_texts
from ahmer.models.fusion import ATTRIBUTION_NAMES, EMBED_DIM
from ahmer.models.results import EMOTIONS, FaceRef, FrameResult
from ahmer.preprocessing.timeline import Timeline

__all__ = ["TextCache", "predict_window", "frame_results"]


class TextCache:
    """Embeddings of recent texts, keyed by a keyed digest (the cache holds no text)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._key = os.urandom(16)
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def embed(self, analyzer: Analyzer, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), EMBED_DIM), np.float32)
        todo: dict[bytes, list[int]] = {}
        order: list[tuple[bytes, str]] = []
        for i, text in enumerate(texts):
            if not text.strip():
                continue
            key = hashlib.blake2b(text.encode(), key=self._key, digest_size=16).digest()
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                out[i] = hit
            elif key in todo:
                todo[key].append(i)
            else:
                todo[key] = [i]
                order.append((key, text))
        if order:
            vectors = analyzer.text_encoder.encode([t for _, t in order])
            for (key, _), vec in zip(order, vectors, strict=True):
                out[todo[key]] = vec
                self._items[key] = vec
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return out

    def clear(self) -> None:
        self._items.clear()


def predict_window(
    analyzer: Analyzer, tl: Timeline, emotion: np.ndarray, cache: TextCache
) -> Prediction:
    """Cues, text embeddings and the fusion graph over ``tl`` with precomputed ``emotion``
    ([T, 7], NaN rows without a face)."""
    n = len(tl)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    has_emotion = bool(np.isfinite(emotion).all(axis=1).any()) if n else False
    emo = emotion if has_emotion else None
    text_emb = np.zeros((n, EMBED_DIM), np.float32)
    if tl.words:
        text_emb = cache.embed(analyzer, words_window_texts(tl.words, tl.times))
    timings["text"] = time.perf_counter() - t
    t = time.perf_counter()
    cues = compute_cues(tl, emo)
    timings["cues"] = time.perf_counter() - t
    t = time.perf_counter()
    emo_in = np.zeros((n, len(EMOTIONS)), np.float32)
    if emo is not None:
        emo_in = np.nan_to_num(emo).astype(np.float32)
    feed = {
        "cues": cues.cues[None],
        "masks": cues.masks[None],
        "emotion": emo_in[None],
        "text_emb": text_emb[None],
        "valid": np.ones((1, n), np.float32),
        "fps": np.array([tl.fps], np.float32),
    }
    outputs = {k: v[0] for k, v in analyzer.backend.run(FUSION, feed).items()}
    timings["fusion"] = time.perf_counter() - t
    return Prediction(cues=cues, emotion=emo, outputs=outputs, timings=timings)


def frame_results(
    tl: Timeline, pred: Prediction, indices: range | list[int], threshold: float
) -> list[FrameResult]:
    """The :class:`FrameResult` of frames ``indices`` of ``tl``, as
    :meth:`Analyzer.postprocess` builds them (without the clip-level part and the
    explanation, which live windows need only about once a second)."""
    out = pred.outputs
    prob = 1.0 / (1.0 + np.exp(-out["frame_ah_logit"]))
    emo_probs = np.exp(out["frame_emotion_logits"])
    has_emotion = (out["emotion_support"] > 0.3) & (pred.emotion is not None)
    frames = []
    for i in indices:
        face = None
        if tl.masks["face"][i]:
            box = tuple(float(v) for v in tl.face_box[i])
            face = FaceRef(box, int(tl.face_track[i]), float(tl.face_quality[i]))
        emotion = label = None
        if has_emotion[i]:
            emotion = {e: float(p) for e, p in zip(EMOTIONS, emo_probs[i], strict=True)}
            label = EMOTIONS[int(np.argmax(emo_probs[i]))]
        frames.append(
            FrameResult(
                time=float(tl.times[i]),
                face=face,
                emotion=emotion,
                emotion_label=label,
                valence=float(out["frame_valence"][i]),
                ah_probability=float(prob[i]),
                ah_label=int(prob[i] >= threshold),
                attribution={
                    k: float(v)
                    for k, v in zip(ATTRIBUTION_NAMES, out["attribution"][i], strict=True)
                },
                modalities={
                    "visual": bool(pred.cues.masks[i, 0]),
                    "vocal": bool(pred.cues.masks[i, 1]),
                    "verbal": bool(pred.cues.masks[i, 2]),
                },
            )
        )
    return frames
