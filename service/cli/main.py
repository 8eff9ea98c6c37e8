"""The ``ahmer`` command line: one entry point, a subcommand per task.

Every subcommand returns an exit code; known errors become one clear line on stderr and a
non-zero exit, never a traceback (set ``AHMER_DEBUG=1`` to see one). The codes are the same in
every command: 0 done; 2 a usage error, found before any work: an option the parser rejects,
or a path on the command line that cannot be used (an input that is missing, not a regular
file or unreadable, an output that cannot be written: :class:`~ahmer.service.files.PathError`);
1 any other error (bad media, no models, a server's error; ``ahmer score``: some clips
failed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from ..files import PathError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    try:
        return version("ahmer")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from .args import examples

    parser = argparse.ArgumentParser(
        prog="ahmer",
        description="Ambivalence/hesitancy and emotion recognition in videos of spoken answers.",
        **examples(
            "ahmer sample answer.mp4            # an example clip to try",
            "ahmer analyze answer.mp4           # its A/H label, cues and emotion",
            "ahmer COMMAND --help               # each command's options and examples",
        ),
    )
    parser.add_argument("--version", action="version", version=f"ahmer {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command")  # the usage lists the commands
    sub.required = True

    from .analyze import add_analyze_parser
    from .client import add_client_parser
    from .evaluate import add_evaluate_parser
    from .features import add_features_parser
    from .models import add_models_parser
    from .preprocess import add_preprocess_parser
    from .sample import add_sample_parser
    from .score import add_score_parser
    from .serve import add_serve_parser
    from .train import add_train_parser

    add_sample_parser(sub)
    add_models_parser(sub)
    add_preprocess_parser(sub)
    add_analyze_parser(sub)
    add_score_parser(sub)
    add_features_parser(sub)
    add_train_parser(sub)
    add_evaluate_parser(sub)
    add_serve_parser(sub)
    add_client_parser(sub)
    _verbose_everywhere(parser)
    return parser


VERBOSE_HELP = "log progress details and keep native libraries' start-up output"


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-v`` is accepted after any subcommand too (``ahmer analyze clip.mp4 -v``); a
    subcommand's default leaves the value given before it alone."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                subparser.add_argument(
                    "-v",
                    "--verbose",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help=VERBOSE_HELP,
                )
                _verbose_everywhere(subparser)


def main(argv: list[str] | None = None) -> int:
    from ahmer.models.telemetry import onnx_telemetry_off

    onnx_telemetry_off(loaded=False)  # before any command loads ONNX Runtime
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ahmer: interrupted", file=sys.stderr)
        # at once: a speech-recognition window still being decoded in a worker thread would
        # hold the interpreter's exit until it ends; outputs are written atomically, so
        # nothing partial is left behind
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if os.environ.get("AHMER_DEBUG"):
            raise
        print(f"ahmer {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, PathError) else EXIT_FAILED


def _describe(exc: Exception) -> str:
    """ahmer's own error types (MediaError, AsrError, ModelStoreError, ...) carry messages
    written for the user; so do a few standard ones. Anything else is a bug: say so."""
    from ahmer.preprocessing.errors import AhmerError, InvalidInput

    if isinstance(exc, InvalidInput) and exc.what == "transcript":  # its messages name lines
        return f"invalid transcript: {exc}"
    ours = isinstance(exc, AhmerError) or type(exc).__module__.startswith("ahmer.client")
    if ours or isinstance(exc, ValueError | FileNotFoundError | PermissionError):
        return str(exc) or type(exc).__name__
    return f"internal error ({type(exc).__name__}: {exc}); rerun with AHMER_DEBUG=1 for details"
