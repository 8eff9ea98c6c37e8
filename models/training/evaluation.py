"""Evaluation against BAH labels: the BAH metrics (AVGF1, AP, accuracy, per-class F1) and
readers for labels in the BAH layout.

Definitions follow the BAH reference code (``bah_metrics.py`` of the dataset's repository),
which the ABAW A/H challenges reuse. Class 1 is "A/H present", class 0 "no A/H".

- **F1 of class c** = 2·TP_c / (2·TP_c + FP_c + FN_c). When a class is absent from both the
  labels and the predictions the ratio is 0/0; it is defined as **0** (what scikit-learn's
  ``f1_score`` returns there, with a warning).
- **AVGF1** = (F1_0 + F1_1) / 2, the macro F1.
- **Accuracy** = (TP + TN) / N.
- **AP** of the positive class: for each threshold t in ``np.arange(0, 1, 0.001)`` (0, 0.001,
  ..., 0.999, built exactly as the reference code builds it) predict positive where
  ``score >= t``; precision P = TP / (TP + FP), defined as 0 when nothing is predicted
  positive; recall R = TP / (TP + FN). AP is the area under these (R, P) points by the
  **trapezoid rule**, in threshold order: AP = Σ_k (R_k − R_{k+1}) · (P_k + P_{k+1}) / 2.
  That is exactly ``sklearn.metrics.auc(recalls, precisions)``, which the reference code
  calls (``auc`` accepts a decreasing x and flips the sign), so numbers are comparable with
  published BAH results. The curve is not anchored at recall 0: it ends at t = 0.999.
  Because precision is 0 where nothing is predicted, the last segment runs down to (0, 0):
  a classifier whose positive scores all sit below 0.999 loses half of that last recall step
  (a perfect but constant-score classifier gets 0.5). The step form of scikit-learn's
  ``average_precision_score``, Σ (R_k − R_{k+1}) · P_k, is available as ``rule="step"``; it
  is not what BAH reports. AP is undefined without positive labels (recall is 0/0): ``None``.

Label files (BAH release layout):

- video-level split files, one ``video_path,label,transcript`` per line; the transcript may
  hold commas, so only the first two commas split; an optional header line is skipped. The
  transcript is never kept.
- ``video_annotation.yaml``: per video path, a mapping with ``frame_annotation``, a list of
  ``[frame name, label]`` pairs. Frames are ordered by the number in ``frame-<i>.jpg`` when
  every name has one, else by list position; position k of that order is source frame k
  (0-based), at time k / source fps. A ``global_ah`` entry, when present, is a video label.
  Labels other than 0 and 1 count as unlabelled.

Matching results to labels: by file stem (file name without extension, e.g.
``82711_Question_1_2024-11-18_16-07-42_Video``), which is unique per BAH video; when several
labelled paths share a stem, the one sharing the longest run of trailing path components with
the media path wins (a tie leaves the video unmatched). A result whose id equals a labelled
stem also matches.

Frame level: the evaluation runs at the **labelled source frames** (as BAH does): each
labelled frame k takes the prediction (probability and label) of the analysis frame nearest
in time to k / source fps. Labelled frames farther than one analysis-frame interval (and at
least half a second) from any analysis frame are dropped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath

import numpy as np

from ahmer.preprocessing.errors import InvalidInput

__all__ = [
    "MetricsError",
    "BinaryMetrics",
    "LabelSet",
    "ScoredVideo",
    "ap_thresholds",
    "f1_per_class",
    "pr_curve",
    "average_precision",
    "binary_metrics",
    "read_split_file",
    "read_frame_annotations",
    "load_labels",
    "match_labels",
    "frame_pairs",
    "LevelSamples",
    "Truth",
    "Evaluation",
    "collect",
    "evaluate",
]


class MetricsError(InvalidInput, ValueError):
    """Labels or predictions that cannot be evaluated (bad file, bad shapes, bad values)."""


# -- the metrics -------------------------------------------------------------------------------


def ap_thresholds() -> np.ndarray:
    """0, 0.001, ..., 0.999, built like the BAH reference code (``np.arange(0, 1, 0.001)``)."""
    return np.arange(0, 1, 0.001)


def _binary(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricsError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise MetricsError(f"{name} must hold only 0 and 1")
    return arr.astype(np.int8)


def f1_per_class(y_true, y_pred) -> tuple[float, float]:
    """(F1 of class 0, F1 of class 1); a class absent from labels and predictions gets 0."""
    t, p = _binary("labels", y_true), _binary("predictions", y_pred)
    if t.shape != p.shape:
        raise MetricsError(f"{t.size} labels but {p.size} predictions")
    out = []
    for c in (0, 1):
        tp = int(np.sum((p == c) & (t == c)))
        fp = int(np.sum((p == c) & (t != c)))
        fn = int(np.sum((p != c) & (t == c)))
        den = 2 * tp + fp + fn
        out.append(2 * tp / den if den else 0.0)
    return out[0], out[1]


def pr_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The precision-recall points that AP integrates: ``(thresholds, precision, recall)``
    at :func:`ap_thresholds`, in threshold order (see the module docstring); ``None`` when
    there is no positive label."""
    t = _binary("labels", y_true)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != t.shape:
        raise MetricsError(f"{t.size} labels but {s.size} scores")
    if not np.isfinite(s).all():
        raise MetricsError("scores must be finite")
    n_pos = int(t.sum())
    if n_pos == 0:
        return None
    th = ap_thresholds()
    # counts of scores >= t, for every threshold at once (same as comparing each score)
    pos = np.sort(s[t == 1])
    neg = np.sort(s[t == 0])
    tp = pos.size - np.searchsorted(pos, th, side="left")
    fp = neg.size - np.searchsorted(neg, th, side="left")
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = tp / n_pos
    return th, precision, recall


