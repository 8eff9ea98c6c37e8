"""A Triton model repository written from the verified model store, and its check.

:func:`write_repository` gives every ONNX model the analyzer runs through its inference
backend (``fer_emotion``, ``minilm`` and the fusion graph) a folder ``<name>/`` holding
``1/model.onnx`` (a copy of the store's file, sha256 checked) and a ``config.pbtxt`` whose
inputs and outputs come from the ONNX signature. Production repositories use Triton's
``onnxruntime_onnx`` platform; ``python_backend=True`` wraps the same files in
:mod:`ahmer.models.triton.python_model` instead, for the ``tritonserver`` of the
``nvidia-pytriton`` wheel, which has only the python backend (tests, developers).

Each config carries the parameters ``ahmer_sha256`` (the ONNX file's sha256) and
``ahmer_version`` (the store's version of the model), and ``ahmer_repo.json`` at the top
records them all with the options the repository was written with, so
:func:`check_repository` (and the Triton client when it loads a model) can tell a repository
that no longer matches the store. The repository is staged beside ``out`` and renamed into
place, and an ``out`` that holds anything but an earlier repository is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from ahmer.models.contract import FER_MODEL, FUSION_MODEL, TEXT_MODEL, TensorSpec
from ahmer.models.store.model_store import (
    ModelStore,
    ModelStoreError,
    _onnx_signature,
    sha256_file,
    sha256_tree,
)
from ahmer.preprocessing.errors import Internal

__all__ = [
    "DEFAULT_MAX_QUEUE_DELAY_US",
    "KINDS",
    "MAX_BATCH_SIZE",
    "PREFERRED_BATCH_SIZES",
    "REPO_MANIFEST",
    "REPO_SCHEMA",
    "RepoModel",
    "RepoReport",
    "TritonRepoError",
    "check_repository",
    "model_config_text",
    "read_repository",
    "write_repository",
]

REPO_SCHEMA = "ahmer.triton-repo/1"
REPO_MANIFEST = "ahmer_repo.json"
KINDS = ("cpu", "gpu")
BACKEND_MODELS = (FER_MODEL, TEXT_MODEL)
"""The store's ONNX models the analyzer runs through its backend, besides the fusion graph."""

MAX_BATCH_SIZE = 64
"""Largest batch Triton forms (and accepts in one request): the encoders send at most 64 face
crops (GPU default) or 32 texts per call."""

PREFERRED_BATCH_SIZES = (8, 16, 32)
DEFAULT_MAX_QUEUE_DELAY_US = 1000
"""How long the batcher holds a request for others to join. Measured with the local Triton
(``bench/triton_batching.py``, bench/README.md): with 32 live-paced callers (15 fps each) 1 ms
formed batches of 2.0 on average against 1.5 with no delay, at no measurable cost in median
latency; 2-5 ms formed larger batches but added their delay to every frame of a lone stream.
A millisecond is nothing against a live frame's budget (first result p95 < 150 ms)."""

_DTYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
}
_PY_MODEL = Path(__file__).with_name("python_model.py")

Progress = Callable[[str], None]


class TritonRepoError(Internal, RuntimeError):
    """The repository cannot be written where asked, or from what was given; says the fix."""


class FusionLike(Protocol):
    """What the repository needs of a fusion (``models.fusions.FusionRef`` fits)."""

    name: str
    path: Path
    sha256: str
    version: str


@dataclass(frozen=True)
class RepoModel:
    """One model of the repository, as recorded in ``ahmer_repo.json``."""

    name: str
    version: str
    sha256: str
    store_sha256: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    model_py_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepoModel:
        def specs(items: Sequence[dict[str, Any]]) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in items)

        data = dict(data)
        data["inputs"], data["outputs"] = specs(data["inputs"]), specs(data["outputs"])
        return cls(**data)


