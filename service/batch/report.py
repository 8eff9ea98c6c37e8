"""The batch report: one self-contained HTML file (inline CSS, SVG and a few lines of JS; a
Content-Security-Policy forbids any network access), readable offline.

It holds summary plots (histogram of clip A/H probability, mean emotion distribution), a
sortable table of clips, the failures, and per clip a timeline that scales to the page
width: cue markers coloured by modality (markers that would overlap go to separate lanes),
the A/H probability line with the threshold and the frame segments above it shaded, an
emotion band, the frame valence and the per-modality attribution as small line charts, the
time axis and the words under it. With labels (a :class:`~ahmer.models.evaluation.LabelSet`)
it adds the predicted and the labelled A/H as two bands under the probability line, and an
evaluation section: the BAH metrics, a confusion matrix and a precision-recall curve per
level, all computed by :mod:`ahmer.models.evaluation`. All text is escaped; transcript text
never enters a table (words appear only on the timelines, in the cue texts and in each clip's
word list).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from ahmer.models import evaluation
from ahmer.models.contract import ATTRIBUTION_NAMES, EMOTIONS
from ahmer.models.results import json_ready
from ahmer.preprocessing.truncation import is_incomplete

from .tables import BatchResult, top_cues

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
SEGMENT_GAP = 0.4  # seconds: explain.segments_from bridges gaps shorter than this

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:16px 0 6px}
.muted{color:#666}.notice{background:#fff8e1;border:1px solid #f0d98c;padding:8px 12px}
.note{background:#f3f6fb;border-left:3px solid #90a4ae;padding:4px 10px;margin:6px 0}
.plots{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}
table.sortable th{cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ah{color:#b71c1c;font-weight:600}.wrong{color:#b71c1c}.right{color:#2e7d32}
.truncated{color:#fff;background:#b71c1c;border-radius:3px;padding:0 4px;font-size:12px;
font-weight:600}p.partial{background:#fdecea;border-left:3px solid #b71c1c;padding:4px 10px}
table.confusion td{text-align:right;min-width:70px;font-variant-numeric:tabular-nums}
table.confusion caption{text-align:left;font-weight:600;padding-bottom:4px}
details{margin:10px 0;border-top:1px solid #eee;padding-top:6px}
summary{cursor:pointer;font-weight:600}
svg.timeline{display:block;width:100%;height:auto}
.legend{position:sticky;top:0;background:#fff;z-index:1;padding:6px 0;margin:0;
border-bottom:1px solid #eee}
.legend span{display:inline-block;margin-right:12px;white-space:nowrap}
.legend b{margin-right:6px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.legend i.line{height:3px;vertical-align:3px}
ul.cues{list-style:none;padding-left:4px}
ul.cues i{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
svg text{font-family:system-ui,sans-serif}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('asc');
      t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[col].getAttribute('data-v'),y=b.cells[col].getAttribute('data-v');
        var nx=parseFloat(x),ny=parseFloat(y),r;
        if(!isNaN(nx)&&!isNaN(ny)){r=nx-ny;}else{r=String(x).localeCompare(String(y));}
        return asc?r:-r;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _ah(label: int | None) -> str:
    return {1: "A/H", 0: "no A/H"}.get(label, "unlabelled")


def _modality(cue_type: str) -> str:
    """The attribution name of a cue type ("cross-modal" -> "cross_modal")."""
    return cue_type.replace("-", "_")


# -- summary plots -----------------------------------------------------------------------------


def histogram_svg(probabilities: Sequence[float], threshold: float = 0.5, bins: int = 10) -> str:
    """Histogram of clip A/H probabilities over [0, 1]."""
    w, h, left, bottom, top = 360, 200, 36, 30, 10
    counts = [0] * bins
    for p in probabilities:
        counts[min(bins - 1, max(0, int(p * bins)))] += 1
    peak = max(counts) or 1
    pw, ph = w - left - 10, h - bottom - top
    bw = pw / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">']
    parts.append("<title>Histogram of clip A/H probability</title>")
    for i, c in enumerate(counts):
        bh = ph * c / peak
        x, y = left + i * bw, top + ph - bh
        parts.append(
            f'<rect x="{_f(x + 1)}" y="{_f(y)}" width="{_f(bw - 2)}" height="{_f(bh)}" '
            f'fill="{"#c62828" if (i + 0.5) / bins >= threshold else "#78909c"}">'
            f"<title>{i / bins:.1f}-{(i + 1) / bins:.1f}: {c} clip(s)</title></rect>"
        )
        if c:
            parts.append(
                f'<text x="{_f(x + bw / 2)}" y="{_f(y - 2)}" font-size="10" '
                f'text-anchor="middle">{c}</text>'
            )
    for i in range(0, bins + 1, 2):
        x = left + i * bw
        parts.append(
            f'<text x="{_f(x)}" y="{h - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{i / bins:.1f}</text>'
        )
    tx = left + threshold * pw
    parts.append(
        f'<line x1="{_f(tx)}" y1="{top}" x2="{_f(tx)}" y2="{top + ph}" stroke="#000" '
        'stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>'
    )
    parts.append(
        f'<text x="{left + pw / 2}" y="{h - 2}" font-size="11" text-anchor="middle">'
        "clip A/H probability</text></svg>"
    )
    return "".join(parts)


def emotion_bars_svg(distribution: dict[str, float], clips: int) -> str:
    """Horizontal bars of the mean emotion distribution over ``clips`` clips with a face."""
    w, row, left = 360, 22, 70
    h = row * len(EMOTIONS) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">']
    parts.append("<title>Mean emotion distribution</title>")
    for i, e in enumerate(EMOTIONS):
        share = float(distribution.get(e, 0.0))
        y = 6 + i * row
        bw = (w - left - 50) * share
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">{e}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{_f(bw)}" height="{row - 6}" '
            f'fill="{EMOTION_COLORS[e]}"><title>{e}: {share:.1%}</title></rect>'
        )
        parts.append(
            f'<text x="{_f(left + bw + 4)}" y="{y + 13}" font-size="11">{share:.0%}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{h - 4}" font-size="11">mean over {clips} clip(s) with a face</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# -- evaluation plots --------------------------------------------------------------------------


def confusion_html(m: dict[str, Any], level: str, threshold: str) -> str:
    """The confusion matrix of one level from its metrics (``tp``, ``fp``, ``fn``, ``tn``, as
    :func:`ahmer.models.evaluation.binary_metrics` counts them)."""
    n = max(1, int(m["n"]))

    def cell(key: str, good: bool) -> str:
        share = int(m[key]) / n
        rgb = "46,125,50" if good else "198,40,40"
        return (
            f'<td data-cell="{key}" style="background:rgba({rgb},{0.08 + 0.5 * share:.2f})">'
            f"{int(m[key])}</td>"
        )

    unit = "labelled frames" if level == "frame" else "clips"
    return (
        f'<table class="confusion" data-level="{_e(level)}"><caption>{_e(level)} level: '
        f"{int(m['n'])} {unit}, threshold {_e(threshold)}</caption>"
        "<tr><th></th><th>predicted A/H</th><th>predicted no A/H</th></tr>"
        f"<tr><th>labelled A/H</th>{cell('tp', True)}{cell('fn', False)}</tr>"
        f"<tr><th>labelled no A/H</th>{cell('fp', False)}{cell('tn', True)}</tr></table>"
    )


def _pr_points(recall, precision) -> list[tuple[float, float]]:
    """(recall, precision) in threshold order, consecutive repeats dropped (they add no area)."""
    points: list[tuple[float, float]] = []
    for r, p in zip(recall, precision, strict=True):
        point = (float(r), float(p))
        if not points or point != points[-1]:
            points.append(point)
    return points


def pr_curve_svg(samples: evaluation.LevelSamples, m: dict[str, Any], level: str) -> str:
    """The precision-recall curve of one level: the points that
    :func:`ahmer.models.evaluation.pr_curve` computes (the area under them, shaded, is the AP
    in ``m``), the chance line (the share of positives) and the decision threshold's point
    (from the confusion counts)."""
    w, h, left, bottom, top, right = 300, 270, 40, 36, 24, 12
    pw, ph = w - left - right, h - top - bottom

    def x(r: float) -> float:
        return left + pw * r

    def y(p: float) -> float:
        return top + ph * (1.0 - p)

    ap = m.get("ap")
    title = f"{level} level: AP {ap:.4f}" if ap is not None else f"{level} level: AP undefined"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'class="pr" data-level="{_e(level)}"><title>Precision-recall curve, {_e(title)}</title>',
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{_e(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for k in range(6):
        v = k / 5
        parts.append(
            f'<text x="{_f(x(v))}" y="{top + ph + 13}" font-size="10" '
            f'text-anchor="middle">{v:.1f}</text>'
            f'<text x="{left - 4}" y="{_f(y(v) + 3)}" font-size="10" '
            f'text-anchor="end">{v:.1f}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{h - 6}" font-size="11" text-anchor="middle">recall</text>'
        f'<text x="10" y="{top + ph / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 10 {top + ph / 2})">precision</text>'
    )
    curve = samples.curve()
    if curve is None:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" font-size="11" '
            'text-anchor="middle">no positive label: no curve</text></svg>'
        )
        return "".join(parts)
    _, precision, recall = curve
    points = _pr_points(recall, precision)
    line = " ".join(f"{x(r):.2f},{y(p):.2f}" for r, p in points)
    base = f"{x(points[-1][0]):.2f},{y(0):.2f} {x(points[0][0]):.2f},{y(0):.2f}"
    parts.append(
        f'<polygon points="{line} {base}" fill="#c62828" fill-opacity="0.12" stroke="none">'
        f"<title>area under the curve: AP {ap:.4f} (trapezoid rule)</title></polygon>"
    )
    chance = int(m["positives"]) / max(1, int(m["n"]))
    parts.append(
        f'<line x1="{left}" y1="{_f(y(chance))}" x2="{left + pw}" y2="{_f(y(chance))}" '
        f'stroke="#888" stroke-dasharray="3 3"><title>share of positives {chance:.3f} '
        "(a random score's precision)</title></line>"
    )
    parts.append(
        f'<polyline class="pr-curve" points="{line}" fill="none" stroke="#c62828" '
        'stroke-width="1.8"/>'
    )
    tp, fp, fn = int(m["tp"]), int(m["fp"]), int(m["fn"])
    op_p = tp / (tp + fp) if tp + fp else 0.0
    op_r = tp / (tp + fn) if tp + fn else 0.0
    parts.append(
        f'<circle class="operating" cx="{_f(x(op_r))}" cy="{_f(y(op_p))}" r="4" fill="#fff" '
        f'stroke="#000" stroke-width="1.5"><title>at the decision threshold: precision '
        f"{op_p:.3f}, recall {op_r:.3f}</title></circle>"
    )
    parts.append("</svg>")
    return "".join(parts)


# -- per-clip timeline -------------------------------------------------------------------------


def _tick_step(duration: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800):
        if duration / step <= 16:
            return step
    return 3600


def _clock(t: float) -> str:
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
            run.append(f"{_f(x(t))},{_f(y(v))}")
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
        f'<text x="{_f(x)}" y="{_f(min(max(y + 3.5, top + 8.0), top + height - 1.0))}" '
        f'font-size="9" text-anchor="end">{_e(text)}</text>'
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


def _segment_note(item: BatchResult) -> str:
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
            duration = max(duration, self.frames[-1].time + 1.0 / float(result.fps or 5.0))
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
            f'<text x="2" y="{_f(self.y + height / 2 + 3.5)}" font-size="10" fill="#444">'
            f"{_e(text)}</text>"
        )

    def span(self, t0: float, t1: float, height: float, fill: str, title: str, attrs="") -> None:
        x0 = self.x(t0)
        self.parts.append(
            f'<rect{attrs} x="{_f(x0)}" y="{_f(self.y)}" width="{_f(max(0.5, self.x(t1) - x0))}" '
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
            f'<rect x="{self.LEFT}" y="{_f(top)}" width="{self.pw}" height="{height}" '
            'fill="#fafafa" stroke="#ccc"/>'
        )
        if lo < 0 < hi:
            self.parts.append(
                f'<line x1="{self.LEFT}" y1="{_f(y(0))}" x2="{self.LEFT + self.pw}" '
                f'y2="{_f(y(0))}" stroke="#ddd"/>'
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
            kind = _modality(cue.type)
            self.parts.append(
                f'<rect class="cue" data-type="{_e(kind)}" x="{_f(x0)}" '
                f'y="{_f(self.y + lane * lane_h)}" width="{_f(x1 - x0)}" height="{lane_h - 2}" '
                f'rx="2" fill="{MODALITY_COLORS.get(kind, OTHER_CUE)}"><title>{_e(cue.type)}: '
                f"{_e(cue.text)} ({cue.start:.1f}-{cue.end:.1f} s, weight {cue.weight:.2f})"
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
                f'<text class="seg-note" x="{self.LEFT}" y="{_f(self.y + 9)}" font-size="10" '
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
                f'<rect class="segment" x="{_f(x0)}" y="{_f(self.y)}" '
                f'width="{_f(max(1.0, self.x(seg.end) - x0))}" height="{height}" '
                f'fill="{SEGMENT_FILL}" fill-opacity="0.45"><title>{title}</title></rect>'
            )
        self.parts.append(
            f'<line x1="{self.LEFT}" y1="{_f(y(threshold))}" x2="{self.LEFT + self.pw}" '
            f'y2="{_f(y(threshold))}" stroke="#555" stroke-dasharray="4 3">'
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
                f"predicted {_ah(int(label))} (frame probability &gt;= {threshold:g}): "
                f"{t0:.1f}-{t1:.1f} s"
            )
            return AH_BAND[int(label)], title, ' class="predicted"'

        self.frame_band([f.ah_label for f in self.frames], height, predicted)
        self.name(height, "predicted")
        self.y += height + 3
        self.parts.append(
            f'<rect x="{self.LEFT}" y="{_f(self.y)}" width="{self.pw}" height="{height}" '
            'fill="none" stroke="#ddd"/>'
        )
        if truth.frames is not None and truth.fps:
            for first, last, label in _runs([int(v) for v in truth.frames]):
                t0, t1 = first / truth.fps, (last + 1) / truth.fps
                if t0 >= self.duration:
                    break
                title = (
                    f"frame labels: {_ah(label)}, frames {first}-{last} ({t0:.2f}-{t1:.2f} s "
                    f"at {truth.fps:g} fps)"
                )
                attrs = f' class="truth" data-label="{label}"'
                self.span(t0, t1, height, AH_BAND[label], title, attrs)
        elif truth.video is not None:
            title = f"video label: {_ah(truth.video)} (no frame labels)"
            attrs = f' class="truth" data-label="{truth.video}"'
            self.span(0.0, self.duration, height, AH_BAND[truth.video], title, attrs)
        else:
            self.parts.append(
                f'<text x="{self.LEFT + 4}" y="{_f(self.y + height - 2)}" font-size="9" '
                'fill="#777">no labels for this clip</text>'
            )
        self.name(height, "truth")
        self.y += height + 4

    def emotions(self) -> None:
        def style(label: str | None, t0: float, t1: float):
            return (
                EMOTION_COLORS.get(label, NO_FACE),
                f"{t0:.1f}-{t1:.1f} s: " + _e(label or "no face"),
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
            f'<line x1="{self.LEFT}" y1="{_f(y)}" x2="{self.LEFT + self.pw}" y2="{_f(y)}" '
            'stroke="#444"/>'
        )
        for k in range(int(self.duration / step + 1e-9) + 1):
            x = _f(self.x(k * step))
            self.parts.append(
                f'<line x1="{x}" y1="{_f(y)}" x2="{x}" y2="{_f(y + 4)}" stroke="#444"/>'
                f'<text class="tick" x="{x}" y="{_f(y + 15)}" font-size="10" '
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
                        f'<text class="word" x="{_f(x0)}" y="{_f(self.y + 8 + row * 12)}" '
                        f'font-size="10" fill="#333"><title>{word.start:.2f}-{word.end:.2f} s'
                        f"</title>{_e(word.text)}</text>"
                    )
                    break
        self.y += sum(end > -math.inf for end in ends) * 12 + 2
        if shown < len(words):
            self.parts.append(
                f'<text x="{self.LEFT + self.pw}" y="{_f(self.y + 6)}" font-size="9" '
                f'text-anchor="end" fill="#777">{len(words) - shown} of {len(words)} words not '
                "drawn (no room): see the word list</text>"
            )
            self.y += 8

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" '
            f'viewBox="0 0 {WIDTH} {_f(self.y + 4)}" width="100%" '
            'preserveAspectRatio="xMinYMin meet" role="img">'
            f"<title>Timeline of {_e(self.item.id)}</title>" + "".join(self.parts) + "</svg>"
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


# -- the page ----------------------------------------------------------------------------------


def _mean_distribution(results: Sequence[BatchResult]) -> tuple[dict[str, float], int]:
    sums = dict.fromkeys(EMOTIONS, 0.0)
    n = 0
    for b in results:
        dist = b.result.clip.emotion_distribution
        if dist:
            n += 1
            for e in EMOTIONS:
                sums[e] += float(json_ready(dist.get(e)) or 0.0)
    return ({e: s / n for e, s in sums.items()} if n else sums), n


def _cell(value: Any, sort: Any = None, cls: str = "") -> str:
    sort = value if sort is None else sort
    attr = f' class="{cls}"' if cls else ""
    return f'<td{attr} data-v="{_e(sort)}">{_e(value)}</td>'


def _truth_cell(truth: evaluation.Truth | None) -> str:
    """The labels of a clip in the clips table: its video label, else the share of its
    labelled frames that are A/H (numbers only: no transcript)."""
    if truth is None:
        return _cell("-", -1)
    if truth.video is not None:
        return _cell(_ah(truth.video), truth.video, "ah" if truth.video else "")
    if truth.frames is not None:
        labelled = [int(v) for v in truth.frames if v >= 0]
        if labelled:
            share = sum(labelled) / len(labelled)
            return _cell(f"frames: {share:.0%} A/H", share)
    return _cell("-", -1)


def _partial(result) -> list[str]:
    """The result's partial-media warnings (:mod:`ahmer.preprocessing.truncation`)."""
    return [w for w in result.warnings if is_incomplete(w)]


