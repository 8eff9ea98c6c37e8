"""GPU check: one script, one JSON, under 8 minutes.

On a machine with an NVIDIA GPU it runs, each part in its own process under its own time
limit (a hung CUDA call cannot take the whole run with it):

- ``env``: the GPU (nvidia-smi), ONNX Runtime's providers, CTranslate2's CUDA devices;
- ``onnxruntime``: every ONNX model of the store on CPU, then on the CUDA and TensorRT
  providers (through ahmer's own ``OnnxRuntimeBackend``) on the same inputs: time per batch
  and the largest absolute difference from CPU on every output;
- ``whisper``: faster-whisper on CUDA (float16) against CPU (int8) on the same espeak-ng
  speech: load time, decode time, real-time factor, and the two transcripts' word error rate;
- ``triton``: ``ahmer models triton-repo --kind gpu`` served by a ``tritonserver`` that has
  the onnxruntime backend: parity with CPU per model, and the batch sizes Triton formed
  under concurrent single-item requests;
- ``streams``: ``bench/stream.py``'s live-stream benchmark against ``ahmer serve --device
  cuda`` at 1, 8, 32 and 128 concurrent 15 fps streams (first-result p95 and the rest).

A part that cannot run here says why (``"status": "not available: ..."`` or
``"skipped: ..."``); the script still writes valid JSON and exits 0. ``--quick`` is the
short form (small batches, 1 stream for a few seconds) that the tests run on CPU.

    python bench/gpu.py --out gpu.json
    python bench/gpu.py --out gpu.json --levels 1,8,32,128,200 --stream-seconds 20
    python bench/gpu.py --out quick.json --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "ahmer.bench.gpu/1"
PARTS = ("env", "onnxruntime", "whisper", "triton", "streams")
# seconds per part (full run); the whole run also stops at --budget
LIMITS = {"env": 20, "onnxruntime": 120, "whisper": 60, "triton": 100, "streams": 230}
QUICK_LIMITS = {"env": 20, "onnxruntime": 60, "whisper": 40, "triton": 40, "streams": 90}
# sizes of the named dynamic axes in generated inputs
AXES = {"N": 16, "B": 4, "T": 64, "L": 32}
QUICK_AXES = {"N": 2, "B": 1, "T": 16, "L": 16}


# -- shared helpers ------------------------------------------------------------------------


def gpu() -> tuple[dict | None, str]:
    """The first NVIDIA GPU as nvidia-smi reports it, or None and why not."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None, "no nvidia-smi on PATH (no NVIDIA driver)"
    query = "name,driver_version,memory.total,compute_cap"
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi failed: {exc}"
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not lines:
        why = (out.stderr or out.stdout).strip().splitlines()
        return None, f"nvidia-smi found no GPU: {why[0] if why else out.returncode}"
    fields = [f.strip() for f in lines[0].split(",")]
    return dict(zip(query.split(","), fields, strict=False)) | {"count": len(lines)}, ""


def need_gpu() -> str | None:
    """None when a GPU is there, else the 'not available: ...' status."""
    info, why = gpu()
    return None if info else f"not available: {why}"


def onnx_models() -> dict[str, Path]:
    """Every ONNX model of the store: name -> the .onnx file."""
    from ahmer.models.store.model_store import ModelStore

    store = ModelStore()
    found = {}
    for name, entry in sorted(store.manifest().entries.items()):
        if entry.kind != "onnx":
            continue
        path = store.path(name)
        if path.is_dir():
            files = sorted(path.glob("*.onnx"))
            if len(files) != 1:
                continue
            path = files[0]
        found[name] = path
    return found


