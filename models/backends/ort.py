"""ONNX Runtime in-process: the embedded default :class:`InferenceBackend`.

Execution providers are chosen once per backend from ``device``:

- ``"cpu"``: CPUExecutionProvider.
- ``"cuda"``: CUDA, then CPU for the nodes CUDA lacks.
- ``"tensorrt"``: TensorRT, then CUDA, then CPU.
- ``"auto"``: the best of TensorRT > CUDA > CPU that this onnxruntime build offers.

Asking for a GPU provider the installed onnxruntime lacks (the plain ``onnxruntime`` wheel is
CPU-only; ``ahmer[gpu]`` installs ``onnxruntime-gpu``) falls back with one WARNING line saying
what was asked, what was picked and why; what was picked is logged at INFO. A provider that is
built in but fails to start (no GPU, missing CUDA libraries) is detected from the session and
reported the same way.

Thread safety: one ``InferenceSession`` may be run from many threads at once (ONNX Runtime
guarantees ``Run`` is thread-safe), so a single backend can serve concurrent requests; loading
and unloading are serialised by the base class's lock.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ahmer.models.backends.base import BackendError, InferenceBackend, Signature
from ahmer.models.config import DEVICES
from ahmer.models.contract import TensorSpec

__all__ = ["DEVICES", "OnnxRuntimeBackend", "choose_providers"]

log = logging.getLogger(__name__)

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
_TRT = "TensorrtExecutionProvider"
_DEVICE_OF = {_CPU: "cpu", _CUDA: "cuda", _TRT: "tensorrt"}

# ONNX Runtime's type strings -> numpy dtype names.
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def choose_providers(device: str, available: list[str]) -> tuple[list[str], str, bool]:
    """Providers for ``device`` among ``available``: ``(providers, reason, fell_back)``.

    ``fell_back`` is true when the request could not be honoured as asked."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}; choose one of {DEVICES}")
    have = f"this onnxruntime build offers {', '.join(available) or 'no providers'}"
    gpu_hint = "install ahmer[gpu] (onnxruntime-gpu) on a machine with an NVIDIA GPU"
    if device == "cpu":
        return [_CPU], "cpu requested", False
    if device == "auto":
        if _TRT in available:
            chain = [_TRT, _CUDA, _CPU] if _CUDA in available else [_TRT, _CPU]
            return chain, f"auto: TensorRT is the best provider ({have})", False
        if _CUDA in available:
            return [_CUDA, _CPU], f"auto: CUDA is the best provider ({have})", False
        return [_CPU], f"auto: no GPU provider ({have})", False
    if device == "tensorrt":
        if _TRT in available:
            chain = [_TRT, _CUDA, _CPU] if _CUDA in available else [_TRT, _CPU]
            return chain, "tensorrt requested", False
        if _CUDA in available:
            return [_CUDA, _CPU], f"{_TRT} is not available ({have})", True
        return [_CPU], f"{_TRT} is not available ({have}); {gpu_hint}", True
    # cuda
    if _CUDA in available:
        return [_CUDA, _CPU], "cuda requested", False
    return [_CPU], f"{_CUDA} is not available ({have}); {gpu_hint}", True


def _dim(d: Any) -> int | str | None:
    if isinstance(d, int):
        return d
    if isinstance(d, str) and d:
        return d
    return None


def _specs(args: list[Any]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(a.name, _DTYPES.get(a.type, a.type), tuple(_dim(d) for d in a.shape))
        for a in args
    )


