"""Labelled datasets on disk: the BAH release layout and a plain CSV manifest, read into
:class:`DatasetItem` records (media, split, participant, video label, frame labels and the
transcript text given with the video) for feature extraction and training.

Layouts (:func:`open_dataset` detects which):

**BAH release** (a folder; docs/training.md describes it)::

    Videos/<pid>/Visite_1/<pid>_Question_<n>_<timestamp>_Video.mp4
    train.txt  val.txt (or valid.txt)  test.txt      in the root or in splits/; .csv too
    video_annotation.yaml                             per video: frame_annotation pairs
    class_id.yaml                                     With A-H: 1 / No A-H: 0 (checked)

Split file lines are ``video_path,label,transcript``: only the first two commas split (a
transcript holds commas); a header line (a label that is not a number) is skipped; a quoted
transcript loses its quotes. ``video_path`` resolves against the root, then ``Videos/``, then
by file name among the videos found under ``Videos/``. The participant is the folder under
``Videos/`` (``<pid>``). Without split files every video under ``Videos/`` is an item with an
empty split, its label from ``global_ah`` or its frame labels (any A/H frame: 1).

**CSV manifest** (a ``.csv`` file): a header naming ``path`` and ``label`` is required;
optional columns ``transcript`` (the text itself), ``participant``, ``split`` (train, val or
valid, test), ``id`` and ``frame_labels``. Relative paths resolve against the manifest's
folder. An empty label is unknown (-1). ``frame_labels`` names a file of per-frame labels:
a ``.yaml``/``.yml`` in the ``video_annotation.yaml`` form (the entry of this video is found
by file name) or a ``.csv``/``.txt`` holding one label per source frame, one per line (the
last comma-separated field of a line counts; a non-numeric first line is a header). Without
that column, a ``video_annotation.yaml`` beside the manifest is used when present.

Frame labels are int8 per **source** frame (frame k at time k / the video's frame rate),
-1 where unlabelled; reading and ordering them is :mod:`ahmer.models.training.evaluation`'s
(:func:`~ahmer.models.training.evaluation.read_frame_annotations`), as is matching annotation keys
to videos (:func:`~ahmer.models.training.evaluation.match_labels`).

Errors are :class:`DatasetError` naming the file (relative to the dataset root) and line:
``splits/train.txt:7: label 'x' is not 0 or 1``. A line naming a video that is not there
is not an error of the dataset: the item carries ``error`` and fails alone in the batch.

Privacy: transcripts are health conversations. They are kept only in the items (``repr``
hides them) and never appear in messages or logs.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np

from ahmer.models.training.evaluation import MetricsError, match_labels, read_frame_annotations
from ahmer.preprocessing.errors import InvalidInput

__all__ = [
    "DatasetError",
    "DatasetItem",
    "Dataset",
    "LAYOUTS",
    "SPLITS",
    "VIDEO_EXTENSIONS",
    "open_dataset",
    "safe_id",
    "read_class_ids",
    "resample_labels",
]

LAYOUTS = ("bah", "csv")
SPLITS = ("train", "val", "test")
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
VIDEO_EXTENSIONS = frozenset(".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg".split())
FINGERPRINT_SCHEMA = "ahmer.dataset-fingerprint/1"


class DatasetError(InvalidInput, ValueError):
    """The dataset cannot be read as given: a missing or malformed split file, manifest,
    label file or ``class_id.yaml``. The message names the file and, where there is one, the
    line."""


def safe_id(text: str) -> str:
    """A file-name-safe id: runs of other characters than ``A-Za-z0-9._-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:100] or "item"