def make_feeds(signature, axes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs that fit ``signature``: named axes from ``axes``, values in each input's range
    (token ids below 1000, masks of ones, a frame rate of 15)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in signature.inputs:
        shape = [axes.get(d, 8) if isinstance(d, str) or d is None else d for d in spec.shape]
        name = spec.name.lower()
        if name == "fps":
            value = np.full(shape, 15.0)
        elif "mask" in name or name == "valid":
            value = np.ones(shape)
        elif spec.dtype.startswith("int"):
            value = rng.integers(1, 1000, size=shape)
        elif spec.dtype == "bool":
            value = np.ones(shape, dtype=bool)
        else:
            value = rng.random(shape)
        feeds[spec.name] = np.ascontiguousarray(value.astype(spec.dtype))
    return feeds


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, list[float]]:
    """``fn``'s last result and each call's wall time in ms."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return out, times


def summary_ms(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(float(np.median(times)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "runs": len(times),
    }


def max_diff(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, float]:
    return {
        k: float(np.max(np.abs(ref[k].astype(np.float64) - got[k].astype(np.float64))))
        if ref[k].size
        else 0.0
        for k in ref
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def speech(folder: Path, seconds: float) -> np.ndarray:
    """16 kHz espeak-ng speech (the tests' sentences, repeated) about ``seconds`` long."""
    sys.path.insert(0, str(ROOT / "tests"))
    from media import CONFIDENT, HEDGING, read_wav, speak
    from scipy.signal import resample_poly

    from ahmer.preprocessing.timeline import SAMPLE_RATE

    pieces, total, k = [], 0.0, 0
    while total < seconds:
        audio, rate = read_wav(speak((HEDGING, CONFIDENT)[k % 2], folder / "s.wav"))
        pieces += [resample_poly(audio[:, 0], SAMPLE_RATE, rate), np.zeros(SAMPLE_RATE // 2)]
        total += len(pieces[-2]) / SAMPLE_RATE + 0.5
        k += 1
    return np.concatenate(pieces).astype(np.float32)


# -- parts (each runs in a child process and writes its dict with save()) -------------------


def part_env(args, save) -> None:
    import ctranslate2
    import onnxruntime as ort

    info, why = gpu()
    try:
        cuda_devices = ctranslate2.get_cuda_device_count()
    except Exception as exc:  # a CPU build or missing CUDA libraries
        cuda_devices = f"error: {exc}"
    save(
        {
            "status": "ok" if info else f"not available: {why}",
            "gpu": info,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "onnxruntime_providers": ort.get_available_providers(),
            "ctranslate2": ctranslate2.__version__,
            "ctranslate2_cuda_devices": cuda_devices,
        }
    )


def part_onnxruntime(args, save) -> None:
    import onnxruntime as ort

    axes = QUICK_AXES if args.quick else AXES
    repeats = 5 if args.quick else 30
    result: dict[str, Any] = {"status": "ok", "axes": axes, "models": {}}
    available = ort.get_available_providers()
    no_gpu = need_gpu()
    with tempfile.TemporaryDirectory(prefix="ahmer-trt-") as cache:
        for name, path in onnx_models().items():
            onnx_model(name, path, axes, repeats, available, no_gpu, Path(cache), result, save)
    save(result)


def onnx_model(name, path, axes, repeats, available, no_gpu, cache, result, save) -> None:
    """One model: CPU reference, then each GPU provider (a failure stays in its row)."""
    import onnxruntime as ort

    from ahmer.models.backends.ort import OnnxRuntimeBackend

    row: dict[str, Any] = {}
    result["models"][name] = row
    cpu = OnnxRuntimeBackend(device="cpu", warmup=False)
    signature = cpu.load(name, path)
    feeds = make_feeds(signature, axes)
    row["inputs"] = {k: list(v.shape) for k, v in feeds.items()}
    cpu.run(name, feeds)
    ref, times = timed(lambda: cpu.run(name, feeds), repeats)
    row["cpu"] = {"status": "ok", **summary_ms(times)}
    cpu.close()
    save(result)
    for device, provider in (
        ("cuda", "CUDAExecutionProvider"),
        ("tensorrt", "TensorrtExecutionProvider"),
    ):
        if provider not in available:
            why = f"onnxruntime {ort.__version__} has no {provider} (it has {available})"
            row[device] = {"status": f"not available: {why}"}
            continue
        if no_gpu:
            row[device] = {"status": no_gpu}
            continue
        try:
            row[device] = run_provider(name, path, device, feeds, ref, repeats, cache, row)
        except Exception as exc:
            row[device] = {"status": f"failed: {type(exc).__name__}: {exc}"}
        save(result)


def run_provider(name, path, device, feeds, ref, repeats, cache, row) -> dict:
    from ahmer.models.backends.ort import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(device=device, warmup=False, tensorrt_cache=cache)
    try:
        t = time.perf_counter()
        backend.load(name, path)
        load_s = time.perf_counter() - t
        picked = backend.describe()["models"][name]
        if not picked or device not in picked[0].lower():
            return {"status": f"not available: the session fell back to {picked}"}
        _, first = timed(lambda: backend.run(name, feeds), 1)  # TensorRT builds its engine
        out, times = timed(lambda: backend.run(name, feeds), repeats)
        diffs = max_diff(ref, out)
        return {
            "status": "ok",
            "providers": picked,
            "load_s": round(load_s, 3),
            "first_run_ms": round(first[0], 1),
            **summary_ms(times),
            "speedup_vs_cpu": round(row["cpu"]["median_ms"] / float(np.median(times)), 2),
            "max_abs_diff": diffs,
            "max_abs_diff_all": max(diffs.values()),
        }
    finally:
        backend.close()


def part_whisper(args, save) -> None:
    import ctranslate2

    try:
        devices = ctranslate2.get_cuda_device_count()
    except Exception as exc:
        devices, error = 0, f"{exc}"
    else:
        error = "CTranslate2 sees no CUDA device"
    no_gpu = need_gpu()
    if no_gpu or devices == 0:
        save({"status": no_gpu or f"not available: {error}"})
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from media import word_error_rate

    from ahmer.models.store.model_store import ModelStore
    from ahmer.preprocessing.timeline import SAMPLE_RATE

    with tempfile.TemporaryDirectory() as tmp:
        audio = speech(Path(tmp), 10 if args.quick else 30)
    model = ModelStore().path("whisper_tiny_en")
    result: dict[str, Any] = {"status": "ok", "audio_s": round(len(audio) / SAMPLE_RATE, 2)}
    texts = {}
    for device, compute, repeats in (("cuda", "float16", 3), ("cpu", "int8", 1)):
        result[device], texts[device] = transcribe_timed(model, audio, device, compute, repeats)
        save(result)
    result["speedup_vs_cpu"] = round(result["cpu"]["median_ms"] / result["cuda"]["median_ms"], 2)
    result["wer_cuda_vs_cpu"] = round(word_error_rate(texts["cpu"], texts["cuda"]), 3)
    save(result)


def transcribe_timed(
    model: Path, audio: np.ndarray, device: str, compute: str, repeats: int
) -> tuple[dict, str]:
    """Load Whisper on ``device`` and transcribe ``audio`` ``repeats`` times: the numbers and
    the transcript."""
    from ahmer.preprocessing.asr import Transcriber
    from ahmer.preprocessing.timeline import SAMPLE_RATE

    t = time.perf_counter()
    asr = Transcriber(model, device=device, compute_type=compute).load()
    load_s = time.perf_counter() - t
    out, times = timed(lambda: asr.transcribe(audio), repeats)
    seconds = len(audio) / SAMPLE_RATE
    return {
        "compute_type": compute,
        "load_s": round(load_s, 3),
        **summary_ms(times),
        "realtime_factor": round(seconds * 1000 / float(np.median(times)), 1),
        "words": len(out.words),
    }, out.text


def find_tritonserver() -> tuple[Path | None, str]:
    """A tritonserver binary with the onnxruntime backend beside it, or None and why."""
    candidates = [os.environ.get("TRITONSERVER"), shutil.which("tritonserver")]
    candidates.append("/opt/tritonserver/bin/tritonserver")
    for c in candidates:
        if c and Path(c).is_file():
            binary = Path(c).resolve()
            backends = binary.parent.parent / "backends"
            if (backends / "onnxruntime").is_dir():
                return binary, ""
            return None, f"{binary} has no onnxruntime backend in {backends}"
    return None, (
        "no tritonserver with the onnxruntime backend here (set TRITONSERVER or run in the "
        "nvcr.io/nvidia/tritonserver image; the nvidia-pytriton wheel has only the python backend)"
    )


def make_repo(repo: Path, *flags: str) -> str | None:
    """``ahmer models triton-repo REPO FLAGS``; None, or its last error line."""
    cmd = [sys.executable, "-m", "ahmer.service.cli", "models", "triton-repo", str(repo)]
    made = subprocess.run([*cmd, *flags], capture_output=True, text=True)
    if made.returncode == 0:
        return None
    lines = (made.stderr or made.stdout).strip().splitlines() or [str(made.returncode)]
    return lines[-1]


def part_triton(args, save) -> None:
    if args.triton_local:  # this script's own check on a CPU: python backend, KIND_CPU
        from ahmer.models.triton.local import LocalTriton

        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            error = make_repo(repo, "--python-backend")
            if error:
                save({"status": f"failed: ahmer models triton-repo: {error}"})
                return
            with LocalTriton(repo) as server:
                triton_checks(args, save, server.url, repo, None)
        return
    no_gpu = need_gpu()
    if no_gpu:
        save({"status": no_gpu})
        return
    binary, why = find_tritonserver()
    if binary is None:
        save({"status": f"skipped: {why}"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        error = make_repo(repo, "--kind", "gpu")
        if error:
            save({"status": f"failed: ahmer models triton-repo: {error}"})
            return
        ports = [free_port() for _ in range(3)]
        log = open(Path(tmp) / "triton.log", "w")
        server = subprocess.Popen(
            [
                str(binary),
                f"--model-repository={repo}",
                "--model-control-mode=none",
                "--strict-readiness=true",
                f"--http-port={ports[0]}",
                f"--grpc-port={ports[1]}",
                f"--metrics-port={ports[2]}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            triton_checks(args, save, f"127.0.0.1:{ports[1]}", repo, server)
        finally:
            stop(server)
            log.close()


def triton_checks(args, save, url: str, repo: Path, server) -> None:
    import threading

    import tritonclient.grpc as grpcclient

    from ahmer.models.backends.ort import OnnxRuntimeBackend

    client = grpcclient.InferenceServerClient(url)
    start = time.monotonic()
    while True:
        if server is not None and server.poll() is not None:
            save({"status": f"failed: tritonserver exited with {server.returncode}"})
            return
        try:
            if client.is_server_ready():
                break
        except Exception:
            pass
        if time.monotonic() - start > 90:
            save({"status": "failed: tritonserver not ready after 90 s"})
            return
        time.sleep(1)
    result: dict[str, Any] = {
        "status": "ok",
        "ready_s": round(time.monotonic() - start, 1),
        "repo": repo_summary(json.loads((repo / "ahmer_repo.json").read_text())),
        "models": {},
    }
    axes = QUICK_AXES if args.quick else AXES
    models = onnx_models()
    fusion = next((n for n in models if "fusion" in n), None)
    for entry in client.get_model_repository_index().models:
        name = entry.name
        source = models.get(name) or (models.get(fusion) if "fusion" in name else None)
        config = client.get_model_config(name).config
        row: dict[str, Any] = {
            "instance_kinds": sorted(
                {
                    grpcclient.model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind)
                    for g in config.instance_group
                }
            ),
            "max_batch_size": config.max_batch_size,
        }
        result["models"][name] = row
        if source is None:
            row["parity"] = "no ONNX file of that name in the store"
            continue
        cpu = OnnxRuntimeBackend(device="cpu", warmup=False)
        feeds = make_feeds(cpu.load(name, source), axes)
        ref = cpu.run(name, feeds)
        cpu.close()

        def infer(f=feeds, n=name, outs=tuple(ref)):
            inputs = []
            for k, v in f.items():
                tensor = grpcclient.InferInput(k, list(v.shape), _triton_dtype(v.dtype))
                tensor.set_data_from_numpy(v)
                inputs.append(tensor)
            wanted = [grpcclient.InferRequestedOutput(o) for o in outs]
            res = client.infer(n, inputs, outputs=wanted)
            return {o: res.as_numpy(o) for o in outs}

        try:
            out, times = timed(infer, 5 if args.quick else 20)
        except Exception as exc:
            row["parity"] = f"failed: {exc}"
            continue
        diffs = max_diff(ref, out)
        row.update(summary_ms(times), max_abs_diff=diffs, max_abs_diff_all=max(diffs.values()))
        save(result)
    # dynamic batching: many callers at once, one item each, on the face model
    if "fer_emotion" in result["models"]:
        image = np.random.default_rng(1).random((1, 1, 64, 64)).astype(np.float32)
        stop = time.monotonic() + (3 if args.quick else 10)
        counts = []

        def caller():
            c = grpcclient.InferenceServerClient(url)
            n = 0
            tensor = grpcclient.InferInput("image", [1, 1, 64, 64], "FP32")
            tensor.set_data_from_numpy(image)
            while time.monotonic() < stop:
                c.infer("fer_emotion", [tensor])
                n += 1
            counts.append(n)

        threads = [threading.Thread(target=caller) for _ in range(32)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        stats = client.get_inference_statistics("fer_emotion").model_stats[0]
        batches = {int(b.batch_size): int(b.compute_infer.count) for b in stats.batch_stats}
        result["batching"] = {
            "callers": 32,
            "requests": sum(counts),
            "requests_per_s": round(sum(counts) / (time.monotonic() - t), 1),
            "executions_by_batch_size": dict(sorted(batches.items())),
            "largest_batch": max(batches, default=0),
        }
    save(result)


def repo_summary(record: dict) -> dict:
    """What ``ahmer_repo.json`` says about the repository, without the tensor lists."""
    keep = ("kind", "python_backend", "tensorrt_fp16", "max_queue_delay_us", "fusion")
    out = {k: record.get(k) for k in keep} | {"ahmer_version": record.get("ahmer_version")}
    out["models"] = {m["name"]: f"{m['version']} {m['sha256'][:12]}" for m in record["models"]}
    return out


def _triton_dtype(dtype: np.dtype) -> str:
    import tritonclient.utils as tu

    return tu.np_to_triton_dtype(dtype)


def part_streams(args, save) -> None:
    if args.stream_device != "cpu":
        no_gpu = need_gpu()
        if no_gpu:
            save({"status": no_gpu})
            return
    sys.path.insert(0, str(ROOT / "bench"))
    import stream

    levels = [int(n) for n in args.levels.split(",")]
    result: dict[str, Any] = {
        "status": "ok",
        "device": args.stream_device,
        "camera_fps": 15,
        "analysis_fps": args.analysis_fps,
        "seconds_per_stream": args.stream_seconds,
        "levels": [],
    }
    bench = argparse.Namespace(duration=args.stream_seconds, analysis_fps=args.analysis_fps)
    with tempfile.TemporaryDirectory() as tmp:
        clip = stream.make_media(Path(tmp), 15)
        flags = [
            "--device", args.stream_device,
            "--max-stream-seconds", str(int(args.stream_seconds) + 120),
        ]  # fmt: skip
        t = time.monotonic()
        server, target = start_serve(flags, max(levels), Path(tmp) / "server.log")
        try:
            result["server_ready_s"] = round(time.monotonic() - t, 1)
            save(result)
            for n in levels:
                result["levels"].append(
                    stream_row(stream.run_level(n, target, clip, bench, server.pid))
                )
                save(result)
        finally:
            stop(server)
    save(result)


def start_serve(flags: list[str], streams: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``ahmer serve`` on a free 127.0.0.1 port with room for ``streams`` live sessions, once
    it is SERVING: the process and its address (a RuntimeError with its log's tail if not)."""
    from ahmer.client import AhmerClient

    port = free_port()
    cmd = [
        sys.executable, "-m", "ahmer.service.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "off",
        "--max-sessions", str(streams + 8),
        "--max-concurrent-rpcs", str(streams + 16),  # the default 64 refuses 128 streams
        "--log-level", "warning", *flags,
    ]  # fmt: skip
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    t = time.monotonic()
    with AhmerClient(f"127.0.0.1:{port}") as client:
        while server.poll() is None and time.monotonic() - t < 120:
            try:
                client.wait_ready(timeout=1)
                return server, f"127.0.0.1:{port}"
            except TimeoutError:
                pass
    stop(server)
    tail = log_path.read_text().strip().splitlines()[-3:]
    raise RuntimeError(f"ahmer serve not ready (exit {server.poll()}): {tail}")


def stream_row(r: dict) -> dict:
    """The numbers of one ``bench/stream.py`` level, without its per-frame lists."""
    rss = [m for _, m in r["rss"]] or [float("nan")]
    return {
        "streams": r["streams"],
        "frames_sent": r["sent"],
        "frames_analysed": r["analysed"],
        "dropped_for_load": r["skipped_load"],
        "frames_per_s": round(r["throughput"], 1),
        "first_ms_p50_p95_p99": [round(v, 1) for v in r["first"]],
        "final_ms_p50_p95_p99": [round(v, 1) for v in r["final"]],
        "rss_mb_max": round(max(rss), 1),
        "wall_s": round(r["wall"], 1),
    }


PART_FUNCS = {
    "env": part_env,
    "onnxruntime": part_onnxruntime,
    "whisper": part_whisper,
    "triton": part_triton,
    "streams": part_streams,
}


# -- the parent: run each part under its limit, gather one JSON ----------------------------


def run_child(args, part: str, out: Path) -> None:
    def save(data: dict) -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str))
        tmp.replace(out)

    try:
        PART_FUNCS[part](args, save)
    except Exception as exc:
        previous = json.loads(out.read_text()) if out.exists() else {}
        save(previous | {"status": f"failed: {type(exc).__name__}: {exc}"})


def run_part(part: str, argv: list[str], limit: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{part}.json"
        cmd = [sys.executable, __file__, *argv, "--child", part, "--child-out", str(out)]
        t = time.monotonic()
        # a session of its own, so a timeout ends the part's server and clients too
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)  # fmt: skip
        timed_out = False
        try:
            log, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, 9)
            log, _ = proc.communicate()
        data = json.loads(out.read_text()) if out.exists() else {}
        if timed_out:
            data["status"] = f"timed out after {limit:.0f} s (what finished is kept)"
        elif "status" not in data:
            tail = log.strip().splitlines()[-3:]
            data["status"] = f"failed: exit {proc.returncode}: {' | '.join(tail)}"
        data["seconds"] = round(time.monotonic() - t, 1)
        return data


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="write the JSON here (and print it)")
    p.add_argument("--quick", action="store_true", help="small sizes, 1 short stream")
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    p.add_argument("--budget", type=float, help="seconds for the whole run (450; quick 200)")
    p.add_argument("--levels", help="concurrent streams per level (1,8,32,128; quick 1)")
    p.add_argument("--stream-seconds", type=float, help="seconds per stream (20; quick 5)")
    p.add_argument("--analysis-fps", type=float, default=5.0, help="analysis fps (5)")
    p.add_argument("--stream-device", default="cuda", help="ahmer serve --device (cuda)")
    p.add_argument(
        "--triton-local",
        action="store_true",
        help="triton part on the local python-backend tritonserver (.venv-triton), KIND_CPU: "
        "checks this script on a machine without a GPU",
    )
    p.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.levels = args.levels or ("1" if args.quick else "1,8,32,128")
    args.stream_seconds = args.stream_seconds or (5.0 if args.quick else 20.0)
    if args.child:
        run_child(args, args.child, args.child_out)
        return 0
    parts = [x for x in args.parts.split(",") if x]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start(file=sys.stderr)  # stdout carries the JSON
    budget = args.budget or (200.0 if args.quick else 450.0)
    limits = QUICK_LIMITS if args.quick else LIMITS
    start = time.monotonic()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "budget_s": budget,
        "parts": {},
    }
    for part in parts:
        left = budget - (time.monotonic() - start)
        if left < 10:
            report["parts"][part] = {"status": f"skipped: the {budget:.0f} s budget is spent"}
            continue
        print(f"[gpu.py] {part} (up to {min(limits[part], left):.0f} s)", file=sys.stderr)
        report["parts"][part] = run_part(part, argv, min(limits[part], left))
        print(f"[gpu.py] {part}: {report['parts'][part]['status']}", file=sys.stderr)
    report["seconds"] = round(time.monotonic() - start, 1)
    report["machine"] = machine.finish()
    text = json.dumps(report, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