class OnnxRuntimeBackend(InferenceBackend):
    """Runs ONNX files in-process with ONNX Runtime.

    ``device``: one of :data:`DEVICES`. ``intra_op_threads``: threads per operator (0 lets
    ONNX Runtime use every core). ``inter_op_threads``: threads across independent nodes.
    ``warmup``: run each model once on zeros after loading so the first request is not slow.
    ``tensorrt_cache``: folder where TensorRT keeps built engines between runs (optional).
    """

    kind = "onnxruntime"

    def __init__(
        self,
        device: str = "cpu",
        intra_op_threads: int = 0,
        inter_op_threads: int = 1,
        warmup: bool = True,
        tensorrt_cache: Path | None = None,
    ) -> None:
        super().__init__()
        for label, value in (
            ("intra_op_threads", intra_op_threads),
            ("inter_op_threads", inter_op_threads),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BackendError(f"{label} must be an integer >= 0, got {value!r}")
        self.requested_device = device
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.warmup = bool(warmup)
        self.tensorrt_cache = Path(tensorrt_cache) if tensorrt_cache is not None else None
        available = list(ort.get_available_providers())
        self.providers, self.reason, fell_back = choose_providers(device, available)
        self.device = _DEVICE_OF[self.providers[0]]
        if fell_back:
            log.warning(
                "onnxruntime: asked for device %r, using %s: %s",
                device,
                self.providers[0],
                self.reason,
            )
            self._warned = True
        else:
            self._warned = False
        log.info(
            "onnxruntime %s: providers %s (%s)",
            ort.__version__,
            ", ".join(self.providers),
            self.reason,
        )
        self._sessions: dict[str, ort.InferenceSession] = {}

    # -- InferenceBackend ----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": ort.__version__,
            "requested_device": self.requested_device,
            "device": self.device,
            "providers": list(self.providers),
            "reason": self.reason,
            "intra_op_threads": self.intra_op_threads,
            "inter_op_threads": self.inter_op_threads,
            "models": {name: list(s.get_providers()) for name, s in self._sessions.items()},
        }

    def _session_options(self) -> ort.SessionOptions:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = self.inter_op_threads
        return opts

    def _provider_list(self) -> list[Any]:
        out: list[Any] = []
        for p in self.providers:
            if p == _TRT and self.tensorrt_cache is not None:
                self.tensorrt_cache.mkdir(parents=True, exist_ok=True)
                opts = {
                    "trt_engine_cache_enable": "True",
                    "trt_engine_cache_path": str(self.tensorrt_cache),
                }
                out.append((p, opts))
            else:
                out.append(p)
        return out

    def _load(self, name: str, path: Path) -> Signature:
        start = time.perf_counter()
        try:
            session = ort.InferenceSession(
                str(path), sess_options=self._session_options(), providers=self._provider_list()
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"model {name!r}: cannot load {path.name}: {exc}") from exc
        active = session.get_providers()
        if self.providers[0] not in active and not self._warned:
            self._warned = True
            log.warning(
                "onnxruntime: asked for device %r (%s) but it did not start for model %r; "
                "running on %s",
                self.requested_device,
                self.providers[0],
                name,
                ", ".join(active),
            )
        meta = session.get_modelmeta()
        signature = Signature(
            inputs=_specs(session.get_inputs()),
            outputs=_specs(session.get_outputs()),
            metadata=tuple(sorted(meta.custom_metadata_map.items())),
        )
        old = self._sessions.get(name)
        self._sessions[name] = session
        del old
        if self.warmup:
            self._warm_up(name, session, signature)
        log.info(
            "onnxruntime: loaded model %r (%s) in %.0f ms on %s",
            name,
            path.name,
            (time.perf_counter() - start) * 1000,
            ", ".join(active),
        )
        return signature

    def _warm_up(self, name: str, session: ort.InferenceSession, signature: Signature) -> None:
        feeds = {}
        for spec in signature.inputs:
            if spec.dtype == "object":
                return  # string inputs: nothing sensible to warm up with
            shape = tuple(d if isinstance(d, int) and d >= 0 else 1 for d in spec.shape)
            feeds[spec.name] = np.zeros(shape, dtype=np.dtype(spec.dtype))
        try:
            session.run(None, feeds)
        except Exception as exc:
            log.warning("onnxruntime: warm-up of model %r failed (%s); loaded anyway", name, exc)

    def _run(
        self, name: str, feeds: dict[str, np.ndarray], outputs: list[str]
    ) -> dict[str, np.ndarray]:
        session = self._sessions.get(name)
        if session is None:
            raise BackendError(f"model {name!r} is not loaded")
        feeds = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
        try:
            values = session.run(outputs, feeds)
        except Exception as exc:
            raise BackendError(f"model {name!r} failed to run: {exc}") from exc
        return dict(zip(outputs, values, strict=True))

    def _unload(self, name: str) -> None:
        self._sessions.pop(name, None)
