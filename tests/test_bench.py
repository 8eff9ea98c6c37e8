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

import pytest

from ahmer.preprocessing.host import SIMD_FLAGS, CpuMeter, host_info

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
    assert doc["targets"]["rtf"]["target"] == 15 and not doc["peers"]
    assert "default: tiered" in done.stdout
    # the machine it ran on (issue 23): CPU, SIMD flags, cores, steal and load over the run
    host = doc["meta"]["host"]
    assert host["host"]["model"] and host["host"]["cores"] >= 1
    assert set(host["host"]["flags"]) <= set(SIMD_FLAGS)
    assert host["run"]["seconds"] > 0 and "steal time during the run" in done.stdout
    assert tiered["threads"] in (1, 2)  # FaceAnalyzer's own choice, recorded
    usage = ahmer["face_emotion_alone"]["cpu_usage_rounds"]  # steal and load per round
    assert len(usage) == 1 and 0 <= usage[0]["steal_pct"] <= 100


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


def test_host_info_and_cpu_meter_read_this_machine():
    host = host_info()
    assert host.cores >= 1 and host.logical_cpus >= host.cores and host.model
    assert set(host.flags) <= set(SIMD_FLAGS)
    with open("/proc/cpuinfo") as f:  # the flags are the machine's own
        flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
    assert [f for f in SIMD_FLAGS if f in flags] == host.flags
    assert str(host.cores) in host.line() and host.python in host.line()
    with CpuMeter() as meter:
        sum(i * i for i in range(2_000_000))  # keep a core busy for a moment
    usage = meter.usage
    assert usage.seconds > 0 and 0.0 <= usage.steal_pct <= 100.0
    assert 0.0 < usage.busy_pct <= 100.0 and usage.load_start is not None
    assert "steal" in usage.line() and "load" in usage.line()


def test_ahmer_bench_measures_this_machine(tmp_path, model_store):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", "bench", "--repeat", "1", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["duration_s"] > 5 and doc["fps"] == 5
    assert doc["real_time_factor"] == pytest.approx(doc["duration_s"] / doc["wall_s"])
    assert doc["live_streams_per_node"] == pytest.approx(
        doc["machine"]["cores"] * 0.7 / doc["live_cpu_s_per_stream_s"]
    )
    # a live stream costs more than a clip's second: streaming ASR decodes its audio again
    assert doc["live_cpu_s_per_stream_s"] > doc["cpu_s_per_video_s"]
    assert {"decode", "faces", "asr"} <= set(doc["stages_s"])
    assert doc["machine"]["flags"] == host_info().flags and doc["run"]["seconds"] > 0
    for line in ("expected real-time factor", "live capacity at 5 fps", "steal", "cores"):
        assert line in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repeat", "0"], "must be 1..20"),
        (["--busy", "2"], "must be 0.1..1"),
        (["no-such-clip.mp4"], "no-such-clip.mp4"),
    ],
)
def test_ahmer_bench_usage_errors_exit_2(args, message):
    done = subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_asr_paths_bench_compares_both_decodings(tmp_path, model_store):
    out = tmp_path / "asr.json"
    done = _run("bench/asr_paths.py", "--rounds", "1", "--duration", "8", "--json", str(out))
    doc = json.loads(out.read_text())
    assert set(doc["asr"]) == {"bench clip 8 s", "hedging", "confident", "conflicted", "fillers"}
    for by in doc["asr"].values():
        for decoding in ("batched", "sequential"):
            row = by[decoding]
            assert row["encoder_windows"] >= 1 and row["n_words"] > 0 and row["cpu_s"] > 0
            assert 0 <= row["wer"] <= 0.5  # espeak-ng speech: tiny.en gets most words
        assert by["word_times"]["matched"] > 0 and by["word_times"]["start"]["max"] < 1.0
    assert doc["machine"]["run"]["seconds"] > 0 and "sequential/batched CPU" in done.stdout


def test_lookahead_bench(tmp_path, model_store):
    """Two answers; a frame's result with only the words ending by its own time moves
    more than with the words up to 3 s after it (all of a short answer's words)."""
    out = tmp_path / "lookahead.json"
    done = _run(
        "bench/lookahead.py",
        *("--work", str(tmp_path / "work"), "--participants", "1"),
        *("--categories", "lexical,stated", "--after", "0,3", "--json", str(out)),
    )
    doc = json.loads(out.read_text())
    assert doc["clips"] == 2 and doc["frames"] > 10
    at0, at3 = doc["rows"]
    assert (at0["after_s"], at3["after_s"]) == (0.0, 3.0)
    assert at0["mean"] > at3["mean"] >= 0 and at0["max"] > 0
    assert set(at0["by_category"]) == {"lexical", "stated"}
    assert "label flips" in done.stdout and "machine" in doc
