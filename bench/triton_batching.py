"""Triton's dynamic-batching queue delay, measured: how long to hold a request for others.

For each ``--delays`` value (microseconds) a python-backend repository is written with that
``max_queue_delay_microseconds`` and served by the local tritonserver
(:class:`ahmer.models.triton.local.LocalTriton`); ``--callers`` threads then each send
``--calls`` one-crop ``fer_emotion`` requests (a live frame each; the model with the most
requests), back to back or paced at ``--fps`` as live streams send frames. Per delay and load:
per-call latency p50/p95, requests per second, and the mean batch Triton formed (its own
statistics: inference_count / execution_count). All delays run in the same process, one after
another, so they compare; the absolute numbers depend on the machine and its load. The
batcher is Triton's, the same for the python and the
``onnxruntime_onnx`` backends; the per-batch compute differs.

    .venv/bin/python bench/triton_batching.py --json out.json
    .venv/bin/python bench/triton_batching.py --delays 0 1000 2000 --callers 4 16 --fps 15
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _run(url: str, callers: int, calls: int, crop: np.ndarray, fps: float = 0.0) -> dict:
    import tritonclient.grpc as grpcclient

    stats_client = grpcclient.InferenceServerClient(url)

    def counts() -> tuple[int, int]:
        s = stats_client.get_inference_statistics("fer_emotion", as_json=True)["model_stats"][0]
        return int(s.get("inference_count", 0)), int(s.get("execution_count", 0))

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(callers + 1)

    def caller() -> None:
        client = grpcclient.InferenceServerClient(url)
        tensor = grpcclient.InferInput("image", list(crop.shape), "FP32")
        tensor.set_data_from_numpy(crop)
        mine = []
        barrier.wait()
        period = 1.0 / fps if fps > 0 else 0.0
        due = time.perf_counter() + period * np.random.default_rng().random()  # own phase
        for _ in range(calls):
            if period:
                time.sleep(max(0.0, due - time.perf_counter()))
                due += period
            t = time.perf_counter()
            client.infer("fer_emotion", [tensor])
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    before = counts()
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    after = counts()
    inferences, executions = after[0] - before[0], after[1] - before[1]
    return {
        "callers": callers,
        "fps": fps,
        "requests": inferences,
        "executions": executions,
        "mean_batch": round(inferences / max(executions, 1), 2),
        "requests_per_s": round(inferences / wall, 1),
        "p50_ms": round(1000 * _percentile(latencies, 50), 2),
        "p95_ms": round(1000 * _percentile(latencies, 95), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 500, 2000, 5000])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--calls", type=int, default=100, help="requests per caller")
    parser.add_argument(
        "--fps",
        type=float,
        nargs="+",
        default=[0.0, 15.0],
        help="each caller's request rate, as a live stream's frames (0: back to back)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()

    from ahmer.models.store.model_store import ModelStore
    from ahmer.models.triton.local import LocalTriton
    from ahmer.models.triton.repository import write_repository

    crop = np.random.default_rng(0).uniform(0, 255, (1, 1, 64, 64)).astype(np.float32)
    store = ModelStore()
    results = []
    with tempfile.TemporaryDirectory(prefix="ahmer-bench-triton-") as tmp:
        for delay in args.delays:
            repo = write_repository(
                store, Path(tmp) / f"repo-{delay}", python_backend=True, max_queue_delay_us=delay
            )
            with LocalTriton(repo.out) as triton:
                _run(triton.url, 4, 10, crop)  # warm-up
                for fps in args.fps:
                    for callers in args.callers:
                        row = _run(triton.url, callers, args.calls, crop, fps)
                        row = {"delay_us": delay, **row}
                        print(json.dumps(row), flush=True)
                        results.append(row)
    if args.json:
        args.json.write_text(
            json.dumps({"fer_emotion": results, "machine": machine.finish()}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
