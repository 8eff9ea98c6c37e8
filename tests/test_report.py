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
    assert page.count("<polyline") == len(RESULTS)  # one A/H line per timeline
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
