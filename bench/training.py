"""Training cost: ``ahmer train`` on a synthetic features folder of BAH's size (1,427 videos
of 300 participants, 12-42 s at 5 fps, mean ~27 s like BAH; ``tests/synthfeatures.py``: the
real prior graph's cue features, A/H segments carried by weak cues and embedding
directions), timed as a user waits for it (a fresh process: imports, loading the features,
every epoch, thresholds, export, the parity check, evaluating trained and prior on val and
test). Peak memory is the process's peak RSS (the card's ``training.peak_rss_mb``).

    python bench/training.py [--participants 300] [--per 5] [--epochs 20] [--threads 1 2]
                             [--json OUT]

A fixed number of epochs (``--patience`` = epochs) so runs compare; the card's per-epoch
seconds give the time of one pass over the training split.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=300)
    parser.add_argument("--per", type=int, default=5, help="videos per participant")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()

    sys.path.insert(0, str(ROOT / "tests"))
    from synthfeatures import write_features

    from ahmer.models.contract import FUSION_MODEL
    from ahmer.models.store.model_store import ModelStore

    work = Path(tempfile.mkdtemp(prefix="ahmer-bench-train-"))
    try:
        t = time.perf_counter()
        feats = write_features(
            work / "feats",
            ModelStore().path(FUSION_MODEL),
            participants=args.participants,
            per_participant=args.per,
            frames=(60, 211),
        )
        made = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (feats / "features").iterdir()) / 2**20
        print(f"features: {args.participants * args.per} videos, {size:.0f} MB, {made:.0f} s")
        runs = []
        for threads in args.threads:
            out = work / f"run-{threads}"
            cmd = [sys.executable, "-m", "ahmer.service.cli", "train", str(feats), "--out",
                   str(out), "--epochs", str(args.epochs), "--patience", str(args.epochs),
                   "--threads", str(threads), "--quiet"]  # fmt: skip
            load = os.getloadavg()[0]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t
            card = json.loads((out / "card.json").read_text())
            epochs = [e["seconds"] for e in card["training"]["history"]]
            test = card["metrics"]["test"]
            run = {
                "threads": threads,
                "wall_s": round(wall, 1),
                "card_seconds": card["training"]["seconds"],
                "epoch_s_median": round(statistics.median(epochs), 2),
                "epochs": len(epochs),
                "peak_rss_mb": card["training"]["peak_rss_mb"],
                "load_before": round(load, 1),
                "test_frame_avgf1": {k: test[k]["frame"]["avgf1"] for k in ("trained", "prior")},
                "sha256": card["sha256"],
            }
            runs.append(run)
            print(json.dumps(run))
        report = {"videos": args.participants * args.per, "features_mb": round(size), "runs": runs}
        report["machine"] = machine.finish()
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
