"""The batch report: one self-contained HTML file (inline CSS, SVG and a few lines of JS; a
Content-Security-Policy forbids any network access), readable offline.

It holds summary plots (histogram of clip A/H probability, mean emotion distribution), a
sortable table of clips, the failures, and per clip a timeline that scales to the page
width: cue markers coloured by modality (markers that would overlap go to separate lanes),
the A/H probability line with the threshold and the frame segments above it shaded, an
emotion band, the frame valence and the per-modality attribution as small line charts, the
time axis and the words under it. With labels (a
:class:`~ahmer.models.training.evaluation.LabelSet`) it adds the predicted and the labelled
A/H as two bands under the probability line, and an evaluation section: the BAH metrics, a
confusion matrix and a precision-recall curve per level, all computed by
:mod:`ahmer.models.training.evaluation`. All text is escaped; transcript text never enters a
table (words appear only on the timelines, in the cue texts and in each clip's word list).

This module is the report's public face; the work is done in three parts:
:mod:`.report_charts` (summary and evaluation plots), :mod:`.report_timeline` (the per-clip
timeline) and :mod:`.report_page` (the page around them), with the shared colours and text
helpers in :mod:`.report_style`.
"""

from __future__ import annotations

from .report_charts import confusion_html, emotion_bars_svg, histogram_svg, pr_curve_svg
from .report_page import render_report
from .report_style import EMOTION_COLORS, MODALITY_COLORS
from .report_timeline import timeline_svg

__all__ = [
    "EMOTION_COLORS",
    "MODALITY_COLORS",
    "render_report",
    "timeline_svg",
    "histogram_svg",
    "emotion_bars_svg",
    "confusion_html",
    "pr_curve_svg",
]
