"""Reading a features folder (``ahmer features``), choosing its splits, running a fusion graph
over it and scoring the result with the BAH metrics. No torch: ``ahmer evaluate`` and
``ahmer train`` share it.

A features folder ``DIR`` holds::

    dataset.json        {"schema": "ahmer.features/1", "contract": "ahmer.fusion/3",
                         "layout": "bah"|"csv", "fingerprint": sha256, "fps": .., "models": {}}
    index.csv           id,split,participant,label,frames,labelled_frames,duration,source
    features/<id>.npz   the fusion inputs of one video without the batch axis (cues [T,18],
                        masks [T,3], emotion [T,7], text_emb [T,384], face_emb [T,128],
                        voice_emb [T,384], valid [T], fps [1]) plus cue_features [T,21],
                        times [T], frame_labels [T] int8 (-1: unlabelled), label int8 (-1)

**Splits** (:func:`assign_splits`): the ``split`` column when it names a ``train`` split;
a missing ``val`` split is then carved out of the training participants (a seeded fifth of
them, at least one), so validation is participant-disjoint. With no split at all the
participants are dealt by a seeded shuffle into five participant-disjoint folds: fold 1 is
``test``, fold 2 ``val``, folds 3-5 ``train``. Videos without a participant count as their
own participant (folds are then only video-disjoint).

**Levels** (as the BAH metrics): frame level over the labelled analysis frames
(``frame_labels >= 0`` and ``valid``), the frame labels having been resampled to the
analysis frames by ``ahmer features``; video level over the videos with ``label >= 0``,
scored by ``clip_ah_logit``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ahmer.models.contract import (
    EMBED_DIM,
    EMOTIONS,
    FACE_EMBED_DIM,
    FUSION_CONTRACT,
    MASK_NAMES,
    VOICE_EMBED_DIM,
)
from ahmer.models.fusion.cues import CUE_NAMES
from ahmer.models.fusion.graph import FEATURE_NAMES
from ahmer.models.training.evaluation import BinaryMetrics, binary_metrics
from ahmer.preprocessing.errors import InvalidInput

__all__ = [
    "FEATURES_SCHEMA",
    "FUSION_INPUTS",
    "INDEX_COLUMNS",
    "FeatureClip",
    "FeatureError",
    "FeatureSet",
    "IndexRow",
    "LevelScores",
    "assign_splits",
    "fusion_session",
    "level_metrics",
    "run_fusion",
    "score_clips",
    "score_fusion",
]

FEATURES_SCHEMA = "ahmer.features/1"
SPLITS = ("train", "val", "test")
FOLDS = 5
INDEX_COLUMNS = (
    "id",
    "split",
    "participant",
    "label",
    "frames",
    "labelled_frames",
    "duration",
    "source",
)
"""``index.csv``'s columns as ``ahmer features`` writes them; reading needs the first five."""
_REQUIRED_COLUMNS = INDEX_COLUMNS[:5]

# name -> (dtype, trailing shape) of the per-frame arrays; "T" is the frame axis
_FRAME_ARRAYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "cues": ("float32", (len(CUE_NAMES),)),
    "masks": ("float32", (len(MASK_NAMES),)),
    "emotion": ("float32", (len(EMOTIONS),)),
    "text_emb": ("float32", (EMBED_DIM,)),
    "face_emb": ("float32", (FACE_EMBED_DIM,)),
    "voice_emb": ("float32", (VOICE_EMBED_DIM,)),
    "valid": ("float32", ()),
    "cue_features": ("float32", (len(FEATURE_NAMES),)),
    "times": ("float32", ()),
    "frame_labels": ("int8", ()),
}
FUSION_INPUTS = ("cues", "masks", "emotion", "text_emb", "face_emb", "voice_emb", "valid", "fps")
"""The fusion graph's inputs, in the order of the contract."""


class FeatureError(InvalidInput, ValueError):
    """A features folder that cannot be read; the message names the file (and line/field)."""


@dataclass(frozen=True)
class IndexRow:
    """One line of ``index.csv``."""

    id: str
    split: str
    participant: str
    label: int
    frames: int


@dataclass
class FeatureClip:
    """One video's features (arrays without the batch axis)."""

    id: str
    participant: str
    label: int  # video label, -1 unknown
    arrays: dict[str, np.ndarray]
    fps: float

    @property
    def frames(self) -> int:
        return int(self.arrays["valid"].shape[0])

    @property
    def frame_labels(self) -> np.ndarray:
        return self.arrays["frame_labels"]

    def labelled(self) -> np.ndarray:
        """Mask of the frames that count at frame level (labelled and valid)."""
        return (self.arrays["frame_labels"] >= 0) & (self.arrays["valid"] > 0)

    def feed(self) -> dict[str, np.ndarray]:
        """The fusion graph's inputs with a batch axis of 1."""
        feed = {name: self.arrays[name][None] for name in FUSION_INPUTS if name != "fps"}
        feed["fps"] = np.array([self.fps], np.float32)
        return feed


