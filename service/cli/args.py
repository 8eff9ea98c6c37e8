"""Argument helpers shared by the subcommands: argparse types for the analysis options,
the media and face arguments, and a progress line on stderr."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ahmer.preprocessing.face_options import DEFAULT_ENGINE, DEFAULT_LANDMARK_FPS, ENGINES

__all__ = [
    "add_face_arguments",
    "add_media_arguments",
    "analysis_fps",
    "decision_threshold",
    "landmark_rate",
    "stderr_progress",
]


def stderr_progress(label: str, min_interval: float = 0.5):
    """A ``progress(stage, fraction)`` callback printing to stderr: an updating line on a
    terminal, a plain line at most every few seconds otherwise."""
    tty = sys.stderr.isatty()
    last = [0.0]
    interval = min_interval if tty else 5.0

    def progress(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < interval:
            return
        last[0] = now
        line = f"{label}: {stage} {fraction:5.0%}"
        if tty:
            end = "\n" if stage == "done" else ""
            sys.stderr.write(f"\r{line:<60}{end}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return progress


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def analysis_fps(text: str) -> float:
    """argparse type: analysis frames per second, in (0, 120]."""
    value = _number(text)
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"must be in (0, 120], got {text}")
    return value


def landmark_rate(text: str) -> float:
    """argparse type: landmark frames per second, >= 0 (0: every analysis frame)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def decision_threshold(text: str) -> float:
    """argparse type: an A/H decision threshold, strictly between 0 and 1."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_media_arguments(p) -> None:
    """The options ``analyze`` and ``preprocess`` share: the media, its transcript and how
    densely it is analysed."""
    p.add_argument("media", type=Path, help="video or audio file (any format FFmpeg reads)")
    p.add_argument(
        "--transcript",
        type=Path,
        help="transcript to use instead of ASR (.txt, .vtt, .srt or .json words)",
    )
    p.add_argument("--fps", type=analysis_fps, default=5.0, help="analysis frames per second (5)")
    p.add_argument("--whisper-model", help="CTranslate2 Whisper model folder or name")
    add_face_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_face_arguments(p) -> None:
    """``--landmark-fps`` and ``--face-engine``: how faces are analysed."""
    p.add_argument(
        "--landmark-fps",
        type=landmark_rate,
        default=DEFAULT_LANDMARK_FPS,
        help="full face landmarks at about this rate, keypoint tracking between "
        f"({DEFAULT_LANDMARK_FPS:g}; 0 = on every analysis frame)",
    )
    p.add_argument(
        "--face-engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help="how MediaPipe's face models run: litert (direct, the default) or tasks "
        "(MediaPipe Tasks, the reference; ~2x slower)",
    )
