"""Live-stream benchmark: N concurrent sessions at 15 fps from separate client processes.

Each client process replays a generated clip (a real face and espeak-ng speech, looped with
increasing timestamps for as long as ``--duration`` asks) in real time: JPEG frames at the
source rate and 100 ms PCM16 audio chunks, interleaved by time. It asks for provisional
frame results and measures, per analysis frame:

- *first-result latency*: send time of the frame -> arrival of its provisional result (what
  an app showing live feedback waits for);
- *final-result latency*: send time of the frame -> arrival of its final result (this
  includes the designed look-ahead: the words after the frame, see
  ``SessionStarted.final_lag``), over the frames made final while the stream ran; "at end"
  counts the last frames, made final by the end-of-session pass;
- *session result*: half-close -> arrival of the whole-session result (``session_result_ms``);
- *last update*: how far before the end of the stream (stream seconds) the last rolling
  update that arrived before half-close describes (``last_update_before_end_s``);
- *finals against the whole answer*: each final frame that arrived while the stream ran,
  against the same frame of the session result (analysed with every word, as
  ``AnalyzeClip``): the mean change of its A/H probability and how many labels changed
  (``final_vs_result``), which is what finality before the later words costs;
- with ``--turns``, a ``TurnMarker`` at each loop of the clip (each loop is one answer):
  marker sent -> its ``TurnResult`` (``turn_ms``).

The parent starts ``ahmer serve`` (unless ``--server`` is given), samples its RSS every
second, reads each session's ``pending_high`` (the most result messages made but not yet
sent) from the server's "session closed" log lines, and prints one table row per stream
count. ``--old PATH`` runs the server from another checkout (a ``git worktree`` of an
older commit) for a side-by-side baseline; ``--no-turns`` for a server without turns.

    python bench/stream.py --streams 1,2,4 --duration 25 --turns
    python bench/stream.py --streams 1 --duration 600      # memory over a 10-minute stream
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ahmer.preprocessing.timeline import SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


# -- media ---------------------------------------------------------------------------------


def make_media(folder: Path, fps: int) -> Path:
    """A ~12 s clip: a face that moves a little, hedging then confident speech."""
    from media import CONFIDENT, HEDGING, canvas, make_clip, portrait, read_wav, speak
    from scipy.signal import resample_poly

    parts = []
    for text in (HEDGING, CONFIDENT):
        audio, rate = read_wav(speak(text, folder / "s.wav"))
        parts += [resample_poly(audio[:, 0], SAMPLE_RATE, rate), np.zeros(SAMPLE_RATE // 2)]
    audio = np.concatenate(parts).astype(np.float32)
    base = portrait()

    def frame(i: int, t: float) -> np.ndarray:
        return canvas(base, centre_x=0.5 + 0.03 * np.sin(t))

    return make_clip(folder / "bench.mp4", frame, audio, SAMPLE_RATE, fps=fps)


def load_clip(path: Path, quality: int = 85):
    """JPEG frames with their pts, the 16 kHz audio, and the clip length."""
    from PIL import Image

    from ahmer.preprocessing.media import iter_frames, load_audio

    frames = []
    for f in iter_frames(path, fps=None, max_side=640):
        buf = io.BytesIO()
        Image.fromarray(f.image).save(buf, format="JPEG", quality=quality)
        frames.append((f.time, buf.getvalue()))
    audio = load_audio(path)
    length = len(audio) / SAMPLE_RATE
    return frames, audio, length


# -- one client process --------------------------------------------------------------------


def client_main(
    target: str, clip: str, duration: float, analysis_fps: float, turns: bool, out_q
) -> None:
    try:
        out_q.put(asyncio.run(_client(target, Path(clip), duration, analysis_fps, turns)))
    except Exception as exc:  # report, never hang the parent
        out_q.put({"error": f"{type(exc).__name__}: {exc}"})


async def _client(
    target: str, clip: Path, duration: float, analysis_fps: float, turns: bool
) -> dict:
    from ahmer.client import AsyncAhmerClient, stream_config
    from ahmer.v1 import live_pb2, options_pb2

    frames, audio, length = load_clip(clip)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    sent: dict[float, float] = {}
    first: dict[float, float] = {}
    final: dict[float, float] = {}
    final_frames: dict[float, tuple[float, int]] = {}  # (A/H probability, label) of each final
    marks: list[float] = []  # when each TurnMarker was sent
    turn_at: list[float] = []  # when each TurnResult arrived
    closed: list[float] = []  # when the requests ended (half-close)
    chunk = SAMPLE_RATE // 10  # 100 ms

    def schedule():
        """(ready time, request) for the whole run: the clip looped."""
        items = []
        loops = int(np.ceil(duration / length))
        for k in range(loops):
            base = k * length
            if turns and k:  # each loop of the clip is one answer
                items.append((base, -1, base, b""))
            for t, data in frames:
                if base + t < duration:
                    items.append((base + t, 0, t + base, data))
            for s in range(0, len(pcm), chunk):
                start = base + s / SAMPLE_RATE
                if start < duration:
                    piece = pcm[s : s + chunk].tobytes()
                    items.append((start + chunk / SAMPLE_RATE, 1, start, piece))
        items.sort(key=lambda x: (x[0], x[1]))
        return items

    items = schedule()
    options = options_pb2.AnalysisOptions(
        fps=analysis_fps, explanation=options_pb2.EXPLANATION_SUMMARY
    )

    async def requests():
        config = stream_config(f"bench-{os.getpid()}", True, True, options)
        config.config.provisional_frames = True
        yield config
        start = time.monotonic()
        for ready, kind, t, data in items:
            delay = start + ready - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == 0:
                sent[round(t, 4)] = time.monotonic()
                yield live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=t, data=data))
            elif kind == 1:
                yield live_pb2.StreamRequest(audio=live_pb2.AudioChunk(start_time=t, data=data))
            else:
                marks.append(time.monotonic())
                yield live_pb2.StreamRequest(turn=live_pb2.TurnMarker(label=f"loop{len(marks)}"))
        closed.append(time.monotonic())

    result = None
    result_at = None
    updates = 0
    update_times: list[tuple[float, float]] = []  # (arrival, stream time described)
    notices: set[str] = set()
    async with AsyncAhmerClient(target, max_message_mb=64) as client:
        call = client.stream(requests())
        async for msg in call:
            now = time.monotonic()
            kind = msg.WhichOneof("message")
            if kind == "frame":
                key = round(msg.frame.frame.time, 4)
                (final if msg.frame.final else first).setdefault(key, now)
                if msg.frame.final:
                    f = msg.frame.frame
                    final_frames.setdefault(key, (f.ah_probability, f.ah_label))
            elif kind == "update":
                updates += 1
                update_times.append((now, msg.update.time))
            elif kind == "turn":
                turn_at.append(now)
            elif kind == "notice":
                notices.add(msg.notice.code)
            elif kind == "result":
                result, result_at = msg.result, now
    lat_first = [first[k] - sent[k] for k in first if k in sent]
    lat_final = [final[k] - sent[k] for k in final if k in sent]
    skipped = result.skipped if result is not None else None
    half_close = closed[0] if closed else float("nan")
    before = [st for at, st in update_times if at <= half_close]
    # each final frame against the same frame of the whole-session result (AnalyzeClip's
    # analysis, with every word): how much finality before the words after it costs
    agree = []
    if result is not None:
        whole = {round(f.time, 4): (f.ah_probability, f.ah_label) for f in result.frames}
        agree = [
            (abs(p - whole[k][0]), int(label != whole[k][1]))
            for k, (p, label) in final_frames.items()
            if k in whole and final.get(k, 0) <= half_close
        ]
    return {
        "final_vs_result": agree,
        "session_result": (result_at - half_close) if result_at is not None else None,
        "last_update_before_end": (duration - max(before)) if before else None,
        "turn": [got - mark for mark, got in zip(marks, turn_at, strict=False)],
        "turns_got": len(turn_at),
        # the server's own seconds for the session result (live_finish) and its parts
        "result_timings": dict(result.timings) if result is not None else {},
        "notices": sorted(notices),
        "sent": len(sent),
        "analysed": len(final),
        "first": lat_first,
        "final": lat_final,
        "updates": updates,
        "skipped_rate": skipped.video_rate if skipped else 0,
        "skipped_load": skipped.video_load if skipped else 0,
        "label": result.clip.ah_label if result is not None else None,
        "frames": [(k, sent[k], first.get(k), final.get(k)) for k in sorted(sent)],
    }


# -- server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def server_log() -> Path:
    return Path(tempfile.gettempdir()) / f"ahmer-bench-server-{os.getpid()}.log"


def pending_highs(since: int) -> list[int]:
    """``pending_high`` of the sessions the server logged as closed after byte ``since``."""
    out = []
    with open(server_log(), "rb") as f:
        f.seek(since)
        for line in f.read().decode(errors="replace").splitlines():
            if "session closed" not in line:
                continue
            try:
                out.append(int(json.loads(line)["pending_high"]))
            except (ValueError, KeyError, TypeError):
                continue
    return out


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "ahmer.service.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        "off",
        "--max-sessions",
        "16",
        "--max-stream-seconds",
        str(args.duration * 4 + 60),  # room for a loaded machine
        "--log-level",
        "info",
        "--log-format",
        "json",
    ]
    log = open(server_log(), "w")
    env = dict(os.environ)
    if args.old:  # the older checkout's ahmer first (a package folder made of links to it)
        env["PYTHONPATH"] = str(_old_package(Path(args.old)))
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    target = f"127.0.0.1:{port}"
    from ahmer.client import AhmerClient

    with AhmerClient(target) as client:
        client.wait_ready(timeout=180)
    return proc, target


def _old_package(checkout: Path) -> Path:
    """A folder holding ``ahmer/`` whose subpackages link to ``checkout`` (the layout that
    pyproject.toml's package-dir maps), to run an older commit's server side by side."""
    root = Path(tempfile.mkdtemp(prefix="ahmer-old-"))
    pkg = root / "ahmer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    links = {
        "preprocessing": "preprocessing",
        "models": "models",
        "service": "service",
        "v1": "proto/ahmer/v1",
        "client": "service/client",
    }
    for name, target in links.items():
        (pkg / name).symlink_to(checkout.resolve() / target)
    return root


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def run_level(n: int, target: str, clip: Path, args, pid: int | None) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    turns = args.turns and not args.no_turns
    procs = [
        ctx.Process(
            target=client_main,
            args=(target, str(clip), args.duration, args.analysis_fps, turns, q),
        )
        for _ in range(n)
    ]
    log_at = server_log().stat().st_size if pid is not None else 0
    rss = []
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = []
    while len(results) < n:
        if pid is not None:
            rss.append((time.monotonic() - t0, rss_mb(pid)))
        try:
            results.append(q.get(timeout=1.0))
        except Exception:
            if time.monotonic() - t0 > args.duration * 3 + 300:
                raise TimeoutError("clients did not finish") from None
    for p in procs:
        p.join(10)
    wall = time.monotonic() - t0
    errors = [r["error"] for r in results if "error" in r]
    for error in errors:  # reported in the row, the other sessions still count
        print(f"{n} streams: a session failed: {error}", file=sys.stderr)
    results = [r for r in results if "error" not in r]
    first = [x for r in results for x in r["first"]]
    final, at_end = [], 0
    for r in results:  # final results that came while the stream ran vs. at its end
        last_sent = max(s for _, s, _, _ in r["frames"])
        for _, sent, _, got in r["frames"]:
            if got is not None and got <= last_sent:
                final.append(got - sent)
            elif got is not None:
                at_end += 1
    session_result = [r["session_result"] for r in results if r["session_result"] is not None]
    gaps = [r["last_update_before_end"] for r in results if r["last_update_before_end"] is not None]
    turn = [x for r in results for x in r["turn"]]
    agree = [x for r in results for x in r["final_vs_result"]]
    time.sleep(1.0)  # the server logs a session's close once its resources are freed
    pending = pending_highs(log_at) if pid is not None else []
    return {
        "streams": n,
        "errors": len(errors),
        "load": open("/proc/loadavg").read().split()[:3],
        "session_result_ms": [pct(session_result, q) for q in (50, 95, 99)],
        "last_update_before_end_s": max(gaps) if gaps else None,
        "turn_ms": [pct(turn, q) for q in (50, 95, 99)],
        "turns": sum(r["turns_got"] for r in results),
        "live_finish_ms": [
            pct([r["result_timings"].get("live_finish", 0.0) for r in results], q) for q in (50, 95)
        ],
        "pending_high": max(pending) if pending else None,
        "notices": sorted({c for r in results for c in r["notices"]}),
        "sent": sum(r["sent"] for r in results),
        "analysed": sum(r["analysed"] for r in results),
        "skipped_load": sum(r["skipped_load"] for r in results),
        "throughput": sum(r["analysed"] for r in results) / args.duration,
        "first": [pct(first, q) for q in (50, 95, 99)],
        "final": [pct(final, q) for q in (50, 95, 99)],
        "final_at_end": at_end,
        # final frames made while the stream ran against the session result's same frames
        "final_vs_result": {
            "frames": len(agree),
            "mean_abs_dp": float(np.mean([d for d, _ in agree])) if agree else None,
            "label_flips": sum(f for _, f in agree),
        },
        "rss": rss,
        "wall": wall,
        "labels": [r["label"] for r in results],
        "per_frame": [r["frames"] for r in results],
    }


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", default="1,2", help="comma-separated stream counts (1,2)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per stream (30)")
    p.add_argument("--source-fps", type=int, default=15, help="camera frame rate (15)")
    p.add_argument("--analysis-fps", type=float, default=15.0, help="analysis fps (15)")
    p.add_argument("--server", help="HOST:PORT of a running server (default: start one)")
    p.add_argument("--json", type=Path, help="write the raw numbers here")
    p.add_argument("--turns", action="store_true", help="a TurnMarker at each loop of the clip")
    p.add_argument("--no-turns", action="store_true", help="never send turns (older servers)")
    p.add_argument("--old", help="run the server from this older checkout (a git worktree)")
    args = p.parse_args(argv)
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_media(Path(tmp), args.source_fps)
        if args.server:
            target, pid = args.server, None
        else:
            proc, target = start_server(args)
            pid = proc.pid
        try:
            rows = [run_level(int(n), target, clip, args, pid) for n in args.streams.split(",")]
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:  # a loaded machine: do not lose the rows
                    proc.kill()
                    proc.wait(30)
    print(
        f"\nlive streams: {args.source_fps} fps camera, analysis at {args.analysis_fps:g} fps, "
        f"{args.duration:g} s each, {os.cpu_count()} CPU cores"
    )
    head = (
        f"{'N':>2} {'frames':>7} {'analysed':>8} {'dropped':>7} {'fps out':>7} "
        f"{'first p50/p95/p99 ms':>22} {'final p50/p95/p99 ms':>22} {'at end':>6} "
        f"{'RSS MB start/max/end':>21} {'result p50/p95/p99 ms':>22} {'last upd':>8} "
        f"{'turn p50/p95 ms':>16} {'pending':>7} {'load':>15}"
    )
    print(head)
    for r in rows:
        rss = [m for _, m in r["rss"]] or [float("nan")]
        print(
            f"{r['streams']:>2} {r['sent']:>7} {r['analysed']:>8} {r['skipped_load']:>7} "
            f"{r['throughput']:>7.1f} "
            f"{'/'.join(f'{v:.0f}' for v in r['first']):>22} "
            f"{'/'.join(f'{v:.0f}' for v in r['final']):>22} {r['final_at_end']:>6} "
            f"{f'{rss[0]:.0f}/{max(rss):.0f}/{rss[-1]:.0f}':>21} "
            f"{'/'.join(f'{v:.0f}' for v in r['session_result_ms']):>22} "
            f"{_num(r['last_update_before_end_s'], '.1f'):>8} "
            f"{'/'.join(f'{v:.0f}' for v in r['turn_ms'][:2]):>16} "
            f"{_num(r['pending_high'], 'd'):>7} {' '.join(r['load']):>15}"
        )
    for r in rows:
        rss = [m for _, m in r["rss"]] or [float("nan")]
        print(
            f"{r['streams']} streams: notices {', '.join(r['notices']) or 'none'}; "
            f"RSS per session {(max(rss) - rss[0]) / r['streams']:.0f} MB above the level's start; "
            f"{r['errors']} sessions failed; the server's own time for the session result "
            f"(live_finish) p50/p95 {'/'.join(f'{v:.0f}' for v in r.get('live_finish_ms', []))} ms"
        )
        fvr = r["final_vs_result"]
        if fvr["frames"]:
            print(
                f"{r['streams']} streams: {fvr['frames']} final frames against the session "
                f"result's: mean |A/H probability change| {fvr['mean_abs_dp']:.4f}, labels "
                f"changed {fvr['label_flips']} ({fvr['label_flips'] / fvr['frames']:.1%})"
            )
    if rows and rows[0]["rss"]:
        series = rows[-1]["rss"]
        step = max(1, len(series) // 10)
        print(
            "RSS over time (last level): "
            + ", ".join(f"{t:.0f}s {m:.0f}MB" for t, m in series[::step])
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