def _label(text: str, where: str) -> int:
    text = text.strip()
    if text in ("", "-1"):
        return -1
    if text in ("0", "1"):
        return int(text)
    raise FeatureError(f"{where}: label {text!r} is not 0, 1, -1 or empty")


@dataclass
class FeatureSet:
    """A features folder: its ``dataset.json`` and ``index.csv`` rows (arrays read on demand)."""

    root: Path
    info: dict
    rows: list[IndexRow] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path) -> FeatureSet:
        root = Path(root)
        if not root.is_dir():
            raise FeatureError(f"{root}: not a features folder (run `ahmer features` first)")
        info_path = root / "dataset.json"
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FeatureError(f"{info_path}: missing (not a folder of `ahmer features`)") from None
        except (OSError, ValueError) as exc:
            raise FeatureError(f"{info_path}: unreadable ({exc})") from exc
        if not isinstance(info, dict) or info.get("schema") != FEATURES_SCHEMA:
            found = info.get("schema") if isinstance(info, dict) else None
            raise FeatureError(f"{info_path}: schema {found!r}, expected {FEATURES_SCHEMA!r}")
        if info.get("contract") != FUSION_CONTRACT:
            raise FeatureError(
                f"{info_path}: features of contract {info.get('contract')!r}; this ahmer's "
                f"fusion is {FUSION_CONTRACT!r}: extract them again with `ahmer features`"
            )
        return cls(root, info, _read_index(root / "index.csv"))

    @property
    def fingerprint(self) -> str:
        return str(self.info.get("fingerprint", ""))

    def load(self, row: IndexRow) -> FeatureClip:
        """The arrays of ``row``'s video, checked against the features format."""
        path = self.root / "features" / f"{row.id}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise FeatureError(f"{path}: missing (listed in index.csv as {row.id!r})") from None
        except (OSError, ValueError) as exc:
            raise FeatureError(f"{path}: not a readable .npz ({exc})") from exc
        arrays: dict[str, np.ndarray] = {}
        frames = None
        for name, (dtype, tail) in _FRAME_ARRAYS.items():
            if name not in raw:
                raise FeatureError(f"{path}: field {name!r} is missing")
            value = np.asarray(raw[name])
            if frames is None:
                frames = value.shape[0] if value.ndim else -1
            if value.shape != (frames, *tail) or frames < 0:
                want = "[" + ", ".join(["T", *map(str, tail)]) + "]"
                raise FeatureError(
                    f"{path}: field {name!r} is shaped {list(value.shape)}, expected {want} "
                    f"with T = {frames} frames"
                )
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise FeatureError(f"{path}: field {name!r} holds NaN or infinity")
            arrays[name] = value.astype(dtype, copy=False)
        for name in ("fps", "label"):
            if name not in raw:
                raise FeatureError(f"{path}: field {name!r} is missing")
        fps = float(np.asarray(raw["fps"]).reshape(-1)[0]) if np.asarray(raw["fps"]).size else 0.0
        if not fps > 0:
            raise FeatureError(f"{path}: field 'fps' must be a positive number")
        label = int(np.asarray(raw["label"]).reshape(-1)[0])
        if label not in (-1, 0, 1):
            raise FeatureError(f"{path}: field 'label' is {label}, not -1, 0 or 1")
        if not set(np.unique(arrays["frame_labels"])) <= {-1, 0, 1}:
            raise FeatureError(f"{path}: field 'frame_labels' holds values other than -1, 0, 1")
        return FeatureClip(row.id, row.participant, label, arrays, fps)

    def clips(self, rows: Iterable[IndexRow]) -> Iterator[FeatureClip]:
        for row in rows:
            yield self.load(row)


def _read_index(path: Path) -> list[IndexRow]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FeatureError(f"{path}: missing (not a folder of `ahmer features`)") from None
    except OSError as exc:
        raise FeatureError(f"{path}: unreadable ({exc})") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise FeatureError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    rows, seen = [], set()
    for number, record in enumerate(reader, 2):
        where = f"{path}:{number}"
        vid = (record.get("id") or "").strip()
        if not vid or "/" in vid or vid.startswith("."):
            raise FeatureError(f"{where}: id {vid!r} is not a features file name")
        if vid in seen:
            raise FeatureError(f"{where}: id {vid!r} is listed twice")
        seen.add(vid)
        split = (record.get("split") or "").strip()
        if split not in ("", *SPLITS):
            raise FeatureError(f"{where}: split {split!r} is not train, val, test or empty")
        try:
            frames = int(record.get("frames") or 0)
        except ValueError:
            raise FeatureError(
                f"{where}: frames {record.get('frames')!r} is not a number"
            ) from None
        participant = (record.get("participant") or "").strip()
        rows.append(IndexRow(vid, split, participant, _label(record["label"] or "", where), frames))
    if not rows:
        raise FeatureError(f"{path}: no videos listed (did `ahmer features` fail on all?)")
    return rows


