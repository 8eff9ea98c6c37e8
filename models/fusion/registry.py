"""Trained and installed A/H fusions: which fusion graph a run uses, and installing one.

A fusion is any ONNX graph with the fusion contract (:data:`FUSION_CONTRACT`, the inputs and
outputs of :mod:`ahmer.models.fusion.graph`). Three kinds are resolved by :func:`resolve_fusion`:

- ``""`` (or the store name ``ah_fusion_zeroshot``): the store's zero-shot cue prior;
- an earlier prior version by its weights id (``ahmer-ah-zeroshot@2``), built from the
  store's MiniLM into ``<store root>/priors/`` on first use (for comparisons);
- an installed name: ``<store root>/fusions/<name>/`` as written by :func:`install_fusion`
  (``ahmer models add-fusion RUN``): ``fusion.onnx``, its model card ``card.json`` (+
  ``card.md``) and ``install.json`` recording the graph's sha256, checked on every process's
  first use, like the store's own artifacts;
- a path: a ``.onnx`` file, or a training run folder (``ahmer train --out RUN``) holding
  ``fusion.onnx`` and ``card.json``; its sha256 is computed.

Every fusion that is not the store's prior passes :func:`check_fusion_graph` (contract
metadata, the same inputs and outputs as this ahmer's fusion graph, one run on a small input)
before it is used, and a model card must describe the very graph it sits beside (the card
records the graph's sha256). The fusion's :attr:`FusionRef.name` is its model name in the
inference backend (and in Triton), and names it in results' ``models`` and ``GetModels``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ahmer.models.contract import DEFAULT_FPS, FUSION_CONTRACT, FUSION_MODEL, TEXT_MODEL, TensorSpec
from ahmer.models.store.model_store import ModelStore, ModelStoreError, graph_signature, sha256_file

__all__ = [
    "CARD_FILE",
    "FUSIONS_DIR",
    "GRAPH_FILE",
    "FusionError",
    "FusionRef",
    "check_fusion_graph",
    "fusion_notice",
    "install_fusion",
    "installed_fusions",
    "recheck_fusion",
    "resolve_fusion",
]

FUSIONS_DIR = "fusions"  # under the store root
GRAPH_FILE = "fusion.onnx"  # in a training run folder and an installed fusion's folder
CARD_FILE = "card.json"
CARD_MD = "card.md"
INSTALL_FILE = "install.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESERVED = {"fusion", "fusions"}


class FusionError(ModelStoreError):
    """A fusion that cannot be used or installed; the message names it and says why."""


@dataclass(frozen=True)
class FusionRef:
    """The fusion graph a run uses. ``name`` is its model name (backend, Triton, results'
    ``models``); ``version`` what results report for it; ``card`` the model card of a
    trained fusion (None for the prior or a bare graph); ``trained``: not the store's prior."""

    name: str
    path: Path
    sha256: str
    version: str
    card: dict | None
    trained: bool


# -- checks ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _contract_signature() -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The inputs and outputs of this ahmer's fusion graph (built with neutral weights)."""
    from ahmer.models.contract import EMBED_DIM
    from ahmer.models.fusion.graph import FEATURE_NAMES, FusionWeights, build_fusion_model

    neutral = FusionWeights(
        weights_id="contract",
        bias=0.0,
        contrib_weights=dict.fromkeys(FEATURE_NAMES, 0.0),
        anchors=np.zeros((EMBED_DIM, 4), np.float32),
    )
    return graph_signature(build_fusion_model(neutral).graph)


def _probe_feed(inputs: tuple[TensorSpec, ...], frames: int = 12) -> dict[str, np.ndarray]:
    """A small valid input: one clip of ``frames`` frames at 5 fps, nothing detected."""
    feed = {}
    for spec in inputs:
        shape = [1 if d == "B" else frames if d == "T" else d for d in spec.shape]
        shape = [1 if not isinstance(d, int) else d for d in shape]
        feed[spec.name] = np.zeros(shape, np.dtype(spec.dtype))
    feed["valid"] = np.ones_like(feed["valid"])
    feed["fps"] = np.full_like(feed["fps"], DEFAULT_FPS)
    return feed