def average_precision(y_true, scores, rule: str = "trapezoid") -> float | None:
    """AP of the positive class over the BAH thresholds (see the module docstring): the area
    under :func:`pr_curve`.

    ``rule="trapezoid"`` is the BAH definition; ``"step"`` uses Σ (R_k − R_{k+1}) · P_k.
    ``None`` when there is no positive label."""
    curve = pr_curve(y_true, scores)
    if rule not in ("trapezoid", "step"):
        raise MetricsError(f"unknown AP rule {rule!r}")
    if curve is None:
        return None
    _, precision, recall = curve
    drop = recall[:-1] - recall[1:]
    if rule == "trapezoid":
        return float(np.sum(drop * (precision[:-1] + precision[1:]) / 2))
    return float(np.sum(drop * precision[:-1]))


@dataclass(frozen=True)
class BinaryMetrics:
    """Counts and metrics of one evaluation (all frames, or all videos)."""

    n: int
    positives: int
    negatives: int
    tp: int
    fp: int
    fn: int
    tn: int
    accuracy: float
    f1_0: float
    f1_1: float
    avgf1: float
    ap: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def binary_metrics(y_true, y_pred, scores=None) -> BinaryMetrics:
    """All metrics for labels ``y_true``, hard predictions ``y_pred`` and, for AP, positive
    class ``scores`` (probabilities in [0, 1])."""
    t, p = _binary("labels", y_true), _binary("predictions", y_pred)
    if t.shape != p.shape:
        raise MetricsError(f"{t.size} labels but {p.size} predictions")
    if t.size == 0:
        raise MetricsError("nothing to evaluate: no labelled samples")
    f1_0, f1_1 = f1_per_class(t, p)
    tp = int(np.sum((p == 1) & (t == 1)))
    fp = int(np.sum((p == 1) & (t == 0)))
    fn = int(np.sum((p == 0) & (t == 1)))
    tn = int(np.sum((p == 0) & (t == 0)))
    return BinaryMetrics(
        n=int(t.size),
        positives=int(t.sum()),
        negatives=int(t.size - t.sum()),
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        accuracy=(tp + tn) / t.size,
        f1_0=f1_0,
        f1_1=f1_1,
        avgf1=(f1_0 + f1_1) / 2,
        ap=None if scores is None else average_precision(t, scores),
    )


# -- label files -------------------------------------------------------------------------------


@dataclass
class LabelSet:
    """Labels by the path written in the label files: video labels (0/1) and frame labels
    (int8 per source frame, -1 where unlabelled)."""

    videos: dict[str, int] = field(default_factory=dict)
    frames: dict[str, np.ndarray] = field(default_factory=dict)

    def keys(self) -> set[str]:
        return set(self.videos) | set(self.frames)


def _label_value(value) -> int:
    """0 or 1 from an int, float or string; -1 for anything else."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return -1
    return int(number) if number in (0.0, 1.0) else -1


def read_split_file(path: Path) -> dict[str, int]:
    """Video labels from a BAH split file (``video_path,label,transcript`` lines)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise MetricsError(f"cannot read labels {path}: {exc}") from exc
    labels: dict[str, int] = {}
    first = True
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",", 2)
        label = _label_value(parts[1]) if len(parts) >= 2 else -1
        if first and label < 0:
            first = False
            continue  # a header line
        first = False
        if len(parts) < 2:
            raise MetricsError(f"{path}:{number}: expected video_path,label[,transcript]")
        if label < 0:
            raise MetricsError(f"{path}:{number}: label must be 0 or 1")
        labels[parts[0].strip()] = label
    if not labels:
        raise MetricsError(f"{path}: no video labels found")
    return labels


