"""The exit codes of every ``ahmer`` command, and the one rule that picks them (docs page
"Bad input", section "Exit codes"):

- 0 (:data:`EXIT_OK`): done (``score``/``features``: every clip);
- 1 (:data:`EXIT_FAILED`): the work failed: bad media, no models, a server's error, a refused
  archive, an internal error; ``score``/``features``: some clips failed (each one a row of
  ``failures.csv``);
- 2 (:data:`EXIT_USAGE`): a usage error, found before any work: an option or value the
  parser rejects, options that contradict each other, a path on the command line that cannot
  be used (missing, a symlink loop, not a regular file, unreadable, not the dataset or
  features folder it should be or its index wrong, an output that cannot be written), a
  ``--fusion`` that names no usable fusion: the parser's own errors and
  :class:`~ahmer.service.files.UsageError`;
- 130 (:data:`EXIT_INTERRUPTED`): interrupted (Ctrl-C; SIGTERM in a batch).
"""

from __future__ import annotations

from ..files import UsageError

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "exit_code"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def exit_code(exc: BaseException) -> int:
    """The exit code of a command that ended with ``exc``, by the error's class."""
    from ahmer.preprocessing.errors import Cancelled

    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt | Cancelled):
        return EXIT_INTERRUPTED
    return EXIT_FAILED