def check_fusion_graph(path: Path) -> dict[str, str]:
    """Check that ``path`` is a fusion graph this ahmer can run: a readable ONNX model whose
    metadata names :data:`FUSION_CONTRACT`, with exactly the fusion graph's inputs and
    outputs (names, types, shapes), that ONNX Runtime runs on a small input giving finite
    outputs of the contract's shapes. Returns its metadata; raises :class:`FusionError`."""
    return _read_checked(Path(path))[0]


def _read_checked(path: Path) -> tuple[dict[str, str], str]:
    """:func:`check_fusion_graph` and the graph's sha256, from one read of the file: the
    bytes are parsed, run and hashed in memory (the file could change between reads)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FusionError(f"{path}: cannot read it ({exc})") from exc
    return _check_graph_bytes(data, path), hashlib.sha256(data).hexdigest()


def _check_graph_bytes(data: bytes, path: Path) -> dict[str, str]:
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise FusionError(f"{path}: not a readable ONNX model ({exc})") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    contract = meta.get("contract", "")
    if contract != FUSION_CONTRACT:
        found = f"contract {contract!r}" if contract else "no contract in its metadata"
        raise FusionError(
            f"{path}: a fusion graph must have contract {FUSION_CONTRACT!r}, this one has {found}"
        )
    want_in, want_out = _contract_signature()
    have_in, have_out = graph_signature(model.graph)
    for kind, have, want in (("inputs", have_in, want_in), ("outputs", have_out, want_out)):
        if have != want:
            diff = sorted({str(s) for s in have} ^ {str(s) for s in want})
            raise FusionError(
                f"{path}: its {kind} differ from the fusion contract {FUSION_CONTRACT} "
                f"(expected {'; '.join(map(str, want))}; differing: {'; '.join(diff)})"
            )
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        feed = _probe_feed(want_in)
        outputs = session.run(None, feed)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise FusionError(f"{path}: ONNX Runtime cannot run it ({exc})") from exc
    frames = feed["valid"].shape[1]
    for spec, value in zip(want_out, outputs, strict=True):
        shape = tuple(1 if d == "B" else frames if d == "T" else d for d in spec.shape)
        if value.shape != shape or not np.isfinite(value).all():
            raise FusionError(
                f"{path}: output {spec.name!r} on a {frames}-frame probe is "
                f"{'not finite' if value.shape == shape else f'shaped {value.shape}'}"
            )
    return meta


def _read_card(folder: Path, graph_sha: str) -> dict | None:
    path = folder / CARD_FILE
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FusionError(f"{path}: not a readable model card ({exc})") from exc
    if not isinstance(card, dict):
        raise FusionError(f"{path}: a model card must be a JSON object")
    if card.get("sha256") != graph_sha:
        raise FusionError(
            f"{path} describes another graph (its sha256 {str(card.get('sha256'))[:12]}, "
            f"{GRAPH_FILE} has {graph_sha[:12]}): keep a run's card with its own graph"
        )
    return card


def _version(meta: dict[str, str], sha: str) -> str:
    return f"{meta.get('weights_id', 'fusion')}#{sha[:12]}"


def _checked_name(name: str) -> str:
    from ahmer.models.store.sources import ARTIFACTS

    if not _NAME.match(name):
        raise FusionError(
            f"fusion name {name!r} must be 1-64 letters, digits, '_', '.' or '-', starting with "
            "a letter or digit"
        )
    if name in ARTIFACTS or name in _RESERVED:
        raise FusionError(f"fusion name {name!r} is taken by the model store; choose another")
    return name


def _default_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:64]
    return name or "fusion"


# -- installed fusions ------------------------------------------------------------------------

_verified: set[tuple[str, str]] = set()
_verified_lock = threading.Lock()


def _fusions_root(store: ModelStore) -> Path:
    return store.root / FUSIONS_DIR


def installed_fusions(store: ModelStore) -> dict[str, dict]:
    """The installed fusions' ``install.json`` records by name (unreadable ones skipped)."""
    root = _fusions_root(store)
    found: dict[str, dict] = {}
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        record = folder / INSTALL_FILE
        if folder.name.startswith(".") or not record.is_file():
            continue
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == folder.name:
            found[folder.name] = data
    return found