@dataclass(frozen=True)
class RepoReport:
    """What :func:`write_repository` wrote (also the content of ``ahmer_repo.json``)."""

    out: Path
    kind: str
    python_backend: bool
    tensorrt_fp16: bool
    max_queue_delay_us: int
    models: tuple[RepoModel, ...]
    fusion: str
    store: str
    ahmer_version: str = ""
    schema: str = REPO_SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def model(self, name: str) -> RepoModel:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_json(self) -> str:
        body = asdict(self)
        body.pop("out")
        body["models"] = [m.to_dict() for m in self.models]
        return json.dumps(body, indent=2) + "\n"


@dataclass(frozen=True)
class _Source:
    name: str
    onnx: Path
    version: str
    sha256: str  # of the ONNX file
    store_sha256: str  # the store's (or fusion's) record


def _batchable(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> bool:
    """True when every input and output starts with the same named dynamic axis."""
    firsts = {t.shape[0] if t.shape else 1 for t in (*inputs, *outputs)}
    return len(firsts) == 1 and isinstance(next(iter(firsts)), str)


def _dims(spec: TensorSpec, batched: bool) -> str:
    shape = spec.shape[1:] if batched else spec.shape
    dims = [str(d) if isinstance(d, int) and d >= 0 else "-1" for d in shape]
    return ", ".join(dims) if dims else ""


def _tensor_block(kind: str, specs: Sequence[TensorSpec], batched: bool) -> list[str]:
    lines = [f"{kind} ["]
    for i, spec in enumerate(specs):
        dtype = _DTYPES.get(spec.dtype)
        if dtype is None:
            raise TritonRepoError(f"{kind} {spec.name!r} has dtype {spec.dtype}, unknown to Triton")
        dims = _dims(spec, batched)
        if not dims:  # a scalar: Triton wants dims [1] and a reshape to []
            dims, reshape = "1", "\n    reshape { shape: [ ] }"
        else:
            reshape = ""
        comma = "," if i < len(specs) - 1 else ""
        lines.append(
            f'  {{\n    name: "{spec.name}"\n    data_type: {dtype}\n    dims: [ {dims} ]'
            f"{reshape}\n  }}{comma}"
        )
    lines.append("]")
    return lines


def model_config_text(
    name: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    version: str,
    sha256: str,
    kind: str = "cpu",
    python_backend: bool = False,
    tensorrt_fp16: bool = False,
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    instances: int = 1,
) -> str:
    """The ``config.pbtxt`` of one model (protobuf text of Triton's ``ModelConfig``)."""
    batched = _batchable(inputs, outputs)
    lines = [
        f"# {name} {version}: written by `ahmer models triton-repo` from the ahmer model store.",
        f'name: "{name}"',
        'backend: "python"' if python_backend else 'platform: "onnxruntime_onnx"',
    ]
    if batched:
        lines.append(f"max_batch_size: {MAX_BATCH_SIZE}")
    else:
        lines += [
            "# No batch axis shared by all inputs and outputs (the fusion graph's fps [1] has",
            "# none, and its clips differ in length T), so Triton must not add one: the batch",
            "# lives inside the dims and requests run one by one on parallel instances.",
            "max_batch_size: 0",
        ]
    lines += _tensor_block("input", inputs, batched)
    lines += _tensor_block("output", outputs, batched)
    if batched:
        preferred = ", ".join(str(b) for b in PREFERRED_BATCH_SIZES)
        lines += [
            "dynamic_batching {",
            f"  preferred_batch_size: [ {preferred} ]",
            f"  max_queue_delay_microseconds: {int(max_queue_delay_us)}",
            "}",
        ]
    group_kind = "KIND_GPU" if kind == "gpu" else "KIND_CPU"
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {group_kind}\n  }}\n]")
    if tensorrt_fp16:
        lines += [
            "optimization {",
            "  execution_accelerators {",
            "    gpu_execution_accelerator: [",
            "      {",
            '        name: "tensorrt"',
            '        parameters { key: "precision_mode" value: "FP16" }',
            "      }",
            "    ]",
            "  }",
            "}",
        ]
    params = {"ahmer_sha256": sha256, "ahmer_version": version}
    if python_backend:
        params["intra_op_threads"] = "1"
    for key, value in params.items():
        lines.append(f'parameters {{\n  key: "{key}"\n  value {{ string_value: "{value}" }}\n}}')
    return "\n".join(lines) + "\n"


