"""Tables of a batch, built from its per-clip result JSON: ``clips.csv`` (one row per clip),
``frames.parquet`` / ``frames.csv`` (every analysis frame of every clip) and ``failures.csv``.

Everything is written atomically. Transcript text never enters these tables (only cue names
and times); it stays in the per-clip JSON and the report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ahmer.models.contract import ATTRIBUTION_NAMES as ATTRIBUTION
from ahmer.models.contract import EMOTIONS
from ahmer.models.contract import FUSION_MODEL as FUSION

from ..files import atomic_write_bytes, atomic_write_text

__all__ = [
    "CLIP_COLUMNS",
    "FAILURE_COLUMNS",
    "load_results",
    "top_cues",
    "clip_rows",
    "frame_columns",
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
    "ah_model",
    "models",
)
FAILURE_COLUMNS = ("id", "path", "error")


def load_results(results_dir: Path, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Result JSON of ``ids`` (default: every ``*.json``) in ``results_dir``, sorted by id.
    Unreadable files are skipped with a warning."""
    folder = Path(results_dir)
    if ids is None:
        paths = sorted(folder.glob("*.json"))
    else:
        paths = [folder / f"{i}.json" for i in sorted(set(ids))]
    out = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable result %s: %s", path.name, exc)
            continue
        if isinstance(data, dict) and "clip" in data:
            data.setdefault("id", path.stem)
            out.append(data)
    return sorted(out, key=lambda d: d["id"])


def top_cues(result: dict[str, Any], limit: int = 3) -> str:
    """The strongest explanation cues as ``"hedge@1.2s; pause@3.0s"``."""
    cues = sorted(
        result.get("explanation", {}).get("cues", []),
        key=lambda c: -(c.get("weight") or 0.0),
    )
    return "; ".join(f"{c['cue']}@{c['start']:.1f}s" for c in cues[:limit])


def clip_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        clip, media, models = r["clip"], r.get("media", {}), r.get("models", {})
        rows.append(
            {
                "id": r["id"],
                "path": r.get("batch", {}).get("path", ""),
                "duration": media.get("duration"),
                "ah_probability": clip["ah_probability"],
                "ah_label": clip["ah_label"],
                "threshold": clip.get("threshold"),
                "ah_segments": len(clip.get("segments", [])),
                "top_cues": top_cues(r),
                "dominant_emotion": clip.get("dominant_emotion") or "",
                "mean_valence": clip.get("mean_valence"),
                "frames": len(r.get("frames", [])),
                "fps": r.get("fps"),
                "transcript_source": r.get("transcript_source", ""),
                "warnings": len(r.get("warnings", [])),
                "ah_model": models.get(FUSION, ""),
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


def write_clips_csv(path: Path, results: Sequence[dict[str, Any]]) -> None:
    atomic_write_text(path, clips_csv(clip_rows(results)))


# -- frames ------------------------------------------------------------------------------------

_FRAME_SCHEMA = (
    ("id", "string"),
    ("time", "float64"),
    ("ah_probability", "float64"),
    ("ah_label", "int8"),
    ("emotion_label", "string"),
    *((f"emotion_{e}", "float64") for e in EMOTIONS),
    ("valence", "float64"),
    ("face", "bool"),
    ("track_id", "int32"),
    ("face_quality", "float64"),
    ("x0", "float64"),
    ("y0", "float64"),
    ("x1", "float64"),
    ("y1", "float64"),
    *((f"attr_{a}", "float64") for a in ATTRIBUTION),
    ("visual", "bool"),
    ("vocal", "bool"),
    ("verbal", "bool"),
)


def frame_columns(results: Sequence[dict[str, Any]]) -> dict[str, list]:
    """Every frame of every result, as columns (None where a value does not apply)."""
    cols: dict[str, list] = {name: [] for name, _ in _FRAME_SCHEMA}
    for r in results:
        for f in r.get("frames", []):
            face, emotion = f.get("face"), f.get("emotion") or {}
            attribution, modalities = f.get("attribution") or {}, f.get("modalities") or {}
            box = face["box"] if face else (None,) * 4
            values = {
                "id": r["id"],
                "time": f["time"],
                "ah_probability": f["ah_probability"],
                "ah_label": f["ah_label"],
                "emotion_label": f.get("emotion_label"),
                "valence": f.get("valence"),
                "face": face is not None,
                "track_id": face["track_id"] if face else None,
                "face_quality": face["quality"] if face else None,
                "x0": box[0],
                "y0": box[1],
                "x1": box[2],
                "y1": box[3],
                "visual": modalities.get("visual"),
                "vocal": modalities.get("vocal"),
                "verbal": modalities.get("verbal"),
            }
            for e in EMOTIONS:
                values[f"emotion_{e}"] = emotion.get(e)
            for a in ATTRIBUTION:
                values[f"attr_{a}"] = attribution.get(a)
            for name in cols:
                cols[name].append(values[name])
    return cols


def write_frames_parquet(path: Path, results: Sequence[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = frame_columns(results)
    schema = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in _FRAME_SCHEMA])
    table = pa.table({n: pa.array(cols[n], type=schema.field(n).type) for n in cols}, schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write_bytes(path, buf.getvalue())


def write_frames_csv(path: Path, results: Sequence[dict[str, Any]]) -> None:
    cols = frame_columns(results)
    names = list(cols)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in zip(*(cols[n] for n in names), strict=True):
        writer.writerow(["" if v is None else v for v in row])
    atomic_write_text(path, buf.getvalue())


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
