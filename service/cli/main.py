"""The ``ahmer`` command line: one entry point, a subcommand per task.

Every subcommand returns an exit code; known errors become one clear line on stderr and a
non-zero exit, never a traceback (set ``AHMER_DEBUG=1`` to see one). The codes and the one
rule that picks them are in :mod:`.exits`: 0 done, 1 the work failed, 2 a usage error found
before any work, 130 interrupted.

Start-up is kept short: building the parser imports only light modules (each command's
arguments; the analysis options' table), and a command imports what it runs when it runs,
after checking the paths on its command line. tests/test_cli_startup.py holds this.
"""

from __future__ import annotations

import argparse
import os
import sys

from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_code
from .parser import CommandParser

__all__ = [
    "main",
    "build_parser",
    "exit_code",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
]


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("ahmer")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            found = "unknown"
        parser.exit(message=f"ahmer {found}\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree, from light modules only: each command's module defines its
    arguments at the top and imports its implementation inside the function that runs it."""
    from .analyze import add_analyze_parser
    from .args import examples
    from .bench import add_bench_parser
    from .client import add_client_parser
    from .evaluate import add_evaluate_parser
    from .features import add_features_parser
    from .models import add_models_parser
    from .preprocess import add_preprocess_parser
    from .sample import add_sample_parser
    from .score import add_score_parser
    from .serve import add_serve_parser
    from .train import add_train_parser

    parser = CommandParser(
        prog="ahmer",
        description="Ambivalence/hesitancy and emotion recognition in videos of spoken answers.",
        **examples(
            "ahmer sample answer.mp4            # an example clip to try",
            "ahmer analyze answer.mp4           # its A/H label, cues and emotion",
            "ahmer COMMAND --help               # each command's options and examples",
        ),
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command")  # the usage lists the commands
    sub.required = True
    for add in (
        add_sample_parser,
        add_models_parser,
        add_preprocess_parser,
        add_analyze_parser,
        add_score_parser,
        add_features_parser,
        add_train_parser,
        add_evaluate_parser,
        add_serve_parser,
        add_client_parser,
        add_bench_parser,
    ):
        add(sub)
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
    import logging

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
        os._exit(EXIT_INTERRUPTED)
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if os.environ.get("AHMER_DEBUG"):
            raise
        print(f"ahmer {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return exit_code(exc)


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
