"""Feature-extraction speed: ``ahmer features`` on the synthetic BAH-layout set
(``tests/bahgen.py``: espeak-ng speech over a real face, 6-8 s clips), in video-seconds per
wall-second, with 1 and 2 workers, with the split files' transcripts (no ASR) and without
them (a CSV manifest of the same videos: speech recognition runs).

Each run is a fresh ``ahmer features`` process into an empty folder; the wall time includes
starting it and loading the models (what a user waits for). The load average is recorded:
on a shared machine it explains most of the spread.

    python bench/features.py [--participants 6] [--clips 4] [--workers 1 2] [--repeat 1]
                             [--no-asr] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    """``tests/bahgen.py``'s ``make_bah_dataset`` (bench is not a package; the generator
    imports its neighbour ``media``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from bahgen import make_bah_dataset

    return make_bah_dataset


def _manifest_without_transcripts(root: Path, clips) -> Path:
    path = root / "no_transcripts.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "participant", "split"])
        for clip in clips:
            writer.writerow([clip.source, clip.label, clip.pid, clip.split])
    return path


def _run(dataset: Path, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "ahmer.service.cli", "features", str(dataset)]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--workers", str(workers), "--quiet"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"ahmer features failed ({proc.returncode}): {proc.stderr[-2000:]}")
    with open(out / "index.csv", newline="", encoding="utf-8") as f:
        seconds = sum(float(r["duration"]) for r in csv.DictReader(f))
    return {"wall_s": wall, "video_s": seconds, "rate": seconds / wall, "load_before": load}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=6)
    p.add_argument("--clips", type=int, default=4, help="clips per participant")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--no-asr", action="store_true", help="skip the runs without transcripts")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()

    with tempfile.TemporaryDirectory(prefix="ahmer-bench-features-") as tmp:
        root = Path(tmp) / "BAH"
        t = time.perf_counter()
        bah = _generator()(root, args.participants, args.clips, seed=0)
        generated = time.perf_counter() - t
        datasets = {"split-file transcripts": root}
        if not args.no_asr:
            datasets["ASR"] = _manifest_without_transcripts(root, bah.clips)
        runs = []
        for name, dataset in datasets.items():
            for workers in args.workers:
                results = [_run(dataset, Path(tmp) / "out", workers) for _ in range(args.repeat)]
                rates = [r["rate"] for r in results]
                row = {
                    "transcripts": name,
                    "workers": workers,
                    "video_s": results[0]["video_s"],
                    "wall_s": statistics.median(r["wall_s"] for r in results),
                    "rate": statistics.median(rates),
                    "rates": rates,
                    "load_before": [r["load_before"] for r in results],
                }
                runs.append(row)
                print(
                    f"{name:>22}, {workers} worker(s): {row['video_s']:.0f} video-s in "
                    f"{row['wall_s']:.1f} s = {row['rate']:.2f} video-s/s "
                    f"(load before: {', '.join(f'{x:.1f}' for x in row['load_before'])})"
                )
    doc = {
        "clips": len(bah.clips),
        "generated_s": generated,
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    doc["machine"] = machine.finish()
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
