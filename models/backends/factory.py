"""The one place a backend kind becomes an :class:`~ahmer.models.backends.base.InferenceBackend`.

Kept apart from the interface so that :mod:`ahmer.models.backends.base` imports neither
implementation (each implementation imports the interface; the factory imports them)."""

from __future__ import annotations

from typing import Any

from ahmer.models.backends.base import BACKEND_KINDS, BackendError, InferenceBackend

__all__ = ["backend_options", "make_backend"]


def make_backend(kind: str = "onnxruntime", **options: Any) -> InferenceBackend:
    """An inference backend of ``kind`` (one of :data:`BACKEND_KINDS`) built with ``options``.

    ``"onnxruntime"`` takes the options of
    :class:`~ahmer.models.backends.ort.OnnxRuntimeBackend` (``device``, thread counts,
    ``warmup``); ``"triton"`` those of :class:`~ahmer.models.backends.triton_client.TritonBackend`
    (``url``, ``tls``, ``timeout``, ``retries``, backoff).
    """
    if kind == "onnxruntime":
        from ahmer.models.backends.ort import OnnxRuntimeBackend

        return OnnxRuntimeBackend(**options)
    if kind == "triton":
        try:
            from ahmer.models.backends.triton_client import TritonBackend
        except ImportError as exc:
            if not (exc.name or "").startswith("tritonclient"):
                raise
            raise BackendError(
                f"the triton backend needs tritonclient[grpc], which cannot be imported "
                f"({exc}): install ahmer[triton]"
            ) from None

        return TritonBackend(**options)
    raise BackendError(f"unknown inference backend {kind!r}; choose one of {BACKEND_KINDS}")


def backend_options(config: Any) -> dict[str, Any]:
    """The options :func:`make_backend` takes for ``config`` (an
    :class:`~ahmer.models.config.AnalyzerConfig`): its ``device`` for ONNX Runtime, its
    ``triton_*`` settings for Triton, then its ``backend_options``."""
    if config.backend == "triton":
        base = {
            "url": config.triton_url,
            "tls": config.triton_tls,
            "timeout": config.triton_timeout,
        }
    else:
        base = {"device": config.device}
    return {**base, **config.backend_options}
