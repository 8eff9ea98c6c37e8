"""Build the zero-shot fusion graph: anchors and prototypes embedded by the store's MiniLM
ONNX model, once, at build time (never per call)."""

from __future__ import annotations

from pathlib import Path

import onnx

__all__ = ["build_zeroshot", "convert"]


def build_zeroshot(minilm_dir: Path, dest: Path, version: str | None = None) -> None:
    """Write the ``ahmer-ah-zeroshot`` fusion ONNX of ``version`` (default: the current prior,
    :data:`~ahmer.models.fusion.prior.WEIGHTS_ID`; any key of
    :data:`~ahmer.models.fusion.prior.PRIOR_VERSIONS`) to ``dest``. Runs MiniLM once on the
    anchor and prototype sentences; needs only onnxruntime and tokenizers."""
    from ahmer.models.backends.ort import OnnxRuntimeBackend
    from ahmer.models.fusion.encoders import TextEncoder
    from ahmer.models.fusion.graph import build_fusion_model
    from ahmer.models.fusion.prior import PRIOR_VERSIONS, WEIGHTS_ID

    weights = PRIOR_VERSIONS[version or WEIGHTS_ID]
    with OnnxRuntimeBackend(device="cpu", warmup=False) as backend:
        encoder = TextEncoder(backend, minilm_dir, cache_size=0)
        model = build_fusion_model(weights(encoder.encode))
    onnx.save(model, str(dest))


def convert(src: Path, dest: Path) -> None:
    """The store's converter entry point: the current prior from the MiniLM folder ``src``."""
    build_zeroshot(src, dest)
