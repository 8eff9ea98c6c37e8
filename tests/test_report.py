"""The batch HTML report: escaped text, offline (no external URL), and it loads in a real
headless Chromium with no console messages, sorts its table on a header click and renders a
non-trivial screenshot.

The results are real :class:`~ahmer.models.results.AnalysisResult` objects built in the test
(rendering does not need media), serialised as the batch writes them and read back typed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ahmer.models.contract import EMOTIONS
from ahmer.models.results import (
    AHSegment,
    AnalysisResult,
    ClipResult,
    Cue,
    Explanation,
    FaceRef,
    FrameResult,
    TranscriptWord,
)
from ahmer.service.batch.report import render_report
from ahmer.service.batch.tables import (
    FRAME_COLUMNS,
    BatchResult,
    clip_rows,
    frame_columns,
    frames_csv,
    top_cues,
)

NASTY = '<script>alert("x")</script>&'


def _analysis(p_clip: float, face: bool = True, n: int = 20) -> AnalysisResult:
    times = np.arange(n) / 5.0
    probs = 0.5 + 0.45 * np.sin(times * 1.3 + p_clip * 3)
    frames = []
    for i, t in enumerate(times):
        emotion = None
        label = None
        if face:
            raw = np.ones(len(EMOTIONS)) + np.eye(len(EMOTIONS))[i % len(EMOTIONS)] * 3
            raw /= raw.sum()
            emotion = {e: float(v) for e, v in zip(EMOTIONS, raw, strict=True)}
            label = EMOTIONS[i % len(EMOTIONS)]
        frames.append(
            FrameResult(
                time=float(t),
                face=FaceRef((0.2, 0.1, 0.8, 0.9), 0, 0.9) if face else None,
                emotion=emotion,
                emotion_label=label,
                valence=0.1,
                ah_probability=float(probs[i]),
                ah_label=int(probs[i] >= 0.5),
                attribution={"visual": 0.01, "vocal": 0.02, "verbal": 0.03, "cross_modal": 0.0},
                modalities={"visual": face, "vocal": True, "verbal": True},
            )
        )
    words = ["I", "guess", "maybe", NASTY, "but", "um", "no"]
    return AnalysisResult(
        clip=ClipResult(
            ah_probability=p_clip,
            ah_label=int(p_clip >= 0.5),
            threshold=0.5,
            segments=(AHSegment(0.4, 1.6, 1.0, 0.93),),
            emotion_distribution=({e: 1 / len(EMOTIONS) for e in EMOTIONS} if face else None),
            dominant_emotion="happy" if face else None,
            mean_valence=0.1,
        ),
        frames=frames,
        explanation=Explanation(
            summary=f"Hedging {NASTY} and a pause.",
            cues=(
                Cue("verbal", "hedge", 1.2, 1.6, 0.8, {"words": ["maybe"]}, "hedging: 'maybe'"),
                Cue("vocal", "pause", 3.0, 3.4, 0.5, {"seconds": 0.4}, "a 0.4 s pause"),
            ),
        ),
        transcript=[TranscriptWord(0.3 * i, 0.3 * i + 0.25, w) for i, w in enumerate(words)],
        transcript_source="asr",
        media={"duration": n / 5.0, "video_fps": 25.0},
        models={"ah_fusion_zeroshot": "zeroshot-1"},
        timings={"total": 1.0},
        fps=5.0,
    )


def _result(clip_id: str, p_clip: float, face: bool = True) -> BatchResult:
    data = _analysis(p_clip, face).to_dict()
    data["id"] = clip_id
    data["batch"] = {"path": f"/data/{clip_id}.mp4"}
    return BatchResult.from_dict(json.loads(json.dumps(data)))


RESULTS = [
    _result("clip_b", 0.81),
    _result("clip_a", 0.22),
    _result("audio_only", 0.55, face=False),
]
FAILURES = [{"id": "broken", "path": "/data/broken.mp4", "error": f"MediaError {NASTY}"}]


def test_report_is_escaped_and_offline():
    page = render_report(RESULTS, FAILURES)
    assert NASTY not in page  # every text is escaped...
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page  # ...and shown
    assert page.count("<script>") == 1  # only the report's own sorting script
    # nothing to fetch: no URLs except SVG's XML namespace
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+", page))
    assert urls <= {"http://www.w3.org"}, urls
    assert "default-src 'none'" in page  # and the browser is told to refuse any fetch
    for r in RESULTS:
        assert f'id="clip-{r.id}"' in page
    assert page.count('class="ah-line"') == len(RESULTS)  # one A/H line per timeline
    assert "broken" in page


def test_tables_rows():
    rows = clip_rows(RESULTS)
    assert [r["id"] for r in rows] == ["clip_b", "clip_a", "audio_only"]
    assert rows[0]["top_cues"] == "hedge@1.2s; pause@3.0s"
    assert top_cues(RESULTS[0].result, limit=1) == "hedge@1.2s"
    assert rows[2]["dominant_emotion"] == ""
    cols = frame_columns([r.result for r in RESULTS], [r.id for r in RESULTS])
    assert len(cols["id"]) == 60
    assert cols["emotion_label"][40] is None and cols["success"][40] == 0
    assert list(cols) == ["id", *FRAME_COLUMNS]
    assert cols["frame"][:2] == [0, 1] and cols["frame"][20] == 0  # per clip, 0-based
    assert cols["face_id"][0] == 0 and cols["face_id"][40] is None


def test_frame_table_one_clip_as_analyze_writes_it():
    text = frames_csv([_analysis(0.81)])
    header, first, *rest = text.splitlines()
    assert header.split(",") == list(FRAME_COLUMNS)  # the batch columns less id
    row = dict(zip(FRAME_COLUMNS, first.split(","), strict=True))
    assert row["frame"] == "0" and row["timestamp"] == "0.0" and row["success"] == "1"
    assert row["emotion_label"] == "angry" and row["modality_visual"] == "1"
    assert len(rest) == 19
    no_face = frames_csv([_analysis(0.55, face=False)]).splitlines()[1].split(",")
    row = dict(zip(FRAME_COLUMNS, no_face, strict=True))
    assert row["success"] == "0" and row["face_id"] == row["emotion_angry"] == ""


@pytest.mark.parametrize("frames", [True, False])
def test_result_round_trip(frames):
    for face in (True, False):
        result = _analysis(0.81, face)
        data = result.to_dict(frames=frames)
        assert AnalysisResult.from_dict(data).to_dict(frames=frames) == data
        back = AnalysisResult.from_json(result.to_json(frames=frames))
        assert back.to_dict(frames=frames) == data
        assert isinstance(back.clip.segments, tuple) and isinstance(back.explanation.cues, tuple)
        if frames:
            assert back.frames[0] == FrameResult.from_dict(data["frames"][0])
            assert (back.frames[0].face is not None) == face


def test_result_from_dict_nan_extras_and_errors():
    data = _analysis(0.81).to_dict()
    data["frames"][0]["valence"] = None  # how to_dict writes NaN
    data["batch"] = {"path": "/data/x.mp4", "key": "k"}
    data["id"] = "x"
    back = AnalysisResult.from_dict(data)
    assert math.isnan(back.frames[0].valence)
    assert back.to_dict()["frames"][0]["valence"] is None
    item = BatchResult.from_dict(data)
    assert (item.id, item.path, item.batch["key"]) == ("x", "/data/x.mp4", "k")
    with pytest.raises(ValueError, match="schema"):
        AnalysisResult.from_dict({**data, "schema": "ahmer.result/2"})
    with pytest.raises(ValueError, match="clip"):
        AnalysisResult.from_dict({"schema": data["schema"]})


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _load(tmp_path: Path, html_text: str, name: str) -> tuple[str, Path]:
    page = tmp_path / f"{name}.html"
    page.write_text(html_text, encoding="utf-8")
    png = tmp_path / f"{name}.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / f'profile-{name}'}",
        f"--screenshot={png}",
        "--window-size=1200,900",
        "--enable-logging=stderr",
        "--v=0",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr, png


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (bash .ci/install)")
def test_report_in_headless_chromium(tmp_path):
    from PIL import Image

    page = render_report(RESULTS, FAILURES)
    stderr, png = _load(tmp_path, page, "report")
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no errors, no CSP refusals, no logs at all
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (900, 1200)
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 20  # text, plots and bars: not a blank page
    assert (img.std(axis=(0, 1)) > 10).all()

    # The sorting script works: click the A/H probability header, log the order of ids.
    probe = (
        "<script>var th=document.querySelectorAll('#clips th')[2];th.click();"
        "console.log('ORDER '+Array.prototype.map.call(document.querySelectorAll("
        "'#clips tbody tr'),function(r){return r.cells[0].textContent;}).join(','));"
        "th.click();console.log('ORDER '+Array.prototype.map.call(document.querySelectorAll("
        "'#clips tbody tr'),function(r){return r.cells[0].textContent;}).join(','));</script>"
    )
    stderr, _ = _load(tmp_path, page.replace("</body>", probe + "</body>"), "sorted")
    orders = re.findall(r'"ORDER ([^"]*)"', stderr)
    assert orders == ["clip_a,audio_only,clip_b", "clip_b,audio_only,clip_a"], stderr[-2000:]


# -- labels, evaluation plots, cue lanes, valence and attribution, page width -------------------

LABELS_FPS = 25.0  # the results' video_fps
FRAME_LABELS = np.array([-1] * 10 + [0] * 30 + [1] * 60, np.int8)  # 4 s at 25 fps


def _labels():
    from ahmer.models.training.evaluation import LabelSet

    return LabelSet(
        videos={"Videos/1/clip_b.mp4": 1, "Videos/2/clip_a.mp4": 1, "Videos/3/audio_only.mp4": 0},
        frames={"Videos/1/clip_b.mp4": FRAME_LABELS},
    )


def _section(page: str, clip_id: str) -> str:
    found = re.search(rf'<details id="clip-{clip_id}".*?</details>', page, re.S)
    assert found, clip_id
    return found.group(0)


def _rects(svg: str, cls: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r'([\w-]+)="([^"]*)"', m))
        for m in re.findall(rf'<rect class="{cls}"([^>]*)>', svg)
    ]


def _points(polyline_attrs: str) -> list[tuple[float, float]]:
    found = re.search(r'points="([^"]*)"', polyline_attrs)
    assert found
    return [tuple(float(v) for v in p.split(",")) for p in found.group(1).split()]


def test_truth_band_with_labels_and_none_without():
    plain = render_report(RESULTS, FAILURES)
    assert 'class="truth"' not in plain and 'class="predicted"' not in plain
    assert "Predicted and truth bands" not in plain and 'class="confusion"' not in plain
    page = render_report(RESULTS, FAILURES, labels=_labels())
    assert "Predicted and truth bands" in page  # the legend
    # clip_b has frame labels: one rect per run of equal labels, in time order, each as wide
    # as its run (10, 30 and 60 frames at 25 fps)
    runs = _rects(_section(page, "clip_b"), "truth")
    assert [int(r["data-label"]) for r in runs] == [-1, 0, 1]
    widths = [float(r["width"]) for r in runs]
    assert widths[1] / widths[0] == pytest.approx(3.0, rel=0.02)
    assert widths[2] / widths[0] == pytest.approx(6.0, rel=0.02)
    for a, b in zip(runs, runs[1:], strict=False):
        assert float(a["x"]) + float(a["width"]) == pytest.approx(float(b["x"]), abs=0.11)
    # clip_a and audio_only have only a video label: one rect across the whole clip
    for clip_id, label in (("clip_a", 1), ("audio_only", 0)):
        (band,) = _rects(_section(page, clip_id), "truth")
        assert int(band["data-label"]) == label
        plot = _rects(_section(page, clip_id), "predicted")
        start = float(plot[0]["x"])
        end = float(plot[-1]["x"]) + float(plot[-1]["width"])
        assert float(band["x"]) == pytest.approx(start)
        assert float(band["x"]) + float(band["width"]) == pytest.approx(end, abs=0.11)
    # the clips table says which label each clip has, and whether the clip agrees
    assert "labelled A/H (" in _section(page, "clip_a") and "differs" in _section(page, "clip_a")
    assert "agrees" in _section(page, "clip_b")


def _confusion(page: str, level: str) -> dict[str, int]:
    table = re.search(rf'<table class="confusion" data-level="{level}">.*?</table>', page, re.S)
    assert table, level
    return {k: int(v) for k, v in re.findall(r'data-cell="(\w+)"[^>]*>(\d+)<', table.group(0))}


def test_confusion_matrix_counts_match_the_metrics():
    from ahmer.service.cli.score import compute_metrics

    labels = _labels()
    metrics = compute_metrics(RESULTS, labels, None)  # what `ahmer score --labels` writes
    for page in (
        render_report(RESULTS, FAILURES, metrics=metrics, labels=labels),
        render_report(RESULTS, FAILURES, labels=labels),  # metrics computed by the report
    ):
        for level in ("video", "frame"):
            cells = _confusion(page, level)
            assert cells == {k: metrics[level][k] for k in ("tp", "fn", "fp", "tn")}, level
        # by hand: labels 1, 1, 0 (clip_b, clip_a, audio_only), predictions 1, 0, 1
        assert _confusion(page, "video") == {"tp": 1, "fn": 1, "fp": 1, "tn": 0}
        frame = _confusion(page, "frame")
        assert sum(frame.values()) == int((FRAME_LABELS >= 0).sum()) == metrics["frame"]["n"]
        assert "threshold 0.5" in page


def test_pr_curve_points_come_from_the_evaluation_module(monkeypatch):
    from ahmer.models.training import evaluation

    labels = _labels()
    page = render_report(RESULTS, FAILURES, labels=labels)
    svg = re.search(r'<svg[^>]*class="pr" data-level="video".*?</svg>', page, re.S).group(0)
    left, top, width, height = (
        float(v)
        for v in re.search(
            r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg
        ).groups()
    )
    drawn = [
        ((x - left) / width, 1 - (y - top) / height)
        for x, y in _points(re.search(r'<polyline class="pr-curve"([^>]*)>', svg).group(1))
    ]
    # the module's curve on the video-level samples (ids in sorted order)
    by_id = {b.id: b for b in RESULTS}
    ids = ["audio_only", "clip_a", "clip_b"]
    y = [0, 1, 1]
    scores = [by_id[i].result.clip.ah_probability for i in ids]
    _, precision, recall = evaluation.pr_curve(y, scores)
    expected = []
    for point in zip(recall, precision, strict=True):
        if not expected or point != expected[-1]:
            expected.append(point)
    assert len(drawn) == len(expected) >= 3
    assert np.allclose(drawn, expected, atol=0.002)
    # the area under the drawn points is the AP the metrics table shows
    r, p = np.array(drawn).T
    area = float(np.sum((r[:-1] - r[1:]) * (p[:-1] + p[1:]) / 2))
    ap = evaluation.average_precision(y, scores)
    assert area == pytest.approx(ap, abs=0.005)
    assert f"video level: AP {ap:.4f}" in svg
    assert 'data-level="frame"' in page  # and a frame-level curve, from the frame labels
    # the report draws whatever the evaluation module computes (no second implementation)
    fake = (np.array([0.0, 0.5]), np.array([0.25, 0.75]), np.array([1.0, 0.5]))
    monkeypatch.setattr(evaluation, "pr_curve", lambda *_: fake)
    svg = re.search(
        r'<svg[^>]*class="pr" data-level="video".*?</svg>',
        render_report(RESULTS, FAILURES, labels=labels),
        re.S,
    ).group(0)
    drawn = _points(re.search(r'<polyline class="pr-curve"([^>]*)>', svg).group(1))
    back = [((x - left) / width, 1 - (y - top) / height) for x, y in drawn]
    assert np.allclose(back, [(1.0, 0.25), (0.5, 0.75)], atol=0.002)


def test_no_ah_clip_with_segments_says_why():
    import dataclasses

    page = render_report(RESULTS, FAILURES)
    no_ah = _section(page, "clip_a")  # p=0.22, label 0, one shaded segment
    assert "no A/H" in no_ah and 'class="segment"' in no_ah
    note = re.search(r'<p class="note seg-note">(.*?)</p>', no_ah).group(1)
    assert "frame segments above the frame threshold" in note
    assert "below its threshold" in note and "0.22" in note
    svg_note = re.search(r'<text class="seg-note"[^>]*>(.*?)</text>', no_ah).group(1)
    assert "clip below its threshold" in svg_note
    assert "clip is below its threshold" in no_ah.split('class="segment"')[1].split("</rect>")[0]
    assert "seg-note" not in _section(page, "clip_b")  # an A/H clip's segments need no note
    # a no-A/H clip without segments needs none either
    quiet = RESULTS[1].result
    quiet = dataclasses.replace(quiet, clip=dataclasses.replace(quiet.clip, segments=()))
    page = render_report([BatchResult("quiet", quiet)])
    assert "seg-note" not in page and 'class="segment"' not in page


def _cue_result() -> BatchResult:
    """clip_b with six cues starting together at t=0 (and two more at 1 s)."""
    import dataclasses

    base = RESULTS[0].result
    cues = tuple(
        Cue(kind, f"cue{i}", start, start + 0.3, 0.5, {}, f"{kind} cue {i}")
        for i, (kind, start) in enumerate(
            [
                ("visual", 0.0),
                ("vocal", 0.0),
                ("verbal", 0.0),
                ("cross-modal", 0.0),
                ("verbal", 0.0),
                ("vocal", 0.05),
                ("visual", 1.0),
                ("visual", 1.0),
            ]
        )
    )
    result = dataclasses.replace(base, explanation=Explanation("cues", cues))
    return BatchResult("cues", result)


def test_cue_markers_at_the_same_time_do_not_overlap_and_modalities_have_colours():
    from ahmer.models.contract import ATTRIBUTION_NAMES
    from ahmer.service.batch.report import MODALITY_COLORS, timeline_svg

    svg = timeline_svg(_cue_result())
    markers = _rects(svg, "cue")
    assert len(markers) == 8
    boxes = [
        (float(m["x"]), float(m["y"]), float(m["x"]) + float(m["width"]), float(m["y"]) + 8)
        for m in markers
    ]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (a, b)
    assert len({b[1] for b in boxes[:6]}) == 6  # the six at about t=0: six lanes
    # one colour per modality, distinct, and the markers use them
    assert list(MODALITY_COLORS) == list(ATTRIBUTION_NAMES)
    assert len(set(MODALITY_COLORS.values())) == len(ATTRIBUTION_NAMES)
    for m in markers:
        assert m["fill"] == MODALITY_COLORS[m["data-type"]]
    assert {m["data-type"] for m in markers} == set(ATTRIBUTION_NAMES)
    # the legend names each modality with its colour
    page = render_report([_cue_result()])
    legend = re.search(r'<div class="legend" id="legend">.*?</div></div>', page, re.S).group(0)
    for name, colour in MODALITY_COLORS.items():
        assert f'background:{colour}"></i>{name.replace("_", "-")}<' in legend


def test_valence_and_attribution_are_plotted_per_frame():
    from ahmer.models.contract import ATTRIBUTION_NAMES
    from ahmer.service.batch.report import MODALITY_COLORS, timeline_svg

    item = RESULTS[0]
    svg = timeline_svg(item)
    n = len(item.result.frames)
    (valence,) = re.findall(r'<polyline class="valence-line"([^>]*)>', svg)
    assert len(_points(valence)) == n
    ys = {y for _, y in _points(valence)}
    assert len(ys) == 1  # the test frames' valence is constant (0.1)
    for name in ATTRIBUTION_NAMES:
        (line,) = re.findall(rf'<polyline class="attribution-line {name}"([^>]*)>', svg)
        assert len(_points(line)) == n
        assert f'stroke="{MODALITY_COLORS[name]}"' in line
    # attribution 0.01 < 0.02 < 0.03 (visual, vocal, verbal): higher values sit higher
    heights = [
        _points(re.search(rf'class="attribution-line {k}"([^>]*)>', svg).group(1))[0][1]
        for k in ("visual", "vocal", "verbal")
    ]
    assert heights[0] > heights[1] > heights[2]
    # a frame without a valence (NaN) breaks the line instead of drawing it at 0
    import dataclasses

    frames = list(item.result.frames)
    frames[5] = dataclasses.replace(frames[5], valence=math.nan)
    svg = timeline_svg(BatchResult("gap", dataclasses.replace(item.result, frames=frames)))
    lines = re.findall(r'<polyline class="valence-line"([^>]*)>', svg)
    assert [len(_points(v)) for v in lines] == [5, n - 6]


def _long_result(seconds: float = 600.0) -> BatchResult:
    import dataclasses

    base = _analysis(0.7, n=int(seconds * 5))
    words = [TranscriptWord(0.4 * i, 0.4 * i + 0.3, f"w{i}") for i in range(int(seconds / 0.4))]
    media = {**base.media, "duration": seconds}
    return BatchResult("long", dataclasses.replace(base, transcript=words, media=media))


def test_a_long_clip_fits_the_page_width():
    from ahmer.service.batch.report import timeline_svg

    short, long = timeline_svg(RESULTS[0]), timeline_svg(_long_result())
    for svg in (short, long):
        head = re.match(r"<svg[^>]*>", svg).group(0)
        assert 'width="100%"' in head
        view = [float(v) for v in re.search(r'viewBox="([^"]*)"', head).group(1).split()]
        assert view[0] == view[1] == 0
        xs = [float(v) for v in re.findall(r'\bx[12]?="([-\d.]+)"', svg)]
        xs += [float(p.split(",")[0]) for p in re.findall(r"(-?[\d.]+,-?[\d.]+)", svg)]
        assert 0 <= min(xs) and max(xs) <= view[2]  # everything inside the viewBox
    width = lambda svg: re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1)  # noqa: E731
    assert width(short) == width(long)  # the same width, however long the clip
    # readable ticks: few, far enough apart, in minutes
    ticks = re.findall(r'<text class="tick" x="([\d.]+)"[^>]*>([^<]*)</text>', long)
    assert 5 <= len(ticks) <= 17
    xs = [float(x) for x, _ in ticks]
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= 40
    assert ticks[1][1] == "1:00" and ticks[-1][1] == "10:00"
    # words that do not fit are left out (and counted), not piled on top of each other
    words = re.findall(r'<text class="word" x="([\d.]+)" y="([\d.]+)"', long)
    assert 0 < len(words) < 1500 and "words not drawn" in long
    rows: dict[str, list[float]] = {}
    for x, y in words:
        rows.setdefault(y, []).append(float(x))
    assert len(rows) <= 3 and all(
        b - a >= 9 for xs in rows.values() for a, b in zip(xs, xs[1:], strict=False)
    )


def test_transcript_text_never_enters_a_table():
    page = render_report([*RESULTS, _long_result(30)], FAILURES, labels=_labels())
    tables = re.findall(r"<table.*?</table>", page, re.S)
    assert len(tables) >= 5  # metrics, 2 confusion matrices, clips, failures
    for table in tables:
        for word in (
            "guess",
            "maybe",
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp; but",
        ):
            assert word not in table


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (bash .ci/install)")
def test_labelled_report_with_a_long_clip_fits_the_window_in_chromium(tmp_path):
    page = render_report([*RESULTS, _long_result()], FAILURES, labels=_labels())
    probe = (
        "<script>var s=document.querySelectorAll('svg.timeline'),w=0;"
        "s.forEach(function(e){w=Math.max(w,e.getBoundingClientRect().right);});"
        "console.log('FIT '+s.length+' '+Math.round(w)+' '+document.documentElement.scrollWidth"
        "+' '+window.innerWidth);</script>"
    )
    stderr, png = _load(tmp_path, page, "labelled")
    assert [line for line in stderr.splitlines() if ":CONSOLE" in line] == []
    stderr, _ = _load(tmp_path, page.replace("</body>", probe + "</body>"), "fit")
    fit = re.findall(r'"FIT (\d+) (\d+) (\d+) (\d+)"', stderr)
    assert fit, stderr[-2000:]
    count, right, scroll, inner = (int(v) for v in fit[0])
    assert count == len(RESULTS) + 1
    assert right <= inner and scroll <= inner  # no timeline wider than the window
