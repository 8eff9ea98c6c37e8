"""Word lists for verbal A/H cues, matched on normalised tokens (lower case, no punctuation).

Each entry is a tuple of tokens; multi-word phrases match consecutive words. The lists follow
the verbal cue types the BAH annotators used (hedges, contradictions/contrast, uncertainty,
filled pauses); they are English-only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = [
    "LEXICONS",
    "SCOPED_CUES",
    "NEGATORS",
    "REPORTING_VERBS",
    "FIRST_PERSON",
    "AFFIRMATIVES",
    "COMMITMENTS",
    "NEGATIVES",
    "normalise",
    "find_phrases",
]

_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> list[str]:
    """Lower-case word tokens with apostrophes kept (``don't``), curly quotes straightened."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _phrases(*items: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(normalise(item)) for item in items)


LEXICONS: dict[str, tuple[tuple[str, ...], ...]] = {
    # softeners that lower commitment to what is said
    "hedge": _phrases(
        "maybe",
        "perhaps",
        "probably",
        "possibly",
        "might",
        "could",
        "guess",
        "suppose",
        "kind of",
        "sort of",
        "kinda",
        "sorta",
        "somewhat",
        "i think",
        "i mean",
        "hopefully",
        "try",
        "trying",
        "a little",
        "a bit",
        "not really",
        "more or less",
    ),
    # filled pauses
    # ("you know", "well", "like" are discourse markers of ordinary casual talk, not counted)
    "filler": _phrases("um", "umm", "uh", "uhh", "er", "erm", "hmm", "mm", "ah"),
    # contrast and contradiction: the "part of me wants to, but" of ambivalence
    "contrast": _phrases(
        "but",
        "though",
        "although",
        "however",
        "yet",
        "except",
        "on the other hand",
        "part of me",
        "at the same time",
        "then again",
        "whereas",
    ),
    # explicit uncertainty about oneself
    "uncertainty": _phrases(
        "not sure",
        "i don't know",
        "don't know",
        "dunno",
        "no idea",
        "i guess",
        "unsure",
        "not certain",
        "i'm torn",
        "torn",
        "hard to say",
        "we'll see",
        "depends",
        "doubt",
        "doubts",
    ),
    "negation": _phrases("not", "no", "never", "don't", "can't", "won't", "isn't", "nothing"),
}


SCOPED_CUES = ("hedge", "uncertainty", "contrast")
"""Cues whose hits do not count inside a negation's or another person's quoted words."""

NEGATORS = frozenset(normalise("no not never without nothing none don't doesn't didn't isn't"))
"""Tokens that negate the hedge right after them ("no doubt", "not maybe")."""
NEGATION_GAP = frozenset(normalise("a an any the real even single slightest shadow of much"))
"""Tokens allowed between a negator and the hedge it negates ("no real doubt")."""

REPORTING_VERBS = frozenset(normalise("said says say told tell asked suggested thinks think"))
"""Verbs that open another person's words ("my friends said maybe next year")."""
FIRST_PERSON = frozenset(normalise("i i'm i've i'd we we're"))
"""Subjects whose reported words are the speaker's own (those still count)."""

AFFIRMATIVES = _phrases(
    "yes", "yeah", "yep", "sure", "definitely", "absolutely", "of course", "certainly"
)
"""Verbal yes: said while the head shakes, it is cross-modal conflict."""
COMMITMENTS = _phrases(
    "i will", "i'll", "we will", "we'll", "i'm going to", "i am going to", "we're going to"
)
"""A stated commitment ("I will eat more fruit"), the yes of a behaviour-change answer: with
a head shake it is the same conflict as a verbal yes, unless a negator follows ("I will
not")."""
NEGATIVES = _phrases("no", "nope", "never", "not at all", "no way")
"""Verbal no: said while the head nods, it is cross-modal conflict."""


def find_phrases(
    tokens: Sequence[str], phrases: Iterable[tuple[str, ...]]
) -> list[tuple[int, int]]:
    """``(first, last)`` token index spans where any phrase occurs (greedy, no overlaps)."""
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        by_first.setdefault(phrase[0], []).append(phrase)
    for group in by_first.values():
        group.sort(key=len, reverse=True)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        match = next(
            (p for p in by_first.get(tokens[i], ()) if tuple(tokens[i : i + len(p)]) == p), None
        )
        if match is None:
            i += 1
            continue
        spans.append((i, i + len(match) - 1))
        i += len(match)
    return spans
