"""Build the zero-shot fusion graph: anchors embedded by the store's MiniLM ONNX model."""

from __future__ import annotations

from pathlib import Path

import onnx

__all__ = ["build_zeroshot", "convert"]


def build_zeroshot(minilm_dir: Path, dest: Path) -> None:
    """Write the ``ahmer-ah-zeroshot`` fusion ONNX to ``dest`` (runs MiniLM once on the
    anchor sentences; needs only onnxruntime and tokenizers)."""
    from ahmer.models.backends.ort import OnnxRuntimeBackend
    from ahmer.models.fusion.encoders import TextEncoder
    from ahmer.models.fusion.graph import build_fusion_model
    from ahmer.models.fusion.prior import zeroshot_weights

    with OnnxRuntimeBackend(device="cpu", warmup=False) as backend:
        encoder = TextEncoder(backend, minilm_dir, cache_size=0)
        model = build_fusion_model(zeroshot_weights(encoder.encode))
    onnx.save(model, str(dest))


convert = build_zeroshot  # the store's converter entry point: convert(src, dest)
