"""What a batch scores: its inputs found (files, folders searched for media, manifest CSVs),
each given a stable id, and the shard a machine takes. An entry that looks like an input but
cannot be read becomes an item with its ``error`` set, never silently dropped."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ahmer.models.training.datasets import safe_id
from ahmer.preprocessing.errors import InvalidInput

__all__ = [
    "MEDIA_EXTENSIONS",
    "BatchError",
    "BatchItem",
    "discover",
    "read_manifest",
    "parse_shard",
    "select_shard",
]

MEDIA_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ts .mts .flv .wmv .asf .3gp .3g2 .ivf "
    ".wav .w64 .mp3 .m4a .aac .flac .ogg .oga .opus .caf .aif .aiff .amr".split()
)


class BatchError(InvalidInput, ValueError):
    """Bad batch arguments or inputs (no inputs, unreadable manifest, bad shard): a usage
    error, reported before any work."""


@dataclass(frozen=True)
class BatchItem:
    """One clip to score: ``id`` names its result file; ``error`` marks an entry that is
    known bad before analysis (a manifest line naming a missing file)."""

    id: str
    path: Path
    transcript: Path | None = None
    error: str | None = None


# -- discovery ---------------------------------------------------------------------------------


_safe_id = safe_id  # one rule for result and features file names


def read_manifest(path: Path) -> list[tuple[Path, Path | None, str | None]]:
    """(media, transcript, id) rows of a manifest CSV. A header naming ``path`` (and
    optionally ``transcript``, ``id``) is used when present; otherwise the columns are
    path, transcript, id. Relative paths resolve against the CSV's folder."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BatchError(f"manifest {path}: unreadable ({exc})") from exc
    if not rows:
        raise BatchError(f"manifest {path}: empty")
    header = [c.strip().lower() for c in rows[0]]
    names = set(re.split(r"[,;\t|]", ",".join(header)))
    if "path" not in header and names & {"path", "transcript", "id"}:
        raise BatchError(
            f"manifest {path}: the header has no 'path' column (columns path[,transcript][,id], "
            "separated by commas)"
        )
    if "path" in header:
        cols = {name: header.index(name) for name in ("path", "transcript", "id") if name in header}
        rows = rows[1:]
    else:
        cols = {"path": 0, "transcript": 1, "id": 2}
    base = path.resolve().parent

    def cell(row: list[str], name: str) -> str:
        i = cols.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    out = []
    for number, row in enumerate(rows, 2 if "path" in header else 1):
        media = cell(row, "path")
        if not media:
            raise BatchError(f"manifest {path}:{number}: empty path")
        transcript = cell(row, "transcript")
        out.append(
            (
                base / media,
                (base / transcript) if transcript else None,
                cell(row, "id") or None,
            )
        )
    return out


def _walk(folder: Path, exclude: Path | None) -> Iterable[Path]:
    """The entries of ``folder`` (recursively) that are inputs, or look like one and cannot
    be (each becomes a failure row, never silently dropped): files with a media extension, a
    folder named like one (``x.mp4/``: a row, and its contents are searched too), a symlink to
    a folder (not followed: a link to an ancestor would loop, one elsewhere would reach outside
    the input; a row says so), and a symlink whose resolution loops, whatever its name."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        if exclude is not None and (here == exclude or exclude in here.parents):
            dirs[:] = []
            continue
        for name in dirs:
            if (here / name).is_symlink() or Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                yield here / name
        for name in sorted(files):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in MEDIA_EXTENSIONS or (
                (here / name).is_symlink() and _file_problem(here / name) == "symlink loop"
            ):
                yield here / name


def _resolved(path: Path) -> Path:
    """``path`` resolved, or made absolute when it cannot be (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop from ..." before Python 3.13
        return Path(os.path.abspath(path))


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be scored as a file (``"no such file"``, ``"symlink loop"``,
    ``"not a regular file"``, the system's reason), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "no such file"  # a dangling symlink too
        return (exc.strerror or type(exc).__name__).lower()
    if stat.S_ISDIR(mode):
        if os.path.islink(path):
            return "not a regular file: a symlink to a folder (folder links are not followed)"
        return "not a regular file: a folder"
    return None if stat.S_ISREG(mode) else "not a regular file"


def discover(inputs: Sequence[Path], exclude: Path | None = None) -> list[BatchItem]:
    """Items from files, folders (searched recursively for media extensions) and manifest
    CSVs, deduplicated by resolved path, sorted by id. Ids are the sanitised file stem (or the
    manifest's id); stems that collide (case-insensitively) get a hash of the path appended.
    An entry that cannot be read (missing, a dangling link or a symlink loop in a folder or
    manifest, not a regular file) becomes an item with ``error`` set, named by its own path
    (not a link's target): one failure, not the end of the batch. Raises :class:`BatchError`
    for a missing INPUT or when nothing is found."""
    exclude = exclude.resolve() if exclude is not None else None
    entries: list[tuple[Path, Path | None, str | None]] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            looped = _file_problem(p) == "symlink loop"
            raise BatchError(f"{p}: {'symlink loop' if looped else 'no such file or directory'}")
        if p.is_dir():
            entries.extend((f, None, None) for f in _walk(p.resolve(), exclude))
        elif p.suffix.lower() == ".csv":
            entries.extend(read_manifest(p))
        else:
            entries.append((p, None, None))
    seen: dict[Path, tuple[Path, Path | None, str | None]] = {}
    for media, transcript, given in entries:
        seen.setdefault(_resolved(media), (media, transcript, given))
    if not seen:
        raise BatchError(
            "no inputs found (media extensions: " + " ".join(sorted(MEDIA_EXTENSIONS)) + ")"
        )
    named = []
    for p, (media, t, g) in seen.items():
        if _file_problem(p):  # named as found: a broken link's target is nowhere to be seen
            p = Path(os.path.abspath(media))
        named.append((p, t, _safe_id(g) if g else _safe_id(p.stem), g))
    counts: dict[str, int] = {}
    for _, _, base, _ in named:
        counts[base.lower()] = counts.get(base.lower(), 0) + 1
    items, used = [], set()
    for p, t, base, given in named:
        vid = base
        if counts[base.lower()] > 1:
            if given:
                raise BatchError(f"duplicate id {given!r} in the manifest")
            vid = f"{base}-{hashlib.sha256(str(p).encode()).hexdigest()[:8]}"
        if vid.lower() in used:
            raise BatchError(f"duplicate id {vid!r}")
        used.add(vid.lower())
        error = _file_problem(p)
        if error is None and t is not None and (problem := _file_problem(t)):
            error = f"transcript {t.name}: {problem}"
        items.append(BatchItem(vid, p, _resolved(t) if t else None, error))
    return sorted(items, key=lambda i: i.id)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise BatchError(f"--shard must be i/n with 0 <= i < n, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def select_shard(items: Sequence[BatchItem], index: int, count: int) -> list[BatchItem]:
    """The items whose id hashes (sha256, stable across machines and runs) to ``index``."""
    return [
        i for i in items if int(hashlib.sha256(i.id.encode()).hexdigest()[:16], 16) % count == index
    ]
