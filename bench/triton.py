"""In-process ONNX Runtime against Triton (python backend, local tritonserver) on this CPU.

What a live frame asks of the inference backend, from N concurrent streams, through ahmer's
own backends (``make_backend("onnxruntime")`` and ``make_backend("triton")``, the
``InferenceBackend`` interface the analyzer uses):

- ``fer_emotion`` on the frame's face crop (one crop: what a live session sends per frame);
- the fusion graph on the frame's provisional window (2 s of frames at 15 fps, batch 1);
- every 3rd frame (every 0.2 s at 15 fps) the fusion on the final window (8 s of frames);
- every 15th frame (once a second) ``minilm`` on one short utterance.

Each stream is a thread that sends its next frame as soon as the last one's results are back
(closed loop: the backend is saturated), for ``--seconds`` per level. Per level and backend:
per-frame latency p50/p95, frames per second over all streams and each model's median call
time (the fusion's over both window lengths); for Triton also the mean batch it formed per
model (its own statistics; the fusion has no batch axis Triton can use: its ``fps`` input
is ``[1]``). Ratios come from the same run: Triton over
in-process at 1 stream is the cost of the network hop (and of Triton's python backend); at 16
streams, what dynamic batching wins back. The two backends take turns at each level, in
``--slices`` alternating slices, so a busy machine's drift hits both alike. Both answer the
first frame of each stream alike (max absolute difference printed).

``--live`` measures whole live sessions instead: ``bench/stream.py``'s clients (JPEG frames at
15 fps and PCM audio in real time) against two ``ahmer serve``, one per backend, level by
level: first-result latency, frames analysed per second and frames dropped for load, and the
batches Triton formed.

    .venv/bin/python bench/triton.py                      # 1, 4, 16 streams, 8 s each
    .venv/bin/python bench/triton.py --live               # live sessions, 15 s each
    .venv/bin/python bench/triton.py --streams 1,16 --seconds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu import make_feeds  # noqa: E402  (bench/gpu.py: inputs that fit a signature)

CAMERA_FPS = 15
PROVISIONAL_FRAMES = 2 * CAMERA_FPS  # LiveConfig.provisional_window = 2 s
FINAL_FRAMES = 8 * CAMERA_FPS  # LiveConfig.window = 8 s
FINAL_EVERY = 3  # LiveConfig.eval_interval = 0.2 s at 15 fps
TEXT_EVERY = CAMERA_FPS


def frame_calls(models: dict[str, Any], fusion: str, stream: int) -> list[list]:
    """The inputs of a cycle of 15 frames of one stream: per frame, (model, feeds) pairs."""
    fer, text, fuse = (models[n] for n in ("fer_emotion", "minilm", fusion))
    crop = make_feeds(fer, {"N": 1}, seed=stream)
    sentence = make_feeds(text, {"N": 1, "L": 12}, seed=stream)
    short = make_feeds(fuse, {"B": 1, "T": PROVISIONAL_FRAMES}, seed=stream)
    long = make_feeds(fuse, {"B": 1, "T": FINAL_FRAMES}, seed=stream)
    cycle = []
    for i in range(CAMERA_FPS):
        calls = [("fer_emotion", crop), (fusion, short)]
        if i % FINAL_EVERY == 0:
            calls.append((fusion, long))
        if i % TEXT_EVERY == 0:
            calls.append(("minilm", sentence))
        cycle.append(calls)
    return cycle


def run_slice(backend, cycles: list[list], seconds: float) -> dict:
    """``len(cycles)`` threads, each running its stream's frames back to back: the raw
    per-frame and per-call times (s), the wall time, and each stream's first outputs."""
    latencies: list[list[float]] = [[] for _ in cycles]
    calls: list[dict[str, list[float]]] = [{} for _ in cycles]
    first: list[dict] = [{} for _ in cycles]
    errors: list[str] = []
    start = threading.Barrier(len(cycles) + 1)
    stop_at = [0.0]

    def stream(k: int) -> None:
        start.wait()
        i = 0
        try:
            while time.monotonic() < stop_at[0]:
                t = time.perf_counter()
                for name, feeds in cycles[k][i % len(cycles[k])]:
                    c = time.perf_counter()
                    out = backend.run(name, feeds)
                    calls[k].setdefault(name, []).append(time.perf_counter() - c)
                    if i == 0:
                        first[k][name] = out
                latencies[k].append(time.perf_counter() - t)
                i += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(len(cycles))]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"a stream failed: {errors[0]}")
    merged: dict[str, list[float]] = {}
    for c in calls:
        for name, times in c.items():
            merged.setdefault(name, []).extend(times)
    return {
        "frames": [x for lat in latencies for x in lat],
        "calls": merged,
        "wall": time.monotonic() - t0,
        "first": first,
    }


