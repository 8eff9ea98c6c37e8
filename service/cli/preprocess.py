"""``ahmer preprocess MEDIA --out timeline.json``: the timeline alone, for inspection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import check_output_path, fail_if_unreadable, read_input_bytes, write_output_text
from .args import add_media_arguments, examples, stderr_progress

__all__ = ["add_preprocess_parser"]


def add_preprocess_parser(sub) -> None:
    p = sub.add_parser(
        "preprocess",
        help="decode media into the time-aligned timeline (faces, voice, words) as JSON",
        description="Decode MEDIA, track faces, detect speech, transcribe (or align the given "
        "transcript) and write the time-aligned timeline as JSON.",
        **examples(
            "ahmer preprocess answer.mp4 --out timeline.json",
            "ahmer preprocess answer.mp4 --out timeline.json --transcript answer.vtt --fps 10",
            "ahmer preprocess answer.mp4 --out timeline.json --face-engine tasks",
        ),
    )
    add_media_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="where to write timeline.json")
    p.set_defaults(func=run_preprocess)


def run_preprocess(args: argparse.Namespace) -> int:
    fail_if_unreadable(args.media)  # the paths first: a mistake is told before any import
    if args.transcript is not None:
        fail_if_unreadable(args.transcript)
    check_output_path(args.out, (args.media, args.transcript))  # before any work

    from ahmer.models.store.assets import preprocess_config
    from ahmer.preprocessing.pipeline import preprocess
    from ahmer.preprocessing.transcript import MAX_BYTES, format_of

    from ..logs import native_stderr_silenced

    transcript = None
    if args.transcript is not None:  # format from the suffix, else sniffed from the content
        transcript = read_input_bytes(args.transcript, MAX_BYTES, "transcript")
    config = preprocess_config(
        fps=args.fps,
        whisper_model=args.whisper_model,
        landmark_fps=args.landmark_fps,
        face_engine=args.face_engine,
    )
    with native_stderr_silenced(not args.verbose):
        faces = config.face_analyzer()
    progress = None if args.quiet else stderr_progress(args.media.name)
    try:
        timeline = preprocess(
            args.media,
            config,
            transcript=transcript,
            transcript_format=format_of(args.transcript) if args.transcript else None,
            progress=progress,
            face_analyzer=faces,
        )
    finally:
        with native_stderr_silenced(not args.verbose):
            faces.close()
    write_output_text(args.out, timeline.to_json())
    face = float(timeline.masks["face"].mean()) if len(timeline) else 0.0
    print(
        f"{args.media.name}: {len(timeline)} frames at {timeline.fps:g} fps, "
        f"face in {face:.0%}, {len(timeline.words)} words ({timeline.transcript_source}), "
        f"{len(timeline.speech)} speech segments -> {args.out}",
        file=sys.stderr,
    )
    for warning in timeline.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
