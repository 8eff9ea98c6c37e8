"""``ahmer features DATASET --out DIR``: the fusion inputs and frame labels of every video
of a labelled dataset (the BAH release layout or a CSV manifest), for ``ahmer train`` and
``ahmer evaluate``.

Runs on the batch engine: worker processes, resumable (a re-run skips videos whose file is
current; changed labels only rewrite the labels), atomic files, ``failures.csv``, progress on
stderr. Formats: :mod:`ahmer.service.batch.features`; layouts:
:mod:`ahmer.models.training.datasets`.

Exit codes as ``ahmer score``: 0 all written, 1 some failed, 2 usage error (a dataset that
cannot be read: the message names the file and line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import fail_if_unreadable
from .args import add_analysis_arguments, analysis_config, examples
from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .score import ProgressDisplay, _check_backend, _unwritable

__all__ = ["add_features_parser", "run_features"]

PROG = "ahmer features"
# what changes the features; the threshold and the fusion do not (the inputs are the
# fusion's, and cue_features are the graph's fixed feature values)
OPTIONS = (
    "fps",
    "backend",
    "device",
    "whisper_model",
    "landmark_fps",
    "face_engine",
    "strict",
    "triton_url",
    "triton_tls",
    "triton_timeout",
)


def add_features_parser(sub) -> None:
    p = sub.add_parser(
        "features",
        help="extract fusion inputs and frame labels of a labelled dataset (for training)",
        description="Read a labelled dataset (a folder in the BAH release layout: Videos/, "
        "train/val/test split files, video_annotation.yaml, class_id.yaml; or a CSV manifest "
        "path,label[,transcript][,participant][,split][,frame_labels]) and write per video "
        "the fusion graph's inputs with the frame labels at the analysis frames, plus "
        "index.csv and dataset.json. Transcripts in the split files are used instead of "
        "speech recognition. Re-running skips what is done; Ctrl-C keeps what finished.",
        **examples(
            "ahmer features BAH/ --out feats/ --workers 2",
            "ahmer features answers.csv --out feats/",
            "ahmer features BAH/ --out feats/ --limit 20      # a first look",
        ),
    )
    p.add_argument("dataset", type=Path, metavar="DATASET", help="BAH folder or manifest CSV")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (1: in-process)")
    p.add_argument("--limit", type=int, help="only the first N videos (by id)")
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        action="append",
        help="only videos of this split (repeatable)",
    )
    p.add_argument(
        "--label-fps",
        type=float,
        help="frame rate of the annotated frames (default: each video's own)",
    )
    add_analysis_arguments(p, OPTIONS)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run_features)


def _usage(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_args(args: argparse.Namespace) -> str | None:
    if args.workers < 1:
        return "--workers must be at least 1"
    if args.limit is not None and args.limit < 1:
        return "--limit must be at least 1"
    if args.label_fps is not None and args.label_fps <= 0:
        return "--label-fps must be positive"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out}: not a folder"
    return _unwritable(args.out)


def run_features(args: argparse.Namespace) -> int:
    problem = _check_args(args)
    if problem:
        return _usage(problem)
    fail_if_unreadable(args.dataset, folder_ok=True)  # as every command checks its inputs
    from ahmer.models.training.datasets import Dataset, DatasetError, open_dataset

    from ..batch.engine import BatchAbort, model_fingerprint, run_batch
    from ..batch.features import (
        FeaturesJob,
        batch_items,
        plan_features,
        relabel,
        write_dataset_json,
        write_index,
    )
    from ..batch.tables import write_failures

    try:
        full = open_dataset(args.dataset)
    except DatasetError as exc:
        return _usage(str(exc))
    items = [i for i in full.items if not args.split or i.split in args.split]
    items = items[: args.limit] if args.limit else items
    if not items:
        return _usage(f"{args.dataset}: no videos selected")
    dataset = Dataset(full.root, full.layout, items, full.files, full.unlisted)
    problem = _check_backend(args)
    if problem:
        return _usage(problem)

    options = analysis_config(args)
    models = model_fingerprint(whisper_model=options.whisper_model)
    todo, done, stale = plan_features(items, args.out, options, models, args.label_fps)
    for item in stale:
        relabel(args.out, item, args.label_fps)
    if not args.quiet:
        unlisted = (
            f" ({full.unlisted} videos under Videos/ in no split file)" if full.unlisted else ""
        )
        print(
            f"{PROG}: {len(items)} video(s) ({full.layout} layout){unlisted}, {len(done)} "
            f"already done, {len(stale)} relabelled, {len(todo)} to extract with "
            f"{args.workers} worker(s)",
            file=sys.stderr,
        )
    job = FeaturesJob(args.out, options, models, {i.id: i for i in todo}, args.label_fps)
    display = ProgressDisplay(len(todo), quiet=args.quiet, prog=PROG)
    try:
        outcome = run_batch(
            batch_items(todo), args.out, options, models, args.workers, display.event, job
        )
    except BatchAbort as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    display.close()
    if notice := outcome.stop_notice():  # the batch's circuit breaker opened: said once
        print(f"{PROG}: {notice}", file=sys.stderr)

    failures = outcome.failure_rows(items)
    write_failures(args.out / "failures.csv", failures)
    metas = write_index(args.out, items)
    write_dataset_json(args.out, dataset, options, models, metas, len(failures), args.label_fps)
    print(
        f"{PROG}: {len(metas)} video(s) written ({len(done) + len(stale)} from earlier runs), "
        f"{len(failures)} failed; wrote features/, index.csv, dataset.json, failures.csv "
        f"in {args.out}"
    )
    if outcome.interrupted:
        print(f"{PROG}: interrupted; finished files are kept, re-run to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failures else EXIT_OK
