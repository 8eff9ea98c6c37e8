"""Fault injection (issue 14, item 4): clients killed or gone mid-call, a full disk under
``ahmer score``, unreadable entries in a batch, the model store corrupted under a running
server. Real servers and subprocesses, real models; the faults are real too (a SIGKILLed
client process, ``RLIMIT_FSIZE`` making writes past a size fail with ``EFBIG`` as a full disk's
``ENOSPC`` does, a FIFO and a folder where a clip should be, a changed model file).

The SIGKILLed ``ahmer score`` is in ``test_score_resilience.py``.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from serving import free_port, metric_value, serve_process, settled_metric, shared_analyzer

from ahmer.v1 import service_pb2

CLI = [sys.executable, "-m", "ahmer.service.cli"]
UPLOAD = 3 << 19  # 1.5 MiB: one upload reserves 3 MiB of the 4 MiB media budget
HELD = "ahmer_media_held_bytes"  # the server's gauge of its clip media budget in use
SETTLE = 15.0  # seconds for the server to notice a dead peer: a bound, not a speed figure


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def answer(tmp_path_factory) -> Path:
    """A ~2 s answer: the real face and espeak-ng speech."""
    from media import canvas, make_clip, portrait, read_wav, speak

    root = tmp_path_factory.mktemp("answer")
    audio, rate = read_wav(speak("I guess maybe, um, I don't know.", root / "speech.wav"))
    return make_clip(root / "answer.mp4", canvas(portrait(), size=(320, 240)), audio[:, 0], rate)


# -- clients that die mid-call ------------------------------------------------------------

CLIENT = """
import sys, time
from pathlib import Path
from ahmer.client import AhmerClient
from ahmer.v1 import service_pb2

target, mode, ready, jpeg = sys.argv[1:5]
SIZE = int(sys.argv[5])


def hang():
    Path(ready).write_text("sent")
    time.sleep(600)


