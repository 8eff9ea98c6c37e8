"""``ahmer features``' job and writers: per video, the fusion graph's inputs and the frame
labels at the analysis frames, for training and evaluating fusions (``ahmer train``,
``ahmer evaluate``).

Output folder ``DIR``:

- ``features/<id>.npz``: the fusion inputs without the batch axis (``cues [T,18]``,
  ``masks [T,3]``, ``emotion [T,7]``, ``text_emb [T,384]``, ``face_emb [T,128]``,
  ``voice_emb [T,384]``, ``valid [T]``, ``fps [1]``, float32), ``cue_features [T,21]`` (the
  graph's feature values before weighting), ``times [T]`` float32 (s), ``frame_labels [T]``
  int8 (the label of the source frame nearest each analysis frame; -1 unlabelled) and
  ``label`` (int8 scalar, -1 unknown). Nothing else, so a reader can feed it as it is.
- ``features/<id>.json``: what that file was computed from (media sha256, size and mtime,
  the transcript's sha256, options, models: their hash is the ``key``; the labels' hash),
  where the transcript came from (``transcript_source``: ``dataset`` when the split file or
  manifest gave it, ``asr``, or ``none``), the source frame rate, duration, frame counts and
  warnings. Written after the npz: an item is done when both exist and the key matches; when
  only the labels changed, the npz is relabelled in place without analysing the video again.
- ``index.csv`` (``id,split,participant,label,frames,labelled_frames,duration,source``;
  ``frames``/``labelled_frames`` count analysis frames, ``source`` is the video path as the
  dataset wrote it), ``dataset.json`` (``schema``, ``contract``, ``layout``,
  ``fingerprint`` of the items and labels, ``fps``, ``models``, counts) and ``failures.csv``.

Every file is written atomically; the batch engine (:mod:`.engine`) runs the items in
worker processes, resumably. Transcripts are used, hashed and never written or logged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ahmer.models.config import AnalyzerConfig, CallOptions
from ahmer.models.contract import FUSION_CONTRACT
from ahmer.models.training.datasets import Dataset, DatasetItem, resample_labels
from ahmer.models.training.featureset import FEATURES_SCHEMA, FUSION_INPUTS, INDEX_COLUMNS

from ..files import atomic_write_bytes, atomic_write_text
from .engine import BatchItem, BatchJob, _ahmer_version, _stat, failed, file_sha256

__all__ = [
    "FEATURES",
    "FEATURES_SCHEMA",
    "INDEX_COLUMNS",
    "INPUT_KEYS",
    "FeaturesJob",
    "features_key",
    "labels_sha256",
    "batch_items",
    "plan_features",
    "relabel",
    "write_index",
    "write_dataset_json",
]

FEATURES = "features"
ITEM_SCHEMA = "ahmer.features-item/1"
INPUT_KEYS = FUSION_INPUTS
"""The fusion inputs a features file holds (without the batch axis)."""
_TRANSCRIPT_SOURCE = {"client": "dataset", "asr": "asr", "none": "none"}


def _npz_path(out: Path, item_id: str) -> Path:
    return Path(out) / FEATURES / f"{item_id}.npz"


def _meta_path(out: Path, item_id: str) -> Path:
    return Path(out) / FEATURES / f"{item_id}.json"


def features_key(
    media_sha256: str, transcript_sha256: str | None, options: AnalyzerConfig, models: dict
) -> str:
    """sha256 of what a features file's arrays depend on (labels aside): the media, the
    transcript, the options that change the timeline, the models, the contract and ahmer."""
    body = {
        "schema": FEATURES_SCHEMA,
        "contract": FUSION_CONTRACT,
        "media": media_sha256,
        "transcript": transcript_sha256,
        "fps": float(options.fps),
        "whisper_model": None if options.whisper_model is None else str(options.whisper_model),
        "landmark_fps": float(options.landmark_fps),
        "face_engine": options.face_engine,
        "models": models,
        "ahmer": _ahmer_version(),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def labels_sha256(item: DatasetItem, label_fps: float | None) -> str:
    """sha256 of an item's labels (video label, frame labels, the label frame rate)."""
    h = hashlib.sha256(json.dumps([item.label, label_fps]).encode())
    if item.frame_labels is not None:
        h.update(np.asarray(item.frame_labels, np.int8).tobytes())
    return h.hexdigest()


def _transcript_sha(item: DatasetItem) -> str | None:
    return None if item.transcript is None else hashlib.sha256(item.transcript.encode()).hexdigest()


