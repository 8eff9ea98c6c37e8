"""Tables of a batch, built from its per-clip results (read back typed, as
:class:`BatchResult`): ``clips.csv`` (one row per clip), ``frames.parquet`` / ``frames.csv``
(every analysis frame of every clip) and ``failures.csv``. The frame table is also what
``ahmer analyze --csv`` writes for one clip (:func:`frames_csv`), the same columns less ``id``.

``clips.csv`` counts each clip's ``warnings`` and flags partial media apart: ``truncated`` is 1
when a stream decoded short of its declared duration (or, for a live session's result, audio
and video ended apart; :mod:`ahmer.preprocessing.truncation`), the text being in the JSON.

Everything is written atomically. Transcript text never enters these tables (only cue names
and times); it stays in the per-clip JSON and the report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ahmer.models.contract import ATTRIBUTION_NAMES as ATTRIBUTION
from ahmer.models.contract import EMOTIONS, MASK_NAMES
from ahmer.models.contract import FUSION_MODEL as FUSION
from ahmer.models.results import AnalysisResult, FrameResult, json_ready
from ahmer.preprocessing.face_engine import BLENDSHAPE_NAMES
from ahmer.preprocessing.truncation import is_incomplete

from ..files import atomic_write_bytes, atomic_write_text

__all__ = [
    "BLENDSHAPE_COLUMNS",
    "CLIP_COLUMNS",
    "FAILURE_COLUMNS",
    "FRAME_COLUMNS",
    "BatchResult",
    "load_results",
    "top_cues",
    "clip_rows",
    "frame_columns",
    "frames_csv",
    "clips_csv",
    "write_clips_csv",
    "write_frames_parquet",
    "write_frames_csv",
    "write_failures",
    "read_failures",
]

log = logging.getLogger(__name__)

CLIP_COLUMNS = (
    "id",
    "path",
    "duration",
    "ah_probability",
    "ah_label",
    "threshold",
    "ah_segments",
    "top_cues",
    "dominant_emotion",
    "mean_valence",
    "frames",
    "fps",
    "transcript_source",
    "warnings",
    "truncated",
    "ah_model",
    "models",
)
FAILURE_COLUMNS = ("id", "path", "error")


@dataclass(frozen=True)
class BatchResult:
    """One clip's result as ``ahmer score`` stores it: the clip id, the typed result and the
    ``batch`` block written beside it (``path``, ``key``, ``sha256``, options, ...)."""

    id: str
    result: AnalysisResult
    batch: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str | None:
        """The media file the batch analysed (None without a batch block)."""
        path = self.batch.get("path")
        return None if path is None else str(path)

    def scored_video(self):
        """What the evaluation against labels reads of this result
        (:class:`ahmer.models.training.evaluation.ScoredVideo`)."""
        import numpy as np

        from ahmer.models.training.evaluation import ScoredVideo

        r, frames = self.result, self.result.frames
        return ScoredVideo(
            id=self.id,
            path=self.id if self.path is None else self.path,
            probability=float(r.clip.ah_probability),
            label=int(r.clip.ah_label),
            times=np.array([f.time for f in frames], float),
            frame_probability=np.array([f.ah_probability for f in frames], float),
            frame_label=np.array([f.ah_label for f in frames], int),
            source_fps=float(r.media.get("video_fps") or 0.0),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_id: str | None = None) -> BatchResult:
        """A result JSON object with its ``id`` (else ``default_id``) and ``batch`` keys.
        Raises ValueError when it is not a result."""
        clip_id = data.get("id", default_id)
        if clip_id is None:
            raise ValueError("result without an id")
        return cls(str(clip_id), AnalysisResult.from_dict(data), dict(data.get("batch") or {}))


def load_results(results_dir: Path, ids: Iterable[str] | None = None) -> list[BatchResult]:
    """Results of ``ids`` (default: every ``*.json``) in ``results_dir``, sorted by id (a file
    without an ``id`` takes its stem). Unreadable files are skipped with a warning."""
    folder = Path(results_dir)
    if ids is None:
        paths = sorted(folder.glob("*.json"))
    else:
        paths = [folder / f"{i}.json" for i in sorted(set(ids))]
    out = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(data, dict) and "clip" in data):
                continue
            out.append(BatchResult.from_dict(data, path.stem))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable result %s: %s", path.name, exc)
    return sorted(out, key=lambda b: b.id)


def top_cues(result: AnalysisResult, limit: int = 3) -> str:
    """The strongest explanation cues as ``"hedge@1.2s; pause@3.0s"``."""
    cues = sorted(result.explanation.cues, key=lambda c: -(json_ready(c.weight) or 0.0))
    return "; ".join(f"{c.cue}@{c.start:.1f}s" for c in cues[:limit])


def clip_rows(results: Sequence[BatchResult]) -> list[dict[str, Any]]:
    rows = []
    for b in results:
        r = b.result
        clip, models = r.clip, r.models
        rows.append(
            {
                "id": b.id,
                "path": b.path or "",
                "duration": r.media.get("duration"),
                "ah_probability": json_ready(clip.ah_probability),
                "ah_label": clip.ah_label,
                "threshold": json_ready(clip.threshold),
                "ah_segments": len(clip.segments),
                "top_cues": top_cues(r),
                "dominant_emotion": clip.dominant_emotion or "",
                "mean_valence": json_ready(clip.mean_valence),
                "frames": len(r.frames),
                "fps": json_ready(r.fps),
                "transcript_source": r.transcript_source,
                "warnings": len(r.warnings),
                "truncated": int(any(is_incomplete(w) for w in r.warnings)),
                "ah_model": models.get(models.get("fusion", FUSION), ""),
                "models": "; ".join(f"{k}={v}" for k, v in sorted(models.items())),
            }
        )
    return rows


def clips_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CLIP_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in CLIP_COLUMNS})
    return buf.getvalue()


def write_clips_csv(path: Path, results: Sequence[BatchResult]) -> None:
    atomic_write_text(path, clips_csv(clip_rows(results)))


# -- frames ------------------------------------------------------------------------------------

# The frame table, in the spirit of OpenFace and py-feat: frame index, time, face track,
# detection confidence and success first, then feature groups with stable prefixes. Name and
# Arrow type of each column; the batch tables add a leading ``id``. Units: ``face_x0..y1``
# normalised to the frame (0..1); ``face_x, face_y, face_width, face_height`` the same box in
# pixels of the displayed (rotated) frame, as py-feat's FaceRect; ``pose_pitch, pose_yaw,
# pose_roll`` head pose in degrees; ``blendshape_<name>`` the 52 MediaPipe blendshape scores
# (0..1; ``_neutral`` is ``blendshape_neutral``). Pose and blendshapes are empty on frames
# without landmarks (no face, or between landmark frames below --landmark-fps).
BLENDSHAPE_COLUMNS = tuple(f"blendshape_{name.lstrip('_')}" for name in BLENDSHAPE_NAMES)
FRAME_SCHEMA = (
    ("frame", "int32"),
    ("timestamp", "float64"),
    ("face_id", "int32"),
    ("confidence", "float64"),
    ("success", "int8"),
    *((f"face_{k}", "float64") for k in ("x0", "y0", "x1", "y1")),
    *((f"face_{k}", "float64") for k in ("x", "y", "width", "height")),
    *((f"pose_{k}", "float64") for k in ("pitch", "yaw", "roll")),
    ("emotion_label", "string"),
    *((f"emotion_{e}", "float64") for e in EMOTIONS),
    ("valence", "float64"),
    ("ah_probability", "float64"),
    ("ah_label", "int8"),
    *((f"attribution_{a}", "float64") for a in ATTRIBUTION),
    *((f"modality_{m}", "int8") for m in MASK_NAMES),
    *((name, "float64") for name in BLENDSHAPE_COLUMNS),
)
FRAME_COLUMNS = tuple(name for name, _ in FRAME_SCHEMA)
_ID = ("id", "string")


def _pixels(box, size: tuple[int, int]) -> list:
    """``x0, y0, x1, y1`` (normalised) as ``x, y, width, height`` in pixels of a frame of
    ``size`` (width, height); None without a face or a frame size (audio)."""
    width, height = size
    if box is None or not width or not height or any(v is None for v in box):
        return [None] * 4
    x0, y0, x1, y1 = box
    return [round(v, 1) for v in (x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height)]


def _frame_values(index: int, f: FrameResult, size: tuple[int, int]) -> list:
    face, emotion = f.face, f.emotion or {}
    box = face.box if face else (None,) * 4
    pose = (face.pose if face else None) or (None,) * 3
    shapes = (face.blendshapes if face else None) or {}
    flags = (f.modalities.get(m) for m in MASK_NAMES)
    return [
        index,
        json_ready(f.time),
        face.track_id if face else None,
        json_ready(face.quality) if face else None,
        int(face is not None),
        *(json_ready(v) for v in box),
        *_pixels(json_ready(face.box) if face else None, size),
        *(json_ready(v) for v in pose),
        f.emotion_label,
        *(json_ready(emotion.get(e)) for e in EMOTIONS),
        json_ready(f.valence),
        json_ready(f.ah_probability),
        f.ah_label,
        *(json_ready(f.attribution.get(a)) for a in ATTRIBUTION),
        *(None if v is None else int(v) for v in flags),
        *(json_ready(shapes.get(name)) for name in BLENDSHAPE_NAMES),
    ]


def frame_columns(
    results: Sequence[AnalysisResult], ids: Sequence[str] | None = None
) -> dict[str, list]:
    """Every frame of every result as columns (:data:`FRAME_COLUMNS`), numbers rounded as in
    the result JSON, None where a value does not apply (the face and emotion columns of a
    frame without a face, NaN). With ``ids`` (one per result), a leading ``id`` column."""
    names = ([_ID[0]] if ids is not None else []) + list(FRAME_COLUMNS)
    cols: dict[str, list] = {name: [] for name in names}
    for k, r in enumerate(results):
        lead = [ids[k]] if ids is not None else []
        size = (int(r.media.get("width") or 0), int(r.media.get("height") or 0))
        for i, f in enumerate(r.frames):
            for name, value in zip(names, lead + _frame_values(i, f, size), strict=True):
                cols[name].append(value)
    return cols


def frames_csv(results: Sequence[AnalysisResult], ids: Sequence[str] | None = None) -> str:
    """The frame table as CSV (empty cells for None): what ``ahmer analyze --csv`` writes for
    one result and ``ahmer score --frames-csv`` (with ``ids``) for a batch."""
    cols = frame_columns(results, ids)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in zip(*cols.values(), strict=True):
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def write_frames_parquet(path: Path, results: Sequence[BatchResult]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = frame_columns([b.result for b in results], [b.id for b in results])
    schema = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in (_ID, *FRAME_SCHEMA)])
    table = pa.table({n: pa.array(cols[n], type=schema.field(n).type) for n in cols}, schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write_bytes(path, buf.getvalue())


def write_frames_csv(path: Path, results: Sequence[BatchResult]) -> None:
    atomic_write_text(path, frames_csv([b.result for b in results], [b.id for b in results]))


# -- failures ----------------------------------------------------------------------------------


def write_failures(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``id,path,error`` rows (the header alone when nothing failed)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FAILURE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["id"]):
        writer.writerow({k: row.get(k, "") for k in FAILURE_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def read_failures(paths: Iterable[Path]) -> list[dict[str, str]]:
    """Rows of failure CSVs, the last file's row winning per id."""
    rows: dict[str, dict[str, str]] = {}
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("id"):
                        rows[row["id"]] = {k: row.get(k, "") for k in FAILURE_COLUMNS}
        except (OSError, csv.Error) as exc:
            log.warning("skipping unreadable %s: %s", Path(path).name, exc)
    return [rows[k] for k in sorted(rows)]
