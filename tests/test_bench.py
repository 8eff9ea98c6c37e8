"""The benchmarks still run end to end on short real media: ``bench/landmark_rate.py`` and
``bench/analyze.py`` (without the ``fer`` peer, whose own environment is ~1.8 GB), through
their command lines, in fresh processes. Nothing here asserts a time: what is checked is
what the benchmarks report about the work done (frames, landmark frames, stages)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_landmark_rate_bench(tmp_path, model_store):
    out = tmp_path / "rate.json"
    done = _run(
        "bench/landmark_rate.py",
        *("--every", "2", "5", "--duration", "6", "--repeat", "1", "--json", str(out)),
    )
    doc = json.loads(out.read_text())
    n = 30  # 6 s at 5 fps
    assert doc["reference"]["k"] == 1 and doc["reference"]["landmark_frames"] == n
    assert [run["k"] for run in doc["runs"]] == [2, 5]
    for run in doc["runs"]:
        assert run["frames_with_face"] == n
        # one landmark frame in k (more only if the detector lost the rendered face)
        assert math.ceil(n / run["k"]) - 1 <= run["landmark_frames"] <= math.ceil(n / run["k"]) + 2
        assert set(run["mad"]) == {"gaze_aversion", "head_shake", "brow_tension", "lip_press"}
        assert all(0 <= v <= 1 for v in run["mad"].values())
        for event in run["events"]:
            assert event["length"] > 0 and math.isfinite(event["kept"])
    assert doc["events"] and all(e["end"] > e["start"] for e in doc["events"])
    assert "peak kept" in done.stdout


def test_analyze_bench_without_peer(tmp_path, model_store):
    out = tmp_path / "analyze.json"
    done = _run(
        "bench/analyze.py",
        *("--no-peer", "--duration", "5", "--repeat", "1", "--rounds", "1", "--json", str(out)),
    )
    doc = json.loads(out.read_text())
    ahmer = doc["ahmer"]
    assert doc["video"]["analysis_frames"] == 25 and ahmer["frames_with_face"] == 25
    assert {"decode", "faces", "asr", "emotion", "fusion"} <= set(ahmer["stages"])
    assert ahmer["words"] > 0 and ahmer["rtf"] > 0
    tiered = ahmer["face_emotion_tiered"]  # the pipeline's default: every 5th frame at 5 fps
    assert tiered["landmarks_every"] == 5 and tiered["landmark_frames"] == 5
    assert ahmer["face_emotion_alone"]["frames_with_face"] == 25
    assert doc["targets"]["rtf"]["target"] == 5 and not doc["peers"]
    assert "default: tiered" in done.stdout


def test_cancel_bench(tmp_path, model_store):
    out = tmp_path / "cancel.json"
    done = _run(
        "bench/cancel.py",
        *("--duration", "30", "--cancels", "1", "--after", "0.5", "--json", str(out)),
    )
    doc = json.loads(out.read_text())
    assert doc["long_clip_cpu_s"] > doc["short_clip_cpu_s"] > 0
    assert len(doc["leftover"]) == 1 and doc["leftover"][0]["cpu_s"] >= 0
    assert doc["short_after_burst_wall_s"] > 0 and "CPU-s" in done.stdout
