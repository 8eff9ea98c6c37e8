"""Which values the preprocessing options users set may take (analysis rate, landmark rate,
face engine): each a :class:`Rule`, written once and used by :class:`PreprocessConfig`, by
``AnalyzerConfig`` and, through its option table, by every command line and the server's
settings. One light module (no numpy), like :mod:`.face_options`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .face_options import ENGINES

__all__ = ["DEFAULT_FPS", "MAX_FPS", "Rule", "FPS", "LANDMARK_FPS", "FACE_ENGINE", "RULES"]

DEFAULT_FPS = 5.0
"""The analysis rate (frames per second of the timeline) unless a caller asks for another."""

MAX_FPS = 120.0
"""The highest analysis rate the pipeline takes (frames per second of the clip)."""


@dataclass(frozen=True)
class Rule:
    """Which values an option takes: ``allows(value)``, and ``text`` saying so to a user
    (``"must be ..."``, completed by the caller with the option's name, flag or variable)."""

    allows: Callable[[Any], bool]
    text: str

    def problem(self, value: Any) -> str | None:
        """``text`` when ``value`` is not allowed (NaN and values of the wrong type are
        not), else None."""
        try:
            ok = bool(self.allows(value))
        except (TypeError, ValueError):
            ok = False
        return None if ok else self.text

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError (``"face engine must be ..., got <value>"`` for ``face_engine``)
        unless ``value`` is allowed."""
        problem = self.problem(value)
        if problem:
            raise ValueError(f"{name.replace('_', ' ')} {problem}, got {value!r}")


FPS = Rule(lambda v: 0 < v <= MAX_FPS, f"must be in (0, {MAX_FPS:g}]")
LANDMARK_FPS = Rule(
    lambda v: 0 <= v <= MAX_FPS, f"must be in [0, {MAX_FPS:g}] (0: every analysis frame)"
)
FACE_ENGINE = Rule(lambda v: v in ENGINES, "must be " + " or ".join(ENGINES))

RULES: dict[str, Rule] = {"fps": FPS, "landmark_fps": LANDMARK_FPS, "face_engine": FACE_ENGINE}
"""The rules by option name (the fields of ``PreprocessConfig`` and ``AnalyzerConfig``)."""
