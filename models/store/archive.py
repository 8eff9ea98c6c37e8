"""A verified archive of the model store: build the store once where the ``export`` extra
(torch) may be installed, then install it on machines where it may not.

An archive is a tar file (gzip-compressed when its name ends in ``.gz`` or ``.tgz``) whose
first member is :data:`INDEX`: the sha256 and size of every other member. Then come the
store's ``manifest.json`` and each artifact's files, and any extra folders the caller names
(the installed fusions). Nothing but regular files under those names is accepted.

:func:`unpack_store` never trusts the archive: it streams each member into a staging folder
inside the store while hashing it, refuses the whole archive at the first file whose sha256
or size differs from the index, checks every artifact against the manifest (each file's
sha256 and the artifact's own sha256) and against this ahmer's pins, and only then swaps the
artifacts into place and rewrites the manifest. A refused archive leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from ahmer.models.store.model_store import (
    MANIFEST,
    Manifest,
    ManifestEntry,
    ModelStore,
    ModelStoreError,
    _entry_matches,
    _listing_hash,
    _locked,
    _write_atomic,
    sha256_file,
)
from ahmer.models.store.sources import ARTIFACTS

__all__ = ["INDEX", "ARCHIVE_FORMAT", "ArchiveError", "ArchiveReport", "pack_store", "unpack_store"]

INDEX = "ahmer-store.json"
ARCHIVE_FORMAT = "ahmer.store-archive/1"
_CHUNK = 1 << 20
_MAX_INDEX = 16 << 20  # bytes: an index lists files, it is never this large

Progress = Callable[[str], None]


class ArchiveError(ModelStoreError):
    """An archive that cannot be written or is refused; the message says which file and why."""


@dataclass
class ArchiveReport:
    """What :func:`pack_store` wrote or :func:`unpack_store` installed."""

    path: Path
    artifacts: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)  # units of the extra folders
    files: int = 0
    bytes: int = 0


# -- packing ------------------------------------------------------------------------------------


def pack_store(
    store: ModelStore,
    out: Path,
    folders: Iterable[str] = (),
    progress: Progress | None = None,
) -> ArchiveReport:
    """Write every artifact of ``store`` (each verified first), its manifest, and each
    sub-folder of the store's ``folders`` (e.g. ``fusions``: one unit per sub-folder) into
    the tar ``out``, written aside and renamed into place."""
    say = progress or (lambda _msg: None)
    manifest = store.manifest()
    if not manifest.entries:
        raise ArchiveError(f"the model store at {store.root} is empty: run `ahmer models build`")
    units: dict[str, dict[str, dict]] = {}
    for name, entry in sorted(manifest.entries.items()):
        code, message = store._check(name, ARTIFACTS.get(name), entry)
        if code != "ok":
            raise ArchiveError(f"cannot pack a store that is not ready: {message}")
        units[_unit_of(entry)] = _listing(store.root / _unit_of(entry), entry)
    extras = []
    for folder in folders:
        base = store.root / folder
        for unit in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else ():
            if unit.name.startswith("."):
                continue
            rel = f"{folder}/{unit.name}"
            units[rel] = _listing(unit, None)
            extras.append(rel)
    manifest_bytes = (store.root / MANIFEST).read_bytes()
    index = {
        "format": ARCHIVE_FORMAT,
        "ahmer": _ahmer_version(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "manifest": {
            "sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            "size": len(manifest_bytes),
        },
        "units": units,
    }
    out = Path(out)
    mode = "w:gz" if out.name.endswith((".gz", ".tgz")) else "w"
    fd, tmp = tempfile.mkstemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    report = ArchiveReport(out, sorted(manifest.entries), extras)
    try:
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, INDEX, (json.dumps(index, indent=1) + "\n").encode())
            _add_bytes(tar, MANIFEST, manifest_bytes)
            for unit, files in units.items():
                say(f"packing {unit} ({len(files)} file(s))")
                for rel, info in files.items():
                    _add_file(tar, f"{unit}/{rel}", store.root / unit / rel, info)
                    report.files += 1
                    report.bytes += info["size"]
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArchiveError(f"cannot write {out}: {exc.strerror or exc}") from exc
        raise
    return report


def _unit_of(entry: ManifestEntry) -> str:
    """The folder of the store an artifact lives in (``fer_emotion/fer_emotion.onnx`` ->
    ``fer_emotion``)."""
    return PurePosixPath(entry.path).parts[0]


def _listing(folder: Path, entry: ManifestEntry | None) -> dict[str, dict]:
    """``{relative path: {"sha256", "size"}}`` of every file under ``folder``: the
    manifest's hashes for an artifact (just verified), computed for an extra folder."""
    found = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    listing = {}
    for path in found:
        rel = path.relative_to(folder).as_posix()
        digest = entry.files.get(rel) if entry is not None and entry.files else None
        listing[rel] = {"sha256": digest or sha256_file(path), "size": path.stat().st_size}
    if entry is not None and entry.files and set(entry.files) != set(listing):
        raise ArchiveError(
            f"{folder} holds other files than its manifest entry lists: run "
            f"`ahmer models build --only {entry.name} --force`"
        )
    return listing


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