with AhmerClient(target) as client:
    if mode == "upload":
        def requests():
            header = service_pb2.UploadHeader(container="a.mp4", total_size=SIZE)
            yield service_pb2.UploadRequest(header=header)
            chunk = service_pb2.UploadChunk(data=bytes(SIZE // 3))
            yield service_pb2.UploadRequest(chunk=chunk)
            hang()
        client.stub.UploadClip(requests())
    else:
        with client.session(fps=5, video=True, audio=False) as session:
            for k in range(5):
                session.send_frame(Path(jpeg).read_bytes(), pts=k * 0.2)
            hang()
"""


@pytest.fixture(scope="module")
def killable_server(tmp_path_factory, model_store):
    """``ahmer serve`` in its own process with its own empty TMPDIR, metrics on, one live
    session at most and 4 MiB of clip media in memory at most."""
    root = tmp_path_factory.mktemp("killable")
    tmp = root / "tmp"
    tmp.mkdir()
    port = free_port()
    env = {"TMPDIR": str(tmp), "AHMER_METRICS_PORT": str(port)}
    args = ("--max-sessions", "1", "--max-buffered-mb", "4", "--fps", "5")
    with serve_process(env=env, stderr=root / "serve.log", args=args) as (proc, target):
        yield {"target": target, "tmp": tmp, "url": f"http://127.0.0.1:{port}/metrics",
               "root": root, "proc": proc}  # fmt: skip


def _probe_upload(target: str) -> grpc.StatusCode:
    """An upload of :data:`UPLOAD` bytes of garbage: RESOURCE_EXHAUSTED while another such
    upload holds the budget, else INVALID_ARGUMENT (not media)."""
    header = service_pb2.UploadHeader(container="a.mp4", total_size=UPLOAD)
    requests = [
        service_pb2.UploadRequest(header=header),
        service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=b"\x01" * UPLOAD)),
    ]
    with grpc.insecure_channel(target) as channel:
        stub = channel.stream_unary("/ahmer.v1.AnalysisService/UploadClip")
        try:
            stub(iter(r.SerializeToString() for r in requests), timeout=60)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def _probe_session(target: str, jpeg: bytes) -> grpc.StatusCode:
    from ahmer.client import AhmerClient, AhmerError

    with AhmerClient(target) as client:
        try:
            with client.session(fps=5, video=True, audio=False, timeout=60) as session:
                session.send_frame(jpeg, pts=0.0)
                session.close()
        except AhmerError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def _until(probe, want, bound: float = SETTLE):
    deadline = time.monotonic() + bound
    while (got := probe()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def _jpeg(path: Path) -> Path:
    import cv2
    from media import canvas, portrait

    cv2.imwrite(str(path), canvas(portrait(), size=(320, 240))[:, :, ::-1])
    return path


@pytest.mark.parametrize("mode", ["upload", "stream"])
def test_a_killed_client_frees_its_slot_and_leaves_no_file(killable_server, tmp_path, mode):
    """A client process SIGKILLed mid-upload (a chunk sent, more promised) or mid-session
    (frames sent): while it lives it holds its share (another upload of the same size is
    RESOURCE_EXHAUSTED; another session too, ``ahmer_active_streams`` 1); once it is dead the
    share is free (the same upload reaches the decoder; a session is accepted; the gauge
    back at 0) and the server's TMPDIR is empty."""
    srv = killable_server
    jpeg = _jpeg(tmp_path / "frame.jpg")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    ready = tmp_path / "ready"
    argv = [sys.executable, str(script), srv["target"], mode, str(ready), str(jpeg), str(UPLOAD)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the client never got its call going"
            time.sleep(0.05)
        if mode == "upload":
            probe = lambda: _probe_upload(srv["target"])  # noqa: E731
            assert settled_metric(srv["url"], HELD, None, 2.0 * UPLOAD, SETTLE) == 2 * UPLOAD
        else:
            probe = lambda: _probe_session(srv["target"], jpeg.read_bytes())  # noqa: E731
            assert settled_metric(srv["url"], "ahmer_active_streams", None, 1.0) == 1.0
        assert _until(probe, grpc.StatusCode.RESOURCE_EXHAUSTED) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        proc.kill()
        proc.wait(30)
        freed = grpc.StatusCode.INVALID_ARGUMENT if mode == "upload" else grpc.StatusCode.OK
        assert _until(probe, freed) == freed
        assert settled_metric(srv["url"], HELD, None, 0.0, SETTLE) == 0.0
        assert settled_metric(srv["url"], "ahmer_active_streams", None, 0.0) == 0.0
    finally:
        proc.kill()
        proc.wait(30)
    assert srv["proc"].poll() is None
    assert list(srv["tmp"].iterdir()) == []


def test_a_cancelled_call_frees_its_slot(killable_server, tmp_path):
    """The client goes away without dying (cancels its upload and its session mid-call):
    the same shares come back, the TMPDIR stays empty."""
    from ahmer.client import AhmerClient

    srv = killable_server
    jpeg = _jpeg(tmp_path / "frame.jpg").read_bytes()
    gate = []

    def requests():
        header = service_pb2.UploadHeader(container="a.mp4", total_size=UPLOAD)
        yield service_pb2.UploadRequest(header=header)
        yield service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=bytes(UPLOAD // 3)))
        while not gate:
            time.sleep(0.05)

    probe = lambda: _probe_upload(srv["target"])  # noqa: E731
    # the budget is free before the held call starts (an earlier test's share may still be
    # being returned; then the held call itself would be refused and hold nothing)
    assert _until(probe, grpc.StatusCode.INVALID_ARGUMENT) == grpc.StatusCode.INVALID_ARGUMENT
    assert settled_metric(srv["url"], HELD, None, 0.0, SETTLE) == 0.0
    with AhmerClient(srv["target"]) as client:
        call = client.stub.UploadClip.future(requests())
        # the server holds the call's share before a probe asks (else the probe could take
        # the budget first and have the held call refused)
        assert settled_metric(srv["url"], HELD, None, 2.0 * UPLOAD, SETTLE) == 2 * UPLOAD
        assert _until(probe, grpc.StatusCode.RESOURCE_EXHAUSTED) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        call.cancel()
        gate.append(True)
        assert _until(probe, grpc.StatusCode.INVALID_ARGUMENT) == grpc.StatusCode.INVALID_ARGUMENT
        assert settled_metric(srv["url"], HELD, None, 0.0, SETTLE) == 0.0

        session = client.session(fps=5, video=True, audio=False, timeout=60).start()
        session.send_frame(jpeg, pts=0.0)
        assert settled_metric(srv["url"], "ahmer_active_streams", None, 1.0) == 1.0
        session.cancel()
        assert settled_metric(srv["url"], "ahmer_active_streams", None, 0.0, SETTLE) == 0.0
        assert _probe_session(srv["target"], jpeg) == grpc.StatusCode.OK
    assert list(srv["tmp"].iterdir()) == []


# -- the batch -----------------------------------------------------------------------------


def _full_disk(limit: int):
    """A child's preexec_fn: writes past ``limit`` bytes of any one file fail with EFBIG
    (SIGXFSZ ignored, so the write returns the error instead of killing the process)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _partial_or_temporary(out: Path) -> list[str]:
    """Files in ``out`` that a reader must never see: temporary ones and results that do
    not parse."""
    bad = [str(p) for p in out.rglob(".*.tmp")]
    for result in (out / "results").glob("*.json"):
        try:
            json.loads(result.read_text())
        except ValueError:
            bad.append(str(result))
    return bad


def test_a_full_disk_during_score_is_clear_and_the_rerun_completes(answer, tmp_path, model_store):
    """``ahmer score`` whose writes past 4 KiB fail (the clip's result JSON and the frame
    table are larger): the clip is a failures.csv row naming the write error, the command
    ends with exit 1 and one ``error:`` line naming the file it could not write (no
    traceback, no internal error), no partial or temporary file is left; the same command
    without the limit then scores the clip."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(answer, data / "clip.mp4")
    out = tmp_path / "out"
    cmd = [*CLI, "score", str(data), "--out", str(out), "--fps", "2", "--quiet"]
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          preexec_fn=_full_disk(4 << 10))  # fmt: skip
    assert full.returncode == 1, full.stderr[-3000:]
    assert "Traceback" not in full.stderr and "internal error" not in full.stderr, full.stderr
    errors = [line for line in full.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cannot write" in errors[0], full.stderr[-3000:]
    assert "File too large" in errors[0], errors
    failures = {r["id"]: r["error"] for r in _rows(out / "failures.csv")}
    assert list(failures) == ["clip"] and "File too large" in failures["clip"], failures
    assert "results/clip.json" in failures["clip"]
    assert list((out / "results").glob("*.json")) == []
    assert _partial_or_temporary(out) == []
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r["id"] for r in _rows(out / "clips.csv")] == ["clip"]
    assert _rows(out / "failures.csv") == []
    assert (out / "report.html").exists() and (out / "frames.parquet").exists()
    assert _partial_or_temporary(out) == []


def test_unreadable_entries_in_a_batch_fail_alone(answer, tmp_path, model_store):
    """A FIFO and a folder named like clips between two good clips (a manifest lists them
    in that order; root reads any file, so chmod cannot make one unreadable here): one
    failures.csv row each, never a hang on the FIFO, and both clips scored."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(answer, data / "first.mp4")
    os.mkfifo(data / "pipe.mp4")
    (data / "folder.mp4").mkdir()
    shutil.copy(answer, data / "last.mp4")
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path\n" + "".join(
        f"{data / n}\n" for n in ("first.mp4", "pipe.mp4", "folder.mp4", "last.mp4")
    ))  # fmt: skip
    out = tmp_path / "out"
    proc = subprocess.run(
        [*CLI, "score", str(manifest), "--out", str(out), "--fps", "2", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    failures = {r["id"]: r["error"] for r in _rows(out / "failures.csv")}
    assert set(failures) == {"pipe", "folder"}, failures
    assert all("not a regular file" in e for e in failures.values()), failures
    assert [r["id"] for r in _rows(out / "clips.csv")] == ["first", "last"]


# -- the model store -----------------------------------------------------------------------


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def test_a_store_corrupted_under_a_running_server_turns_it_not_serving(
    model_store, tmp_path, caplog
):
    """The server's store check on a store whose fer_emotion file changed after the load:
    health NOT_SERVING, ``ahmer_models_ready`` 0, new calls UNAVAILABLE, and one critical
    log line naming the model and the fix. (The server's analyzer is the shared one with its
    store pointed at a linked copy; the changed file is rewritten, not the linked one.)"""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from serving import ServerThread

    from ahmer.models.store.model_store import ModelStore

    root = tmp_path / "store"
    shutil.copytree(model_store.root, root, copy_function=_link_or_copy)
    store = ModelStore(root)
    analyzer = copy.copy(shared_analyzer())
    analyzer.store = store
    srv = ServerThread(analyzer=analyzer).wait_ready()
    try:
        assert srv.call(srv.server.check_store()) is True
        target = store.path("fer_emotion")
        content = bytearray(target.read_bytes())
        content[len(content) // 2] ^= 0xFF
        target.unlink()  # the link: the real store's file stays as it is
        target.write_bytes(bytes(content))
        with caplog.at_level(logging.CRITICAL, logger="ahmer.service"):
            assert srv.call(srv.server.check_store()) is False
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
        assert len(lines) == 1, lines
        assert "fer_emotion" in lines[0] and "corrupt" in lines[0], lines
        assert "ahmer models build --only fer_emotion" in lines[0] and "NOT_SERVING" in lines[0]
        with grpc.insecure_channel(srv.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as caught:
                channel.unary_unary("/ahmer.v1.AnalysisService/GetModels")(b"", timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "model store changed" in caught.value.details()  # not "still loading"
        assert metric_value(srv.metrics_url, "ahmer_models_ready") == 0.0
    finally:
        srv.stop()