def _store_sources(store: ModelStore, fusion: FusionLike | None) -> list[_Source]:
    """The ONNX files to serve, each verified: store models by the manifest, the fusion by its
    recorded sha256."""
    manifest = store.manifest()
    sources = []
    for name in BACKEND_MODELS if fusion is not None else (*BACKEND_MODELS, FUSION_MODEL):
        path = store.path(name)  # checked against the manifest's sha256 (else ModelStoreError)
        onnx = path if path.is_file() else path / "model.onnx"
        entry = manifest[name]
        sources.append(_Source(name, onnx, entry.version, sha256_file(onnx), entry.sha256))
    if fusion is not None:
        path = Path(fusion.path)
        onnx = path if path.is_file() else path / "model.onnx"
        if not onnx.is_file():
            raise TritonRepoError(f"fusion {fusion.name!r}: no ONNX file at {onnx}")
        found = sha256_file(onnx)
        if fusion.sha256 not in (found, sha256_tree(path) if path.is_dir() else found):
            raise TritonRepoError(
                f"fusion {fusion.name!r}: {onnx} has sha256 {found[:12]}, recorded "
                f"{fusion.sha256[:12]}: the fusion changed since it was installed; install it again"
            )
        sources.append(_Source(fusion.name, onnx, fusion.version, found, fusion.sha256))
    return sources


def _ahmer_version() -> str:
    try:
        return metadata.version("ahmer")
    except metadata.PackageNotFoundError:
        return ""


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that holds anything but an earlier repository (or nothing)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise TritonRepoError(f"{out} exists and is not a folder; choose another OUT")
    if out.is_dir() and any(out.iterdir()) and not (out / REPO_MANIFEST).is_file():
        raise TritonRepoError(
            f"{out} is not empty and holds no {REPO_MANIFEST} (not a repository written by "
            "ahmer): refusing to replace it; choose an empty or new folder"
        )