@dataclass(frozen=True, eq=False)
class DatasetItem:
    """One labelled video.

    ``id`` is stable and file-name safe (the file stem; a path hash is appended when stems
    collide). ``source`` is the path as the split file or manifest wrote it; ``split`` is
    ``train``, ``val``, ``test`` or empty; ``label`` 0/1, -1 unknown; ``frame_labels`` int8
    per source frame (-1 unlabelled) or None; ``transcript`` the given text (used instead of
    ASR) or None; ``error`` why the item cannot be processed (its media is missing)."""

    id: str
    path: Path
    source: str
    split: str = ""
    participant: str = ""
    label: int = -1
    frame_labels: np.ndarray | None = field(default=None, repr=False)
    transcript: str | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def labelled_frames(self) -> int:
        return 0 if self.frame_labels is None else int(np.sum(self.frame_labels >= 0))


@dataclass
class Dataset:
    """The items of a dataset and what they were read from (``files``, relative to
    ``root``); ``unlisted``: videos under ``Videos/`` that no split file names."""

    root: Path
    layout: str
    items: list[DatasetItem]
    files: list[str] = field(default_factory=list)
    unlisted: int = 0

    def fingerprint(self) -> str:
        """sha256 over every item's id, source, split, participant, label, frame labels and
        transcript hash: what a model trained on these features was trained on."""
        h = hashlib.sha256(FINGERPRINT_SCHEMA.encode())
        for item in sorted(self.items, key=lambda i: i.id):
            frames = b"" if item.frame_labels is None else item.frame_labels.tobytes()
            text = None if item.transcript is None else _sha(item.transcript.encode())
            row = [item.id, item.source, item.split, item.participant, item.label, text]
            h.update(json.dumps(row).encode() + b"\0" + _sha(frames).encode() + b"\n")
        return h.hexdigest()

    def counts(self) -> dict[str, dict[str, int]]:
        """Videos per split and label: ``{split or "none": {"0": n, "1": n, "-1": n}}``."""
        out: dict[str, dict[str, int]] = {}
        for item in self.items:
            per = out.setdefault(item.split or "none", {})
            per[str(item.label)] = per.get(str(item.label), 0) + 1
        return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- helpers -----------------------------------------------------------------------------------


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _strict_label(text: str, where: str, allow_empty: bool = False) -> int:
    value = text.strip()
    if not value and allow_empty:
        return -1
    try:
        number = float(value)
    except ValueError:
        number = None
    if number not in (0.0, 1.0):
        raise DatasetError(f"{where}: label {_shown(value)} is not 0 or 1")
    return int(number)


def _shown(value: str) -> str:
    """A cell for an error message: quoted when it is a number or at most 3 characters;
    otherwise only its length (a line shifted by a missing comma puts transcript words in
    the label's place, and transcript text never goes into messages)."""
    if len(value) <= 3 or re.fullmatch(r"[-+]?[\d.eE]+", value):
        return repr(value)
    return f"of {len(value)} characters"


def read_class_ids(path: Path, root: Path | None = None) -> dict[str, int]:
    """``class_id.yaml``: names to ids; checked to be ``{With A-H: 1, No A-H: 0}`` in
    meaning (two classes, ids 0 and 1, the class named "No ..." being 0)."""
    import yaml

    where = _rel(path, root) if root else str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise DatasetError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{where}: expected a mapping like 'With A-H: 1' and 'No A-H: 0'")
    ids = {str(k): v for k, v in data.items()}
    if sorted(v for v in ids.values() if isinstance(v, int)) != [0, 1] or len(ids) != 2:
        raise DatasetError(f"{where}: expected two classes with ids 0 and 1, got {ids}")
    positive = next(k for k, v in ids.items() if v == 1)
    if re.match(r"\s*(no|non|without)\b", positive, re.IGNORECASE):
        raise DatasetError(
            f"{where}: class 1 is {positive!r}; ahmer needs 1 = A/H present ('With A-H: 1')"
        )
    return ids


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _split_rows(path: Path, root: Path) -> list[tuple[int, str, int, str | None]]:
    """(line number, video path, label, transcript or None) of a split file."""
    where = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot read ({exc})") from exc
    rows = []
    first = True
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",", 2)
        if first and len(parts) >= 2 and not re.fullmatch(r"\s*[-+.\d]+\s*", parts[1]):
            first = False
            continue  # a header line
        first = False
        if len(parts) < 2 or not parts[0].strip():
            raise DatasetError(f"{where}:{number}: expected video_path,label[,transcript]")
        label = _strict_label(parts[1], f"{where}:{number}")
        transcript = _unquote(parts[2]) if len(parts) > 2 else ""
        rows.append((number, parts[0].strip(), label, transcript or None))
    if not rows:
        raise DatasetError(f"{where}: no videos listed")
    return rows


