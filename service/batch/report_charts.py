"""The batch report's charts: the summary plots (histogram of clip A/H probability, mean
emotion distribution) and the evaluation plots (a confusion matrix and a precision-recall
curve per level, from what :mod:`ahmer.models.training.evaluation` computes). Each returns
one self-contained SVG or HTML fragment, all text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ahmer.models.contract import EMOTIONS
from ahmer.models.training import evaluation

from .report_style import EMOTION_COLORS, esc, num

__all__ = ["confusion_html", "emotion_bars_svg", "histogram_svg", "pr_curve_svg"]


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
            f'<rect x="{num(x + 1)}" y="{num(y)}" width="{num(bw - 2)}" height="{num(bh)}" '
            f'fill="{"#c62828" if (i + 0.5) / bins >= threshold else "#78909c"}">'
            f"<title>{i / bins:.1f}-{(i + 1) / bins:.1f}: {c} clip(s)</title></rect>"
        )
        if c:
            parts.append(
                f'<text x="{num(x + bw / 2)}" y="{num(y - 2)}" font-size="10" '
                f'text-anchor="middle">{c}</text>'
            )
    for i in range(0, bins + 1, 2):
        x = left + i * bw
        parts.append(
            f'<text x="{num(x)}" y="{h - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{i / bins:.1f}</text>'
        )
    tx = left + threshold * pw
    parts.append(
        f'<line x1="{num(tx)}" y1="{top}" x2="{num(tx)}" y2="{top + ph}" stroke="#000" '
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
            f'<rect x="{left}" y="{y}" width="{num(bw)}" height="{row - 6}" '
            f'fill="{EMOTION_COLORS[e]}"><title>{e}: {share:.1%}</title></rect>'
        )
        parts.append(
            f'<text x="{num(left + bw + 4)}" y="{y + 13}" font-size="11">{share:.0%}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{h - 4}" font-size="11">mean over {clips} clip(s) with a face</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# -- evaluation plots --------------------------------------------------------------------------


def confusion_html(m: dict[str, Any], level: str, threshold: str) -> str:
    """The confusion matrix of one level from its metrics (``tp``, ``fp``, ``fn``, ``tn``, as
    :func:`ahmer.models.training.evaluation.binary_metrics` counts them)."""
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
        f'<table class="confusion" data-level="{esc(level)}"><caption>{esc(level)} level: '
        f"{int(m['n'])} {unit}, threshold {esc(threshold)}</caption>"
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
    :func:`ahmer.models.training.evaluation.pr_curve` computes (the area under them, shaded, is
    the AP in ``m``), the chance line (the share of positives) and the decision threshold's
    point (from the confusion counts)."""
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
        f'class="pr" data-level="{esc(level)}"><title>Precision-recall curve, {esc(title)}</title>',
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for k in range(6):
        v = k / 5
        parts.append(
            f'<text x="{num(x(v))}" y="{top + ph + 13}" font-size="10" '
            f'text-anchor="middle">{v:.1f}</text>'
            f'<text x="{left - 4}" y="{num(y(v) + 3)}" font-size="10" '
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
        f'<line x1="{left}" y1="{num(y(chance))}" x2="{left + pw}" y2="{num(y(chance))}" '
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
        f'<circle class="operating" cx="{num(x(op_r))}" cy="{num(y(op_p))}" r="4" fill="#fff" '
        f'stroke="#000" stroke-width="1.5"><title>at the decision threshold: precision '
        f"{op_p:.3f}, recall {op_r:.3f}</title></circle>"
    )
    parts.append("</svg>")
    return "".join(parts)
