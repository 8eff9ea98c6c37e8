"""How far around each analysis frame the verbal cues read the words, in a light module (no
numpy): the live session's settings (and through them ``ahmer serve --help``) name the
look-ahead without importing the cues."""

from __future__ import annotations

__all__ = ["WORDS_BEFORE_S", "WORDS_AFTER_S"]

# Verbal cues look at the words spoken shortly before and after each frame.
WORDS_BEFORE_S = 1.5
WORDS_AFTER_S = 1.0