class _Hashing:
    """A reader that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data


def _add_file(tar: tarfile.TarFile, name: str, path: Path, info: dict) -> None:
    """Add ``path`` as ``name``; it must still have the indexed size and sha256."""
    member = tarfile.TarInfo(name)
    member.size, member.mode = info["size"], 0o644
    member.mtime = int(path.stat().st_mtime)
    with open(path, "rb") as f:
        reader = _Hashing(f)
        tar.addfile(member, reader)
    if reader.size != info["size"] or reader.hash.hexdigest() != info["sha256"]:
        raise ArchiveError(f"{path} changed while it was packed: pack again")


def _ahmer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ahmer")
    except PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "unknown"


# -- unpacking ----------------------------------------------------------------------------------


def unpack_store(
    store: ModelStore, archive: Path, progress: Progress | None = None
) -> ArchiveReport:
    """Install the archive ``archive`` (of :func:`pack_store`) into ``store`` after verifying
    every file; raises :class:`ArchiveError` (the store untouched) when anything differs."""
    say = progress or (lambda _msg: None)
    archive = Path(archive)
    try:
        store.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot create the model store at {store.root}: {exc}") from exc
    report = ArchiveReport(archive)
    with _locked(store.root):
        staging = Path(tempfile.mkdtemp(dir=store.root, prefix=".tmp-unpack-"))
        try:
            index, manifest = _extract(archive, staging, say, report)
            artifacts = _check_manifest(archive, index, manifest)
            extras = [u for u in index["units"] if u not in artifacts.values()]
            _install(store, staging, index["units"], manifest, say)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report.artifacts, report.extras = sorted(artifacts), sorted(extras)
    return report


def _refuse(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(f"{archive}: refused, {why}; nothing was installed")


def _extract(
    archive: Path, staging: Path, say: Progress, report: ArchiveReport
) -> tuple[dict, Manifest]:
    """Stream the archive into ``staging``, each file checked against the index."""
    try:
        tar = tarfile.open(archive, "r|*")
    except (OSError, tarfile.TarError) as exc:
        raise _refuse(archive, f"not a readable tar archive ({exc})") from exc
    index: dict | None = None
    expected: dict[str, dict] = {}
    manifest_bytes = b""
    try:
        with tar:
            for member in tar:
                if index is None:
                    index = _read_index(archive, tar, member)
                    expected = _expected_files(archive, index)
                    continue
                if member.isdir():
                    continue
                info = expected.pop(member.name, None)
                if info is None:
                    raise _refuse(archive, f"{member.name!r} is not in its index")
                if not member.isfile():
                    raise _refuse(archive, f"{member.name!r} is not a regular file")
                if member.size != info["size"]:
                    raise _refuse(
                        archive, f"{member.name} is {member.size} bytes, indexed {info['size']}"
                    )
                data = _copy_checked(archive, tar, member, staging / member.name, info)
                if member.name == MANIFEST:
                    manifest_bytes = data
                else:
                    report.files += 1
                    report.bytes += member.size
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise _refuse(archive, f"the archive is damaged ({exc})") from exc
    if index is None:
        raise _refuse(archive, "it is empty")
    if expected:
        raise _refuse(
            archive, f"{len(expected)} indexed file(s) are missing, e.g. {next(iter(expected))}"
        )
    try:
        manifest = Manifest.from_json(manifest_bytes.decode("utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _refuse(archive, f"its {MANIFEST} is unreadable ({exc})") from exc
    say(f"verified {report.files} file(s), {report.bytes / 1e6:.1f} MB")
    return index, manifest


def _read_index(archive: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict:
    if member.name != INDEX or not member.isfile() or member.size > _MAX_INDEX:
        raise _refuse(archive, f"not an ahmer model store archive (no {INDEX} first)")
    raw = tar.extractfile(member)
    try:
        index = json.loads(raw.read() if raw is not None else b"")
    except ValueError as exc:
        raise _refuse(archive, f"its {INDEX} is unreadable ({exc})") from exc
    if not isinstance(index, dict) or index.get("format") != ARCHIVE_FORMAT:
        found = index.get("format") if isinstance(index, dict) else None
        raise _refuse(archive, f"archive format {found!r}, this ahmer reads {ARCHIVE_FORMAT!r}")
    return index


def _expected_files(archive: Path, index: dict) -> dict[str, dict]:
    """Every member the index announces, by archive name, with its sha256 and size; names
    that could leave the staging folder are refused."""
    try:
        expected = {MANIFEST: _file_info(index["manifest"])}
        for unit, files in index["units"].items():
            for rel, info in files.items():
                expected[f"{unit}/{rel}"] = _file_info(info)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _refuse(archive, f"its {INDEX} is of the wrong shape ({exc})") from exc
    for name in expected:
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or not parts or name != "/".join(parts):
            raise _refuse(archive, f"unsafe file name {name!r}")
    return expected


def _file_info(info: dict) -> dict:
    return {"sha256": str(info["sha256"]), "size": int(info["size"])}


def _copy_checked(
    archive: Path, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, info: dict
) -> bytes:
    """Write the member to ``target`` while hashing it; the manifest's bytes are returned."""
    src = tar.extractfile(member)
    if src is None:
        raise _refuse(archive, f"{member.name!r} is not a regular file")
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    keep = member.name == MANIFEST
    kept = bytearray()
    with open(target, "wb") as out:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
            if keep:
                kept += chunk
    os.chmod(target, 0o644)
    if h.hexdigest() != info["sha256"]:
        raise _refuse(
            archive,
            f"{member.name} does not match its sha256 (archive {info['sha256'][:12]}, found "
            f"{h.hexdigest()[:12]}): the archive was changed or damaged",
        )
    return bytes(kept)


