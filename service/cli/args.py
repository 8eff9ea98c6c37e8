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
    "ExamplesFormatter",
    "add_analysis_arguments",
    "add_media_arguments",
    "analysis_config",
    "check_outputs",
    "examples",
    "is_stdout",
    "stderr_progress",
    "write_output",
]

_EXAMPLES = "examples:\n"


class ExamplesFormatter(argparse.RawDescriptionHelpFormatter):
    """Help with an ``examples:`` epilog kept line by line (commands must not be re-wrapped),
    while descriptions are wrapped to the terminal as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(_EXAMPLES):
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


def examples(*lines: str) -> dict:
    """``add_parser`` keywords for an ``examples:`` section under a command's help."""
    body = "".join(f"  {line}\n" for line in lines)
    return {"epilog": _EXAMPLES + body, "formatter_class": ExamplesFormatter}


def is_stdout(path: Path | None) -> bool:
    """``-`` as an output path means standard output."""
    return path is not None and str(path) == "-"


def check_outputs(outputs: dict[str, Path | None], inputs: tuple[Path | None, ...] = ()) -> bool:
    """Before any work: every output file of ``outputs`` (flag -> path) can be written, and at
    most one is ``-`` (stdout). Returns whether one is: then stdout carries only that output
    and the human summary goes to stderr."""
    from ..files import UsageError, check_output_path

    to_stdout = [flag for flag, path in outputs.items() if is_stdout(path)]
    if len(to_stdout) > 1:
        raise UsageError(f"only one output can go to stdout (-), not {' and '.join(to_stdout)}")
    for path in outputs.values():
        if path is not None and not is_stdout(path):
            check_output_path(path, inputs)
    return bool(to_stdout)


def write_output(path: Path, text: str) -> None:
    """``text`` into the file ``path`` (atomically), or onto stdout when ``path`` is ``-``."""
    from ..files import write_output_text

    if is_stdout(path):
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    else:
        write_output_text(path, text)


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
    ``--device``, ``--whisper-model``, ``--landmark-fps``, ``--face-engine``, ``--strict``
    (a boolean option is a flag alone)."""
    wanted = None if names is None else set(names)
    defaults = AnalyzerConfig()
    for option in ANALYSIS_OPTIONS:
        if wanted is not None and option.name not in wanted:
            continue
        kwargs = {"default": getattr(defaults, option.name), "help": option.help}
        if isinstance(kwargs["default"], bool):
            kwargs["action"] = "store_true"
        elif option.choices:  # argparse checks them, and lists them in the usage
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
