"""Encoders and fusion for live windows: :meth:`Analyzer.predict` with the face emotion
computed per frame as frames arrive (sessions keep only the 7 probabilities, not the crops)
and a per-session cache of text embeddings (the frame windows of the words repeat from one
evaluation to the next; the cache dies with the session)."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

import numpy as np

from ahmer.models.analyzer import Analyzer, Prediction
from ahmer.models.analyzer import frame_results as analyzer_frame_results
from ahmer.models.fusion import EMBED_DIM
from ahmer.models.results import FrameResult
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
    """:meth:`Analyzer.predict` over ``tl`` with precomputed ``emotion`` ([T, 7], NaN rows
    without a face) and the session's text cache."""
    return analyzer.predict(tl, emotion=emotion, embed=lambda texts: cache.embed(analyzer, texts))


def frame_results(
    tl: Timeline, pred: Prediction, indices: range | list[int], threshold: float
) -> list[FrameResult]:
    """The :class:`FrameResult` of frames ``indices`` of ``tl``, exactly as
    :meth:`Analyzer.postprocess` builds them."""
    return analyzer_frame_results(tl, pred, threshold, indices)