def _annotations(path: Path, root: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(frame labels, ``global_ah`` video labels) of a ``video_annotation.yaml``."""
    try:
        return read_frame_annotations(path)
    except MetricsError as exc:
        raise DatasetError(str(exc).replace(str(path), _rel(path, root))) from exc


def _frame_labels_table(path: Path, root: Path) -> np.ndarray:
    """One label per source frame, one per line (last comma field), header allowed."""
    where = _rel(path, root)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot read ({exc})") from exc
    values = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cell = line.rsplit(",", 1)[-1].strip()
        if number == 1 and not re.fullmatch(r"[-+.\d]+", cell):
            continue
        try:
            value = float(cell)
        except ValueError:
            raise DatasetError(
                f"{where}:{number}: frame label {_shown(cell)} is not a number"
            ) from None
        values.append(int(value) if value in (0.0, 1.0) else -1)
    if not values:
        raise DatasetError(f"{where}: no frame labels")
    return np.asarray(values, np.int8)


def _find_one(root: Path, names: Iterable[str]) -> Path | None:
    for folder in (root, root / "splits"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _participant(path: Path, videos: Path) -> str:
    try:
        parts = path.relative_to(videos).parts
    except ValueError:
        return ""
    return parts[0] if len(parts) > 1 else ""


def _assign_ids(rows: list[dict]) -> None:
    """``id`` from the given id or the file stem; colliding stems get a path hash."""
    counts: dict[str, int] = {}
    for row in rows:
        row["base"] = safe_id(row.get("given") or PurePath(row["source"]).stem)
        counts[row["base"].lower()] = counts.get(row["base"].lower(), 0) + 1
    used: set[str] = set()
    for row in rows:
        vid = row["base"]
        if counts[vid.lower()] > 1:
            if row.get("given"):
                raise DatasetError(f"{row['where']}: duplicate id {row['given']!r}")
            vid = f"{vid}-{_sha(row['source'].encode())[:8]}"
        if vid.lower() in used:
            raise DatasetError(f"{row['where']}: duplicate id {vid!r}")
        used.add(vid.lower())
        row["id"] = vid


def _missing(path: Path) -> str | None:
    """Why ``path`` cannot be read as a media file, or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "no such file"
        return (exc.strerror or type(exc).__name__).lower()
    return None if stat.S_ISREG(mode) else "not a regular file"


def _attach_frames(rows: list[dict], frames: dict[str, np.ndarray]) -> None:
    """Frame labels of ``frames`` (by annotation key) onto rows without any."""
    if not frames:
        return
    pairs = [(row["id"], row["source"]) for row in rows if row.get("frames") is None]
    by_id = {row["id"]: row for row in rows}
    for vid, key in match_labels(pairs, frames).items():
        by_id[vid]["frames"] = frames[key]


def _items(rows: list[dict]) -> list[DatasetItem]:
    items = [
        DatasetItem(
            id=row["id"],
            path=row["path"],
            source=row["source"],
            split=row.get("split", ""),
            participant=row.get("participant", ""),
            label=row["label"],
            frame_labels=row.get("frames"),
            transcript=row.get("transcript"),
            error=_missing(row["path"]),
        )
        for row in rows
    ]
    return sorted(items, key=lambda i: i.id)


# -- BAH release layout ------------------------------------------------------------------------


def _split_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in (root, root / "splits"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            split = _SPLIT_NAMES.get(path.stem.lower())
            if split is None or path.suffix.lower() not in (".txt", ".csv") or not path.is_file():
                continue
            if split in found:
                raise DatasetError(
                    f"{_rel(found[split], root)} and {_rel(path, root)}: two {split} split files"
                )
            found[split] = path
    return found


def _videos(root: Path) -> list[Path]:
    folder = root / "Videos"
    out = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                out.append(Path(here) / name)
    return out


def _resolve_video(source: str, root: Path, by_name: dict[str, list[Path]]) -> Path:
    clean = source.replace("\\", "/").lstrip("/")
    for candidate in (root / clean, root / "Videos" / clean):
        if os.path.lexists(candidate):
            return candidate
    found = by_name.get(PurePath(clean).name, [])
    return found[0] if len(found) == 1 else root / clean


def _open_bah(root: Path) -> Dataset:
    files: list[str] = []
    class_file = _find_one(root, ("class_id.yaml", "class_id.yml"))
    if class_file is not None:
        read_class_ids(class_file, root)
        files.append(_rel(class_file, root))
    splits = _split_files(root)
    videos = _videos(root) if (root / "Videos").is_dir() else []
    if not splits and not videos:
        raise DatasetError(
            f"{root}: not a dataset: expected the BAH layout (Videos/ and split files "
            "train.txt, val.txt, test.txt) or a CSV manifest file (path,label,...)"
        )
    by_name: dict[str, list[Path]] = {}
    for v in videos:
        by_name.setdefault(v.name, []).append(v)
    rows: list[dict] = []
    if splits:
        seen: dict[str, str] = {}
        for split in SPLITS:
            if split not in splits:
                continue
            path = splits[split]
            files.append(_rel(path, root))
            for number, source, label, transcript in _split_rows(path, root):
                where = f"{_rel(path, root)}:{number}"
                media = _resolve_video(source, root, by_name)
                key = str(media)
                if key in seen:
                    raise DatasetError(f"{where}: {source} is listed already ({seen[key]})")
                seen[key] = where
                rows.append(
                    {
                        "where": where,
                        "source": source,
                        "path": media,
                        "split": split,
                        "participant": _participant(media, root / "Videos")
                        or _participant(root / source, root),
                        "label": label,
                        "transcript": transcript,
                    }
                )
        listed = {Path(r["path"]).resolve() for r in rows}
        unlisted = sum(1 for v in videos if v.resolve() not in listed)
    else:
        unlisted = 0
        for media in videos:
            rows.append(
                {
                    "where": _rel(media, root),
                    "source": _rel(media, root),
                    "path": media,
                    "participant": _participant(media, root / "Videos"),
                    "label": -1,
                }
            )
    _assign_ids(rows)
    annotations = _find_one(root, ("video_annotation.yaml", "video_annotation.yml"))
    if annotations is not None:
        files.append(_rel(annotations, root))
        frames, videos = _annotations(annotations, root)
        _attach_frames(rows, frames)
        if not splits:
            _labels_from_annotations(rows, videos)
    return Dataset(root, "bah", _items(rows), files, unlisted)


def _labels_from_annotations(rows: list[dict], videos: dict[str, int]) -> None:
    """Video labels without split files: ``global_ah``, else any A/H frame."""
    matched = match_labels([(r["id"], r["source"]) for r in rows], videos)
    for row in rows:
        if row["id"] in matched:
            row["label"] = videos[matched[row["id"]]]
        elif row.get("frames") is not None and (row["frames"] >= 0).any():
            row["label"] = int((row["frames"] == 1).any())


# -- CSV manifest ------------------------------------------------------------------------------

_MANIFEST_COLUMNS = ("path", "label", "transcript", "participant", "split", "id", "frame_labels")


def _open_manifest(path: Path) -> Dataset:
    root = path.resolve().parent
    name = path.name
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{name}: cannot read ({exc})") from exc
    numbered = [(n, r) for n, r in enumerate(table, 1) if any(c.strip() for c in r)]
    if not numbered:
        raise DatasetError(f"{name}: empty")
    header = [c.strip().lower() for c in numbered[0][1]]
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        raise DatasetError(
            f"{name}:{numbered[0][0]}: the header must name the columns path and label "
            f"(missing: {', '.join(missing)}; optional: transcript, participant, split, id, "
            "frame_labels)"
        )
    unknown = [c for c in header if c not in _MANIFEST_COLUMNS]
    if unknown:
        raise DatasetError(f"{name}:{numbered[0][0]}: unknown column(s) {', '.join(unknown)}")
    cols = {c: header.index(c) for c in _MANIFEST_COLUMNS if c in header}
    files = [name]
    tables: dict[Path, dict[str, np.ndarray]] = {}
    rows: list[dict] = []
    seen: dict[str, str] = {}
    for number, raw in numbered[1:]:
        where = f"{name}:{number}"

        def cell(column: str, raw=raw) -> str:
            i = cols.get(column)
            return raw[i].strip() if i is not None and i < len(raw) else ""

        source = cell("path")
        if not source:
            raise DatasetError(f"{where}: empty path")
        resolved = os.path.normpath(root / source)
        if resolved in seen:
            raise DatasetError(f"{where}: {source} is listed already ({seen[resolved]})")
        seen[resolved] = where
        split_text = cell("split").lower()
        split = _SPLIT_NAMES.get(split_text, "") if split_text else ""
        if split_text and not split:
            raise DatasetError(f"{where}: split {cell('split')!r} is not train, val or test")
        row = {
            "where": where,
            "source": source,
            "path": root / source,
            "label": _strict_label(cell("label"), where, allow_empty=True),
            "transcript": cell("transcript") or None,
            "participant": cell("participant"),
            "split": split,
            "given": cell("id") or None,
        }
        labels_file = cell("frame_labels")
        if labels_file:
            target = root / labels_file
            if not target.is_file():
                raise DatasetError(f"{where}: frame labels {labels_file}: no such file")
            if target.suffix.lower() in (".yaml", ".yml"):
                if target not in tables:
                    tables[target] = _annotations(target, root)[0]
                    files.append(_rel(target, root))
                row["frames_from"] = target
            else:
                row["frames"] = _frame_labels_table(target, root)
        rows.append(row)
    if not rows:
        raise DatasetError(f"{name}: no videos listed under the header")
    _assign_ids(rows)
    for target, frames in tables.items():
        mine = [r for r in rows if r.get("frames_from") == target]
        _attach_frames(mine, frames)
        for row in mine:
            if row.get("frames") is None:
                raise DatasetError(
                    f"{row['where']}: {_rel(target, root)} has no frame_annotation for "
                    f"{PurePath(row['source']).name}"
                )
    beside = root / "video_annotation.yaml"
    if "frame_labels" not in cols and beside.is_file():
        files.append(beside.name)
        _attach_frames(rows, _annotations(beside, root)[0])
    return Dataset(root, "csv", _items(rows), files)


# -- entry point -------------------------------------------------------------------------------


def open_dataset(path: Path | str) -> Dataset:
    """The dataset at ``path``: a folder in the BAH release layout or a CSV manifest (see the
    module docstring). Raises :class:`DatasetError` naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    if path.is_dir():
        return _open_bah(path.resolve())
    if path.suffix.lower() == ".csv":
        return _open_manifest(path)
    raise DatasetError(
        f"{path}: not a dataset: give a folder in the BAH layout or a CSV manifest (.csv)"
    )


def resample_labels(labels: np.ndarray | None, source_fps: float, times: np.ndarray) -> np.ndarray:
    """Frame labels at analysis ``times`` (s): each takes the label of the nearest source
    frame (frame k at k / ``source_fps``); -1 where that frame is unlabelled, beyond the
    labels, or when there are no labels or no frame rate."""
    times = np.asarray(times, np.float64)
    out = np.full(times.shape, -1, np.int8)
    if labels is None or source_fps <= 0 or not len(labels):
        return out
    k = np.floor(times * source_fps + 0.5).astype(np.int64)
    inside = (k >= 0) & (k < len(labels))
    out[inside] = np.asarray(labels, np.int8)[k[inside]]
    return out
