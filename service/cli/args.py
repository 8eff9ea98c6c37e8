"""Argument helpers shared by the subcommands: the analysis options' flags (from the one
table, :data:`ahmer.models.config.ANALYSIS_OPTIONS`) and the config they make, the media
arguments, and a progress line on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from ahmer.models.config import ANALYSIS_OPTIONS, AnalysisOption, AnalyzerConfig

__all__ = [
    "add_analysis_arguments",
    "add_media_arguments",
    "analysis_config",
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


def _checked(option: AnalysisOption):
    """argparse type of ``option``: its parser, then its rule (a usage error saying why)."""

    def parse(text: str):
        try:
            value = option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        problem = option.rule.problem(value) if option.rule is not None else None
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
        return value

    parse.__name__ = option.name
    return parse


def add_analysis_arguments(p, names: Iterable[str] | None = None) -> None:
    """The flags of the analysis options ``names`` (default: all), in the table's order, with
    :class:`AnalyzerConfig`'s defaults: ``--fps``, ``--threshold``, ``--backend``,
    ``--device``, ``--whisper-model``, ``--landmark-fps``, ``--face-engine``."""
    wanted = None if names is None else set(names)
    defaults = AnalyzerConfig()
    for option in ANALYSIS_OPTIONS:
        if wanted is not None and option.name not in wanted:
            continue
        kwargs = {"default": getattr(defaults, option.name), "help": option.help}
        if option.choices:  # argparse checks them, and lists them in the usage
            kwargs.update(type=option.parse, choices=option.choices)
        else:
            kwargs["type"] = _checked(option)
        p.add_argument(option.flag, dest=option.name, **kwargs)


def analysis_config(args: argparse.Namespace) -> AnalyzerConfig:
    """The :class:`AnalyzerConfig` of the analysis flags ``args`` has (the others: defaults)."""
    return AnalyzerConfig(
        **{o.name: getattr(args, o.name) for o in ANALYSIS_OPTIONS if hasattr(args, o.name)}
    )


def add_media_arguments(p) -> None:
    """The options ``analyze`` and ``preprocess`` share: the media, its transcript and how
    densely it is analysed."""
    p.add_argument("media", type=Path, help="video or audio file (any format FFmpeg reads)")
    p.add_argument(
        "--transcript",
        type=Path,
        help="transcript to use instead of ASR (.txt, .vtt, .srt or .json words)",
    )
    add_analysis_arguments(p, ("fps", "whisper_model", "landmark_fps", "face_engine"))
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
