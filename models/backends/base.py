"""The one small interface every model runs through: load a named model, report its
signature, run a batch of named tensors.

Implementations: :class:`~ahmer.models.backends.ort.OnnxRuntimeBackend` (in-process, the
default) and :class:`~ahmer.models.backends.triton_client.TritonBackend` (a Triton Inference
Server). Callers get one from :func:`make_backend` and never depend on which it is; the same
ONNX files serve both.

:class:`InferenceBackend` owns the bookkeeping and the input checks, so every implementation
rejects bad input the same way (a :class:`BackendError` that names the tensor and the expected
spec) before anything reaches the runtime. An implementation provides ``_load``, ``_run``,
``_unload`` and ``describe``, and may override ``ready`` (a remote server that can go away).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ahmer.models.config import BACKENDS as BACKEND_KINDS
from ahmer.models.contract import TensorSpec
from ahmer.preprocessing.errors import Internal, Unavailable

__all__ = [
    "BACKEND_KINDS",
    "BackendError",
    "BackendUnavailable",
    "InferenceBackend",
    "Signature",
    "check_inputs",
    "check_outputs",
]


class BackendError(Internal):
    """A model could not be loaded or run, or was given inputs that do not fit it."""


class BackendUnavailable(BackendError, Unavailable):
    """The inference server is down or not answering (retries spent): a transient failure,
    unlike a bad input or a model that does not fit. The gRPC service answers UNAVAILABLE."""


@dataclass(frozen=True)
class Signature:
    """A model's inputs and outputs, plus the string metadata stored in the model file."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def input(self, name: str) -> TensorSpec:
        """The input called ``name`` (``KeyError`` if there is none)."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def output(self, name: str) -> TensorSpec:
        """The output called ``name`` (``KeyError`` if there is none)."""
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A metadata value of the model file, or ``default``."""
        return dict(self.metadata).get(key, default)


def check_inputs(
    model: str, signature: Signature, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Check ``inputs`` against ``signature``; return them as a plain dict.

    Raises :class:`BackendError` naming the tensor and its expected spec when an input is
    missing or unexpected, is not a numpy array, or has the wrong dtype, rank or a fixed axis
    of the wrong size, or when inputs disagree on the size of a named dynamic axis.
    """
    if not isinstance(inputs, Mapping):
        raise BackendError(
            f"model {model!r}: inputs must be a mapping of name to array, got "
            f"{type(inputs).__name__}"
        )
    expected = signature.input_names
    missing = [n for n in expected if n not in inputs]
    if missing:
        specs = "; ".join(str(signature.input(n)) for n in missing)
        raise BackendError(f"model {model!r}: missing input {missing[0]!r} (expected {specs})")
    extra = [n for n in inputs if n not in expected]
    if extra:
        raise BackendError(
            f"model {model!r}: unexpected input {extra[0]!r}; its inputs are "
            + "; ".join(str(s) for s in signature.inputs)
        )
    named: dict[str, tuple[int, str]] = {}
    feeds: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        value = inputs[spec.name]
        if not isinstance(value, np.ndarray):
            raise BackendError(
                f"model {model!r}: input {spec.name!r} must be a numpy array, got "
                f"{type(value).__name__} (expected {spec})"
            )
        if value.dtype.name != spec.dtype:
            raise BackendError(
                f"model {model!r}: input {spec.name!r} has dtype {value.dtype.name} "
                f"(expected {spec})"
            )
        if value.ndim != spec.rank:
            raise BackendError(
                f"model {model!r}: input {spec.name!r} has rank {value.ndim}, shape "
                f"{list(value.shape)} (expected {spec})"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, value.shape, strict=True)):
            if isinstance(want, int) and want >= 0 and got != want:
                raise BackendError(
                    f"model {model!r}: input {spec.name!r} has shape {list(value.shape)}, "
                    f"axis {axis} must be {want} (expected {spec})"
                )
            if isinstance(want, str):
                if want in named and named[want][0] != got:
                    size, first = named[want]
                    raise BackendError(
                        f"model {model!r}: input {spec.name!r} has {want}={got} on axis "
                        f"{axis} but input {first!r} has {want}={size} (expected {spec})"
                    )
                named.setdefault(want, (got, spec.name))
        feeds[spec.name] = value
    return feeds


def check_outputs(model: str, signature: Signature, outputs: Sequence[str] | None) -> list[str]:
    """The output names to fetch: all of them for ``None``, else ``outputs`` once checked."""
    if outputs is None:
        return list(signature.output_names)
    if isinstance(outputs, str):
        raise BackendError(f"model {model!r}: outputs must be a sequence of names, not a string")
    names = list(outputs)
    for name in names:
        if name not in signature.output_names:
            raise BackendError(
                f"model {model!r}: unknown output {name!r}; its outputs are "
                + "; ".join(str(s) for s in signature.outputs)
            )
    return names


class InferenceBackend(abc.ABC):
    """Loads named models and runs batches of named numpy tensors through them.

    All methods may be called from several threads at once: loading, unloading and closing
    are serialised by a lock, and ``run`` only reads the table of loaded models.
    Implementations provide:

    - ``_load(name, path) -> Signature`` (raise :class:`BackendError` on failure),
    - ``_run(name, feeds, outputs) -> dict`` with inputs already checked,
    - ``_unload(name)`` to free one model, and ``describe()``.
    """

    kind: str = "abstract"

    def __init__(self) -> None:
        self._signatures: dict[str, Signature] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.RLock()
        self._closed = False

    # -- the interface -------------------------------------------------------------------

    def load(self, name: str, path: Path) -> Signature:
        """Load the model file at ``path`` under ``name`` and return its signature.

        Loading a name again replaces the model it held."""
        if not isinstance(name, str) or not name:
            raise BackendError(f"model name must be a non-empty string, got {name!r}")
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"model {name!r}: no model file at {path}")
        with self._lock:
            if self._closed:
                raise BackendError(f"{self.kind} backend is closed")
            signature = self._load(name, path)
            self._signatures[name] = signature
            self._paths[name] = path
            return signature

    def signature(self, name: str) -> Signature:
        """The signature of the loaded model ``name``."""
        try:
            return self._signatures[name]
        except KeyError:
            raise BackendError(f"model {name!r} is not loaded") from None

    def run(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run model ``name`` on one batch; return the requested outputs (all by default)."""
        signature = self.signature(name)
        feeds = check_inputs(name, signature, inputs)
        wanted = check_outputs(name, signature, outputs)
        return self._run(name, feeds, wanted)

    def loaded(self) -> list[str]:
        """Names of the loaded models, sorted."""
        return sorted(self._signatures)

    def unload(self, name: str) -> None:
        """Free model ``name`` (a :class:`BackendError` if it is not loaded)."""
        with self._lock:
            self.signature(name)
            self._unload(name)
            del self._signatures[name], self._paths[name]

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What runs the models: ``kind``, ``device``, ``providers`` and backend details."""

    def ready(self) -> bool:
        """Whether the loaded models can run now. In-process backends always can; a remote
        one says whether its server answers (cheap: callers poll it every few seconds)."""
        return True

    def close(self) -> None:
        """Free every model; the backend then refuses to load or run. Safe to call twice."""
        with self._lock:
            for name in list(self._signatures):
                self.unload(name)
            self._closed = True

    def __enter__(self) -> InferenceBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for implementations -------------------------------------------------------------

    @abc.abstractmethod
    def _load(self, name: str, path: Path) -> Signature: ...

    @abc.abstractmethod
    def _run(
        self, name: str, feeds: dict[str, np.ndarray], outputs: list[str]
    ) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _unload(self, name: str) -> None: ...
