"""``ahmer bench``: how fast ahmer runs on this machine, measured here in about a minute.

Speed depends on the host (its CPU's SIMD flags, its cores, and what else runs on it), so
the figures in the docs are a guide only; this command measures the user's own machine.
It makes a short clip the way ``ahmer sample`` does (espeak-ng over the store's face photo,
so no file of the user's is needed; or analyses MEDIA), loads the analyzer once, runs the
clip once to warm up and then ``--repeat`` times, and prints:

- the machine (CPU model, SIMD flags, cores) and, over the run, steal time and load;
- each stage's median seconds, the **expected real-time factor** (video seconds analysed
  per wall second) and CPU seconds per video second;
- the **live capacity**: camera streams one node can analyse at ``--fps``, estimated as
  ``cores x --busy / (CPU seconds per stream second)``, leaving ``1 - --busy`` of the CPU
  for bursts. The cost is measured on the same clip streamed through a live session in
  this process (:func:`live_cpu_per_s`): the JPEG frames and 0.1 s audio chunks a client
  sends, and a speech step each time one falls due, as the server runs them. A live stream
  costs several times a clip's second: streaming ASR decodes the recent audio again every
  0.5 s, and every frame is evaluated over a sliding window. Size pods and the autoscaler's
  target from it, then check with ``bench/stream.py`` on the node.

Heavy imports stay inside :func:`run_bench` (the CLI starts fast).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .args import examples

__all__ = ["add_bench_parser", "run_bench", "live_capacity", "live_cpu_per_s"]

BENCH_TEXT = (
    "Well, I have been thinking about it. I guess maybe I could try, but I'm not sure, um, "
    "I don't know. Part of me really wants to stop, but it helps me relax after work. "
    "I will definitely quit smoking next week."
)
DEFAULT_BUSY = 0.7  # share of the node's CPU the live estimate fills


def add_bench_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure this machine: expected real-time factor and live streams per node",
        description="Analyse a short clip made here (or MEDIA) a few times and print the "
        "expected real-time factor, the CPU cost per video second and the live capacity "
        "(streams per node at --fps), with the machine's CPU, SIMD flags, cores, steal time "
        "and load. Needs `ahmer models build`, and espeak-ng unless MEDIA is given.",
        **examples(
            "ahmer bench                        # ~1 minute on 2 cores",
            "ahmer bench answer.mp4 --repeat 3  # your own clip",
            "ahmer bench --json bench.json      # every number, for the record",
        ),
    )
    p.add_argument("media", type=Path, nargs="?", metavar="MEDIA", help="a clip to analyse")
    p.add_argument("--fps", type=_positive, default=None, help="analysis rate (the default: 5)")
    p.add_argument("--repeat", type=_count, default=2, help="timed runs after a warm-up (2)")
    p.add_argument(
        "--busy",
        type=_share,
        default=DEFAULT_BUSY,
        metavar="SHARE",
        help=f"share of the CPU the live estimate may fill, 0.1..1 ({DEFAULT_BUSY})",
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="also write every number here")
    p.set_defaults(func=run_bench)


def _bounded(kind: type, low: float, high: float, shown: str):
    """An argparse type: a ``kind`` number within ``[low, high]`` (``shown`` says the range)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"not a {what}: {text!r}") from None
        if not low <= value <= high or (kind is float and value == 0 and low == 0):
            raise argparse.ArgumentTypeError(f"must be {shown}, got {text}")
        return value

    return parse


_positive = _bounded(float, 0.0, 120.0, "in (0, 120]")
_count = _bounded(int, 1, 20, "1..20")
_share = _bounded(float, 0.1, 1.0, "0.1..1")


def live_capacity(cores: int, cpu_per_stream_s: float, busy: float = DEFAULT_BUSY) -> float:
    """Streams one node can analyse live: ``cores x busy / cpu_per_stream_s`` (CPU seconds
    one second of a live stream costs, :func:`live_cpu_per_s`); 0 when it is unknown."""
    if cpu_per_stream_s <= 0:
        return 0.0
    return cores * busy / cpu_per_stream_s


