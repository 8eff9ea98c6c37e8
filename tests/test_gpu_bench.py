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


def test_provider_parity_code_on_the_cpu_provider(model_path):
    """The GPU providers' path (load, first run, timing, max abs diff against the reference)
    run with the CPU provider: the same session gives a difference of 0."""
    from ahmer.models.backends.ort import OnnxRuntimeBackend

    gpu = _gpu_module()
    path = model_path("fer_emotion")
    cpu = OnnxRuntimeBackend(device="cpu", warmup=False)
    feeds = gpu.make_feeds(cpu.load("fer_emotion", path), gpu.QUICK_AXES)
    ref = cpu.run("fer_emotion", feeds)
    row = {"cpu": {"median_ms": 1.0}}
    got = gpu.run_provider("fer_emotion", path, "cpu", feeds, ref, 3, None, row)
    assert got["status"] == "ok" and got["providers"][0] == "CPUExecutionProvider"
    assert got["max_abs_diff"].keys() == ref.keys() and got["max_abs_diff_all"] == 0.0
    assert got["runs"] == 3 and got["speedup_vs_cpu"] > 0


def test_whisper_timing_code_on_cpu(model_path, tmp_path):
    gpu = _gpu_module()
    audio = gpu.speech(tmp_path, 4)
    row, text = gpu.transcribe_timed(model_path("whisper_tiny_en"), audio, "cpu", "int8", 1)
    assert row["words"] >= 5 and row["realtime_factor"] > 0 and row["runs"] == 1
    assert "smoking" in text.lower() or "sure" in text.lower()


def test_triton_part_on_the_local_python_backend_triton(model_store):
    """The triton part's checks against the local tritonserver (python backend, KIND_CPU):
    every model of the repository answers like ONNX Runtime, and 32 callers get batched."""
    gpu = _gpu_module()
    result = gpu.run_part("triton", ["--quick", "--triton-local"], 150)
    assert result["status"] == "ok", result
    assert result["repo"]["kind"] == "cpu" and result["repo"]["python_backend"] is True
    assert set(result["models"]) == set(result["repo"]["models"])
    for name, row in result["models"].items():
        assert row["instance_kinds"] == ["KIND_CPU"], name
        assert row["max_abs_diff_all"] < 1e-4, name
    batching = result["batching"]
    assert batching["requests"] > 0 and batching["largest_batch"] > 1
