"""The batch report: one self-contained HTML file (inline CSS, SVG and a few lines of JS; a
Content-Security-Policy forbids any network access), readable offline.

It holds summary plots (histogram of clip A/H probability, mean emotion distribution), a
sortable table of clips, the failures, and per clip a timeline: the A/H probability line
with A/H segments shaded and the threshold, an emotion band (the frame's emotion as a
coloured strip), cue markers and the words on the time axis. All text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ahmer.models.contract import EMOTIONS
from ahmer.models.results import json_ready

from .tables import BatchResult, top_cues

__all__ = ["EMOTION_COLORS", "render_report", "timeline_svg", "histogram_svg", "emotion_bars_svg"]

# one colour per emotion, in the order of EMOTIONS (zip(strict=True) fails loudly if they drift)
EMOTION_COLORS = dict(
    zip(
        EMOTIONS,
        ("#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#bdbdbd"),
        strict=True,
    )
)
NO_FACE = "#f0f0f0"
PX_PER_SECOND = 60
OPEN_LIMIT = 40  # clip sections shown open; more start collapsed

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.muted{color:#666}.notice{background:#fff8e1;border:1px solid #f0d98c;padding:8px 12px}
.plots{display:flex;flex-wrap:wrap;gap:24px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4;cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ah{color:#b71c1c;font-weight:600}
details{margin:10px 0;border-top:1px solid #eee;padding-top:6px}
summary{cursor:pointer;font-weight:600}.scroll{overflow-x:auto}
.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
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


# -- per-clip timeline -------------------------------------------------------------------------


def _tick_step(duration: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60):
        if duration / step <= 20:
            return step
    return 120


def timeline_svg(item: BatchResult) -> str:
    """A/H probability line with shaded segments and threshold, emotion band, cue markers and
    words on the time axis, for one result."""
    result = item.result
    frames, clip = result.frames, result.clip
    duration = float(result.media.get("duration") or 0.0)
    if frames:
        duration = max(duration, frames[-1].time + 1.0 / float(result.fps or 5.0))
    duration = max(duration, 0.5)
    left, right = 40, 12
    pw = max(600, int(duration * PX_PER_SECOND))
    w = left + pw + right
    top, ph = 10, 90  # probability plot
    band_y, band_h = top + ph + 8, 14  # emotion band
    axis_y = band_y + band_h + 4
    words_y = axis_y + 26
    h = words_y + 3 * 12 + 8

    def x(t: float) -> float:
        return left + pw * min(max(t, 0.0), duration) / duration

    def y(p: float) -> float:
        return top + ph * (1.0 - min(max(p, 0.0), 1.0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">',
        f"<title>Timeline of {_e(item.id)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for seg in clip.segments:
        parts.append(
            f'<rect x="{_f(x(seg.start))}" y="{top}" '
            f'width="{_f(max(1.0, x(seg.end) - x(seg.start)))}" height="{ph}" '
            f'fill="#ef9a9a" fill-opacity="0.45"><title>A/H {seg.start:.1f}-'
            f"{seg.end:.1f} s (peak {seg.peak_probability:.2f})</title></rect>"
        )
    threshold = float(json_ready(clip.threshold) or 0.5)
    parts.append(
        f'<line x1="{left}" y1="{_f(y(threshold))}" x2="{left + pw}" y2="{_f(y(threshold))}" '
        'stroke="#555" stroke-dasharray="4 3"/>'
    )
    for p in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{left - 4}" y="{_f(y(p) + 4)}" font-size="10" text-anchor="end">{p:g}</text>'
        )
    if frames:
        points = " ".join(f"{_f(x(f.time))},{_f(y(f.ah_probability))}" for f in frames)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="#b71c1c" stroke-width="1.8"/>'
        )
    for i, f in enumerate(frames):  # emotion band
        end = frames[i + 1].time if i + 1 < len(frames) else duration
        label = f.emotion_label
        color = EMOTION_COLORS.get(label, NO_FACE)
        parts.append(
            f'<rect x="{_f(x(f.time))}" y="{band_y}" '
            f'width="{_f(max(0.5, x(end) - x(f.time)))}" height="{band_h}" fill="{color}">'
            f"<title>{f.time:.1f} s: {_e(label or 'no face')}</title></rect>"
        )
    for cue in result.explanation.cues:
        cx = x(cue.start)
        parts.append(
            f'<path d="M{_f(cx - 4)},{top} L{_f(cx + 4)},{top} L{_f(cx)},{top + 7} Z" '
            f'fill="#1a237e"><title>{_e(cue.type)} - {_e(cue.text)} '
            f"({cue.start:.1f}-{cue.end:.1f} s, weight {cue.weight:.2f})"
            "</title></path>"
        )
    step = _tick_step(duration)
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + pw}" y2="{axis_y}" stroke="#444"/>')
    for k in range(int(duration / step) + 1):
        t = k * step
        parts.append(
            f'<line x1="{_f(x(t))}" y1="{axis_y}" x2="{_f(x(t))}" y2="{axis_y + 4}" '
            'stroke="#444"/>'
            f'<text x="{_f(x(t))}" y="{axis_y + 15}" font-size="10" '
            f'text-anchor="middle">{t:g}s</text>'
        )
    for i, word in enumerate(result.transcript):
        parts.append(
            f'<text x="{_f(x(word.start))}" y="{words_y + (i % 3) * 12}" font-size="10" '
            f'fill="#333"><title>{word.start:.2f}-{word.end:.2f} s</title>'
            f"{_e(word.text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


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


def _clips_table(results: Sequence[BatchResult]) -> str:
    head = (
        "id",
        "duration (s)",
        "A/H probability",
        "A/H",
        "segments",
        "top cues",
        "dominant emotion",
        "words from",
    )
    rows = []
    for b in results:
        r, clip = b.result, b.result.clip
        duration = r.media.get("duration") or 0.0
        p = float(clip.ah_probability)
        rows.append(
            "<tr>"
            f'<td data-v="{_e(b.id)}"><a href="#clip-{_e(b.id)}">{_e(b.id)}</a></td>'
            + _cell(f"{duration:.1f}", duration, "num")
            + _cell(f"{p:.3f}", p, "num")
            + _cell(
                "A/H" if clip.ah_label else "no",
                clip.ah_label,
                "ah" if clip.ah_label else "",
            )
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


def _clip_section(b: BatchResult, open_: bool) -> str:
    r, clip = b.result, b.result.clip
    label = "A/H" if clip.ah_label else "no A/H"
    words = " ".join(w.text for w in r.transcript)
    cues = "".join(
        f"<li>[{_e(c.type)}] {_e(c.text)} "
        f'<span class="muted">({c.start:.1f}-{c.end:.1f} s, weight '
        f"{c.weight:.2f})</span></li>"
        for c in r.explanation.cues
    )
    warnings = "".join(f"<li>{_e(w)}</li>" for w in r.warnings)
    return (
        f'<details id="clip-{_e(b.id)}"{" open" if open_ else ""}>'
        f"<summary>{_e(b.id)}: {label} (p={clip.ah_probability:.2f})</summary>"
        f"<p>{_e(r.explanation.summary)}</p>"
        f'<div class="scroll">{timeline_svg(b)}</div>'
        + (f"<ul>{cues}</ul>" if cues else "")
        + (f'<p class="muted">Words ({_e(r.transcript_source)}): {_e(words)}</p>' if words else "")
        + (f'<ul class="muted">{warnings}</ul>' if warnings else "")
        + "</details>"
    )


def render_report(
    results: Sequence[BatchResult],
    failures: Sequence[dict[str, Any]] = (),
    title: str = "ahmer batch report",
    metrics: dict[str, Any] | None = None,
) -> str:
    """The whole HTML page."""
    results = list(results)
    probs = [float(b.result.clip.ah_probability) for b in results]
    thresholds = {float(json_ready(b.result.clip.threshold) or 0.5) for b in results}
    threshold = thresholds.pop() if len(thresholds) == 1 else 0.5
    dist, with_face = _mean_distribution(results)
    positives = sum(int(b.result.clip.ah_label) for b in results)
    seconds = sum(float(b.result.media.get("duration") or 0.0) for b in results)
    models = {}
    for b in results:
        models.update(b.result.models)
    notice = next((b.result.notice for b in results if b.result.notice), "")
    legend = (
        "".join(
            f'<span><i style="background:{c}"></i>{_e(e)}</span>' for e, c in EMOTION_COLORS.items()
        )
        + f'<span><i style="background:{NO_FACE};border:1px solid #ccc"></i>no face</span>'
    )
    metric_html = ""
    if metrics:
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
        if rows:
            metric_html = (
                "<h2>BAH metrics</h2><table><thead><tr><th>level</th><th>n</th><th>AVGF1</th>"
                "<th>AP</th><th>accuracy</th><th>F1 class 0</th><th>F1 class 1</th></tr>"
                f"</thead><tbody>{''.join(rows)}</tbody></table>"
            )
    open_ = len(results) <= OPEN_LIMIT
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{len(results)} clip(s), {seconds:.1f} s of media, '
        f"{positives} with A/H (threshold {threshold:g}), {len(failures)} failure(s). Models: "
        + _e(", ".join(f"{k} {v}" for k, v in sorted(models.items())))
        + "</p>",
        f'<p class="notice">{_e(notice)}</p>' if notice else "",
        metric_html,
        "<h2>Summary</h2>",
        f'<div class="plots">{histogram_svg(probs, threshold)}'
        f"{emotion_bars_svg(dist, with_face)}</div>",
        "<h2>Clips</h2><p class='muted'>Click a column header to sort.</p>",
        _clips_table(results),
        _failures_table(failures),
        "<h2>Timelines</h2>",
        f'<p class="legend">{legend}<span>red line: A/H probability; shaded: A/H segments; '
        "dashed: threshold; triangles: cues</span></p>",
        *(_clip_section(b, open_) for b in results),
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
