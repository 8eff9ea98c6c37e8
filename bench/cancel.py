"""Cancelled calls: how much CPU a server still spends on an ``AnalyzeClip`` call after the
client has cancelled it, and whether that work slows the next call down.

Run from the repository root with the project's venv::

    .venv/bin/python bench/cancel.py                       # 236 s clip made on the fly
    .venv/bin/python bench/cancel.py --media long.mp4 --cancels 3 --after 1 --json out.json

What one run does:

1. **Media.** Without ``--media``, a ``--duration`` s (236) 640x360 25 fps H.264/AAC clip made
   with ``bench/analyze.py``'s ``make_bench_clip`` (the real portrait face, espeak-ng
   sentences with pauses), and a 3.6 s clip of the same kind for the "next call".
2. **Server.** ``ahmer serve`` in a subprocess (metrics off, a free port); its CPU time is
   read from ``/proc/<pid>/stat`` (user + system, every thread).
3. **Baseline.** The short clip once (warm-up, its wall and CPU), then the long clip to the
   end: the CPU-seconds the whole clip costs.
4. **Cancel, one at a time.** ``--cancels`` times: start the long clip, cancel it from the
   client (``future.cancel()``) ``--after`` s later, and count the server's CPU-seconds from
   the cancel until the server is idle again (less than 0.05 CPU-s in the last second; that
   idle second is not counted).
5. **Cancel burst, then the next call.** ``--cancels`` calls started and cancelled one
   after the other (``--after`` s each), then at once the short clip: its wall time against
   the warm short call of step 3 (printed, not judged: wall time on a shared machine).

Nothing is asserted; ``tests/test_cancel.py`` asserts a bound on the leftover CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "server_cpu_s", "wait_idle"]

ROOT = Path(__file__).resolve().parent.parent
SHORT_S = 3.6
IDLE_CPU_S = 0.05  # CPU-seconds per second under which the server counts as idle
TICK = os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid: int) -> float:
    """User + system CPU-seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def wait_idle(cpu, window: float = 1.0, timeout: float = 300.0) -> tuple[float, float]:
    """Poll ``cpu()`` until less than :data:`IDLE_CPU_S` CPU-seconds were spent in the last
    ``window`` seconds. Returns (CPU-seconds spent before that idle window, seconds waited)."""
    t0 = time.monotonic()
    start = cpu()
    samples = [(t0, start)]
    while time.monotonic() - t0 < timeout:
        time.sleep(0.1)
        now, used = time.monotonic(), cpu()
        samples.append((now, used))
        old = [s for s in samples if s[0] <= now - window]
        if old and used - old[-1][1] < IDLE_CPU_S * window:
            return old[-1][1] - start, old[-1][0] - t0
    raise TimeoutError(f"the server did not go idle within {timeout:.0f} s")


def _bench_clip(path: Path, duration: float) -> Path:
    spec = importlib.util.spec_from_file_location("_ahmer_bench_analyze", ROOT / "bench/analyze.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_bench_clip(path, duration=duration)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ahmer.service.cli", "serve", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--metrics-port", "off", "--workers", str(workers)]
    cmd += ["--log-level", "warning"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(stub, proc, timeout: float = 300.0) -> None:
    import grpc

    from ahmer.v1 import service_pb2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            stub.GetModels(service_pb2.GetModelsRequest(), timeout=5)
            return
        except grpc.RpcError:
            time.sleep(0.5)
    raise TimeoutError("the server did not become ready")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--media", type=Path, help="the long clip (default: one made on the fly)")
    p.add_argument("--duration", type=float, default=236.0, help="made clip's length, s")
    p.add_argument("--cancels", type=int, default=3, help="cancelled calls per step")
    p.add_argument("--after", type=float, default=1.0, help="cancel this long after the start")
    p.add_argument("--workers", type=int, default=2, help="the server's analysis threads")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()

    import grpc

    from ahmer.v1 import service_pb2, service_pb2_grpc

    with tempfile.TemporaryDirectory() as tmp:
        long_clip = args.media or _bench_clip(Path(tmp) / "long.mp4", args.duration)
        short_clip = _bench_clip(Path(tmp) / "short.mp4", SHORT_S)
        long_req = service_pb2.AnalyzeClipRequest(media=long_clip.read_bytes())
        short_req = service_pb2.AnalyzeClipRequest(media=short_clip.read_bytes())

        port = _free_port()
        proc = _start_server(port, args.workers)
        try:
            with grpc.insecure_channel(
                f"127.0.0.1:{port}",
                options=[("grpc.max_send_message_length", 256 << 20)],
            ) as channel:
                stub = service_pb2_grpc.AnalysisServiceStub(channel)
                _wait_ready(stub, proc)

                def cpu() -> float:
                    return server_cpu_s(proc.pid)

                def timed(request) -> tuple[float, float]:
                    c, t = cpu(), time.perf_counter()
                    stub.AnalyzeClip(request, timeout=1800)
                    return time.perf_counter() - t, cpu() - c

                wait_idle(cpu)
                short_wall, short_cpu = timed(short_req)
                wait_idle(cpu)
                long_wall, long_cpu = timed(long_req)
                wait_idle(cpu)
                print(f"short clip ({SHORT_S} s): {short_wall:.2f} s wall, {short_cpu:.2f} CPU-s")
                print(f"long clip: {long_wall:.1f} s wall, {long_cpu:.1f} CPU-s (whole clip)")

                leftovers = []
                for i in range(args.cancels):
                    call = stub.AnalyzeClip.future(long_req, timeout=1800)
                    time.sleep(args.after)
                    cancelled = call.cancel()  # False: the call had already ended
                    left, waited = wait_idle(cpu)
                    leftovers.append(
                        {
                            "cancelled": cancelled,
                            "cpu_s": round(left, 3),
                            "idle_after_s": round(waited, 2),
                        }
                    )
                    what = "after it" if cancelled else "(the call had ended: not cancelled)"
                    print(f"cancel {i + 1}: {left:.2f} CPU-s {what}, idle {waited:.1f} s later")

                for _ in range(args.cancels):
                    call = stub.AnalyzeClip.future(long_req, timeout=1800)
                    time.sleep(args.after)
                    call.cancel()
                burst_wall, _ = timed(short_req)
                print(
                    f"short clip right after {args.cancels} cancels: {burst_wall:.2f} s wall "
                    f"(warm: {short_wall:.2f} s)"
                )
                wait_idle(cpu)
        finally:
            proc.terminate()
            proc.wait(60)

    doc = {
        "long_clip_cpu_s": round(long_cpu, 3),
        "long_clip_wall_s": round(long_wall, 3),
        "short_clip_wall_s": round(short_wall, 3),
        "short_clip_cpu_s": round(short_cpu, 3),
        "cancel_after_s": args.after,
        "leftover": leftovers,
        "short_after_burst_wall_s": round(burst_wall, 3),
        "load_average": os.getloadavg(),
    }
    doc["machine"] = machine.finish()
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