def summarize(slices: list[dict]) -> dict:
    """Numbers of one backend at one level over its slices."""
    flat = np.array([x for s in slices for x in s["frames"]]) * 1000
    names = {n for s in slices for n in s["calls"]}
    return {
        "frames": int(flat.size),
        "frames_per_s": round(flat.size / sum(s["wall"] for s in slices), 1),
        "mean_ms": round(float(flat.mean()), 2),
        "p50_ms": round(float(np.percentile(flat, 50)), 2),
        "p95_ms": round(float(np.percentile(flat, 95)), 2),
        "call_p50_ms": {
            n: round(float(np.median([x for s in slices for x in s["calls"].get(n, [])])) * 1000, 2)
            for n in sorted(names)
        },
    }


def triton_counts(url: str, names: list[str]) -> dict[str, tuple[int, int]]:
    """Per model: (inferences, executions) so far, from Triton's statistics."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    out = {}
    for name in names:
        s = client.get_inference_statistics(name, as_json=True)["model_stats"][0]
        out[name] = (int(s.get("inference_count", 0)), int(s.get("execution_count", 0)))
    client.close()
    return out


def max_diff(a: list[dict], b: list[dict]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        for name in x:
            for key in x[name]:
                worst = max(worst, float(np.max(np.abs(x[name][key] - y[name][key]))))
    return worst


def model_levels(args, levels: list[int], url: str, names: list[str], paths) -> list[dict]:
    """The model-call benchmark: each level through both backends, in alternating slices."""
    from ahmer.models.backends.factory import make_backend
    from ahmer.models.contract import FUSION_MODEL

    inproc = make_backend("onnxruntime", device="cpu")
    triton = make_backend("triton", url=url)
    signatures = {}
    for name in names:
        signatures[name] = inproc.load(name, paths[name])
        triton.load(name, paths[name])
    rows = []
    for n in levels:
        cycles = [frame_calls(signatures, FUSION_MODEL, k) for k in range(n)]
        row: dict[str, Any] = {"streams": n}
        runs: dict[str, list[dict]] = {"onnxruntime": [], "triton": []}
        before = triton_counts(url, names)
        for _ in range(args.slices):  # alternated: drift hits both alike
            for kind, backend in (("onnxruntime", inproc), ("triton", triton)):
                runs[kind].append(run_slice(backend, cycles, args.seconds / args.slices))
        after = triton_counts(url, names)
        row["onnxruntime"] = summarize(runs["onnxruntime"])
        row["triton"] = summarize(runs["triton"])
        row["triton"]["mean_batch"] = mean_batch(before, after)
        row["max_abs_diff"] = max_diff(runs["onnxruntime"][0]["first"], runs["triton"][0]["first"])
        row["ratio_triton_over_inproc"] = {
            k: round(row["triton"][k] / row["onnxruntime"][k], 2)
            for k in ("p50_ms", "p95_ms", "frames_per_s")
        }
        rows.append(row)
        print(f"{n} streams done", file=sys.stderr)
    triton.close()
    inproc.close()
    return rows


def live_levels(args, levels: list[int], url: str, names: list[str], tmp: Path) -> list[dict]:
    """Whole live sessions (``bench/stream.py``: JPEG frames and PCM audio at 15 fps in real
    time) against two ``ahmer serve``: ``--backend onnxruntime`` and ``--backend triton``."""
    import stream
    from gpu import start_serve, stop, stream_row

    bench = argparse.Namespace(duration=args.seconds, analysis_fps=args.analysis_fps)
    clip = stream.make_media(tmp, CAMERA_FPS)
    limit = ["--max-stream-seconds", str(int(args.seconds) + 120)]
    servers = {
        "onnxruntime": start_serve(limit, max(levels), tmp / "inproc.log"),
        "triton": start_serve(
            [*limit, "--backend", "triton", "--triton-url", url], max(levels), tmp / "triton.log"
        ),
    }
    rows = []
    try:
        for n in levels:
            row: dict[str, Any] = {"streams": n}
            for kind, (server, target) in servers.items():
                before = triton_counts(url, names)
                row[kind] = stream_row(stream.run_level(n, target, clip, bench, server.pid))
                if kind == "triton":
                    row[kind]["mean_batch"] = mean_batch(before, triton_counts(url, names))
            a, b = row["onnxruntime"], row["triton"]
            row["ratio_triton_over_inproc"] = {
                "first_p50": round(b["first_ms_p50_p95_p99"][0] / a["first_ms_p50_p95_p99"][0], 2),
                "first_p95": round(b["first_ms_p50_p95_p99"][1] / a["first_ms_p50_p95_p99"][1], 2),
                "frames_per_s": round(b["frames_per_s"] / a["frames_per_s"], 2),
            }
            rows.append(row)
            print(f"{n} live streams done", file=sys.stderr)
    finally:
        for server, _ in servers.values():
            stop(server)
    return rows


def mean_batch(before: dict, after: dict) -> dict[str, float]:
    """Per model: inferences per execution between two ``triton_counts``."""
    return {
        m: round((after[m][0] - before[m][0]) / max(1, after[m][1] - before[m][1]), 2)
        for m in after
    }


def print_models(report: dict, args) -> None:
    from ahmer.models.contract import FUSION_MODEL

    print(
        f"\nper live frame: fer_emotion (1 crop) + fusion ({PROVISIONAL_FRAMES} frames); "
        f"+ fusion ({FINAL_FRAMES}) every {FINAL_EVERY}rd, + minilm every {TEXT_EVERY}th; "
        f"closed loop, {args.seconds:g} s per level; {os.cpu_count()} CPUs, load "
        f"{report['load_avg_start'][0]:.2f} -> {report['load_avg_end'][0]:.2f}"
    )
    print(
        f"{'N':>3} {'in-process p50/p95 ms':>22} {'fps':>7} {'Triton p50/p95 ms':>19} "
        f"{'fps':>7} {'T/in p50':>8} {'T/in fps':>8} {'batch fer/fusion':>16} {'diff':>8}"
    )
    for r in report["levels"]:
        a, b, q = r["onnxruntime"], r["triton"], r["ratio_triton_over_inproc"]
        batch = f"{b['mean_batch']['fer_emotion']:.2f}/{b['mean_batch'][FUSION_MODEL]:.2f}"
        print(
            f"{r['streams']:>3} {a['p50_ms']:>10.2f}/{a['p95_ms']:<11.2f} "
            f"{a['frames_per_s']:>7.1f} "
            f"{b['p50_ms']:>9.2f}/{b['p95_ms']:<9.2f} {b['frames_per_s']:>7.1f} "
            f"{q['p50_ms']:>8.2f} {q['frames_per_s']:>8.2f} {batch:>16} {r['max_abs_diff']:>8.1e}"
        )
    levels = [r["streams"] for r in report["levels"]]
    if levels:
        lo, hi = report["levels"][0], report["levels"][-1]
        report["hop_cost_p50_ms"] = round(lo["triton"]["p50_ms"] - lo["onnxruntime"]["p50_ms"], 2)
        report["scaling"] = {
            kind: round(hi[kind]["frames_per_s"] / lo[kind]["frames_per_s"], 2)
            for kind in ("onnxruntime", "triton")
        }
        print(
            f"network hop at {levels[0]} stream(s): +{report['hop_cost_p50_ms']:.2f} ms p50; "
            f"frames/s from {levels[0]} to {levels[-1]} streams: in-process "
            f"x{report['scaling']['onnxruntime']:.2f}, Triton x{report['scaling']['triton']:.2f}"
        )


def print_live(report: dict, args) -> None:
    print(
        f"\nlive sessions: {CAMERA_FPS} fps camera, analysis at {args.analysis_fps:g} fps, "
        f"{args.seconds:g} s each; {os.cpu_count()} CPUs, load "
        f"{report['load_avg_start'][0]:.2f} -> {report['load_avg_end'][0]:.2f}"
    )
    print(
        f"{'N':>3} {'in-process first p50/p95/p99 ms':>32} {'fps':>6} {'dropped':>7} "
        f"{'Triton first p50/p95/p99 ms':>28} {'fps':>6} {'dropped':>7} {'batch fer':>9}"
    )
    for r in report["levels"]:
        a, b = r["onnxruntime"], r["triton"]
        print(
            f"{r['streams']:>3} {'/'.join(f'{v:.0f}' for v in a['first_ms_p50_p95_p99']):>32} "
            f"{a['frames_per_s']:>6.1f} {a['dropped_for_load']:>7} "
            f"{'/'.join(f'{v:.0f}' for v in b['first_ms_p50_p95_p99']):>28} "
            f"{b['frames_per_s']:>6.1f} {b['dropped_for_load']:>7} "
            f"{b['mean_batch']['fer_emotion']:>9.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", default="1,4,16", help="concurrent streams per level (1,4,16)")
    p.add_argument("--seconds", type=float, help="seconds per level and backend (8; live 15)")
    p.add_argument(
        "--slices", type=int, default=4, help="alternate the backends this many times (4)"
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="whole live sessions through two ahmer serve (one per backend) instead",
    )
    p.add_argument("--analysis-fps", type=float, default=5.0, help="--live: analysis fps (5)")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()
    args.seconds = args.seconds or (15.0 if args.live else 8.0)
    levels = [int(n) for n in args.streams.split(",")]

    from ahmer.models.contract import FUSION_MODEL
    from ahmer.models.store.model_store import ModelStore
    from ahmer.models.triton.local import LocalTriton
    from ahmer.models.triton.repository import write_repository

    store = ModelStore()
    names = ["fer_emotion", "minilm", FUSION_MODEL]
    paths = {n: store.path(n) for n in names}
    paths = {n: (next(p.glob("*.onnx")) if p.is_dir() else p) for n, p in paths.items()}
    report: dict[str, Any] = {
        "mode": "live" if args.live else "model_calls",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "seconds_per_level": args.seconds,
        "slices": None if args.live else args.slices,
        "analysis_fps": args.analysis_fps if args.live else None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        repo = write_repository(store, Path(tmp) / "repo", python_backend=True)
        report["max_queue_delay_us"] = repo.max_queue_delay_us
        with LocalTriton(Path(tmp) / "repo") as server:
            if args.live:
                report["levels"] = live_levels(args, levels, server.url, names, Path(tmp))
            else:
                report["levels"] = model_levels(args, levels, server.url, names, paths)
    report["load_avg_end"] = os.getloadavg()
    (print_live if args.live else print_models)(report, args)
    report["machine"] = machine.finish()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