def assign_splits(rows: Sequence[IndexRow], seed: int = 0) -> tuple[dict[str, list[IndexRow]], str]:
    """The rows of each split (``train``, ``val``, ``test``) and how they were chosen (see the
    module docstring): ``"index"``, ``"index+val-from-train"`` or ``"participant-folds"``."""
    rng = np.random.default_rng(seed)

    def person(row: IndexRow) -> str:
        return row.participant or f"video:{row.id}"

    given = {s: [r for r in rows if r.split == s] for s in SPLITS}
    if given["train"]:
        if given["val"]:
            return given, "index"
        people = sorted({person(r) for r in given["train"]})
        if len(people) < 2:
            raise FeatureError("the train split has one participant: no validation can be made")
        take = set(rng.permutation(people)[: max(1, len(people) // FOLDS)].tolist())
        given["val"] = [r for r in given["train"] if person(r) in take]
        given["train"] = [r for r in given["train"] if person(r) not in take]
        return given, "index+val-from-train"
    people = sorted({person(r) for r in rows})
    if len(people) < 3:
        raise FeatureError(
            f"no splits in index.csv and {len(people)} participant(s): participant-disjoint "
            "folds need at least 3"
        )
    order = rng.permutation(people).tolist()
    fold = {p: i % FOLDS for i, p in enumerate(order)}
    if len(people) < FOLDS:  # too few for five folds: one test, one val, the rest train
        fold = {p: min(i, 2) for i, p in enumerate(order)}
    out: dict[str, list[IndexRow]] = {"test": [], "val": [], "train": []}
    for row in rows:
        k = fold[person(row)]
        out["test" if k == 0 else "val" if k == 1 else "train"].append(row)
    return out, "participant-folds"


# -- running a fusion over features -----------------------------------------------------------


def fusion_session(path: Path, threads: int = 1):
    """An ONNX Runtime CPU session for the fusion graph at ``path``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_fusion(session, clip: FeatureClip, outputs: Sequence[str] | None = None) -> dict:
    """The fusion graph's outputs for ``clip`` (batch axis removed)."""
    names = list(outputs) if outputs else [o.name for o in session.get_outputs()]
    values = session.run(names, clip.feed())
    return {n: v[0] for n, v in zip(names, values, strict=True)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


@dataclass
class LevelScores:
    """Frame- and video-level labels and A/H probabilities gathered over clips."""

    frame_labels: list[np.ndarray] = field(default_factory=list)
    frame_scores: list[np.ndarray] = field(default_factory=list)
    video_labels: list[int] = field(default_factory=list)
    video_scores: list[float] = field(default_factory=list)

    def add(self, clip: FeatureClip, frame_logit: np.ndarray, clip_logit: float) -> None:
        keep = clip.labelled()
        self.frame_labels.append(clip.frame_labels[keep].astype(np.int8))
        self.frame_scores.append(_sigmoid(frame_logit)[keep])
        if clip.label >= 0:
            self.video_labels.append(clip.label)
            self.video_scores.append(float(_sigmoid(clip_logit)))

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.frame_labels:
            return np.zeros(0, np.int8), np.zeros(0)
        return np.concatenate(self.frame_labels), np.concatenate(self.frame_scores)

    def video(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.video_labels, np.int8), np.asarray(self.video_scores)


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> BinaryMetrics | None:
    if labels.size == 0:
        return None
    return binary_metrics(labels, (scores >= threshold).astype(np.int8), scores)


def level_metrics(scores: LevelScores, threshold: float = 0.5) -> dict:
    """``{"frame": {...} | None, "video": {...} | None}``: the BAH metrics of each level at
    decision ``threshold`` (AVGF1, AP over thresholds 0..0.999, accuracy, per-class F1)."""
    out: dict = {}
    for level, (labels, probs) in (("frame", scores.frame()), ("video", scores.video())):
        m = _metrics(labels, probs, threshold)
        out[level] = None if m is None else m.to_dict()
    return out


def score_fusion(
    features: FeatureSet, rows: Sequence[IndexRow], path: Path, threads: int = 1
) -> LevelScores:
    """Run the fusion graph at ``path`` over ``rows``' features; gather the level scores."""
    return score_clips(features.clips(rows), {"fusion": path}, threads)["fusion"]


def score_clips(
    clips: Iterable[FeatureClip], paths: dict[str, Path], threads: int = 1
) -> dict[str, LevelScores]:
    """Run each fusion graph of ``paths`` (key -> .onnx) over ``clips`` (read once)."""
    sessions = {key: fusion_session(path, threads) for key, path in paths.items()}
    scores = {key: LevelScores() for key in paths}
    for clip in clips:
        for key, session in sessions.items():
            out = run_fusion(session, clip, ("frame_ah_logit", "clip_ah_logit"))
            scores[key].add(clip, out["frame_ah_logit"], float(out["clip_ah_logit"]))
    return scores
