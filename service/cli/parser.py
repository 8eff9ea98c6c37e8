"""The argument parser every ``ahmer`` command is built with: no abbreviated options, and a
mistake reported by the parser of the command it belongs to, with a "did you mean" when a
known name is close.

Plain :mod:`argparse` accepts any unambiguous prefix (``--thresh 0.3`` ran as
``--threshold 0.3``) and reports an unknown option after a subcommand with the top-level
usage (``usage: ahmer [-h] ...``); :class:`CommandParser` does neither. Its subparsers are
:class:`CommandParser` too (``add_subparsers`` makes its parsers of the parent's class)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["CommandParser", "close_match"]


def close_match(word: str, known: Iterable[str]) -> str | None:
    """The one name of ``known`` that ``word`` is most likely a misspelling of, or None."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


class _Subcommands(argparse._SubParsersAction):
    """Parses the rest of the command line with the chosen subcommand's own ``parse_args``,
    so that what it does not know is reported with its usage, not the top level's."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        name, rest = values[0], values[1:]
        if self.dest is not argparse.SUPPRESS:
            setattr(namespace, self.dest, name)
        sub = self._name_parser_map[name]  # the value was checked against the choices
        for key, value in vars(sub.parse_args(rest, None)).items():
            setattr(namespace, key, value)


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` with ``allow_abbrev=False`` by default, unknown
    arguments reported by the (sub)command that met them, and a close name suggested for an
    unknown option or an invalid choice (of a command, an action or an option's values)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._hint(extras)}")
        return parsed

    def _hint(self, extras: list[str]) -> str:
        """``" (did you mean --xyz?)"`` for the first unknown option close to a known one."""
        for word in extras:
            if len(word) < 2 or word[0] not in self.prefix_chars:
                continue
            name = word.split("=", 1)[0]
            match = close_match(name, self._option_string_actions)
            if match:
                return f" (did you mean {match}?)"
        return ""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        match = close_match(str(value), names) if isinstance(value, str) else None
        hint = f", did you mean {match!r}?" if match else ""
        listed = ", ".join(repr(c) for c in choices)
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r}{hint} (choose from {listed})"
        )
