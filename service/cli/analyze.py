"""``ahmer analyze MEDIA``: the whole pipeline on one clip, in-process, no server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import UsageError, fail_if_unreadable, read_input_bytes
from .args import (
    add_analysis_arguments,
    add_media_arguments,
    analysis_config,
    check_outputs,
    examples,
    stderr_progress,
    write_output,
)

__all__ = ["add_analyze_parser", "human_summary"]


def add_analyze_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="emotion and ambivalence/hesitancy of one clip, with explanations",
        description="Analyse one recorded answer on this machine (embedded ONNX Runtime) and "
        "print a short summary; optionally write the full result as JSON and frames as CSV. "
        "With --json - (or --csv -) stdout carries only that output and the summary goes to "
        "stderr.",
        **examples(
            "ahmer sample answer.mp4 && ahmer analyze answer.mp4",
            "ahmer analyze answer.mp4 --json result.json --csv frames.csv",
            "ahmer analyze answer.mp4 --json - --quiet | jq .clip",
            "ahmer analyze answer.mp4 --transcript answer.vtt --fps 10 --device cuda",
        ),
    )
    add_media_arguments(p)
    p.add_argument(
        "--json", type=Path, dest="json_out", help="write the result JSON here (-: stdout)"
    )
    p.add_argument(
        "--csv", type=Path, dest="csv_out", help="write per-frame results as CSV (-: stdout)"
    )
    add_analysis_arguments(
        p,
        (
            "threshold",
            "backend",
            "device",
            "strict",
            "fusion",
            "triton_url",
            "triton_tls",
            "triton_timeout",
        ),
    )
    p.set_defaults(func=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    fail_if_unreadable(args.media)  # the paths first: a mistake is told before any import
    if args.transcript is not None:
        fail_if_unreadable(args.transcript)
    outputs = {"--json": args.json_out, "--csv": args.csv_out}
    to_stdout = check_outputs(outputs, (args.media, args.transcript))  # before any work

    from ahmer.models.analyzer import Analyzer
    from ahmer.models.config import CallOptions
    from ahmer.models.fusion.registry import FusionError
    from ahmer.preprocessing.transcript import MAX_BYTES, format_of

    from ..logs import native_stderr_silenced

    transcript = None
    if args.transcript is not None:
        transcript = read_input_bytes(args.transcript, MAX_BYTES, "transcript")
    with native_stderr_silenced(not args.verbose):
        try:
            analyzer = Analyzer(analysis_config(args)).load()
        except FusionError as exc:  # as in `ahmer score --fusion`: found before any work
            raise UsageError(f"--fusion: {exc}") from exc
    progress = None if args.quiet else stderr_progress(args.media.name)
    try:
        result = analyzer.analyze(
            args.media,
            transcript=transcript,
            options=CallOptions(
                transcript_format=format_of(args.transcript) if args.transcript else None
            ),
            progress=progress,
        )
    finally:
        with native_stderr_silenced(not args.verbose):
            analyzer.close()
    if args.json_out:
        write_output(args.json_out, result.to_json(indent=1))
    if args.csv_out:
        from ..batch.tables import frames_csv

        write_output(args.csv_out, frames_csv([result]))
    print(human_summary(result, args.media.name), file=sys.stderr if to_stdout else sys.stdout)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def human_summary(result, name: str) -> str:
    from ahmer.models.contract import FUSION_MODEL

    clip = result.clip
    label = "A/H" if clip.ah_label else "no A/H"
    lines = [
        f"{name}: {label} (p={clip.ah_probability:.2f}, threshold {clip.threshold:g}), "
        f"{len(result.frames)} frames, {len(clip.segments)} A/H segment(s)",
        f"  {result.explanation.summary}",
    ]
    for cue in result.explanation.cues[:5]:
        lines.append(f"  - [{cue.type}] {cue.text} (weight {cue.weight:.2f})")
    if clip.dominant_emotion:
        share = clip.emotion_distribution[clip.dominant_emotion]
        lines.append(f"  dominant emotion: {clip.dominant_emotion} ({share:.0%})")
    else:
        lines.append("  dominant emotion: none (no face)")
    fusion = result.models.get("fusion", FUSION_MODEL)
    kind = "a prior, not trained" if fusion == FUSION_MODEL else f"trained fusion {fusion}"
    lines.append(f"  weights: {result.models.get(fusion, '?')} ({kind})")
    return "\n".join(lines)
