"""Still images are refused everywhere with a message that says what to send instead (a
video or audio clip): ``ahmer analyze``, ``preprocess`` and ``score`` on a real JPEG/PNG of
the test portrait, and ``AnalyzeClip`` on a real server. The media-level checks (every
image format, paths, bytes, file objects) are in ``test_media.py``."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from media import portrait
from serving import ServerThread, shared_analyzer

CLI = [sys.executable, "-m", "ahmer.service.cli"]
MESSAGE = "still images are not supported"
ADVICE = "send a video or audio clip"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for fmt, name in (("JPEG", "photo.jpg"), ("PNG", "photo.png")):
        out[fmt] = folder / name
        Image.fromarray(portrait()).save(out[fmt], fmt)
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def _one_error_line(done: subprocess.CompletedProcess, command: str) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ahmer {command}: error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_analyze_and_preprocess_refuse_a_photo(photos, fmt, tmp_path):
    line = _one_error_line(_cli("analyze", str(photos[fmt])), "analyze")
    assert MESSAGE in line and ADVICE in line and f"{fmt} image" in line
    done = _cli("preprocess", str(photos[fmt]), "--out", str(tmp_path / "tl.npz"))
    line = _one_error_line(done, "preprocess")
    assert MESSAGE in line and ADVICE in line
    assert not (tmp_path / "tl.npz").exists()


def test_score_lists_a_photo_in_failures(photos, tmp_path):
    out = tmp_path / "scored"
    done = _cli("score", str(photos["JPEG"]), "--out", str(out), "--quiet", "--no-report")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    with open(out / "failures.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["id"] for row in rows] == ["photo"]
    assert rows[0]["error"].startswith(MESSAGE) and ADVICE in rows[0]["error"]


def test_analyze_clip_refuses_a_photo_as_invalid_argument(model_store, photos):
    from ahmer.v1 import service_pb2, service_pb2_grpc

    server = ServerThread(analyzer=shared_analyzer()).wait_ready()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = service_pb2_grpc.AnalysisServiceStub(channel)
            for fmt in ("JPEG", "PNG"):
                request = service_pb2.AnalyzeClipRequest(media=photos[fmt].read_bytes())
                with pytest.raises(grpc.RpcError) as caught:
                    stub.AnalyzeClip(request, timeout=60)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert MESSAGE in caught.value.details() and ADVICE in caught.value.details()
            # the server goes on: a model listing still answers
            assert stub.GetModels(service_pb2.GetModelsRequest(), timeout=60).models
    finally:
        server.stop()
