"""``ahmer evaluate FEATURES [--fusion SPEC]``: the BAH metrics of any fusion (the zero-shot
prior by default) over a features folder's fusion inputs, run with ONNX Runtime, so fusions
can be compared on the same data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..files import PathError, UsageError, fail_if_unreadable
from .args import check_outputs, examples, write_output

__all__ = ["add_evaluate_parser", "run_evaluate"]

SPLIT_CHOICES = ("train", "val", "test", "all")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="BAH metrics of a fusion (default: the zero-shot prior) on a features folder",
        description="Run a fusion over the fusion inputs of FEATURES (written by `ahmer "
        "features`) and print the BAH metrics at frame level (labelled analysis frames) and "
        "video level: AVGF1 (macro F1), AP (thresholds 0..0.999), accuracy and per-class F1. "
        "Splits are those `ahmer train` uses (index.csv, else participant-disjoint folds "
        "by --seed).",
        **examples(
            "ahmer evaluate feats/                       # the prior on the test split",
            "ahmer evaluate feats/ --fusion bah1 --json bah1-test.json",
            "ahmer evaluate feats/ --fusion runs/bah1 --split val",
        ),
    )
    p.add_argument("features", type=Path, help="a features folder written by `ahmer features`")
    p.add_argument(
        "--fusion",
        default="",
        help="an installed fusion's name, a fusion .onnx or a training run folder (default: "
        "the zero-shot prior)",
    )
    p.add_argument("--split", choices=SPLIT_CHOICES, default="test", help="videos to score")
    p.add_argument("--seed", type=int, default=0, help="the folds' seed, without splits (0)")
    p.add_argument(
        "--threshold",
        type=_probability,
        default=0.5,
        help="decision threshold on the A/H probability (0.5; a trained fusion has its "
        "chosen thresholds folded in)",
    )
    p.add_argument("--json", type=Path, dest="json_out", help="write the metrics here (-: stdout)")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    fail_if_unreadable(args.features, folder_ok=True)
    if not args.features.is_dir():
        raise PathError(f"{args.features}: not a folder (a features folder of `ahmer features`)")
    to_stdout = check_outputs({"--json": args.json_out}, (args.features,))
    from ahmer.models.fusion.registry import FusionError, resolve_fusion
    from ahmer.models.store.model_store import ModelStore
    from ahmer.models.training.featureset import (
        FeatureError,
        FeatureSet,
        assign_splits,
        level_metrics,
        score_fusion,
    )

    from .train import metrics_table

    try:
        features = FeatureSet.open(args.features)
    except FeatureError as exc:  # its dataset.json or index.csv: as `features` on a dataset
        raise UsageError(str(exc)) from exc
    try:
        ref = resolve_fusion(ModelStore(), args.fusion)
    except FusionError as exc:  # as in `ahmer score --fusion`
        raise UsageError(f"--fusion: {exc}") from exc
    if args.split == "all":
        rows, method = list(features.rows), "all videos"
    else:
        splits, method = assign_splits(features.rows, args.seed)
        rows = splits[args.split]
    if not rows:
        raise ValueError(f"{args.features}: no videos in the {args.split} split ({method})")
    metrics = level_metrics(score_fusion(features, rows, ref.path), args.threshold)
    report = {
        "fusion": {"name": ref.name, "version": ref.version, "sha256": ref.sha256},
        "features": {"fingerprint": features.fingerprint, "videos": len(rows)},
        "split": args.split,
        "splits": method,
        "threshold": args.threshold,
        **metrics,
    }
    if args.json_out:
        write_output(args.json_out, json.dumps(report, indent=2))
    out = sys.stderr if to_stdout else sys.stdout
    which = "all videos" if args.split == "all" else f"the {args.split} split, {method}"
    print(
        f"fusion {ref.name} ({ref.version}), threshold {args.threshold:g}, on {len(rows)} "
        f"videos ({which}):",
        file=out,
    )
    print("\n".join(metrics_table({"m": metrics}, {ref.name: "m"})), file=out)
    for level in ("frame", "video"):
        if metrics[level] is None:
            print(f"  {level}: no labelled {level}s in this split", file=out)
    from ahmer.models.training.card import split_warnings

    people = len({r.participant or r.id for r in rows})
    found = split_warnings({args.split: {"videos": len(rows), "participants": people}})
    for warning in found if args.split != "all" else ():
        print(f"warning: {warning}", file=out)
    return 0
