"""The batch report page: one self-contained HTML file (inline CSS, SVG and a few lines of
JS; a Content-Security-Policy forbids any network access) that puts together the summary
charts (:mod:`.report_charts`), a sortable table of clips, the failures, with labels the
evaluation section, and per clip its timeline (:mod:`.report_timeline`). Transcript text
never enters a table (words appear only on the timelines, in the cue texts and in each
clip's word list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ahmer.models.contract import ATTRIBUTION_NAMES, EMOTIONS
from ahmer.models.results import json_ready
from ahmer.models.training import evaluation
from ahmer.preprocessing.truncation import is_incomplete

from .report_charts import confusion_html, emotion_bars_svg, histogram_svg, pr_curve_svg
from .report_style import (
    AH_BAND,
    EMOTION_COLORS,
    MODALITY_COLORS,
    NO_FACE,
    OPEN_LIMIT,
    OTHER_CUE,
    SEGMENT_FILL,
    SEGMENT_GAP,
    ah_text,
    esc,
    modality,
)
from .report_timeline import segment_note, timeline_svg
from .tables import BatchResult, top_cues

__all__ = ["render_report"]

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
    return f'<td{attr} data-v="{esc(sort)}">{esc(value)}</td>'


def _truth_cell(truth: evaluation.Truth | None) -> str:
    """The labels of a clip in the clips table: its video label, else the share of its
    labelled frames that are A/H (numbers only: no transcript)."""
    if truth is None:
        return _cell("-", -1)
    if truth.video is not None:
        return _cell(ah_text(truth.video), truth.video, "ah" if truth.video else "")
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
    return f' <span class="truncated" title="{esc("; ".join(partial))}">truncated</span>'


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
            f'<td data-v="{esc(b.id)}"><a href="#clip-{esc(b.id)}">{esc(b.id)}</a>'
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
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
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
        return f" · labelled {ah_text(truth.video)} ({mark})"
    return " · frame labels only"


def _clip_section(
    b: BatchResult, open_: bool, truth: evaluation.Truth | None, labelled: bool
) -> str:
    r, clip = b.result, b.result.clip
    label = "A/H" if clip.ah_label else "no A/H"
    words = " ".join(w.text for w in r.transcript)
    cues = "".join(
        f'<li><i style="background:{MODALITY_COLORS.get(modality(c.type), OTHER_CUE)}"></i>'
        f"[{esc(c.type)}] {esc(c.text)} "
        f'<span class="muted">({c.start:.1f}-{c.end:.1f} s, weight '
        f"{c.weight:.2f})</span></li>"
        for c in r.explanation.cues
    )
    warnings = "".join(f"<li>{esc(w)}</li>" for w in r.warnings)
    partial = "; ".join(_partial(r))
    note = segment_note(b)
    svg = timeline_svg(b, (truth or evaluation.Truth()) if labelled else None)
    summary = f"{esc(b.id)}: {label} (p={clip.ah_probability:.2f})"
    if labelled:
        summary += _truth_summary(truth, int(clip.ah_label))
    summary += _partial_badge(r)
    return (
        f'<details id="clip-{esc(b.id)}"{" open" if open_ else ""}>'
        f"<summary>{summary}</summary>"
        f"<p>{esc(r.explanation.summary)}</p>"
        + (f'<p class="partial">Partial media: {esc(partial)}</p>' if partial else "")
        + (f'<p class="note seg-note">{esc(note)}</p>' if note else "")
        + svg
        + (f'<ul class="cues">{cues}</ul>' if cues else "")
        + (
            f'<p class="muted">Words ({esc(r.transcript_source)}): {esc(words)}</p>'
            if words
            else ""
        )
        + (f'<ul class="muted">{warnings}</ul>' if warnings else "")
        + "</details>"
    )


def _swatch(color: str, text: str, line: bool = False, border: bool = False) -> str:
    cls = ' class="line"' if line else ""
    edge = ";border:1px solid #999" if border else ""
    return f'<span><i{cls} style="background:{color}{edge}"></i>{esc(text)}</span>'


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
        + (f" ({esc(', '.join(match['unmatched']))})" if match["unmatched"] else "")
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
    evaluation section (``metrics`` as :func:`ahmer.models.training.evaluation.evaluate`
    returns them, computed here when not given); ``metrics`` alone gives the metrics table
    only."""
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
        f"<h1>{esc(title)}</h1>",
        f'<p class="muted">{len(results)} clip(s), {seconds:.1f} s of media, '
        f"{positives} with A/H (threshold {esc(threshold_text)}), {len(failures)} failure(s). "
        "Models: " + esc(", ".join(f"{k} {v}" for k, v in sorted(models.items()))) + "</p>",
        f'<p class="notice">{esc(notice)}</p>' if notice else "",
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
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + f"<script>{_JS}</script></body></html>\n"
    )
