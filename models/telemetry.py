"""ONNX Runtime's usage telemetry, off by default in every ahmer command and the server.

A light module (no ONNX Runtime import at module level): the switch must be set before ONNX
Runtime loads."""

from __future__ import annotations

import os

__all__ = ["onnx_telemetry_off"]


def onnx_telemetry_off(loaded: bool = True) -> bool:
    """Turn ONNX Runtime's usage telemetry off, unless ``ORT_DISABLE_TELEMETRY=0`` asks to
    keep it; whether it is off.

    Its Linux wheels record usage events (the machine, OS and container; model file, graph
    and producer names; error messages; timings) under a device id, queue them under
    ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` and send them to Microsoft when they
    can. ``ORT_DISABLE_TELEMETRY=1`` set before ONNX Runtime loads stops all of it (nothing
    is written); ``disable_telemetry_events()`` stops the events of an ONNX Runtime that
    loaded before (an embedding process), after its start-up event. ONNX Runtime is given
    tensors only, never media or text.

    ``loaded=False`` only sets the variable (for a command that may load ONNX Runtime later
    and should not pay for importing it now)."""
    if os.environ.get("ORT_DISABLE_TELEMETRY", "").strip() == "0":
        return False
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    if not loaded:
        return True
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a backend without ONNX Runtime
        return True
    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        disable()
    return True