def fusion_status(store: ModelStore, name: str) -> str:
    """'ok', or 'corrupt' when the installed graph no longer matches its recorded sha256."""
    record = installed_fusions(store).get(name)
    if record is None:
        return "missing"
    path = _fusions_root(store) / name / GRAPH_FILE
    try:
        return "ok" if sha256_file(path) == record.get("sha256") else "corrupt"
    except OSError:
        return "corrupt"


def install_fusion(
    store: ModelStore, source: Path, name: str | None = None, replace: bool = False
) -> FusionRef:
    """Install the training run folder ``source`` (its ``fusion.onnx`` and ``card.json``)
    into the store as ``fusions/<name>/`` after :func:`check_fusion_graph`. ``name``
    defaults to the card's name, else the folder's. An installed name is refused unless
    ``replace``. The folder is written aside and renamed into place."""
    source = Path(source)
    folder = source.parent if source.is_file() else source
    graph = source if source.is_file() else source / GRAPH_FILE
    if not graph.is_file():
        raise FusionError(f"{source}: no {GRAPH_FILE} there (a run folder of `ahmer train`)")
    meta, sha = _read_checked(graph)
    card = _read_card(folder, sha)
    if card is None:
        raise FusionError(
            f"{folder}: no {CARD_FILE} beside {graph.name}; add-fusion installs a trained run "
            "with its model card (use --fusion PATH to try a bare graph)"
        )
    name = _checked_name(name or card.get("name") or _default_name(folder.name))
    root = _fusions_root(store)
    final = root / name
    if final.exists() and not replace:
        raise FusionError(f"a fusion named {name!r} is installed already (--force replaces it)")
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{name}-"))
    try:
        staged.chmod(0o755)
        shutil.copyfile(graph, staged / GRAPH_FILE)
        if sha256_file(staged / GRAPH_FILE) != sha:
            raise FusionError(f"{graph} changed while it was being installed")
        shutil.copyfile(folder / CARD_FILE, staged / CARD_FILE)
        if (folder / CARD_MD).is_file():
            shutil.copyfile(folder / CARD_MD, staged / CARD_MD)
        record = {
            "name": name,
            "sha256": sha,
            "version": _version(meta, sha),
            "contract": meta["contract"],
            "weights_id": meta.get("weights_id", ""),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": folder.name,
        }
        (staged / INSTALL_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=root, prefix=f".old-{name}-")) / name
            os.replace(final, old)
        os.replace(staged, final)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    with _verified_lock:
        _verified.add((str((final / GRAPH_FILE).resolve()), sha))
    return FusionRef(name, final / GRAPH_FILE, sha, record["version"], card, True)


# -- resolving --------------------------------------------------------------------------------


def _prior(store: ModelStore) -> FusionRef:
    path = store.path(FUSION_MODEL)
    entry = store.manifest()[FUSION_MODEL]
    return FusionRef(FUSION_MODEL, path, entry.sha256, entry.version, None, False)


PRIORS_DIR = "priors"  # under the store root: earlier prior versions, built on first use
_prior_lock = threading.Lock()


def _prior_version(store: ModelStore, version: str) -> FusionRef:
    """An earlier prior version (``ahmer-ah-zeroshot@2``) under this contract, built from the
    store's MiniLM into ``<store>/priors/`` on first use, so runs can compare it with the
    current prior on the same features."""
    from ahmer.models.fusion.export import build_zeroshot

    folder = store.root / PRIORS_DIR
    path = folder / f"{version}.{FUSION_CONTRACT.replace('/', '-')}.onnx"
    with _prior_lock:
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            os.close(fd)
            try:
                build_zeroshot(store.path(TEXT_MODEL), Path(tmp), version)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    sha = sha256_file(path)
    name = "ah_fusion_" + version.replace("ahmer-ah-", "").replace("@", "_v")
    return FusionRef(name, path, sha, f"{version}#{sha[:12]}", None, False)


