"""``ahmer score INPUT... --out DIR``: score a collection of recorded answers.

Inputs are media files, folders (searched recursively) and manifest CSVs. Each clip's result
is written to ``DIR/results/<id>.json`` as soon as it is done; a re-run skips results whose
key (media sha256, transcript, options, models) still matches. Then ``clips.csv``,
``frames.parquet`` (and ``frames.csv``), ``failures.csv``, ``report.html`` and, with
``--labels``, ``metrics.json`` are written for the run's clips. ``--shard i/n`` runs one
deterministic slice and writes only results (and ``failures.shard-i-of-n.csv``);
``ahmer score --merge --out DIR`` then builds the tables and report from every result.

Exit codes: 0 all scored, 1 some failed, 2 usage error (before any work), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..files import fail_if_unreadable
from .args import add_analysis_arguments, analysis_config, examples
from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:  # the batch engine is imported when a run starts, not to build the parser
    from ..batch.tables import BatchResult

__all__ = ["add_score_parser", "run_score", "ProgressDisplay", "write_outputs"]

METRICS_SCHEMA = "ahmer.metrics/1"


def add_score_parser(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score a collection of clips in batch (resumable, parallel, with a report)",
        description="Score many recorded answers: per-clip result JSON, clips.csv, "
        "frames.parquet, an offline HTML report and, given labels in the BAH layout, the BAH "
        "metrics. Re-running skips what is done; Ctrl-C keeps what finished.",
        **examples(
            "ahmer score recordings/ --out scores/",
            "ahmer score list.csv --out scores/ --workers 4 --frames-csv",
            "ahmer score recordings/ --out scores/ --labels train.txt video_annotation.yaml",
            "ahmer score recordings/ --out scores/ --shard 0/4   # one of 4 machines",
            "ahmer score --merge --out scores/                  # when the shards are done",
        ),
    )
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        metavar="INPUT",
        help="media files, folders (recursive, by media extension) or manifest CSVs "
        "(columns path[,transcript][,id]; relative paths resolve against the CSV's folder)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (1: in-process)")
    add_analysis_arguments(p)
    p.add_argument("--shard", help="run only slice i of n (i/n, 0-based), e.g. 0/4")
    p.add_argument(
        "--merge", action="store_true", help="no analysis: build tables and report from DIR"
    )
    p.add_argument(
        "--labels",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="BAH labels: split files (video_path,label,transcript) and/or "
        "video_annotation.yaml; writes metrics.json",
    )
    p.add_argument(
        "--label-fps",
        type=float,
        help="frame rate of the annotated frames (default: each video's own)",
    )
    p.add_argument("--frames-csv", action="store_true", help="also write frames.csv")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run_score)


# -- progress ----------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class ProgressDisplay:
    """Batch progress on stderr: a live bar on a terminal, a plain line every ``interval``
    seconds (and at the end) otherwise. Shows files done/total, media seconds done, the rate
    (media seconds per wall second), ETA and failures; never any transcript text."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        quiet: bool = False,
        prog: str = "ahmer score",
    ) -> None:
        self.stream, self.prog = stream or sys.stderr, prog
        self.total, self.quiet = total, quiet
        self.tty = self.stream.isatty()
        self.interval = 0.5 if self.tty else 10.0
        self.start = self.last = time.monotonic()
        self.done = self.failed = 0
        self.seconds = 0.0

    def event(self, kind: str, info: dict[str, Any]) -> None:
        if kind == "done":
            self.done += 1
            self.seconds += float(info.get("duration") or 0.0)
            if info.get("error"):
                self.failed += 1
                self._write(f"failed: {info['id']}: {info['error']}", final=True)
        self.render()

    def line(self) -> str:
        elapsed = max(1e-6, time.monotonic() - self.start)
        rate = self.seconds / elapsed
        eta = "?"
        if self.done:
            eta = _clock(elapsed / self.done * (self.total - self.done))
        text = (
            f"{self.done}/{self.total} files, {self.seconds:.1f} video-s, "
            f"{rate:.2f} video-s/s, ETA {eta}, {self.failed} failed"
        )
        if self.tty:
            width = 24
            filled = int(width * self.done / self.total) if self.total else width
            text = f"[{'#' * filled}{'.' * (width - filled)}] " + text
        return text

    def render(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self.last < self.interval):
            return
        self.last = now
        self._write(self.line())

    def _write(self, text: str, final: bool = False) -> None:
        if self.quiet:
            return
        if self.tty:
            end = "\n" if final else ""
            self.stream.write(f"\r\x1b[K{text}{end}")
        else:
            self.stream.write(f"{self.prog}: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.quiet:
            return
        self._write(self.line(), final=True)


# -- outputs -----------------------------------------------------------------------------------


def compute_metrics(results: list[BatchResult], labels, label_fps: float | None) -> dict[str, Any]:
    from ahmer.models.training.evaluation import evaluate

    report = evaluate([b.scored_video() for b in results], labels, label_fps=label_fps)
    models: dict[str, str] = {}
    for b in results:
        models.update(b.result.models)
    return {
        "schema": METRICS_SCHEMA,
        "definitions": {
            "avgf1": "mean of the F1 of class 0 and class 1 (macro F1); the F1 of a class "
            "absent from labels and predictions is 0",
            "ap": "trapezoid area under (recall, precision) of class 1 over thresholds "
            "numpy.arange(0, 1, 0.001), predicting positive when score >= t, precision 0 when "
            "nothing is predicted (as sklearn.metrics.auc in the BAH reference code); null "
            "without positive labels",
            "video_level": "score: clip ah_probability; prediction: clip ah_label",
            "frame_level": "each labelled source frame (index / fps) takes the nearest "
            "analysis frame's ah_probability and ah_label",
            "matching": "by file stem, ties broken by the longest common path suffix",
        },
        "label_fps": label_fps,
        "models": models,
        **report,
    }


def write_outputs(
    out: Path,
    results: list[BatchResult],
    failures: list[dict[str, Any]],
    frames_csv: bool = False,
    report: bool = True,
    metrics: dict[str, Any] | None = None,
    labels=None,
    label_fps: float | None = None,
) -> list[str]:
    """Tables, report and metrics for ``results`` (the report shows ``labels``, a
    :class:`~ahmer.models.training.evaluation.LabelSet`, when given); returns the names written."""
    from ..batch.tables import (
        write_clips_csv,
        write_failures,
        write_frames_csv,
        write_frames_parquet,
    )
    from ..files import atomic_write_text

    written = []
    write_failures(out / "failures.csv", failures)
    written.append("failures.csv")
    write_clips_csv(out / "clips.csv", results)
    write_frames_parquet(out / "frames.parquet", results)
    written += ["clips.csv", "frames.parquet"]
    if frames_csv:
        write_frames_csv(out / "frames.csv", results)
        written.append("frames.csv")
    if metrics is not None:
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        written.append("metrics.json")
    if report:
        from ..batch.report import render_report

        page = render_report(results, failures, metrics=metrics, labels=labels, label_fps=label_fps)
        atomic_write_text(out / "report.html", page)
        written.append("report.html")
    return written


def _metrics_and_outputs(
    args: argparse.Namespace, results: list[BatchResult], failures: list[dict[str, Any]], labels
) -> tuple[list[str], dict[str, Any] | None]:
    """The metrics (with ``labels``) and every output of the run: (names written, metrics)."""
    metrics = compute_metrics(results, labels, args.label_fps) if labels else None
    written = write_outputs(
        args.out,
        results,
        failures,
        args.frames_csv,
        not args.no_report,
        metrics,
        labels,
        args.label_fps,
    )
    return written, metrics


def _metrics_line(metrics: dict[str, Any]) -> str:
    parts = []
    for level in ("video", "frame"):
        m = metrics.get(level)
        if m:
            ap = "n/a" if m["ap"] is None else f"{m['ap']:.4f}"
            parts.append(f"{level} AVGF1 {m['avgf1']:.4f} AP {ap} (n={m['n']})")
    return "metrics: " + ("; ".join(parts) if parts else "no clip matched the labels")


# -- the command -------------------------------------------------------------------------------


def _usage(message: str) -> int:
    print(f"ahmer score: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_args(args: argparse.Namespace) -> str | None:
    if args.merge and args.inputs:
        return "--merge takes no INPUT (it reads DIR/results)"
    if not args.merge and not args.inputs:
        return "no INPUT given (files, folders or manifest CSVs)"
    if args.workers < 1:
        return "--workers must be at least 1"
    if args.label_fps is not None and args.label_fps <= 0:
        return "--label-fps must be positive"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out}: not a folder"
    return _unwritable(args.out)


def _unwritable(folder: Path) -> str | None:
    """Why ``folder`` (or the folder that would hold it) cannot be written, or None."""
    import os

    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"--out {folder}: cannot be created ({probe} is not a folder)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"--out {folder}: cannot write in {probe} (read-only or no permission)"
    return None


def _check_backend(args: argparse.Namespace) -> str | None:
    """Why the backend cannot be used (None: it can), before any work: a bad option, or a
    Triton that does not answer (``--triton-url`` wrong, or down)."""
    from ahmer.models.backends.base import BackendError
    from ahmer.models.backends.factory import backend_options, make_backend

    config = analysis_config(args)
    try:
        backend = make_backend(config.backend, **backend_options(config))
    except BackendError as exc:
        return str(exc)
    try:
        if not backend.ready():
            where = getattr(backend, "where", config.backend)
            why = getattr(backend, "problem", None) or "not ready"
            return f"the inference server ({where}) is unavailable: {why}"
    finally:
        backend.close()
    return None


def run_score(args: argparse.Namespace) -> int:
    problem = _check_args(args)
    if problem:
        return _usage(problem)
    for path in args.inputs:  # as analyze checks its media: a folder is an input here too
        fail_if_unreadable(path, folder_ok=True)
    from ..batch.engine import (
        RESULTS,
        BatchAbort,
        BatchError,
        discover,
        model_fingerprint,
        parse_shard,
        plan,
        run_batch,
        select_shard,
    )
    from ..batch.tables import load_results, write_failures

    labels = None
    if args.labels:
        from ahmer.models.training.evaluation import MetricsError, load_labels

        try:
            labels = load_labels(args.labels)
        except MetricsError as exc:
            return _usage(str(exc))
    if args.merge:
        return _merge(args, labels)

    try:
        items = discover(args.inputs, exclude=args.out)
        shard = parse_shard(args.shard) if args.shard else None
    except BatchError as exc:
        return _usage(str(exc))
    if shard:
        items = select_shard(items, *shard)
    problem = _check_backend(args)
    if problem:
        return _usage(problem)

    options = analysis_config(args)
    models = model_fingerprint(whisper_model=options.whisper_model)
    if options.fusion:  # checked before any work; its results are not the prior's
        from ahmer.models.fusion.registry import FusionError, resolve_fusion
        from ahmer.models.store.model_store import ModelStore

        try:
            fusion = resolve_fusion(ModelStore(), options.fusion)
        except FusionError as exc:
            return _usage(f"--fusion: {exc}")
        if fusion.trained:
            models["fusion"] = f"{fusion.name}={fusion.version}"
    todo, done = plan(items, args.out, options, models)
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    if not args.quiet:
        print(
            f"ahmer score: {len(items)} input(s){where}, {len(done)} already done, "
            f"{len(todo)} to score with {args.workers} worker(s)",
            file=sys.stderr,
        )
    display = ProgressDisplay(len(todo), quiet=args.quiet)
    try:
        outcome = run_batch(todo, args.out, options, models, args.workers, display.event)
    except BatchAbort as exc:
        print(f"ahmer score: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    display.close()
    if notice := outcome.stop_notice():  # the batch's circuit breaker opened: said once
        print(f"ahmer score: {notice}", file=sys.stderr)

    failures = outcome.failure_rows(items)
    ok_ids = [i.id for i in done] + [s["id"] for s in outcome.finished if not s.get("error")]
    if shard:
        name = f"failures.shard-{shard[0]}-of-{shard[1]}.csv"
        write_failures(args.out / name, failures)
        print(
            f"ahmer score: shard {shard[0]}/{shard[1]}: {len(ok_ids)} scored, "
            f"{len(failures)} failed; results in {args.out / RESULTS}. When every shard is "
            f"done, run: ahmer score --merge --out {args.out}"
        )
    else:
        results = load_results(args.out / RESULTS, ok_ids)
        written, metrics = _metrics_and_outputs(args, results, failures, labels)
        print(
            f"ahmer score: {len(results)} clip(s) scored ({len(done)} from earlier runs), "
            f"{len(failures)} failed; wrote {', '.join(written)} in {args.out}"
        )
        if metrics:
            print(_metrics_line(metrics))
    if outcome.interrupted:
        print(
            "ahmer score: interrupted; finished results are kept, re-run to resume", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failures else EXIT_OK


def _merge(args: argparse.Namespace, labels) -> int:
    from ..batch.engine import RESULTS
    from ..batch.tables import load_results, read_failures

    folder = args.out / RESULTS
    if not folder.is_dir():
        return _usage(f"{folder}: no results to merge")
    results = load_results(folder)
    have = {b.id for b in results}
    sources = [args.out / "failures.csv", *sorted(args.out.glob("failures.shard-*.csv"))]
    failures = [f for f in read_failures(p for p in sources if p.exists()) if f["id"] not in have]
    written, metrics = _metrics_and_outputs(args, results, failures, labels)
    print(
        f"ahmer score: merged {len(results)} result(s), {len(failures)} failure(s); "
        f"wrote {', '.join(written)} in {args.out}"
    )
    if metrics:
        print(_metrics_line(metrics))
    return EXIT_FAILED if failures else EXIT_OK
