"""bench/gpu.py on a machine without a GPU: every GPU part says why it did not run, the CPU
reference runs on every ONNX model of the store, the JSON is valid and the exit code 0; a
part that overruns its limit is ended and recorded as timed out."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
NO_GPU = shutil.which("nvidia-smi") is None


def _gpu_module():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU answers; a GPU machine runs it all")
def test_quick_run_without_a_gpu_writes_valid_json(model_store, tmp_path):
    out = tmp_path / "gpu.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["schema"] == "ahmer.bench.gpu/1" and report["quick"] is True
    parts = report["parts"]
    assert list(parts) == ["env", "onnxruntime", "whisper", "triton", "streams"]
    for name in ("env", "whisper", "triton", "streams"):
        assert parts[name]["status"].startswith("not available: "), (name, parts[name])
        assert "nvidia-smi" in parts[name]["status"]
    assert (
        parts["env"]["cpus"] >= 1
        and "CPUExecutionProvider" in (parts["env"]["onnxruntime_providers"])
    )
    ort = parts["onnxruntime"]
    assert ort["status"] == "ok"
    onnx = {n for n, e in model_store.manifest().entries.items() if e.kind == "onnx"}
    assert set(ort["models"]) == onnx
    for name, row in ort["models"].items():
        assert row["cpu"]["status"] == "ok" and row["cpu"]["median_ms"] > 0, name
        assert row["cpu"]["runs"] == 5
        for device in ("cuda", "tensorrt"):
            assert row[device]["status"].startswith("not available: "), (name, device)
    assert report["seconds"] < report["budget_s"]


def test_a_part_past_its_limit_is_ended_and_recorded(model_store):
    """The stream part (a server and client processes) cut at 3 s: the child's whole session
    is killed, and the report says 'timed out' instead of hanging or losing the JSON."""
    gpu = _gpu_module()
    result = gpu.run_part("streams", ["--quick", "--stream-device", "cpu"], 3)
    assert result["status"].startswith("timed out after 3 s"), result
    assert result["seconds"] < 30


def test_unknown_part_is_refused():
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--parts", "env,gpus"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "unknown parts ['gpus']" in run.stderr
