"""What every part of the batch report shares: the colours (one per emotion, one per
modality, the A/H bands), the timeline's width, and the small text helpers (escaping, number
formatting, label names). Kept apart so that charts, timelines and the page draw with the same
palette and escape text the same way.
"""

from __future__ import annotations

import html
from typing import Any

from ahmer.models.contract import ATTRIBUTION_NAMES, EMOTIONS, SEGMENT_GAP

__all__ = [
    "AH_BAND",
    "EMOTION_COLORS",
    "MODALITY_COLORS",
    "NO_FACE",
    "OPEN_LIMIT",
    "OTHER_CUE",
    "SEGMENT_FILL",
    "SEGMENT_GAP",
    "WIDTH",
    "ah_text",
    "esc",
    "modality",
    "num",
]

# one colour per emotion, in the order of EMOTIONS (zip(strict=True) fails loudly if they drift)
EMOTION_COLORS = dict(
    zip(
        EMOTIONS,
        ("#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#bdbdbd"),
        strict=True,
    )
)
# one colour per modality (cue type and attribution column), in the order of ATTRIBUTION_NAMES
MODALITY_COLORS = dict(
    zip(ATTRIBUTION_NAMES, ("#00897b", "#3949ab", "#e0a100", "#d81b60"), strict=True)
)
OTHER_CUE = "#616161"  # a cue of a type outside ATTRIBUTION_NAMES (none today)
NO_FACE = "#f0f0f0"
AH_BAND = {1: "#c62828", 0: "#b0bec5", -1: "#ffffff"}  # A/H, no A/H, unlabelled
SEGMENT_FILL = "#ef9a9a"
OPEN_LIMIT = 40  # clip sections shown open; more start collapsed
WIDTH = 1000  # timeline viewBox width; the SVG is drawn at 100% of the page width


def esc(value: Any) -> str:
    """``value`` as HTML text, quotes escaped (None is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: float) -> str:
    """A coordinate with one decimal (SVG attributes)."""
    return f"{value:.1f}"


def ah_text(label: int | None) -> str:
    """An A/H label in words (None: unlabelled)."""
    return {1: "A/H", 0: "no A/H"}.get(label, "unlabelled")


def modality(cue_type: str) -> str:
    """The attribution name of a cue type ("cross-modal" -> "cross_modal")."""
    return cue_type.replace("-", "_")
