"""bench/triton.py runs end to end on this CPU (a real local tritonserver, python backend):
both backends answer alike, every level has its numbers and the ratios follow from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ahmer.models.contract import FUSION_MODEL

ROOT = Path(__file__).resolve().parents[1]


def test_triton_bench_short_run(model_store, tmp_path):
    out = tmp_path / "triton.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "triton.py"), "--streams", "1,3",
         "--seconds", "1.5", "--json", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["streams"] for r in report["levels"]] == [1, 3]
    for row in report["levels"]:
        assert row["max_abs_diff"] < 1e-4
        for kind in ("onnxruntime", "triton"):
            numbers = row[kind]
            assert numbers["frames"] > 0 and numbers["frames_per_s"] > 0
            assert 0 < numbers["p50_ms"] <= numbers["p95_ms"]
            assert set(numbers["call_p50_ms"]) == {"fer_emotion", "minilm", FUSION_MODEL}
        ratio = row["ratio_triton_over_inproc"]["p50_ms"]
        assert abs(ratio - row["triton"]["p50_ms"] / row["onnxruntime"]["p50_ms"]) < 0.01
        assert all(b >= 1 for b in row["triton"]["mean_batch"].values())
    assert report["levels"][0]["triton"]["mean_batch"]["fer_emotion"] == 1.0  # one caller
    assert "network hop at 1 stream(s)" in run.stdout