def _installed(store: ModelStore, name: str, record: dict) -> FusionRef:
    path = _fusions_root(store) / name / GRAPH_FILE
    sha = str(record.get("sha256", ""))
    key = (str(path.resolve()), sha)
    with _verified_lock:
        known = key in _verified
    if not known:
        try:
            found = sha256_file(path)
        except OSError as exc:
            raise FusionError(f"installed fusion {name!r}: cannot read {path} ({exc})") from exc
        if found != sha:
            raise FusionError(
                f"installed fusion {name!r} is corrupt (sha256 mismatch: recorded {sha[:12]}, "
                f"found {found[:12]}): install it again with `ahmer models add-fusion RUN "
                f"--name {name} --force`"
            )
        with _verified_lock:
            _verified.add(key)
    card = _read_card(path.parent, sha)
    return FusionRef(name, path, sha, str(record.get("version", "")), card, True)


def _from_path(spec: str) -> FusionRef:
    source = Path(spec).expanduser()
    graph = source / GRAPH_FILE if source.is_dir() else source
    if not graph.is_file():
        raise FusionError(f"fusion {spec!r}: a folder without {GRAPH_FILE}")
    meta, sha = _read_checked(graph)
    card = _read_card(graph.parent, sha)
    if card is not None and card.get("name"):
        name = str(card["name"])
    elif graph.name == GRAPH_FILE:
        name = graph.parent.resolve().name
    else:
        name = graph.stem
    name = _default_name(name)
    from ahmer.models.store.sources import ARTIFACTS

    if name in ARTIFACTS or name in _RESERVED:
        name = f"fusion_{name}"
    from ahmer.models.fusion.prior import WEIGHTS_ID

    trained = meta.get("weights_id") != WEIGHTS_ID
    return FusionRef(name, graph, sha, _version(meta, sha), card, trained)


def resolve_fusion(store: ModelStore, spec: str) -> FusionRef:
    """The fusion ``spec`` names: ``""`` (or ``ah_fusion_zeroshot``) the store's prior, an
    installed fusion's name, or a path to a fusion ``.onnx`` or a training run folder.
    Raises :class:`FusionError` (a :class:`ModelStoreError`) saying what is wrong."""
    from ahmer.models.fusion.prior import PRIOR_VERSIONS, WEIGHTS_ID

    spec = (spec or "").strip()
    if not spec or spec in (FUSION_MODEL, WEIGHTS_ID):
        return _prior(store)
    if spec in PRIOR_VERSIONS:
        return _prior_version(store, spec)
    installed = installed_fusions(store)
    if spec in installed:
        return _installed(store, spec, installed[spec])
    looks_like_path = os.sep in spec or spec.endswith(".onnx") or Path(spec).exists()
    if looks_like_path and Path(spec).expanduser().exists():
        return _from_path(spec)
    names = ", ".join(sorted(installed)) or "none"
    raise FusionError(
        f"fusion {spec!r} is neither an installed fusion (installed: {names}; see `ahmer models "
        "list`) nor an existing .onnx file or training run folder"
    )


def recheck_fusion(ref: FusionRef) -> str | None:
    """Hash a loaded fusion's graph again (a running server's periodic check: files can
    change under it); None when it still matches ``ref.sha256``, else what is wrong and the
    fix."""
    try:
        found = sha256_file(ref.path)
    except OSError as exc:
        found = f"unreadable ({exc})"
    if found == ref.sha256:
        return None
    return (
        f"fusion {ref.name!r} at {ref.path} is corrupt (sha256 mismatch: loaded "
        f"{ref.sha256[:12]}, found {found[:12]}): install it again (`ahmer models add-fusion "
        f"RUN --name {ref.name} --force`) and restart"
    )


def fusion_notice(ref: FusionRef) -> str | None:
    """The results' notice for ``ref``: None for the prior (results keep their default
    :data:`~ahmer.models.results.PRIOR_NOTICE`); for trained weights, the card's test
    metrics, or a warning that no card backs them."""
    from ahmer.models.results import trained_notice

    if not ref.trained:
        return None
    return trained_notice(ref.name, ref.card)