def _check_manifest(archive: Path, index: dict, manifest: Manifest) -> dict[str, str]:
    """Each artifact of the manifest against the files the archive held (every file's
    sha256, the artifact's own sha256) and against this ahmer's pins; artifact -> unit."""
    units = index["units"]
    found = {}
    for name, entry in manifest.entries.items():
        unit = _unit_of(entry)
        files = {rel: info["sha256"] for rel, info in units.get(unit, {}).items()}
        if not files:
            raise _refuse(archive, f"model {name!r} is in its manifest but not in the archive")
        if entry.files and entry.files != files:
            raise _refuse(archive, f"the files of model {name!r} differ from its manifest")
        rel = PurePosixPath(entry.path).relative_to(unit).as_posix()
        digest = _listing_hash(files) if rel == "." else files.get(rel)
        if digest != entry.sha256:
            raise _refuse(archive, f"model {name!r} does not match its manifest's sha256")
        spec = ARTIFACTS.get(name)
        if spec is not None and not _entry_matches(entry, spec):
            raise _refuse(
                archive,
                f"model {name!r} is {entry.version} built from other pins than this ahmer's "
                f"({spec.version}): pack it with the same ahmer version that unpacks it",
            )
        found[name] = unit
    return found


def _install(
    store: ModelStore, staging: Path, units: dict, manifest: Manifest, say: Progress
) -> None:
    """Swap each verified unit into the store, then merge the manifest (the lock is held)."""
    for unit in units:
        final = store.root / unit
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists() or final.is_symlink():
            aside = tempfile.mkdtemp(dir=store.root, prefix=f".old-{unit.replace('/', '-')}-")
            old = Path(aside) / "unit"
            os.replace(final, old)
        (staging / unit).chmod(0o755)
        os.replace(staging / unit, final)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
        say(f"installed {unit}")
    try:
        current = store.manifest()
    except ModelStoreError:  # an unreadable manifest is replaced by the archive's
        current = Manifest()
    current.entries.update(manifest.entries)
    _write_atomic(store.root / MANIFEST, current.to_json())
