"""The batch report's per-clip timeline: one SVG in a viewBox ``WIDTH`` units wide, scaled to
the page width, drawn row by row on a shared time scale: cue markers coloured by modality
(markers that would overlap go to separate lanes), the A/H probability line with the
threshold and the frame segments above it shaded, with labels the predicted and the labelled
A/H bands, an emotion band, the frame valence and the per-modality attribution as small line
charts, the time axis and the words under it. All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ahmer.models.contract import ATTRIBUTION_NAMES, DEFAULT_FPS
from ahmer.models.results import json_ready
from ahmer.models.training import evaluation

from .report_style import (
    AH_BAND,
    EMOTION_COLORS,
    MODALITY_COLORS,
    NO_FACE,
    OTHER_CUE,
    SEGMENT_FILL,
    SEGMENT_GAP,
    WIDTH,
    ah_text,
    esc,
    modality,
    num,
)
from .tables import BatchResult

__all__ = ["segment_note", "timeline_svg"]


def _tick_step(duration: float) -> float:
    """Seconds between time-axis ticks: the smallest round step giving at most 16."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800):
        if duration / step <= 16:
            return step
    return 3600


def _clock(t: float) -> str:
    """A tick label: seconds under a minute, else m:ss or h:mm:ss."""
    if t < 60:
        return f"{t:g}s"
    m, s = divmod(int(round(t)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _runs(values: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """Runs of equal consecutive values as (first, last, value)."""
    runs: list[tuple[int, int, Any]] = []
    for i, v in enumerate(values):
        if runs and runs[-1][2] == v:
            runs[-1] = (runs[-1][0], i, v)
        else:
            runs.append((i, i, v))
    return runs


def _nice(value: float) -> float:
    """A round bound at or above ``value`` for a chart's symmetric scale."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        if value <= step:
            return step
    return math.ceil(value)


def _polylines(times, values, x, y, **attrs: str) -> list[str]:
    """Polylines through (time, value), broken where a value is not finite."""
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{v}"' for k, v in attrs.items())
    out, run = [], []
    for t, v in [*zip(times, values, strict=True), (None, math.nan)]:
        if v is not None and math.isfinite(v):
            run.append(f"{num(x(t))},{num(y(v))}")
            continue
        if len(run) == 1:
            run.append(run[0])
        if run:
            out.append(f'<polyline{extra} points="{" ".join(run)}" fill="none"/>')
        run = []
    return out


def _y_ticks(x: float, ticks: Sequence[tuple[str, float]], top: float, height: float) -> str:
    """Labels of a small chart's y axis at ``x`` (right-aligned), kept inside the chart's
    own height so that stacked charts do not share a label's room."""
    return "".join(
        f'<text x="{num(x)}" y="{num(min(max(y + 3.5, top + 8.0), top + height - 1.0))}" '
        f'font-size="9" text-anchor="end">{esc(text)}</text>'
        for text, y in ticks
    )


def _lanes(spans: Sequence[tuple[float, float]], gap: float) -> list[int]:
    """A lane for each (x0, x1) span such that spans in one lane are ``gap`` apart; spans are
    taken in the order given (sorted by start)."""
    ends: list[float] = []
    lanes = []
    for x0, x1 in spans:
        for k, end in enumerate(ends):
            if x0 >= end + gap:
                ends[k] = x1
                lanes.append(k)
                break
        else:
            ends.append(x1)
            lanes.append(len(ends) - 1)
    return lanes


def segment_note(item: BatchResult) -> str:
    """Why shaded segments and the clip label may disagree; empty when they agree."""
    clip = item.result.clip
    threshold = float(json_ready(clip.threshold) or 0.5)
    if clip.segments and not clip.ah_label:
        return (
            f"Shaded: frame segments above the frame threshold ({threshold:g}; frames with "
            f"A/H probability above it, gaps under {SEGMENT_GAP:g} s bridged). The clip is "
            f"below its threshold: its probability ({clip.ah_probability:.2f}) pools every "
            "frame (a soft maximum over frames), so short runs above the threshold need not "
            "lift it, and the clip is labelled no A/H."
        )
    if clip.ah_label and not clip.segments:
        return (
            f"No frame is above the threshold ({threshold:g}), but the clip probability "
            f"({clip.ah_probability:.2f}, pooled over every frame) is at or above it: "
            "the clip is labelled A/H without shaded segments."
        )
    return ""


class _Timeline:
    """Builds one clip's timeline SVG row by row, top to bottom, on a shared time scale."""

    LEFT, RIGHT = 80, 14

    def __init__(self, item: BatchResult) -> None:
        result = item.result
        self.item, self.frames, self.clip = item, result.frames, result.clip
        duration = float(result.media.get("duration") or 0.0)
        if self.frames:
            duration = max(duration, self.frames[-1].time + 1.0 / float(result.fps or DEFAULT_FPS))
        self.duration = max(duration, 0.5)
        self.threshold = float(json_ready(self.clip.threshold) or 0.5)
        self.pw = WIDTH - self.LEFT - self.RIGHT
        self.times = [f.time for f in self.frames]
        self.parts: list[str] = []
        self.y = 6.0  # top of the next row

    def x(self, t: float) -> float:
        return self.LEFT + self.pw * min(max(t, 0.0), self.duration) / self.duration

    def frame_end(self, i: int) -> float:
        return self.frames[i + 1].time if i + 1 < len(self.frames) else self.duration

    def name(self, height: float, text: str) -> None:
        """The row's name in the left margin, beside the row starting at ``self.y``."""
        self.parts.append(
            f'<text x="2" y="{num(self.y + height / 2 + 3.5)}" font-size="10" fill="#444">'
            f"{esc(text)}</text>"
        )

    def span(self, t0: float, t1: float, height: float, fill: str, title: str, attrs="") -> None:
        x0 = self.x(t0)
        width = max(0.5, self.x(t1) - x0)
        self.parts.append(
            f'<rect{attrs} x="{num(x0)}" y="{num(self.y)}" width="{num(width)}" '
            f'height="{height}" fill="{fill}"><title>{title}</title></rect>'
        )

    def frame_band(self, values: Sequence[Any], height: float, style) -> None:
        """One rect per run of frames with equal ``values``; ``style(value, t0, t1)`` gives
        (fill, title, attributes)."""
        for first, last, value in _runs(values):
            t0, t1 = self.frames[first].time, self.frame_end(last)
            self.span(t0, t1, height, *style(value, t0, t1))

    def line(self, values: Sequence[float], y, cls: str, stroke: str, width: float) -> None:
        """``values`` per frame as a line (broken where a value is missing) on scale ``y``."""
        self.parts += _polylines(
            self.times, values, self.x, y, class_=cls, stroke=stroke, stroke_width=f"{width:g}"
        )

    def chart(self, height: float, lo: float, hi: float, ticks: Sequence[tuple[str, float]]):
        """A plot box with a faint line at 0 (when in range) and y labels; returns y(v)."""
        top = self.y

        def y(v: float) -> float:
            return top + height * (1.0 - (min(max(v, lo), hi) - lo) / (hi - lo))

        self.parts.append(
            f'<rect x="{self.LEFT}" y="{num(top)}" width="{self.pw}" height="{height}" '
            'fill="#fafafa" stroke="#ccc"/>'
        )
        if lo < 0 < hi:
            self.parts.append(
                f'<line x1="{self.LEFT}" y1="{num(y(0))}" x2="{self.LEFT + self.pw}" '
                f'y2="{num(y(0))}" stroke="#ddd"/>'
            )
        self.parts.append(_y_ticks(self.LEFT - 4, [(t, y(v)) for t, v in ticks], top, height))
        return y

    # -- the rows --

    def cues(self, cues: Sequence[Any]) -> None:
        """Cue markers from start to end (at least 6 units), coloured by modality; markers
        that would overlap go to separate lanes."""
        cues = sorted(cues, key=lambda c: (c.start, c.end))
        spans = [(self.x(c.start), max(self.x(c.end), self.x(c.start) + 6.0)) for c in cues]
        lanes = _lanes(spans, gap=2.0)
        lane_h = 10
        for cue, (x0, x1), lane in zip(cues, spans, lanes, strict=True):
            kind = modality(cue.type)
            self.parts.append(
                f'<rect class="cue" data-type="{esc(kind)}" x="{num(x0)}" '
                f'y="{num(self.y + lane * lane_h)}" width="{num(x1 - x0)}" height="{lane_h - 2}" '
                f'rx="2" fill="{MODALITY_COLORS.get(kind, OTHER_CUE)}"><title>{esc(cue.type)}: '
                f"{esc(cue.text)} ({cue.start:.1f}-{cue.end:.1f} s, weight {cue.weight:.2f})"
                "</title></rect>"
            )
        height = (max(lanes, default=0) + 1) * lane_h
        self.name(height - 2, "cues")
        self.y += height + 4

    def probability(self) -> None:
        """The A/H probability line, the threshold, and the segments shaded (saying why when
        the clip itself is below its threshold)."""
        clip, threshold = self.clip, self.threshold
        below = not clip.ah_label
        if below and clip.segments:
            self.parts.append(
                f'<text class="seg-note" x="{self.LEFT}" y="{num(self.y + 9)}" font-size="10" '
                f'fill="#555">shaded: frame segments above the frame threshold ({threshold:g}); '
                f"clip below its threshold (p={clip.ah_probability:.2f})</text>"
            )
            self.y += 13
        height = 90
        y = self.chart(height, 0.0, 1.0, [(f"{p:g}", p) for p in (0.0, 0.5, 1.0)])
        why = "; the clip is below its threshold" if below else ""
        for seg in clip.segments:
            title = (
                f"frames above the threshold {threshold:g}: {seg.start:.1f}-{seg.end:.1f} s "
                f"(peak {seg.peak_probability:.2f}){why}"
            )
            x0 = self.x(seg.start)
            self.parts.append(
                f'<rect class="segment" x="{num(x0)}" y="{num(self.y)}" '
                f'width="{num(max(1.0, self.x(seg.end) - x0))}" height="{height}" '
                f'fill="{SEGMENT_FILL}" fill-opacity="0.45"><title>{title}</title></rect>'
            )
        self.parts.append(
            f'<line x1="{self.LEFT}" y1="{num(y(threshold))}" x2="{self.LEFT + self.pw}" '
            f'y2="{num(y(threshold))}" stroke="#555" stroke-dasharray="4 3">'
            f"<title>threshold {threshold:g}</title></line>"
        )
        self.line([f.ah_probability for f in self.frames], y, "ah-line", "#b71c1c", 1.8)
        self.name(height, "A/H")
        self.y += height + 4

    def truth(self, truth: evaluation.Truth) -> None:
        """The predicted frame labels, and under them the labels: frame labels where there
        are some, else the video label across the clip."""
        height, threshold = 10, self.threshold

        def predicted(label: int, t0: float, t1: float):
            title = (
                f"predicted {ah_text(int(label))} (frame probability &gt;= {threshold:g}): "
                f"{t0:.1f}-{t1:.1f} s"
            )
            return AH_BAND[int(label)], title, ' class="predicted"'

        self.frame_band([f.ah_label for f in self.frames], height, predicted)
        self.name(height, "predicted")
        self.y += height + 3
        self.parts.append(
            f'<rect x="{self.LEFT}" y="{num(self.y)}" width="{self.pw}" height="{height}" '
            'fill="none" stroke="#ddd"/>'
        )
        if truth.frames is not None and truth.fps:
            for first, last, label in _runs([int(v) for v in truth.frames]):
                t0, t1 = first / truth.fps, (last + 1) / truth.fps
                if t0 >= self.duration:
                    break
                title = (
                    f"frame labels: {ah_text(label)}, frames {first}-{last} ({t0:.2f}-{t1:.2f} s "
                    f"at {truth.fps:g} fps)"
                )
                attrs = f' class="truth" data-label="{label}"'
                self.span(t0, t1, height, AH_BAND[label], title, attrs)
        elif truth.video is not None:
            title = f"video label: {ah_text(truth.video)} (no frame labels)"
            attrs = f' class="truth" data-label="{truth.video}"'
            self.span(0.0, self.duration, height, AH_BAND[truth.video], title, attrs)
        else:
            self.parts.append(
                f'<text x="{self.LEFT + 4}" y="{num(self.y + height - 2)}" font-size="9" '
                'fill="#777">no labels for this clip</text>'
            )
        self.name(height, "truth")
        self.y += height + 4

    def emotions(self) -> None:
        def style(label: str | None, t0: float, t1: float):
            return (
                EMOTION_COLORS.get(label, NO_FACE),
                f"{t0:.1f}-{t1:.1f} s: " + esc(label or "no face"),
                "",
            )

        self.frame_band([f.emotion_label for f in self.frames], 10, style)
        self.name(10, "emotion")
        self.y += 16

    def valence(self) -> None:
        height = 36
        y = self.chart(height, -1.0, 1.0, [("-1", -1.0), ("0", 0.0), ("+1", 1.0)])
        self.line([f.valence for f in self.frames], y, "valence-line", "#455a64", 1.4)
        self.name(height, "valence")
        self.y += height + 6

    def attribution(self) -> None:
        """One line per modality, on a scale symmetric around 0."""
        height = 48
        values = [
            v for f in self.frames for v in (f.attribution or {}).values() if math.isfinite(v)
        ]
        s = _nice(max((abs(v) for v in values), default=0.0) or 0.01)
        y = self.chart(height, -s, s, [(f"{-s:g}", -s), ("0", 0.0), (f"+{s:g}", s)])
        for kind in ATTRIBUTION_NAMES:
            values = [(f.attribution or {}).get(kind, math.nan) for f in self.frames]
            self.line(values, y, f"attribution-line {kind}", MODALITY_COLORS[kind], 1.3)
        self.name(height, "attribution")
        self.y += height + 4

    def axis(self) -> None:
        y, step = self.y, _tick_step(self.duration)
        self.parts.append(
            f'<line x1="{self.LEFT}" y1="{num(y)}" x2="{self.LEFT + self.pw}" y2="{num(y)}" '
            'stroke="#444"/>'
        )
        for k in range(int(self.duration / step + 1e-9) + 1):
            x = num(self.x(k * step))
            self.parts.append(
                f'<line x1="{x}" y1="{num(y)}" x2="{x}" y2="{num(y + 4)}" stroke="#444"/>'
                f'<text class="tick" x="{x}" y="{num(y + 15)}" font-size="10" '
                f'text-anchor="middle">{_clock(k * step)}</text>'
            )
        self.y += 22

    def words(self, words: Sequence[Any]) -> None:
        """Each word at its time, in up to 3 rows; a word that finds no room is left out
        (and counted): the clip's word list has them all."""
        if not words:
            return
        ends = [-math.inf] * 3
        shown = 0
        for word in words:
            x0 = self.x(word.start)
            for row, end in enumerate(ends):
                if x0 >= end:
                    ends[row] = x0 + 5.6 * len(word.text) + 4
                    shown += 1
                    self.parts.append(
                        f'<text class="word" x="{num(x0)}" y="{num(self.y + 8 + row * 12)}" '
                        f'font-size="10" fill="#333"><title>{word.start:.2f}-{word.end:.2f} s'
                        f"</title>{esc(word.text)}</text>"
                    )
                    break
        self.y += sum(end > -math.inf for end in ends) * 12 + 2
        if shown < len(words):
            self.parts.append(
                f'<text x="{self.LEFT + self.pw}" y="{num(self.y + 6)}" font-size="9" '
                f'text-anchor="end" fill="#777">{len(words) - shown} of {len(words)} words not '
                "drawn (no room): see the word list</text>"
            )
            self.y += 8

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" '
            f'viewBox="0 0 {WIDTH} {num(self.y + 4)}" width="100%" '
            'preserveAspectRatio="xMinYMin meet" role="img">'
            f"<title>Timeline of {esc(self.item.id)}</title>" + "".join(self.parts) + "</svg>"
        )


def timeline_svg(item: BatchResult, truth: evaluation.Truth | None = None) -> str:
    """One clip's timeline, drawn in a viewBox ``WIDTH`` units wide and scaled to the page
    width: cue lanes, the A/H probability line with the frame segments above the threshold
    shaded and the threshold dashed, with ``truth`` the predicted and labelled A/H bands, the
    emotion band, valence and attribution line charts, the time axis and the words."""
    t = _Timeline(item)
    t.cues(item.result.explanation.cues)
    t.probability()
    if truth is not None:
        t.truth(truth)
    t.emotions()
    t.valence()
    t.attribution()
    t.axis()
    t.words(item.result.transcript)
    return t.svg()