def live_cpu_per_s(analyzer, media: Path, fps: float, cpu_s) -> float:
    """CPU seconds (``cpu_s()``: this process's) one live stream of ``media`` costs per
    second of stream: the requests ``ahmer client stream`` would send for it
    (:func:`ahmer.client.replay_requests`: JPEG frames at the source rate, 0.1 s PCM16
    chunks, in time order; encoded before the clock starts, as the client's work) fed to a
    :class:`~ahmer.service.live.LiveSession` as the server's stream handler feeds it (camera
    frames past the analysis rate skipped by the session's grid), as fast as it takes them,
    with each speech step run when it falls due (one ASR pass per 0.5 s of audio, the rate a
    stream gets when the node keeps up), then finished."""
    from ahmer.client import replay_requests
    from ahmer.models.contract import SAMPLE_RATE

    from ..live import LiveConfig, LiveSession

    requests = list(replay_requests(media))
    kinds = {request.WhichOneof("message") for _, request in requests}
    config = LiveConfig(
        fps=fps,
        video="jpeg" if "video" in kinds else "",
        audio_rate=SAMPLE_RATE if "audio" in kinds else 0,
    )
    start = cpu_s()
    session = LiveSession(analyzer, config)
    try:
        for _, request in requests:
            if request.WhichOneof("message") == "video":
                if session.grid.take(request.video.pts):
                    session.add_video(request.video.pts, request.video.data)
            else:
                session.add_audio(request.audio.data)
            if session.speech_step_due():
                session.run_speech_step()
        session.finish()
    finally:
        session.close()
    seconds = requests[-1][0] if requests else 0.0
    return (cpu_s() - start) / seconds if seconds > 0 else 0.0


def run_bench(args: argparse.Namespace) -> int:
    import resource
    import statistics
    import tempfile
    import time

    from ahmer.models.analyzer import Analyzer, AnalyzerConfig
    from ahmer.preprocessing.host import CpuMeter, host_info

    from ..files import check_output_path, fail_if_unreadable

    if args.media is not None:
        fail_if_unreadable(args.media)
    if args.json is not None:
        check_output_path(args.json)
    host = host_info()
    print(f"ahmer bench on {host.line()}", flush=True)
    config = AnalyzerConfig() if args.fps is None else AnalyzerConfig(fps=args.fps)

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with CpuMeter() as meter, tempfile.TemporaryDirectory(prefix="ahmer-bench-") as tmp:
        media = args.media
        if media is None:
            from .sample import make_sample

            data, _ = make_sample(BENCH_TEXT)
            media = Path(tmp) / "bench.mp4"
            media.write_bytes(data)
        t = time.perf_counter()
        analyzer = Analyzer(config).load()
        load_s = time.perf_counter() - t
        runs = []
        try:
            for i in range(args.repeat + 1):  # the first is the warm-up
                cpu, t = cpu_s(), time.perf_counter()
                tl = analyzer.preprocess(media)
                result = analyzer.postprocess(tl, analyzer.predict(tl))
                wall = time.perf_counter() - t
                if i:
                    runs.append((wall, cpu_s() - cpu, dict(result.timings)))
                    print(f"  run {i}/{args.repeat}: {wall:.2f} s", flush=True)
            duration = float(tl.duration)
            live_per_s = live_cpu_per_s(analyzer, media, config.fps, cpu_s)
        finally:
            analyzer.close()
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    stages = {
        k: statistics.median(r[2].get(k, 0.0) for r in runs)
        for k in runs[0][2]
        if isinstance(runs[0][2][k], int | float)
    }
    rtf = duration / wall if wall > 0 else 0.0
    per_video_s = cpu / duration if duration > 0 else 0.0
    streams = live_capacity(host.cores, live_per_s, args.busy)
    usage = meter.usage
    doc = {
        "machine": host.to_dict(),
        "run": usage.to_dict(),
        "media": str(args.media) if args.media else "made here: espeak-ng + the store's face",
        "duration_s": duration,
        "fps": config.fps,
        "model_load_s": load_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "stages_s": stages,
        "real_time_factor": rtf,
        "cpu_s_per_video_s": per_video_s,
        "live_cpu_s_per_stream_s": live_per_s,
        "live_streams_per_node": streams,
        "busy": args.busy,
    }
    shown = ", ".join(f"{k} {v:.2f}" for k, v in stages.items() if v >= 0.005)
    print(f"clip: {duration:.1f} s at {config.fps:g} fps; model load {load_s:.1f} s (once)")
    print(f"stages (median s; the audio branch runs beside the video): {shown}")
    print(
        f"expected real-time factor: {rtf:.1f}x (a 30 s answer in ~{30 / rtf:.1f} s); "
        f"{per_video_s:.3f} CPU-s per video second"
        if rtf > 0
        else "expected real-time factor: n/a"
    )
    print(
        f"live capacity at {config.fps:g} fps: ~{streams:.1f} streams per node "
        f"({host.cores} cores at {args.busy:.0%} busy; a live stream of this clip costs "
        f"{live_per_s:.2f} CPU-s per second, mostly streaming ASR decoding the recent audio "
        "again every 0.5 s). Past it the ASR passes of a stream come further apart and its "
        "final frame results later (at most 6 s behind, then without their words)"
    )
    print(f"during the run: {usage.line()}")
    if usage.load_start is not None and usage.load_start >= host.cores:
        print(
            "note: the machine was busy (load >= cores): these figures are below what it "
            "does when idle; run again when it is quiet",
            file=sys.stderr,
        )
    if args.json is not None:
        from ..files import write_output_text

        write_output_text(args.json, json.dumps(doc, indent=1) + "\n")
    return 0