def write_repository(
    store: ModelStore,
    out: Path,
    kind: str = "cpu",
    python_backend: bool = False,
    tensorrt_fp16: bool = False,
    fusion: FusionLike | None = None,
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    instances: int = 1,
    progress: Progress | None = None,
) -> RepoReport:
    """Write the Triton model repository for ``store`` at ``out`` and return what it holds.

    ``kind`` picks the instance groups (``KIND_CPU``/``KIND_GPU``); ``tensorrt_fp16`` adds
    the TensorRT accelerator in fp16 (GPU, ``onnxruntime_onnx`` only); ``fusion`` serves that
    fusion (a ``FusionRef``) instead of the store's zero-shot prior. Every ONNX file is
    verified first; the repository is staged next to ``out`` and renamed into place, so a
    reader sees the old repository or the new one, never a part.
    """
    say = progress or (lambda _msg: None)
    if kind not in KINDS:
        raise TritonRepoError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if tensorrt_fp16 and kind != "gpu":
        raise TritonRepoError("--tensorrt-fp16 needs --kind gpu (TensorRT runs on GPUs only)")
    if tensorrt_fp16 and python_backend:
        raise TritonRepoError(
            "--tensorrt-fp16 applies to the onnxruntime_onnx platform, not --python-backend"
        )
    if isinstance(max_queue_delay_us, bool) or not 0 <= int(max_queue_delay_us) <= 10_000_000:
        raise TritonRepoError(f"max queue delay must be 0..10000000 us, got {max_queue_delay_us}")
    if isinstance(instances, bool) or not 1 <= int(instances) <= 64:
        raise TritonRepoError(f"instances must be 1..64, got {instances}")
    out = Path(out).absolute()
    _check_out(out)
    try:
        sources = _store_sources(store, fusion)
    except ModelStoreError as exc:
        raise TritonRepoError(str(exc)) from exc
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise TritonRepoError(f"two models share a name in {names}: rename the fusion")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as exc:
        raise TritonRepoError(f"cannot write under {out.parent}: {exc}") from exc
    try:
        staged.chmod(0o755)
        models = []
        for src in sources:
            say(f"{src.name}: {src.version} ({src.sha256[:12]})")
            models.append(
                _write_model(
                    staged,
                    src,
                    kind,
                    python_backend,
                    tensorrt_fp16,
                    int(max_queue_delay_us),
                    int(instances),
                )
            )
        report = RepoReport(
            out=out,
            kind=kind,
            python_backend=python_backend,
            tensorrt_fp16=tensorrt_fp16,
            max_queue_delay_us=int(max_queue_delay_us),
            models=tuple(models),
            fusion=sources[-1].name,
            store=str(store.root),
            ahmer_version=_ahmer_version(),
        )
        (staged / REPO_MANIFEST).write_text(report.to_json(), encoding="utf-8")
        _check_out(out)  # again: something may have appeared meanwhile
        _swap_in(staged, out)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise TritonRepoError(f"cannot write the repository at {out}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return report


def _write_model(
    root: Path,
    src: _Source,
    kind: str,
    python_backend: bool,
    tensorrt_fp16: bool,
    max_queue_delay_us: int,
    instances: int,
) -> RepoModel:
    folder = root / src.name / "1"
    folder.mkdir(parents=True)
    (root / src.name).chmod(0o755)
    folder.chmod(0o755)
    target = folder / "model.onnx"
    shutil.copyfile(src.onnx, target)
    copied = sha256_file(target)
    if copied != src.sha256:
        raise TritonRepoError(f"{src.name}: the copy of {src.onnx} differs from it (disk error?)")
    inputs, outputs = _onnx_signature(target)
    py_sha = ""
    if python_backend:
        shutil.copyfile(_PY_MODEL, folder / "model.py")
        py_sha = sha256_file(folder / "model.py")
    text = model_config_text(
        src.name,
        inputs,
        outputs,
        version=src.version,
        sha256=src.sha256,
        kind=kind,
        python_backend=python_backend,
        tensorrt_fp16=tensorrt_fp16,
        max_queue_delay_us=max_queue_delay_us,
        instances=instances,
    )
    (root / src.name / "config.pbtxt").write_text(text, encoding="utf-8")
    return RepoModel(
        name=src.name,
        version=src.version,
        sha256=src.sha256,
        store_sha256=src.store_sha256,
        max_batch_size=MAX_BATCH_SIZE if _batchable(inputs, outputs) else 0,
        inputs=inputs,
        outputs=outputs,
        model_py_sha256=py_sha,
    )


def _swap_in(staged: Path, out: Path) -> None:
    """Rename ``staged`` to ``out``; an earlier repository there is moved aside first.

    When ``out`` cannot be renamed (a mount point, e.g. a Kubernetes volume), its entries
    are replaced one by one instead, ``ahmer_repo.json`` last."""
    if not out.exists():
        os.replace(staged, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    try:
        os.replace(out, old / "repo")
    except OSError:
        shutil.rmtree(old, ignore_errors=True)
        _swap_entries(staged, out)
        return
    os.replace(staged, out)
    shutil.rmtree(old, ignore_errors=True)


def _swap_entries(staged: Path, out: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (out / REPO_MANIFEST).unlink()
    for item in sorted(out.iterdir()):
        shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    for item in sorted(staged.iterdir(), key=lambda p: p.name == REPO_MANIFEST):
        shutil.move(str(item), str(out / item.name))
    staged.rmdir()


def read_repository(out: Path) -> RepoReport:
    """The record ``ahmer_repo.json`` of the repository at ``out``."""
    out = Path(out)
    path = out / REPO_MANIFEST
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TritonRepoError(
            f"{out} is not an ahmer Triton repository (no {REPO_MANIFEST})"
        ) from None
    except (OSError, ValueError) as exc:
        raise TritonRepoError(f"cannot read {path}: {exc}") from exc
    if not isinstance(body, dict) or body.get("schema") != REPO_SCHEMA:
        found = body.get("schema") if isinstance(body, dict) else None
        raise TritonRepoError(f"{path}: schema {found!r}, expected {REPO_SCHEMA!r}")
    try:
        body["models"] = tuple(RepoModel.from_dict(m) for m in body["models"])
        return RepoReport(out=out, **body)
    except (KeyError, TypeError, ValueError) as exc:
        raise TritonRepoError(f"{path} is malformed ({exc}); write the repository again") from exc


def check_repository(store: ModelStore, out: Path, fusion: FusionLike | None = None) -> list[str]:
    """What differs between the repository at ``out`` and ``store`` (empty when it matches).

    Checks each recorded model's files (``model.onnx``, ``model.py``) against the record,
    each ``config.pbtxt``'s ``ahmer_sha256``/``ahmer_version`` parameters against the record,
    and the record against the store's models (and ``fusion``, when given, else the store's
    zero-shot prior when that is the repository's fusion).
    """
    try:
        report = read_repository(out)
    except TritonRepoError as exc:
        return [str(exc)]
    problems: list[str] = []
    out = Path(out)
    try:
        expected = {s.name: s for s in _expected_sources(store, report, fusion)}
    except (ModelStoreError, TritonRepoError) as exc:
        return [f"cannot verify against the store: {exc}"]
    recorded = {m.name: m for m in report.models}
    for name in expected:
        if name not in recorded:
            problems.append(f"{name}: missing from the repository")
    for name, model in recorded.items():
        problems += _check_model(out, model, report.python_backend)
        src = expected.get(name)
        if src is None:
            continue
        if model.sha256 != src.sha256:
            problems.append(
                f"{name}: repository has sha256 {model.sha256[:12]}, the store has "
                f"{src.sha256[:12]}"
            )
        if model.version != src.version:
            problems.append(f"{name}: repository has {model.version}, the store has {src.version}")
    return problems


def _expected_sources(
    store: ModelStore, report: RepoReport, fusion: FusionLike | None
) -> list[_Source]:
    if fusion is None and report.fusion != FUSION_MODEL:
        try:
            from ahmer.models.fusion.registry import resolve_fusion  # type: ignore[attr-defined]
        except ImportError:
            return _store_sources(store, None)[: len(BACKEND_MODELS)]
        fusion = resolve_fusion(store, report.fusion)
    return _store_sources(store, fusion)


def _check_model(out: Path, model: RepoModel, python_backend: bool) -> list[str]:
    folder = out / model.name
    problems = []
    onnx = folder / "1" / "model.onnx"
    found = sha256_file(onnx) if onnx.is_file() else "missing"
    if found != model.sha256:
        problems.append(
            f"{model.name}: 1/model.onnx has sha256 {found[:12]}, recorded {model.sha256[:12]}"
        )
    if python_backend:
        py = folder / "1" / "model.py"
        found = sha256_file(py) if py.is_file() else "missing"
        if found != model.model_py_sha256:
            problems.append(f"{model.name}: 1/model.py differs from the one written")
    params = _config_parameters(folder / "config.pbtxt")
    if params is None:
        problems.append(f"{model.name}: config.pbtxt is missing or unreadable")
    else:
        for key, want in (("ahmer_sha256", model.sha256), ("ahmer_version", model.version)):
            if params.get(key) != want:
                problems.append(
                    f"{model.name}: config.pbtxt parameter {key} is {params.get(key)!r}, "
                    f"recorded {want!r}"
                )
    return problems


def _config_parameters(path: Path) -> dict[str, str] | None:
    """The string parameters of a ``config.pbtxt``, parsed as Triton's ``ModelConfig`` (None
    when it cannot be read or parsed)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise TritonRepoError(
            f"checking a repository parses its configs with tritonclient ({exc.name} is "
            "missing): pip install 'ahmer[triton]'"
        ) from exc
    try:
        config = text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())
    except (OSError, text_format.ParseError):
        return None
    return {k: v.string_value for k, v in config.parameters.items()}
