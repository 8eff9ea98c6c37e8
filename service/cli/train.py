"""``ahmer train FEATURES --out RUN``: learn the fusion graph's weights from a features folder
(``ahmer features``) and write the graph and its model card (:mod:`ahmer.models.training.train`).
Needs torch (the ``export`` extra)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from ahmer.models.training.config import TrainConfig

from ..files import PathError, UsageError, fail_if_unreadable
from .args import examples

__all__ = ["add_train_parser", "run_train", "metrics_table"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_train_parser(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train the A/H fusion on a features folder (needs the export extra: torch)",
        description="Train the fusion graph's weights (cue weights, learned face/voice/text "
        "terms, temporal smoothing, clip pooling) on the train split of FEATURES, select the "
        "epoch and the decision thresholds on the val split, and write RUN/fusion.onnx with "
        "its model card RUN/card.json and RUN/card.md (val and test metrics beside the "
        "zero-shot prior's). Without splits in index.csv: participant-disjoint folds. "
        "Deterministic for a seed, options and thread count. Progress goes to stderr.",
        **examples(
            "ahmer features BAH/ --out feats/ && ahmer train feats/ --out runs/bah1",
            "ahmer train feats/ --out runs/bah1 --seed 3 --epochs 80 --device cuda",
            "ahmer models add-fusion runs/bah1 && ahmer analyze answer.mp4 --fusion bah1",
        ),
    )
    p.add_argument("features", type=Path, help="a features folder written by `ahmer features`")
    p.add_argument("--out", type=Path, required=True, help="the run folder to write")
    p.add_argument("--seed", type=int, default=d.seed, help=f"folds and batch order ({d.seed})")
    p.add_argument("--epochs", type=_positive_int, default=d.epochs, help=f"at most ({d.epochs})")
    p.add_argument(
        "--patience",
        type=_positive_int,
        default=d.patience,
        help=f"stop after this many epochs without a better val AVGF1 ({d.patience})",
    )
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="videos a step")
    p.add_argument("--lr", type=_non_negative, default=d.lr, help=f"Adam's step size ({d.lr:g})")
    p.add_argument(
        "--l2", type=_non_negative, default=d.l2, help=f"L2 on embedding weights ({d.l2:g})"
    )
    p.add_argument(
        "--clip-weight",
        type=_non_negative,
        default=d.clip_weight,
        help=f"weight of the video-label loss beside the frame loss ({d.clip_weight:g})",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default=d.device, help="torch device")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=d.threads,
        help=f"torch CPU threads ({d.threads}; the same count gives the same graph)",
    )
    p.add_argument("--name", help="the fusion's name in its card (default: the run folder's)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run_train)


def _fmt(value) -> str:
    """A metric as printed: 4 decimals, ``n/a`` where it is undefined (None or NaN)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


def metrics_table(metrics: dict, columns: dict[str, str]) -> list[str]:
    """Lines of a table: per level, the AVGF1 / AP / accuracy / F1 of each column's
    ``{"frame": ..., "video": ...}`` metrics (``columns``: title -> key in ``metrics``; a
    title is shown whole, however long), then the note on BAH's AP convention."""
    from ahmer.models.training.card import AP_NOTE

    wide = max(10, *(len(title) for title in columns))
    lines = [
        f"  {'level':<6} {'fusion':<{wide}} {'AVGF1':>7} {'AP':>7} {'acc':>7} {'F1_0':>7} "
        f"{'F1_1':>7} {'n':>7}"
    ]
    for level in ("frame", "video"):
        for title, key in columns.items():
            m = (metrics.get(key) or {}).get(level)
            if not m:
                continue
            lines.append(
                f"  {level:<6} {title:<{wide}} {_fmt(m['avgf1']):>7} {_fmt(m['ap']):>7} "
                f"{_fmt(m['accuracy']):>7} {_fmt(m['f1_0']):>7} {_fmt(m['f1_1']):>7} {m['n']:>7}"
            )
    return [*lines, *textwrap.wrap(AP_NOTE, 92, initial_indent="  ", subsequent_indent="  ")]


def run_train(args: argparse.Namespace) -> int:
    fail_if_unreadable(args.features, folder_ok=True)
    if not args.features.is_dir():
        raise PathError(f"{args.features}: not a folder (a features folder of `ahmer features`)")
    if args.out.exists() and not args.out.is_dir():
        raise PathError(f"{args.out}: exists and is not a folder")
    from ahmer.models.training.featureset import FeatureError, FeatureSet
    from ahmer.models.training.train import train

    try:  # its dataset.json and index.csv, before any work
        FeatureSet.open(args.features)
    except FeatureError as exc:  # not a usable features folder: as `features` on a dataset
        raise UsageError(str(exc)) from exc
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        lr=args.lr,
        l2=args.l2,
        clip_weight=args.clip_weight,
        device=args.device,
        threads=args.threads,
    )

    def say(line: str) -> None:
        if not args.quiet:
            print(f"ahmer train: {line}", file=sys.stderr, flush=True)

    report = train(args.features, args.out, config, progress=say, name=args.name)
    card = report.card
    print(f"fusion {card['name']}: {report.graph} (sha256 {card['sha256'][:12]})")
    for split in ("val", "test"):
        block = card["metrics"].get(split)
        if not block:
            print(f"{split}: no videos")
            continue
        print(f"{split}, on {card['splits'][split]['videos']} videos:")
        print("\n".join(metrics_table(block, {"trained": "trained", "prior": "prior"})))
    t = card["thresholds"]
    print(
        f"thresholds chosen on val (folded into the graph; 0.5 decides): frame {t['frame']:g}, "
        f"clip {t['clip']:g}"
    )
    print(
        f"training: {report.seconds:.1f} s, peak RSS {report.peak_rss_mb:.0f} MB, epoch "
        f"{card['training']['selected_epoch']} of {card['training']['epochs_run']} kept"
    )
    for warning in card.get("warnings") or ():  # also in the card and the result notice
        print(f"warning: {warning}")
    print(f"install: ahmer models add-fusion {args.out}")
    return 0