_FRAME_NUMBER = re.compile(r"frame-(\d+)")


def _frame_array(pairs, where: str) -> np.ndarray:
    if not isinstance(pairs, list):
        raise MetricsError(f"{where}: frame_annotation must be a list of [frame, label] pairs")
    names, values = [], []
    for item in pairs:
        if not isinstance(item, list | tuple) or len(item) < 2:
            raise MetricsError(f"{where}: frame_annotation items must be [frame, label] pairs")
        names.append(str(item[0]))
        values.append(_label_value(item[1]))
    numbers = [_FRAME_NUMBER.search(n) for n in names]
    labels = np.asarray(values, dtype=np.int8)
    if numbers and all(numbers):
        order = np.argsort([int(m.group(1)) for m in numbers], kind="stable")
        labels = labels[order]
    return labels


def read_frame_annotations(path: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(frame labels, video labels from ``global_ah``) from a ``video_annotation.yaml``."""
    import yaml

    path = Path(path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: BAH's file is large
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    except OSError as exc:
        raise MetricsError(f"cannot read labels {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise MetricsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise MetricsError(f"{path}: expected a mapping of video path to annotations")
    frames: dict[str, np.ndarray] = {}
    videos: dict[str, int] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or "frame_annotation" not in entry:
            continue
        frames[str(key)] = _frame_array(entry["frame_annotation"], f"{path}: {key}")
        if "global_ah" in entry and _label_value(entry["global_ah"]) >= 0:
            videos[str(key)] = _label_value(entry["global_ah"])
    if not frames:
        raise MetricsError(f"{path}: no video with a frame_annotation list")
    return frames, videos


def load_labels(paths: Iterable[Path]) -> LabelSet:
    """Read split files and annotation YAML files (by extension) into one :class:`LabelSet`;
    video labels from split files take precedence over ``global_ah``."""
    out = LabelSet()
    from_yaml: dict[str, int] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            why = "not a regular file" if path.exists() else "no such file"
            raise MetricsError(f"labels {path}: {why}")
        if path.suffix.lower() in (".yaml", ".yml"):
            frames, videos = read_frame_annotations(path)
            out.frames.update(frames)
            from_yaml.update(videos)
        else:
            out.videos.update(read_split_file(path))
    for key, value in from_yaml.items():
        out.videos.setdefault(key, value)
    return out


# -- matching ----------------------------------------------------------------------------------


def _parts(path: str) -> list[str]:
    return [p for p in PurePath(path.replace("\\", "/")).parts if p not in ("/", "")]


def _stem(path: str) -> str:
    parts = _parts(path)
    return PurePath(parts[-1]).stem if parts else ""


def _common_tail(a: list[str], b: list[str]) -> int:
    """How many trailing path components agree (the file name by its stem)."""
    if not a or not b or PurePath(a[-1]).stem != PurePath(b[-1]).stem:
        return 0
    n = 1
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def match_labels(videos: Sequence[tuple[str, str]], keys: Iterable[str]) -> dict[str, str]:
    """Map result ids to label keys. ``videos`` holds (id, media path) pairs."""
    by_stem: dict[str, list[str]] = {}
    for key in keys:
        by_stem.setdefault(_stem(key), []).append(key)
    matched: dict[str, str] = {}
    for vid, path in videos:
        candidates = by_stem.get(_stem(path)) or by_stem.get(vid) or []
        if len(candidates) == 1:
            matched[vid] = candidates[0]
            continue
        if not candidates:
            continue
        mine = _parts(path)
        tails = sorted(((_common_tail(mine, _parts(k)), k) for k in candidates), reverse=True)
        if tails[0][0] > tails[1][0]:
            matched[vid] = tails[0][1]
    return matched


# -- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredVideo:
    """What the evaluation needs from one analysis result."""

    id: str
    path: str
    probability: float
    label: int
    times: np.ndarray  # analysis frame times (s)
    frame_probability: np.ndarray
    frame_label: np.ndarray
    source_fps: float  # the media's frame rate (0 when unknown)


def frame_pairs(
    labels: np.ndarray, source_fps: float, video: ScoredVideo
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(labels, predicted labels, scores, dropped) at the labelled source frames, each taking
    the nearest analysis frame's prediction (see the module docstring)."""
    if source_fps <= 0:
        raise MetricsError(f"{video.id}: unknown source frame rate; pass the label fps")
    labels = np.asarray(labels, dtype=np.int8)
    index = np.flatnonzero(labels >= 0)
    empty = np.zeros(0, np.int8), np.zeros(0, np.int8), np.zeros(0), 0
    if index.size == 0:
        return empty
    times = np.asarray(video.times, dtype=np.float64)
    if times.size == 0:
        return (*empty[:3], int(index.size))
    t = index / float(source_fps)
    right = np.clip(np.searchsorted(times, t), 0, times.size - 1)
    left = np.clip(right - 1, 0, times.size - 1)
    nearest = np.where(np.abs(times[left] - t) <= np.abs(times[right] - t), left, right)
    step = float(np.median(np.diff(times))) if times.size > 1 else 0.0
    keep = np.abs(times[nearest] - t) <= max(step, 0.5)
    nearest, index = nearest[keep], index[keep]
    return (
        labels[index],
        np.asarray(video.frame_label, dtype=np.int8)[nearest],
        np.asarray(video.frame_probability, dtype=np.float64)[nearest],
        int((~keep).sum()),
    )


@dataclass(frozen=True)
class LevelSamples:
    """What one level is evaluated on, one entry per sample (a video, or a labelled source
    frame): labels, hard predictions and positive-class scores."""

    labels: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray

    def metrics(self) -> BinaryMetrics:
        return binary_metrics(self.labels, self.predictions, self.scores)

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:func:`pr_curve` of these samples."""
        return pr_curve(self.labels, self.scores)


@dataclass(frozen=True)
class Truth:
    """The labels matched to one result: its ``video`` label (0/1) and its ``frames`` labels
    (one per source frame, -1 where unlabelled; frame k at time k / ``fps``), each None when
    the labels hold none (or, for frames, when the frame rate is unknown)."""

    video: int | None = None
    frames: np.ndarray | None = None
    fps: float | None = None


@dataclass(frozen=True)
class Evaluation:
    """The samples behind :func:`evaluate`'s metrics: ``video`` and ``frame`` level (None when
    nothing matched), the matching counts, the frames dropped and each matched result's
    :class:`Truth` by id."""

    matching: dict
    video: LevelSamples | None
    frame: LevelSamples | None
    frames_dropped: int
    truth: dict[str, Truth]


def collect(
    videos: Sequence[ScoredVideo], labels: LabelSet, label_fps: float | None = None
) -> Evaluation:
    """Match ``videos`` to ``labels`` and gather the samples of each level (see the module
    docstring); :func:`evaluate` computes the metrics from them."""
    pairs = [(v.id, v.path) for v in videos]
    by_id = {v.id: v for v in videos}
    video_match = match_labels(pairs, labels.videos)
    frame_match = match_labels(pairs, labels.frames)
    matching: dict = {
        "results": len(videos),
        "video_labels": len(labels.videos),
        "frame_labels": len(labels.frames),
        "matched_video_level": len(video_match),
        "matched_frame_level": len(frame_match),
        "unmatched": sorted(set(by_id) - set(video_match) - set(frame_match)),
    }
    truth = {vid: Truth(video=labels.videos[key]) for vid, key in video_match.items()}
    video = None
    if video_match:
        ids = sorted(video_match)
        video = LevelSamples(
            np.asarray([labels.videos[video_match[i]] for i in ids], np.int8),
            np.asarray([by_id[i].label for i in ids], np.int8),
            np.asarray([by_id[i].probability for i in ids], np.float64),
        )
    frame = None
    dropped = 0
    if frame_match:
        ys, ps, ss = [], [], []
        skipped: list[str] = []
        for vid in sorted(frame_match):
            item = by_id[vid]
            fps = label_fps or item.source_fps
            if not fps or fps <= 0:
                skipped.append(vid)
                continue
            frames = labels.frames[frame_match[vid]]
            y, p, s, d = frame_pairs(frames, fps, item)
            ys.append(y)
            ps.append(p)
            ss.append(s)
            dropped += d
            known = truth.get(vid, Truth()).video
            truth[vid] = Truth(video=known, frames=np.asarray(frames, np.int8), fps=float(fps))
        if ys and sum(len(y) for y in ys):
            frame = LevelSamples(np.concatenate(ys), np.concatenate(ps), np.concatenate(ss))
        matching["frame_level_skipped_no_fps"] = skipped
    return Evaluation(matching, video, frame, dropped, truth)


def evaluate(
    videos: Sequence[ScoredVideo], labels: LabelSet, label_fps: float | None = None
) -> dict:
    """Video- and frame-level BAH metrics of ``videos`` against ``labels`` (JSON-ready).

    ``label_fps`` is the frame rate of the annotated frames; by default each video's own."""
    samples = collect(videos, labels, label_fps)
    report: dict = {"matching": samples.matching, "video": None, "frame": None}
    if samples.video is not None:
        report["video"] = samples.video.metrics().to_dict()
    if samples.frame is not None:
        frame = samples.frame.metrics().to_dict()
        report["frame"] = {**frame, "frames_dropped": samples.frames_dropped}
    return report