def _read_meta(out: Path, item_id: str) -> dict | None:
    try:
        with open(_meta_path(out, item_id), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(meta, dict) and meta.get("schema") == ITEM_SCHEMA
    return meta if ok and _npz_path(out, item_id).is_file() else None


def batch_items(items: Sequence[DatasetItem]) -> list[BatchItem]:
    """The engine's items for ``items`` (the job finds the rest by id)."""
    return [BatchItem(i.id, i.path, None, i.error) for i in items]


def plan_features(
    items: Sequence[DatasetItem],
    out: Path,
    options: AnalyzerConfig,
    models: dict,
    label_fps: float | None = None,
) -> tuple[list[DatasetItem], list[DatasetItem], list[DatasetItem]]:
    """(to compute, done, done but with other labels: to :func:`relabel`). The media is
    re-hashed only when its size or mtime changed since its file was written."""
    todo, done, stale = [], [], []
    for item in items:
        meta = _read_meta(out, item.id) if item.error is None else None
        if not meta:
            todo.append(item)
            continue
        try:
            sha = meta.get("sha256")
            if _stat(item.path) != meta.get("stat") or not sha:
                sha = file_sha256(item.path)
        except OSError:
            todo.append(item)
            continue
        if features_key(sha, _transcript_sha(item), options, models) != meta.get("key"):
            todo.append(item)
        elif meta.get("labels_sha256") != labels_sha256(item, label_fps):
            stale.append(item)
        else:
            done.append(item)
    return todo, done, stale


def _label_rate(item: DatasetItem, label_fps: float | None, source_fps: float) -> float:
    rate = label_fps or source_fps
    if item.frame_labels is not None and not rate:
        raise ValueError("the video's frame rate is unknown: pass --label-fps for its labels")
    return float(rate or 0.0)


def _labelled(item: DatasetItem, rate: float, times: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "frame_labels": resample_labels(item.frame_labels, rate, times),
        "label": np.asarray(item.label, np.int8),
    }


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def relabel(out: Path, item: DatasetItem, label_fps: float | None = None) -> None:
    """Rewrite the labels of a finished features file (its arrays are current)."""
    meta = _read_meta(out, item.id)
    if meta is None:
        raise ValueError(f"{item.id}: no features file to relabel")
    with np.load(_npz_path(out, item.id)) as data:
        arrays = {k: data[k] for k in data.files}
    rate = _label_rate(item, label_fps, float(meta.get("source_fps") or 0.0))
    arrays.update(_labelled(item, rate, arrays["times"].astype(np.float64)))
    atomic_write_bytes(_npz_path(out, item.id), _npz_bytes(arrays))
    meta["labels_sha256"] = labels_sha256(item, label_fps)
    meta["labelled_frames"] = int((arrays["frame_labels"] >= 0).sum())
    atomic_write_text(_meta_path(out, item.id), json.dumps(meta, indent=1) + "\n")


def _arrays(tl, pred, item: DatasetItem, rate: float) -> dict[str, np.ndarray]:
    """The features file's arrays from a timeline and the analyzer's prediction."""
    feed = pred.feed
    missing = [k for k in INPUT_KEYS if k not in feed]
    if missing or "cue_features" not in pred.outputs:
        raise RuntimeError(f"the analyzer's prediction lacks {missing or ['cue_features']}")
    arrays = {k: np.asarray(feed[k], np.float32) for k in INPUT_KEYS}
    arrays["cue_features"] = np.asarray(pred.outputs["cue_features"], np.float32)
    times = np.asarray(tl.times, np.float64)
    arrays["times"] = times.astype(np.float32)
    arrays.update(_labelled(item, rate, times))
    n = len(times)
    for key, value in arrays.items():
        if key not in ("fps", "label") and value.shape[:1] != (n,):
            raise RuntimeError(f"{key} has shape {value.shape}, expected {n} frames")
    return arrays


@dataclass
class FeaturesJob(BatchJob):
    """Per item: the timeline (the dataset's transcript instead of ASR when it has one),
    the encoders with embeddings, the fusion's inputs and cue features, written to
    ``out/features/<id>.npz`` and its ``.json``."""

    out: Path
    options: AnalyzerConfig
    models: dict
    items: dict[str, DatasetItem]
    label_fps: float | None = None
    name = "features"

    def prepare(self) -> None:
        (Path(self.out) / FEATURES).mkdir(parents=True, exist_ok=True)

    def remove_partial(self, item_id: str) -> None:
        folder = Path(self.out) / FEATURES
        for suffix in ("npz", "json"):
            for tmp in folder.glob(f".{item_id}.{suffix}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def process(self, worker, item: BatchItem, progress=None) -> dict[str, Any]:
        from ahmer.preprocessing.media import TruncatedMedia

        summary: dict[str, Any] = {"id": item.id, "duration": 0.0, "error": item.error}
        if item.error:
            return summary
        entry = self.items[item.id]
        try:
            summary.update(self._compute(worker, entry, progress))
        except Exception as exc:  # a bad item fails alone
            failed(summary, exc)
            if isinstance(exc, TruncatedMedia):  # strict: an earlier file of it is void
                _meta_path(self.out, item.id).unlink(missing_ok=True)
        return summary

    def _compute(self, analyzer, item: DatasetItem, progress) -> dict[str, Any]:
        stat, sha = _stat(item.path), file_sha256(item.path)
        text = None if item.transcript is None else item.transcript.encode()
        tl = analyzer.preprocess(
            item.path,
            transcript=text,
            options=CallOptions(
                fps=self.options.fps, transcript_format="text" if text is not None else None
            ),
            progress=progress,
        )
        pred = analyzer.predict(tl, embeddings=True)
        source_fps = float(getattr(tl.info, "video_fps", 0.0) or 0.0)
        arrays = _arrays(tl, pred, item, _label_rate(item, self.label_fps, source_fps))
        duration = float(getattr(tl.info, "duration", 0.0) or 0.0)
        meta = {
            "schema": ITEM_SCHEMA,
            "id": item.id,
            "key": features_key(sha, _transcript_sha(item), self.options, self.models),
            "labels_sha256": labels_sha256(item, self.label_fps),
            "path": str(item.path),
            "sha256": sha,
            "stat": stat,
            "transcript_sha256": _transcript_sha(item),
            "transcript_source": _TRANSCRIPT_SOURCE.get(tl.transcript_source, "none"),
            "source_fps": source_fps,
            "duration": duration,
            "frames": len(tl),
            "labelled_frames": int((arrays["frame_labels"] >= 0).sum()),
            "contract": FUSION_CONTRACT,
            "warnings": list(tl.warnings),
        }
        atomic_write_bytes(_npz_path(self.out, item.id), _npz_bytes(arrays))
        atomic_write_text(_meta_path(self.out, item.id), json.dumps(meta, indent=1) + "\n")
        return {"duration": duration}


# -- the run's tables --------------------------------------------------------------------------


def write_index(out: Path, items: Sequence[DatasetItem]) -> list[dict[str, Any]]:
    """``index.csv`` of the ``items`` whose features file exists; returns their metadata."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    metas = []
    for item in sorted(items, key=lambda i: i.id):
        meta = _read_meta(out, item.id)
        if meta is None:
            continue
        metas.append(meta)
        writer.writerow(
            {
                "id": item.id,
                "split": item.split,
                "participant": item.participant,
                "label": item.label,
                "frames": meta.get("frames", 0),
                "labelled_frames": meta.get("labelled_frames", 0),
                "duration": f"{float(meta.get('duration') or 0.0):.3f}",
                "source": item.source,
            }
        )
    atomic_write_text(Path(out) / "index.csv", buf.getvalue())
    return metas


def write_dataset_json(
    out: Path,
    dataset: Dataset,
    options: AnalyzerConfig,
    models: dict,
    metas: Sequence[dict[str, Any]],
    failed: int,
    label_fps: float | None = None,
) -> dict[str, Any]:
    """``dataset.json``: what the features were made from and of (see the module doc)."""
    sources: dict[str, int] = {}
    for meta in metas:
        key = meta.get("transcript_source", "none")
        sources[key] = sources.get(key, 0) + 1
    body = {
        "schema": FEATURES_SCHEMA,
        "contract": FUSION_CONTRACT,
        "layout": dataset.layout,
        "fingerprint": dataset.fingerprint(),
        "fps": float(options.fps),
        "models": models,
        "dataset": str(dataset.root),
        "label_files": dataset.files,
        "label_fps": label_fps,
        "items": len(dataset.items),
        "written": len(metas),
        "failed": failed,
        "splits": dataset.counts(),
        "transcript_sources": sources,
        "options": {
            "whisper_model": None if options.whisper_model is None else str(options.whisper_model),
            "landmark_fps": float(options.landmark_fps),
            "face_engine": options.face_engine,
        },
        "ahmer": _ahmer_version(),
    }
    atomic_write_text(Path(out) / "dataset.json", json.dumps(body, indent=1) + "\n")
    return body