def _partial_badge(result) -> str:
    """A red ``truncated`` mark (its warnings as the tooltip), or "" for a whole clip."""
    partial = _partial(result)
    if not partial:
        return ""
    return f' <span class="truncated" title="{_e("; ".join(partial))}">truncated</span>'


def _clips_table(results: Sequence[BatchResult], truth: dict[str, evaluation.Truth] | None) -> str:
    head = [
        "id",
        "duration (s)",
        "A/H probability",
        "A/H",
        "segments",
        "top cues",
        "dominant emotion",
        "words from",
    ]
    if truth is not None:
        head.insert(4, "labelled")
    rows = []
    for b in results:
        r, clip = b.result, b.result.clip
        duration = r.media.get("duration") or 0.0
        p = float(clip.ah_probability)
        labelled = _truth_cell(truth.get(b.id)) if truth is not None else ""
        rows.append(
            "<tr>"
            f'<td data-v="{_e(b.id)}"><a href="#clip-{_e(b.id)}">{_e(b.id)}</a>'
            f"{_partial_badge(r)}</td>"
            + _cell(f"{duration:.1f}", duration, "num")
            + _cell(f"{p:.3f}", p, "num")
            + _cell(
                "A/H" if clip.ah_label else "no",
                clip.ah_label,
                "ah" if clip.ah_label else "",
            )
            + labelled
            + _cell(len(clip.segments), cls="num")
            + _cell(top_cues(r))
            + _cell(clip.dominant_emotion or "-")
            + _cell(r.transcript_source)
            + "</tr>"
        )
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (
        f'<table class="sortable" id="clips"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _failures_table(failures: Sequence[dict[str, Any]]) -> str:
    if not failures:
        return ""
    rows = "".join(
        f"<tr>{_cell(f.get('id'))}{_cell(f.get('path'))}{_cell(f.get('error'))}</tr>"
        for f in failures
    )
    return (
        f"<h2>Failures ({len(failures)})</h2>"
        '<table class="sortable" id="failures"><thead><tr><th>id</th><th>path</th>'
        f"<th>error</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _truth_summary(truth: evaluation.Truth | None, predicted: int) -> str:
    if truth is None:
        return " · not in the labels"
    if truth.video is not None:
        ok = truth.video == predicted
        mark = '<span class="right">agrees</span>' if ok else '<span class="wrong">differs</span>'
        return f" · labelled {_ah(truth.video)} ({mark})"
    return " · frame labels only"


def _clip_section(
    b: BatchResult, open_: bool, truth: evaluation.Truth | None, labelled: bool
) -> str:
    r, clip = b.result, b.result.clip
    label = "A/H" if clip.ah_label else "no A/H"
    words = " ".join(w.text for w in r.transcript)
    cues = "".join(
        f'<li><i style="background:{MODALITY_COLORS.get(_modality(c.type), OTHER_CUE)}"></i>'
        f"[{_e(c.type)}] {_e(c.text)} "
        f'<span class="muted">({c.start:.1f}-{c.end:.1f} s, weight '
        f"{c.weight:.2f})</span></li>"
        for c in r.explanation.cues
    )
    warnings = "".join(f"<li>{_e(w)}</li>" for w in r.warnings)
    partial = "; ".join(_partial(r))
    note = _segment_note(b)
    svg = timeline_svg(b, (truth or evaluation.Truth()) if labelled else None)
    summary = f"{_e(b.id)}: {label} (p={clip.ah_probability:.2f})"
    if labelled:
        summary += _truth_summary(truth, int(clip.ah_label))
    summary += _partial_badge(r)
    return (
        f'<details id="clip-{_e(b.id)}"{" open" if open_ else ""}>'
        f"<summary>{summary}</summary>"
        f"<p>{_e(r.explanation.summary)}</p>"
        + (f'<p class="partial">Partial media: {_e(partial)}</p>' if partial else "")
        + (f'<p class="note seg-note">{_e(note)}</p>' if note else "")
        + svg
        + (f'<ul class="cues">{cues}</ul>' if cues else "")
        + (f'<p class="muted">Words ({_e(r.transcript_source)}): {_e(words)}</p>' if words else "")
        + (f'<ul class="muted">{warnings}</ul>' if warnings else "")
        + "</details>"
    )


def _swatch(color: str, text: str, line: bool = False, border: bool = False) -> str:
    cls = ' class="line"' if line else ""
    edge = ";border:1px solid #999" if border else ""
    return f'<span><i{cls} style="background:{color}{edge}"></i>{_e(text)}</span>'


def _legend(labelled: bool) -> str:
    emotions = "".join(_swatch(c, e) for e, c in EMOTION_COLORS.items())
    emotions += _swatch(NO_FACE, "no face", border=True)
    modalities = "".join(
        _swatch(MODALITY_COLORS[k], k.replace("_", "-")) for k in ATTRIBUTION_NAMES
    )
    lines = (
        _swatch("#b71c1c", "A/H probability", line=True)
        + _swatch("#555", "threshold (dashed)", line=True)
        + _swatch(SEGMENT_FILL, "frames above the threshold (segments)")
        + _swatch("#455a64", "valence", line=True)
    )
    parts = [
        f"<div><b>Lines:</b>{lines}</div>",
        f"<div><b>Cues and attribution, by modality:</b>{modalities}</div>",
        f"<div><b>Emotion band:</b>{emotions}</div>",
    ]
    if labelled:
        bands = (
            _swatch(AH_BAND[1], "A/H")
            + _swatch(AH_BAND[0], "no A/H")
            + _swatch(AH_BAND[-1], "unlabelled frame", border=True)
        )
        parts.append(
            f"<div><b>Predicted and truth bands:</b>{bands}<span class='muted'>truth: frame "
            "labels where the labels have them, else the video label across the clip</span>"
            "</div>"
        )
    return f'<div class="legend" id="legend">{"".join(parts)}</div>'


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for level in ("video", "frame"):
        m = metrics.get(level)
        if m:
            ap = "-" if m.get("ap") is None else f"{m['ap']:.4f}"
            rows.append(
                f"<tr><td>{level}</td><td class='num'>{m['n']}</td>"
                f"<td class='num'>{m['avgf1']:.4f}</td><td class='num'>{ap}</td>"
                f"<td class='num'>{m['accuracy']:.4f}</td><td class='num'>{m['f1_0']:.4f}"
                f"</td><td class='num'>{m['f1_1']:.4f}</td></tr>"
            )
    if not rows:
        return "<h2>BAH metrics</h2><p>No clip matched the labels.</p>"
    return (
        "<h2>BAH metrics</h2><table><thead><tr><th>level</th><th>n</th><th>AVGF1</th>"
        "<th>AP</th><th>accuracy</th><th>F1 class 0</th><th>F1 class 1</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _evaluation_html(
    samples: evaluation.Evaluation, metrics: dict[str, Any], threshold: str
) -> str:
    match = samples.matching
    out = [
        _metrics_table(metrics),
        f'<p class="muted">{match["results"]} result(s): {match["matched_video_level"]} '
        f"matched a video label, {match['matched_frame_level']} frame labels; "
        f"{len(match['unmatched'])} unmatched"
        + (f" ({_e(', '.join(match['unmatched']))})" if match["unmatched"] else "")
        + (
            f"; {samples.frames_dropped} labelled frame(s) dropped (no analysis frame near)"
            if samples.frames_dropped
            else ""
        )
        + ". Frame level: each labelled source frame takes the nearest analysis frame's "
        "prediction.</p>",
    ]
    plots = []
    for level, level_samples in (("video", samples.video), ("frame", samples.frame)):
        m = metrics.get(level)
        if level_samples is None or not m:
            continue
        plots.append(
            f"<div>{confusion_html(m, level, threshold)}"
            f"{pr_curve_svg(level_samples, m, level)}</div>"
        )
    if plots:
        out.append(
            "<h3>Confusion matrices and precision-recall curves</h3>"
            '<p class="muted">Counts at the decision threshold; the curve is the one AP '
            "integrates (thresholds 0, 0.001, ..., 0.999, trapezoid rule, as in the BAH "
            "code); the circle is the decision threshold's point, the dashed line the share "
            "of positives.</p>"
            f'<div class="plots">{"".join(plots)}</div>'
        )
    return "".join(out)


def render_report(
    results: Sequence[BatchResult],
    failures: Sequence[dict[str, Any]] = (),
    title: str = "ahmer batch report",
    metrics: dict[str, Any] | None = None,
    labels: evaluation.LabelSet | None = None,
    label_fps: float | None = None,
) -> str:
    """The whole HTML page. With ``labels`` it shows the truth on the timelines and an
    evaluation section (``metrics`` as :func:`ahmer.models.evaluation.evaluate` returns them,
    computed here when not given); ``metrics`` alone gives the metrics table only."""
    results = list(results)
    probs = [float(b.result.clip.ah_probability) for b in results]
    thresholds = sorted({float(json_ready(b.result.clip.threshold) or 0.5) for b in results})
    threshold = thresholds[0] if len(thresholds) == 1 else 0.5
    threshold_text = (
        f"{threshold:g}"
        if len(thresholds) <= 1
        else "each clip's own (" + ", ".join(f"{t:g}" for t in thresholds) + ")"
    )
    dist, with_face = _mean_distribution(results)
    positives = sum(int(b.result.clip.ah_label) for b in results)
    partial = sum(1 for b in results if _partial(b.result))
    seconds = sum(float(b.result.media.get("duration") or 0.0) for b in results)
    models = {}
    for b in results:
        models.update(b.result.models)
    notice = next((b.result.notice for b in results if b.result.notice), "")
    samples = truth = None
    metric_html = ""
    if labels is not None:
        videos = [b.scored_video() for b in results]
        samples = evaluation.collect(videos, labels, label_fps)
        truth = samples.truth
        if metrics is None:
            metrics = evaluation.evaluate(videos, labels, label_fps)
        metric_html = _evaluation_html(samples, metrics, threshold_text)
    elif metrics:
        metric_html = _metrics_table(metrics)
    open_ = len(results) <= OPEN_LIMIT
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{len(results)} clip(s), {seconds:.1f} s of media, '
        f"{positives} with A/H (threshold {_e(threshold_text)}), {len(failures)} failure(s). "
        "Models: " + _e(", ".join(f"{k} {v}" for k, v in sorted(models.items()))) + "</p>",
        f'<p class="notice">{_e(notice)}</p>' if notice else "",
        (
            f'<p class="partial">{partial} clip(s) are partial media (marked '
            '<span class="truncated">truncated</span>): cut or damaged files whose results '
            "cover only what decoded.</p>"
            if partial
            else ""
        ),
        metric_html,
        "<h2>Summary</h2>",
        f'<div class="plots">{histogram_svg(probs, threshold)}'
        f"{emotion_bars_svg(dist, with_face)}</div>",
        "<h2>Clips</h2><p class='muted'>Click a column header to sort.</p>",
        _clips_table(results, truth),
        _failures_table(failures),
        "<h2>Timelines</h2>",
        '<p class="muted">Shaded spans are runs of frames whose A/H probability is above the '
        f"threshold (gaps under {SEGMENT_GAP:g} s bridged); the clip's label comes from its own "
        "probability, which pools every frame, so the two can differ (each clip says so when "
        "they do). Attribution: the change in A/H probability when a modality is left out.</p>",
        _legend(labels is not None),
        *(
            _clip_section(b, open_, None if truth is None else truth.get(b.id), labels is not None)
            for b in results
        ),
    ]
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + f"<script>{_JS}</script></body></html>\n"
    )
