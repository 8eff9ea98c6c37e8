"""Load and soak: recorded clips and live streams against one real ``ahmer serve`` at once.

Starts ``ahmer serve`` on 127.0.0.1 (a free port, metrics off) in its own process, makes a
few short clips once (espeak-ng speech over a real face, ``tests/serving.py::speech_clip``),
then for ``--seconds`` runs side by side:

- ``--clips N`` callers, each a thread looping ``AnalyzeClip`` over the clips in turn (one
  call in flight per caller, each with a deadline);
- ``--streams M`` live streams, each a thread running ``StreamSession`` sessions back to
  back: one clip replayed at real time (JPEG frames at the source rate, 100 ms PCM16 chunks;
  the requests are built once, so the client spends no CPU decoding), provisional frame
  results asked for, each session half-closed at the end of its clip and read until its
  final result.

Every loop stops by itself: no new call starts after ``--seconds``, each call has a deadline,
each loop makes at most ``--max-calls`` calls, and the run waits for its threads at most a
deadline longer than the run. Traffic goes to 127.0.0.1 only.

What it reports (a short table, and every number in ``--json``):

- outcomes: calls made, results, and every call's end by gRPC status name (``OK`` for a
  result; a session that ends without error but without its final result is ``NO_RESULT``;
  an exception that is no gRPC status is ``EXCEPTION``); a call that never ended by the
  join deadline is ``HUNG``. A call is *lost* when it ends ``NO_RESULT``, ``EXCEPTION``,
  ``HUNG``, ``UNKNOWN``, ``INTERNAL`` or ``DEADLINE_EXCEEDED`` (our deadline: the server
  never answered);
- latency p50/p95/p99 of recorded clips (send -> result), and first-result latency of live
  frames (frame sent -> its first, provisional, result), over calls started after
  ``--warmup`` seconds;
- server RSS (VmRSS of /proc/<pid>/status) every ``--rss-every`` seconds; its growth: RSS
  once it settles after the load (idle, at most 10 s) minus RSS at the end of the warm-up
  (under load: in-flight buffers count there, not at the end); its slope in MB per minute
  (least squares over the second half of the samples);
- error records in the server's log.

    python bench/soak.py --clips 2 --streams 1 --seconds 60 --json soak.json
    python bench/soak.py --clips 2 --streams 1 --seconds 600 --json soak-10min.json
    python bench/soak.py --seconds 40 -- --workers 2        # extra ahmer serve flags
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from serving import serve_process, speech_clip  # noqa: E402 (tests/serving.py)

__all__ = ["LOST", "make_clips", "rss_mb", "settled_rss", "slope_mb_per_min", "run", "main"]

# call ends that mean a result was lost: no result and no explicit refusal
LOST = ("NO_RESULT", "EXCEPTION", "HUNG", "UNKNOWN", "INTERNAL", "DEADLINE_EXCEEDED")

TEXTS = (  # 3-6 s of speech each, hedging and confident
    "I guess maybe I could try, but I'm not sure.",
    "I will definitely quit smoking next week.",
    "Well, um, I don't know, it is hard to say really.",
)


def make_clips(folder: Path) -> list[Path]:
    """The short clips every caller and stream uses (made once)."""
    return [speech_clip(folder, text, f"soak{i}") for i, text in enumerate(TEXTS)]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid``, MB (NaN once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def settled_rss(pid: int, within: float = 10.0) -> float:
    """RSS (MB) once it stops falling after the load (at most ``within`` s): the server may
    still be finishing the last calls and freeing their buffers."""
    last = rss_mb(pid)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_mb(pid)
        if abs(now - last) < 5:
            return round(now, 1)
        last = now
    return round(last, 1)


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, MB per minute, over the second half of
    ``samples`` ((seconds, MB) pairs); NaN with fewer than 3 points there."""
    half = samples[len(samples) // 2 :]
    if len(half) < 3:
        return float("nan")
    t, mb = np.array(half, dtype=float).T
    return float(np.polyfit(t, mb, 1)[0] * 60)


def _code(exc: BaseException) -> str:
    import grpc

    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        code = exc.code()
        return code.name if code is not None else "UNKNOWN"
    return "EXCEPTION"


def _pct(values: list[float]) -> list[float]:
    """p50/p95/p99 in ms (NaN when empty)."""
    if not values:
        return [float("nan")] * 3
    return [round(float(np.percentile(values, q)) * 1000, 1) for q in (50, 95, 99)]


class Load:
    """Shared clock and records of one run (each thread appends to its own list)."""

    def __init__(
        self, target: str, seconds: float, warmup: float, deadline: float, max_calls: int
    ) -> None:
        self.target = target
        self.t0 = time.monotonic()
        self.end = self.t0 + seconds
        self.warmup = warmup
        self.deadline = deadline
        self.max_calls = max_calls
        self.clip_calls: list[list[dict]] = []
        self.sessions: list[list[dict]] = []

    def running(self, made: int) -> bool:
        return made < self.max_calls and time.monotonic() < self.end


def clip_caller(load: Load, clips: list[bytes], index: int, records: list[dict]) -> None:
    """``AnalyzeClip`` over the clips in turn until the run's end."""
    from ahmer.client import AhmerClient

    with AhmerClient(load.target, retries=0) as client:
        while load.running(len(records)):
            data = clips[(index + len(records)) % len(clips)]
            start = time.monotonic()
            record = {"start": round(start - load.t0, 3)}
            records.append(record)
            try:
                client.analyze_bytes(data, timeout=load.deadline, container="clip.mp4")
                record["code"] = "OK"
            except Exception as exc:  # every end is recorded, never raised
                record["code"] = _code(exc)
                record["details"] = str(exc)[:200]
            record["seconds"] = round(time.monotonic() - start, 4)


def _paced(config, requests: list, sent: dict, record: dict):
    """The session's requests at real time; each frame's send time kept in ``sent``."""
    yield config
    begin = time.monotonic()
    for ready, request in requests:
        delay = begin + ready - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if request.HasField("video"):
            sent[round(request.video.pts, 4)] = time.monotonic()
            record["frames_sent"] += 1
        yield request


def streamer(load: Load, requests: list, length: float, index: int, records: list[dict]) -> None:
    """Live sessions back to back, each one clip replayed at real time, until the run's end."""
    from ahmer.client import AhmerClient, stream_config

    with AhmerClient(load.target, retries=0) as client:
        while load.running(len(records)):
            start = time.monotonic()
            record = {"start": round(start - load.t0, 3), "frames_sent": 0}
            records.append(record)
            sent: dict[float, float] = {}
            first: dict[float, float] = {}
            config = stream_config(f"soak-{index}-{len(records)}", provisional=True)

            result = None
            call = client.stream(
                _paced(config, requests, sent, record), timeout=length + load.deadline
            )
            try:
                for msg in call:
                    kind = msg.WhichOneof("message")
                    if kind == "frame":
                        first.setdefault(round(msg.frame.frame.time, 4), time.monotonic())
                    elif kind == "result":
                        result = msg.result
                record["code"] = "OK" if result is not None else "NO_RESULT"
            except Exception as exc:
                record["code"] = _code(exc)
                record["details"] = str(exc)[:200]
                call.cancel()
            record["seconds"] = round(time.monotonic() - start, 4)
            record["first_result"] = [first[k] - sent[k] for k in first if k in sent]
            if result is not None:
                record["frames_analysed"] = len(result.frames)
                record["skipped_load"] = result.skipped.video_load


def _summary(records: list[dict], warmup: float) -> dict:
    codes = Counter(r.get("code", "HUNG") for r in records)
    steady = [r for r in records if r["start"] >= warmup and r.get("code") == "OK"]
    return {
        "calls": len(records),
        "results": codes.get("OK", 0),
        "codes": dict(sorted(codes.items())),
        "lost": sum(codes.get(name, 0) for name in LOST),
        "steady_calls": len(steady),
        "latency_ms": _pct([r["seconds"] for r in steady]),
    }


def run(args, target: str, pid: int, clips: list[Path]) -> dict:
    """The load itself: threads started, RSS sampled until they end; every number."""
    from ahmer.client import replay_requests
    from ahmer.preprocessing.media import probe

    clip_bytes = [path.read_bytes() for path in clips]
    stream_clip = clips[0]
    requests = list(replay_requests(stream_clip))
    length = probe(stream_clip).duration
    load = Load(target, args.seconds, args.warmup, args.deadline, args.max_calls)
    threads = []
    for i in range(args.clips):
        load.clip_calls.append(records := [])
        threads.append(
            threading.Thread(target=clip_caller, args=(load, clip_bytes, i, records), daemon=True)
        )
    for i in range(args.streams):
        load.sessions.append(records := [])
        threads.append(
            threading.Thread(
                target=streamer, args=(load, requests, length, i, records), daemon=True
            )
        )
    for thread in threads:
        thread.start()
    join_by = load.end + length + args.deadline + 30
    rss: list[tuple[float, float]] = []
    warm_rss = None
    while any(t.is_alive() for t in threads) and time.monotonic() < join_by:
        now = time.monotonic() - load.t0
        rss.append((round(now, 2), round(rss_mb(pid), 1)))
        if warm_rss is None and now >= args.warmup:
            warm_rss = rss[-1][1]
        for thread in threads:
            thread.join(args.rss_every / max(1, len(threads)))
    wall = time.monotonic() - load.t0
    rss.append((round(wall, 2), round(rss_mb(pid), 1)))
    hung = sum(t.is_alive() for t in threads)
    idle_rss = settled_rss(pid)
    clip_records = [r for records in load.clip_calls for r in records]
    session_records = [r for records in load.sessions for r in records]
    first = [
        x for r in session_records if r["start"] >= args.warmup for x in r.get("first_result", [])
    ]
    streams = _summary(session_records, args.warmup)
    streams["first_result_ms"] = _pct(first)
    streams["frames_sent"] = sum(r["frames_sent"] for r in session_records)
    streams["frames_analysed"] = sum(r.get("frames_analysed", 0) for r in session_records)
    streams["skipped_load"] = sum(r.get("skipped_load", 0) for r in session_records)
    loaded = [mb for t, mb in rss if t <= args.seconds] or [mb for _, mb in rss]
    end_rss = rss[-1][1]
    warm_rss = end_rss if warm_rss is None else warm_rss
    return {
        "clips": args.clips,
        "streams": args.streams,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "cpus": os.cpu_count(),
        "clip_seconds": [round(probe(path).duration, 2) for path in clips],
        "stream_clip_seconds": round(length, 2),
        "wall": round(wall, 1),
        "hung_threads": hung,
        "recorded": _summary(clip_records, args.warmup),
        "live": streams,
        "rss": {
            "samples": rss,
            "start_mb": rss[0][1],
            "warm_mb": warm_rss,
            "max_mb": max(loaded),
            "end_mb": end_rss,
            "idle_mb": idle_rss,
            "growth_mb": round(idle_rss - warm_rss, 1),
            "slope_mb_per_min": round(slope_mb_per_min(rss), 2),
        },
        "calls": {
            "recorded": clip_records,
            "live": [{k: v for k, v in r.items() if k != "first_result"} for r in session_records],
        },
    }


def server_errors(log: Path) -> list[str]:
    """The server's log records at level error or worse (JSON lines)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "critical"):
            found.append(line[:300])
    return found


def print_table(doc: dict) -> None:
    rec, live, rss = doc["recorded"], doc["live"], doc["rss"]

    def ms(values):
        return "/".join(f"{v:.0f}" for v in values)

    print(
        f"\nsoak: {doc['clips']} clip callers + {doc['streams']} live streams, "
        f"{doc['seconds']:g} s (warm-up {doc['warmup']:g} s), {doc['cpus']} CPU cores, "
        f"wall {doc['wall']:.0f} s"
    )
    print(f"{'':9} {'calls':>6} {'results':>7} {'lost':>5} {'p50/p95/p99 ms':>20}  status codes")
    for name, row, lat in (
        ("recorded", rec, rec["latency_ms"]),
        ("live", live, live["first_result_ms"]),
    ):
        codes = ", ".join(f"{k} {v}" for k, v in row["codes"].items())
        print(
            f"{name:9} {row['calls']:>6} {row['results']:>7} {row['lost']:>5} "
            f"{ms(lat):>20}  {codes}"
        )
    print(
        f"live: first-result latency per frame; {live['frames_sent']} frames sent, "
        f"{live['frames_analysed']} analysed, {live['skipped_load']} skipped for load"
    )
    print(
        f"server RSS MB: start {rss['start_mb']:.0f}, after warm-up {rss['warm_mb']:.0f}, "
        f"max {rss['max_mb']:.0f}, end {rss['end_mb']:.0f}, idle after {rss['idle_mb']:.0f} "
        f"(growth {rss['growth_mb']:+.0f}); "
        f"slope {rss['slope_mb_per_min']:+.2f} MB/min over the second half"
    )
    step = max(1, len(rss["samples"]) // 10)
    print("RSS over time: " + ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in rss["samples"][::step]))
    print(f"server log errors: {len(doc['server_errors'])}; hung threads: {doc['hung_threads']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=2, help="parallel AnalyzeClip callers (2)")
    p.add_argument("--streams", type=int, default=1, help="parallel live streams (1)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the load (60)")
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds left out of latencies and RSS growth (min(60, seconds/4))",
    )
    p.add_argument("--rss-every", type=float, default=2.0, help="RSS sampling period, s (2)")
    p.add_argument("--deadline", type=float, default=120.0, help="deadline of each call, s")
    p.add_argument("--max-calls", type=int, default=10000, help="calls per loop at most")
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("serve_args", nargs="*", help="extra ahmer serve flags (after --)")
    args = p.parse_args(argv)
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()
    if args.warmup is None:
        args.warmup = min(60.0, args.seconds / 4)
    if args.clips < 0 or args.streams < 0 or args.clips + args.streams == 0:
        p.error("give at least one clip caller or stream")
    with tempfile.TemporaryDirectory(prefix="ahmer-soak-") as tmp:  # clips, server log
        clips = make_clips(Path(tmp))
        log = Path(tmp) / "serve.log"
        serve_args = (
            "--max-sessions",
            str(max(8, args.streams)),
            "--log-level",
            "warning",
            *args.serve_args,
        )
        with serve_process(stderr=log, args=serve_args, timeout=300) as (proc, target):
            doc = run(args, target, proc.pid, clips)
            doc["server_alive"] = proc.poll() is None
        doc["serve_args"] = list(serve_args)
        doc["server_errors"] = server_errors(log)
    print_table(doc)
    doc["machine"] = machine.finish()
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    lost = doc["recorded"]["lost"] + doc["live"]["lost"] + doc["hung_threads"]
    return 1 if lost or not doc["server_alive"] else 0


if __name__ == "__main__":
    sys.exit(main())
