"""Encoders: timeline slices in, vectors and per-modality predictions out (numpy only).

- :class:`FaceEmotionEncoder` — aligned face crops to FER2013 emotion probabilities (and, on
  request, 128-d face embeddings) through the store's ``fer_emotion`` mini-Xception.
- :class:`TextEncoder` — texts to unit-norm 384-d sentence embeddings through the store's
  ``minilm`` (all-MiniLM-L6-v2, pooled and normalised inside the graph).
- :func:`words_window_texts` — the text around each analysis frame that its embedding is
  computed from.

Both encoders run through an :class:`~ahmer.models.backends.base.InferenceBackend`, so the same
code serves from ONNX Runtime in-process or from Triton. They never log texts.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, overload

import cv2
import numpy as np
from tokenizers import Tokenizer

from ahmer.models.backends.base import InferenceBackend, Signature
from ahmer.models.contract import EMOTIONS, FACE_EMBED_DIM, FER_MODEL, TEXT_MODEL
from ahmer.preprocessing.errors import InvalidInput
from ahmer.preprocessing.timeline import Word

__all__ = [
    "EncoderError",
    "FaceEmotionEncoder",
    "TextEncoder",
    "words_window_texts",
]


class EncoderError(InvalidInput, ValueError):
    """An encoder got input it cannot encode, or a model that does not fit it."""

    what = "input"


def _ensure_loaded(backend: InferenceBackend, name: str, path: Path) -> Signature:
    if name in backend.loaded():
        return backend.signature(name)
    return backend.load(name, Path(path))


class FaceEmotionEncoder:
    """Emotion probabilities of aligned face crops (FER2013's 7 classes, :attr:`LABELS`).

    Each crop is turned to grey (ITU-R BT.601 luma, as OpenCV and fer do), its central
    ``inner`` fraction kept (FER2013 faces are cropped closer than a loose aligned crop:
    trimming a loose one makes the model read it more confidently, and tight crops read the
    same), resized to the model's 64x64 with area interpolation and passed as raw 0..255
    values: the graph normalises them itself. Batches of ``batch_size`` crops; by default 16
    when the backend runs on the CPU (smaller batches were faster per face there), else 64
    (larger batches pay off on a GPU). Figures for both defaults: ``bench/README.md``,
    "Measured by hand".

    The model is loaded into ``backend`` as ``name`` unless a model of that name is already
    loaded there, which is then reused (encoders may share one backend). Its ``embedding``
    output (``[N, 128]``: the last residual block, pooled) is read only when asked for
    (:meth:`encode` ``with_embedding=True``); a model without it serves probabilities only.
    """

    LABELS: tuple[str, ...] = EMOTIONS
    EMBEDDING = "embedding"

    def __init__(
        self,
        backend: InferenceBackend,
        model_path: Path,
        name: str = FER_MODEL,
        batch_size: int | None = None,
        inner: float = 0.9,
    ) -> None:
        if batch_size is None:
            batch_size = 16 if backend.describe().get("device") == "cpu" else 64
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise EncoderError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0.3 <= inner <= 1.0:
            raise EncoderError(f"inner must be in [0.3, 1], got {inner!r}")
        self.backend, self.name = backend, name
        self.batch_size, self.inner = batch_size, float(inner)
        sig = _ensure_loaded(backend, name, model_path)
        others = [o for o in sig.outputs if o.name != self.EMBEDDING]
        if len(sig.inputs) != 1 or len(others) != 1:
            raise EncoderError(
                f"model {name!r}: expected one input and one output (plus an optional "
                f"{self.EMBEDDING!r}), got {sig}"
            )
        spec, out = sig.inputs[0], others[0]
        shape = spec.shape
        if (
            spec.dtype != "float32"
            or len(shape) != 4
            or shape[1] != 1
            or not all(isinstance(d, int) and d > 0 for d in shape[2:])
        ):
            raise EncoderError(f"model {name!r}: expected input float32 [N, 1, H, W], got {spec}")
        if len(out.shape) != 2 or out.shape[1] != len(self.LABELS):
            raise EncoderError(
                f"model {name!r}: expected output [N, {len(self.LABELS)}], got {out}"
            )
        labels = sig.meta("labels")
        if labels is not None and tuple(labels.split(",")) != self.LABELS:
            raise EncoderError(f"model {name!r}: labels {labels!r} differ from {self.LABELS}")
        self.input_name, self.output_name = spec.name, out.name
        self.input_size = (int(shape[3]), int(shape[2]))  # (width, height) for cv2
        self.has_embedding = self.EMBEDDING in sig.output_names
        if self.has_embedding:
            emb = sig.output(self.EMBEDDING)
            if len(emb.shape) != 2 or emb.shape[1] != FACE_EMBED_DIM:
                raise EncoderError(
                    f"model {name!r}: expected output {self.EMBEDDING} [N, {FACE_EMBED_DIM}], "
                    f"got {emb}"
                )

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """``[N, S, S, 3]`` uint8 RGB crops to the model's input, ``[N, 1, 64, 64]`` float32."""
        crops = self._check_crops(crops)
        out = np.empty((len(crops), 1, self.input_size[1], self.input_size[0]), np.float32)
        h, w = crops.shape[1:3]
        mh, mw = int(round(h * (1 - self.inner) / 2)), int(round(w * (1 - self.inner) / 2))
        for i, crop in enumerate(crops):
            gray = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
            gray = np.ascontiguousarray(gray[mh : h - mh, mw : w - mw])
            out[i, 0] = cv2.resize(gray, self.input_size, interpolation=cv2.INTER_AREA)
        return out

    @overload
    def encode(
        self,
        crops: np.ndarray,
        valid: np.ndarray | None = None,
        with_embedding: Literal[False] = False,
    ) -> np.ndarray: ...

    @overload
    def encode(
        self, crops: np.ndarray, valid: np.ndarray | None, with_embedding: Literal[True]
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def encode(
        self, crops: np.ndarray, *, with_embedding: Literal[True]
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def encode(self, crops, valid=None, with_embedding=False):
        """Probabilities ``[N, 7]`` float32 (rows sum to 1) for ``[N, S, S, 3]`` uint8 RGB
        crops; rows where ``valid`` is false are NaN and are not run. With
        ``with_embedding``: ``(probs, embeddings [N, 128])``, embedding rows NaN where
        ``valid`` is false (the same pass: no extra model run)."""
        if with_embedding and not self.has_embedding:
            raise EncoderError(
                f"model {self.name!r} has no {self.EMBEDDING!r} output (built before face "
                "embeddings): run `ahmer models build --only fer_emotion`"
            )
        crops = self._check_crops(crops)
        n = len(crops)
        if valid is None:
            valid = np.ones(n, bool)
        else:
            valid = np.asarray(valid)
            if valid.dtype != bool or valid.shape != (n,):
                raise EncoderError(
                    f"valid must be a bool array of shape ({n},), got {valid.dtype} "
                    f"{list(valid.shape)}"
                )
        probs = np.full((n, len(self.LABELS)), np.nan, np.float32)
        emb = np.full((n, FACE_EMBED_DIM), np.nan, np.float32) if with_embedding else None
        names = [self.output_name, self.EMBEDDING] if with_embedding else [self.output_name]
        rows = np.flatnonzero(valid)
        for start in range(0, len(rows), self.batch_size):
            idx = rows[start : start + self.batch_size]
            x = self.preprocess(crops[idx])
            result = self.backend.run(self.name, {self.input_name: x}, names)
            probs[idx] = result[self.output_name]
            if emb is not None:
                emb[idx] = result[self.EMBEDDING]
        return probs if emb is None else (probs, emb)

    @staticmethod
    def _check_crops(crops: np.ndarray) -> np.ndarray:
        if not isinstance(crops, np.ndarray):
            raise EncoderError(f"crops must be a numpy array, got {type(crops).__name__}")
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
            raise EncoderError(
                f"crops must be uint8 [N, S, S, 3] RGB, got {crops.dtype} {list(crops.shape)}"
            )
        if crops.shape[1] < 8 or crops.shape[2] < 8:
            raise EncoderError(f"crops of {crops.shape[1]}x{crops.shape[2]} px are too small")
        return crops


class TextEncoder:
    """Unit-norm sentence embeddings ``[N, dim]`` (384 for MiniLM) of texts.

    Texts are tokenised with the model folder's ``tokenizer.json`` (truncated to
    ``max_tokens``), sorted by length and run in batches of ``batch_size`` padded to their
    longest text. Empty or blank texts give zero rows (see :meth:`encode_with_mask`).

    Per-frame windows repeat, so embeddings are kept in a bounded LRU cache of ``cache_size``
    entries (0 disables it). The cache is keyed by a keyed BLAKE2 digest of the text, so it
    holds no text; call :meth:`clear_cache` to drop the embeddings too (e.g. at the end of a
    request). :meth:`with_cache` gives a view of the same model with a cache of its own (one
    per live session). Safe to call from several threads. The model ``model_dir/model.onnx``
    is loaded into ``backend`` as ``name`` unless a model of that name is already loaded
    there.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        model_dir: Path,
        name: str = TEXT_MODEL,
        max_tokens: int = 128,
        batch_size: int = 32,
        cache_size: int = 4096,
    ) -> None:
        if not isinstance(max_tokens, int) or max_tokens < 2:
            raise EncoderError(f"max_tokens must be an integer >= 2, got {max_tokens!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise EncoderError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._new_cache(cache_size)
        model_dir = Path(model_dir)
        tok_path = model_dir / "tokenizer.json"
        if not tok_path.is_file():
            raise EncoderError(f"no tokenizer.json in {model_dir}")
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        pad_id = self.tokenizer.token_to_id("[PAD]")  # the batches are padded here, in numpy
        self.pad_id = int(pad_id) if pad_id is not None else 0
        self.backend, self.name = backend, name
        self.max_tokens, self.batch_size = max_tokens, batch_size
        sig = _ensure_loaded(backend, name, model_dir / "model.onnx")
        known = {"input_ids", "attention_mask", "token_type_ids"}
        if "input_ids" not in sig.input_names or not set(sig.input_names) <= known:
            raise EncoderError(
                f"model {name!r}: expected inputs among {sorted(known)} with input_ids, got "
                f"{list(sig.input_names)}"
            )
        if "embedding" in sig.output_names:
            out = sig.output("embedding")
        elif len(sig.outputs) == 1:
            out = sig.outputs[0]
        else:
            raise EncoderError(f"model {name!r}: no 'embedding' output in {sig.output_names}")
        if len(out.shape) != 2:
            raise EncoderError(f"model {name!r}: expected output [N, dim], got {out}")
        self.output_name = out.name
        self._inputs = sig.input_names
        self._input_dtypes = {s.name: np.dtype(s.dtype) for s in sig.inputs}
        dim = out.shape[1]
        self.dim = dim if isinstance(dim, int) else self._run_ids([[self.pad_id]]).shape[1]

    # -- public ----------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings ``[N, dim]`` float32, unit norm; zero rows for empty or blank texts."""
        return self.encode_with_mask(texts)[0]

    def encode_with_mask(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings [N, dim], valid [N] bool)``; ``valid`` is false for empty texts."""
        texts = self._check_texts(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        valid = np.array([bool(t.strip()) for t in texts], bool)
        pending: dict[bytes, list[int]] = {}
        todo: list[tuple[bytes, str]] = []
        with self._lock:
            for i in np.flatnonzero(valid):
                key = self._key(texts[i])
                if key in pending:
                    pending[key].append(int(i))
                    continue
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    out[i] = cached
                    self.hits += 1
                    continue
                pending[key] = [int(i)]
                todo.append((key, texts[i]))
                self.misses += 1
        if todo:
            vectors = self._embed([t for _, t in todo])
            with self._lock:
                for (key, _), vec in zip(todo, vectors, strict=True):
                    out[pending[key]] = vec
                    if self.cache_size:
                        self._cache[key] = vec
                        self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out, valid

    def with_cache(self, cache_size: int) -> TextEncoder:
        """This encoder (the same tokenizer and loaded model) with an empty cache of its own of
        ``cache_size`` embeddings, e.g. for one live session whose windows repeat their texts
        while the shared encoder keeps none across requests; the view's cache dies with it.
        """
        view = copy.copy(self)
        view._new_cache(cache_size)
        return view

    def clear_cache(self) -> None:
        """Drop every cached embedding."""
        with self._lock:
            self._cache.clear()

    def cache_info(self) -> dict[str, int]:
        """``hits``, ``misses`` (unique texts computed), ``size`` and ``max_size``."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "size": len(self._cache),
                "max_size": self.cache_size,
            }

    # -- internals -------------------------------------------------------------------------

    def _new_cache(self, cache_size: int) -> None:
        if not isinstance(cache_size, int) or cache_size < 0:
            raise EncoderError(f"cache_size must be an integer >= 0, got {cache_size!r}")
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_key = os.urandom(16)
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _key(self, text: str) -> bytes:
        return hashlib.blake2b(
            text.encode("utf-8", "surrogatepass"), key=self._cache_key, digest_size=16
        ).digest()

    @staticmethod
    def _check_texts(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, (str, bytes)):
            raise EncoderError("texts must be a sequence of strings, not a single string")
        try:
            items = list(texts)
        except TypeError:
            raise EncoderError(
                f"texts must be a sequence of strings, got {type(texts).__name__}"
            ) from None
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise EncoderError(f"texts[{i}] is {type(t).__name__}, not str")
        return items

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of non-empty texts, batched by token length."""
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._run_ids([ids[i] for i in idx])
        return out

    def _run_ids(self, ids: list[list[int]]) -> np.ndarray:
        length = max(1, max(len(x) for x in ids))
        input_ids = np.full((len(ids), length), self.pad_id, np.int64)
        mask = np.zeros((len(ids), length), np.int64)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = x
            mask[row, : len(x)] = 1
        arrays = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        feeds = {n: arrays[n].astype(self._input_dtypes[n], copy=False) for n in self._inputs}
        return self.backend.run(self.name, feeds, [self.output_name])[self.output_name]


def words_window_texts(
    words: Sequence[Word],
    times: np.ndarray | Sequence[float],
    before: float = 2.0,
    after: float = 1.0,
    sentences: bool = False,
) -> list[str]:
    """For each frame time ``t``, the words whose span overlaps ``[t - before, t + after]``,
    in time order, joined by single spaces ("" when none): the text of each frame's
    embedding. A word that only touches the window at an edge (ends exactly at ``t - before``
    or starts exactly at ``t + after``) is out, as in :meth:`Timeline.words_between`.

    With ``sentences``, the window keeps only the sentence of the window's word nearest to
    ``t`` (sentences end at a word ending with . ! ? or ;), so that the end of one sentence
    and the start of the next are not read as one statement ("... I feel strong. Yes, I")."""
    for label, value in (("before", before), ("after", after)):
        if not np.isfinite(value) or value < 0:
            raise EncoderError(f"{label} must be a finite number >= 0, got {value!r}")
    t = np.asarray(times, np.float64)
    if t.ndim != 1:
        raise EncoderError(f"times must be one-dimensional, got shape {list(t.shape)}")
    if not np.all(np.isfinite(t)):
        raise EncoderError("times must be finite")
    kept = sorted(
        (w for w in words if w.text.strip()), key=lambda w: (float(w.start), float(w.end))
    )
    if not kept:
        return [""] * len(t)
    starts = np.array([w.start for w in kept], np.float64)
    ends = np.array([w.end for w in kept], np.float64)
    texts = [w.text.strip() for w in kept]
    sentence = np.cumsum([0] + [x.endswith((".", "!", "?", ";")) for x in texts[:-1]])
    middles = (starts + ends) / 2
    # a word can only overlap if it starts before t + after; words are sorted by start
    last = np.searchsorted(starts, t + after, side="left")
    out = []
    for ti, hi in zip(t, last, strict=True):
        sel = np.flatnonzero(ends[:hi] > ti - before)
        if sentences and len(sel):
            nearest = sel[int(np.argmin(np.abs(middles[sel] - ti)))]
            sel = sel[sentence[sel] == sentence[nearest]]
        out.append(" ".join(texts[i] for i in sel))
    return out
