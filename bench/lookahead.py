"""How far after a frame the words still change its A/H result: the fusion's real look-ahead.

Run from the repository root with the project's venv::

    .venv/bin/python bench/lookahead.py                      # 2 participants x 10 categories
    .venv/bin/python bench/lookahead.py --participants 4 --after 0,1,1.5,2,2.5 --json out.json

A live session makes a frame *final* before the whole answer is known: with the words that
the streaming ASR has decoded by then. How much that changes the frame depends on how far
ahead of a frame the fusion reads words, directly (a frame's verbal cues and text read the
words around it, :mod:`ahmer.models.fusion.context`) and through its neighbours (the A/H
smoothing mixes each frame with the frames around it, and those read words further ahead).

This script answers it offline, on the challenge set of ``tests/ahgen.py`` (real faces,
espeak-ng speech, every category; ``--seed`` other than the sets the tests score): each clip
is analysed once as ``AnalyzeClip`` does (server ASR, 5 fps), then, for each offset ``x`` of
``--after`` and each frame at time ``t``, the fusion runs again with only the words that end
by ``t + x`` (what a pass that decoded the audio up to ``t + x`` knows; everything else as
in the whole clip). Per offset: the mean and 95th percentile of the frame's A/H probability
change against the whole-clip one, and the share of frames whose label (at the analyzer's
threshold) flips; per category the mean change. The smallest offset with no flips is the
look-ahead a live frame needs to be final *and* agree with ``AnalyzeClip``.

Nothing is asserted; the figures depend on the fusion (``@3`` by default, ``--fusion``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

__all__ = ["frame_changes", "main"]


def frame_changes(analyzer, tl, offsets, encode) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """Each frame's A/H probability with every word (``tl`` as preprocessed), and per offset
    its probability with only the words ending by ``t + offset`` minus that one."""
    from ahmer.preprocessing.pipeline import set_words

    full = analyzer.predict(tl, embed=encode)
    p_full = 1.0 / (1.0 + np.exp(-full.outputs["frame_ah_logit"]))
    words = list(tl.words)
    changes = {}
    for x in offsets:
        diff = np.zeros(len(tl))
        for i, t in enumerate(tl.times):
            known = [w for w in words if w.end <= t + x]
            if len(known) == len(words):
                continue
            part = copy.copy(tl)
            part.masks = dict(tl.masks)
            set_words(part, known)
            pred = analyzer.predict(part, emotion=full.emotion, embed=encode)
            diff[i] = 1.0 / (1.0 + np.exp(-pred.outputs["frame_ah_logit"][i])) - p_full[i]
        changes[x] = diff
    return p_full, changes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / ".bench-lookahead", help="work folder")
    ap.add_argument("--participants", type=int, default=2, help="participants (2)")
    ap.add_argument("--seed", type=int, default=23, help="challenge set seed (23)")
    ap.add_argument("--after", default="0,0.5,1,1.5,2,2.5,3", help="offsets x, seconds")
    ap.add_argument("--categories", default="", help="comma-separated (default: all ten)")
    ap.add_argument("--fusion", default="", help="fusion name (default: the prior)")
    ap.add_argument("--json", type=Path, dest="json_out")
    args = ap.parse_args(argv)
    offsets = [float(v) for v in args.after.split(",")]

    from ahgen import CATEGORIES, make_ah_challenge
    from bench_machine import BenchMachine

    from ahmer.models.analyzer import Analyzer, AnalyzerConfig
    from ahmer.models.store.model_store import ModelStore

    categories = tuple(c for c in args.categories.split(",") if c) or tuple(CATEGORIES)
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        ap.error(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    machine = BenchMachine.start()
    root = args.work / f"s{args.seed}-p{args.participants}-{len(categories)}c"
    t = time.perf_counter()
    dataset = make_ah_challenge(
        root, args.participants, 1, args.seed, landmarker=ModelStore().path("face_landmarker"),
        splits=(0, 0), categories=categories,
    )  # fmt: skip
    print(f"generated {len(dataset.clips)} clips: {time.perf_counter() - t:.0f} s")
    analyzer = Analyzer(AnalyzerConfig(fusion=args.fusion)).load()
    encode = analyzer.parts.text_encoder.with_cache(1 << 16).encode
    threshold = analyzer.config.threshold
    diffs = {x: [] for x in offsets}
    flips = {x: 0 for x in offsets}
    by_category: dict[float, dict[str, list[float]]] = {x: {} for x in offsets}
    t = time.perf_counter()
    for clip in dataset.clips:
        tl = analyzer.preprocess(clip.path)
        p_full, changes = frame_changes(analyzer, tl, offsets, encode)
        for x, diff in changes.items():
            diffs[x] += list(np.abs(diff))
            flips[x] += int(((p_full + diff >= threshold) != (p_full >= threshold)).sum())
            by_category[x].setdefault(clip.category, []).extend(np.abs(diff))
    frames = len(diffs[offsets[0]])
    print(
        f"{len(dataset.clips)} clips, {frames} frames at 5 fps, fusion "
        f"{analyzer.versions[analyzer.versions['fusion']]}, threshold {threshold:g}: "
        f"{time.perf_counter() - t:.0f} s\n"
    )
    print("| words known up to | mean abs change | p95 | max | label flips |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = []
    for x in offsets:
        d = np.array(diffs[x])
        row = {
            "after_s": x,
            "mean": float(d.mean()),
            "p95": float(np.percentile(d, 95)),
            "max": float(d.max()),
            "flips": flips[x],
            "flip_share": flips[x] / frames,
            "by_category": {c: float(np.mean(v)) for c, v in sorted(by_category[x].items())},
        }
        rows.append(row)
        print(
            f"| t + {x:g} s | {row['mean']:.4f} | {row['p95']:.4f} | {row['max']:.3f} | "
            f"{flips[x]} ({row['flip_share']:.1%}) |"
        )
    print("\nmean abs change by category:")
    for row in rows:
        cells = "  ".join(f"{c} {v:.3f}" for c, v in row["by_category"].items())
        print(f"  t + {row['after_s']:g} s: {cells}")
    report = {"frames": frames, "clips": len(dataset.clips), "rows": rows}
    report["machine"] = machine.finish()
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
