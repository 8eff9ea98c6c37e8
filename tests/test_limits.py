"""Limits and bad input against a real server with small limits: each ends the call with the
documented status and a clear message, and other calls and sessions are unaffected."""

from __future__ import annotations

import io
import threading
import time

import grpc
import numpy as np
import pytest
from media import HEDGING, canvas, have_espeak, portrait
from serving import ServerThread, metric_value, shared_analyzer, speech_clip

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

MAX_STREAM_S = 4.0


@pytest.fixture(scope="module")
def server(model_store):
    srv = ServerThread(
        analyzer=shared_analyzer(),
        max_message_mb=0.25,
        max_upload_mb=0.5,
        max_buffered_mb=1.5,
        max_sessions=2,
        max_stream_seconds=MAX_STREAM_S,
        live_queue_frames=4,
    ).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def sessions_freed(server):
    """After every test, whatever it did, every live session is freed (gauge back to 0)."""
    yield
    deadline = time.monotonic() + 10
    while metric_value(server.metrics_url, "ahmer_active_streams") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(server.metrics_url, "ahmer_active_streams") == 0


@pytest.fixture()
def client(server):
    from ahmer.client import AhmerClient

    with AhmerClient(server.target) as c:
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("limits"), HEDGING, "hedging")


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(canvas(portrait(), size=(320, 180))).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _error(fn) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value


def _video(pts: float, data: bytes):
    from ahmer.v1 import live_pb2

    return live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=pts, data=data))


def _audio(data: bytes, start: float | None = None):
    from ahmer.v1 import live_pb2

    chunk = live_pb2.AudioChunk(data=data)
    if start is not None:
        chunk.start_time = start
    return live_pb2.StreamRequest(audio=chunk)


def _config(video=True, audio=False, fps=0.0, session_id=""):
    from ahmer.client import stream_config
    from ahmer.v1 import options_pb2

    return stream_config(session_id, video, audio, options_pb2.AnalysisOptions(fps=fps))


def _run(client, requests):
    return list(client.stream(requests, timeout=60))


# -- whole clips ---------------------------------------------------------------------------


def test_oversize_message_is_resource_exhausted(client):
    err = _error(lambda: client.analyze_bytes(bytes(400 * 1024)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.get_models().models  # the server is fine


def test_undecodable_media_is_invalid_argument_with_the_decoder_message(client, clip):
    err = _error(lambda: client.analyze_bytes(b"this is a text file, not a video\n" * 50))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a media file" in err.details()
    half = clip.read_bytes()[: clip.stat().st_size // 2]
    err = _error(lambda: client.analyze_bytes(half, container="answer.mp4"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "truncated or damaged MP4" in err.details() and "answer.mp4" in err.details()
    err = _error(lambda: client.analyze_bytes(b""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "empty" in err.details()


def test_upload_limits(client, tmp_path, clip):
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(0).bytes(600 * 1024))
    err = _error(lambda: client.upload_file(big, chunk_size=64 * 1024))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "upload too large" in err.details()
    from ahmer.v1 import service_pb2

    chunk = service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=b"xx"))
    err = _error(lambda: client.stub.UploadClip(iter([chunk])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "UploadHeader" in err.details()
    # a real clip in small chunks still works after the refusals
    assert client.upload_file(clip, chunk_size=32 * 1024, frames=False).clip.ah_label == 1


def test_uploads_share_one_media_budget(server, client):
    """All calls together hold at most --max-buffered-mb of media (an upload counts twice
    while it is received: its buffer and the copy the analysis reads): a call that would go
    over is refused at its header, and a cancelled call gives its share back."""
    from ahmer.v1 import service_pb2

    budget = server.server.state.media
    size = 400 * 1024  # under the 0.5 MiB upload limit; twice 2 x 400 KiB is over 1.5 MiB
    header = service_pb2.UploadRequest(header=service_pb2.UploadHeader(total_size=size))
    half = service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=bytes(size // 2)))

    def settled(value: int) -> int:
        deadline = time.monotonic() + 10
        while budget.held != value and time.monotonic() < deadline:
            time.sleep(0.01)
        return budget.held

    go = threading.Event()

    def waiting():  # a header, then nothing until the test says so
        yield header
        go.wait(30)

    first = client.stub.UploadClip.future(waiting())
    try:
        assert settled(2 * size) == 2 * size
        err = _error(lambda: client.stub.UploadClip(iter([header, half, half]), timeout=30))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too much clip media in memory" in err.details()
        assert budget.held == 2 * size  # the refused call took nothing
    finally:
        first.cancel()
        go.set()
    assert settled(0) == 0
    err = _error(lambda: client.stub.UploadClip(iter([header, half, half]), timeout=30))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a media file" in err.details()
    assert settled(0) == 0


def test_bad_options_are_invalid_argument(client, clip):
    err = _error(lambda: client.analyze_file(clip, language="english"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "language" in err.details()
    err = _error(lambda: client.analyze_file(clip, request_id="has spaces in it"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in err.details()
    err = _error(
        lambda: client.analyze_file(clip, transcript='{"words": [', transcript_format="json")
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "transcript" in err.details()


def test_cancelled_analysis_frees_the_worker(server, client, clip):
    from ahmer.client.requests import analyze_request, file_options

    url = server.metrics_url
    before = metric_value(url, "grpc_server_handled_total",
                          {"grpc_method": "AnalyzeClip", "grpc_code": "CANCELLED"})  # fmt: skip
    future = client.stub.AnalyzeClip.future(analyze_request(clip.read_bytes(), **file_options({})))
    time.sleep(0.3)
    future.cancel()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = metric_value(url, "grpc_server_handled_total",
                           {"grpc_method": "AnalyzeClip", "grpc_code": "CANCELLED"})  # fmt: skip
        if now == before + 1:
            break
        time.sleep(0.05)
    assert now == before + 1
    assert client.analyze_file(clip, frames=False).clip.ah_label == 1


# -- live sessions -------------------------------------------------------------------------


def test_media_before_config_is_failed_precondition(client, jpeg):
    err = _error(lambda: _run(client, [_audio(bytes(3200))]))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "first message must be a StreamConfig" in err.details()
    err = _error(lambda: _run(client, [_config(video=True), _audio(bytes(3200))]))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no audio" in err.details()
    err = _error(lambda: _run(client, [_config(), _video(0.0, jpeg), _config()]))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "second" in err.details()


def test_bad_stream_config_is_invalid_argument(client):
    from ahmer.v1 import live_pb2

    err = _error(lambda: _run(client, [_config(video=False, audio=False)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "neither" in err.details()
    raw = _config()
    raw.config.video.encoding = live_pb2.VideoFormat.RGB24
    err = _error(lambda: _run(client, [raw]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "width" in err.details()
    odd = _config(video=False, audio=True)
    odd.config.audio.sample_rate = 1000
    err = _error(lambda: _run(client, [odd]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "sample_rate" in err.details()


def test_frames_out_of_order_and_undecodable(client, jpeg):
    err = _error(lambda: _run(client, [_config(), _video(0.4, jpeg), _video(0.2, jpeg)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "out of order" in err.details()
    err = _error(lambda: _run(client, [_config(), _video(0.0, b"\xff\xd8 not a jpeg")]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "JPEG" in err.details()
    err = _error(lambda: _run(client, [_config(), _video(-1.0, jpeg)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_duplicate_frames_are_dropped_with_a_notice(client, jpeg):
    requests = [_config(), _video(0.0, jpeg), _video(0.0, jpeg), _video(0.2, jpeg),
                _video(0.2, jpeg), _video(0.4, jpeg)]  # fmt: skip
    replies = _run(client, requests)
    notices = [m.notice for m in replies if m.WhichOneof("message") == "notice"]
    assert [n.code for n in notices] == ["duplicate_frame"]  # reported once
    result = replies[-1].result
    assert result.skipped.video_duplicate == 2 and len(result.frames) == 3


def test_audio_overlap_and_partial_samples(client):
    config = _config(video=False, audio=True)
    tone = (0.1 * np.sin(np.arange(16000) / 5) * 32767).astype("<i2").tobytes()
    err = _error(lambda: _run(client, [config, _audio(tone, 0.0), _audio(tone, 0.5)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "overlapping" in err.details()
    err = _error(lambda: _run(client, [config, _audio(tone[:-1])]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "PCM16" in err.details()
    # a gap is filled with silence, a 20 ms overlap (jitter) is trimmed
    replies = _run(client, [config, _audio(tone, 0.0), _audio(tone, 1.5), _audio(tone, 2.48)])
    result = replies[-1].result
    assert result.media.duration == pytest.approx(3.48, abs=0.05)


def test_stream_past_max_duration_is_out_of_range(client, jpeg):
    frames = [_video(i * 0.5, jpeg) for i in range(12)]  # up to 5.5 s, limit 4 s
    err = _error(lambda: _run(client, [_config(), *frames]))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE and "max stream duration" in err.details()


def test_session_open_too_long_is_deadline_exceeded(client, jpeg):
    release = threading.Event()

    def requests():
        yield _config()
        yield _video(0.0, jpeg)
        release.wait(20)

    started = time.monotonic()
    try:
        err = _error(lambda: list(client.stream(requests(), timeout=30)))
    finally:
        release.set()
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert MAX_STREAM_S < time.monotonic() - started < MAX_STREAM_S + 10


def test_too_many_sessions_and_others_unaffected(server, client, jpeg):
    from ahmer.client import AhmerClient

    release = threading.Event()

    def held():
        yield _config()
        for i in range(3):
            yield _video(i * 0.2, jpeg)
        release.wait(30)

    calls = [client.stream(held()) for _ in range(2)]
    try:
        for call in calls:
            assert next(call).WhichOneof("message") == "started"
        assert metric_value(server.metrics_url, "ahmer_active_streams") == 2
        with AhmerClient(server.target) as other:
            err = _error(lambda: _run(other, [_config(), _video(0.0, jpeg)]))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many live sessions" in err.details()
        assert client.get_models().models  # unary calls still served
    finally:
        release.set()
    for call in calls:  # the held sessions finish normally after the refusal
        replies = list(call)
        assert replies[-1].WhichOneof("message") == "result"
        assert len(replies[-1].result.frames) == 3
    deadline = time.monotonic() + 10
    while metric_value(server.metrics_url, "ahmer_active_streams") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(server.metrics_url, "ahmer_active_streams") == 0


def test_fast_producer_frames_dropped_under_load_never_audio(client, jpeg):
    """100 analysis frames sent at once to a queue of 4: frames are dropped (counted and
    noticed), every audio sample is kept, and the result is still complete."""
    fps = 30.0
    tone = (0.05 * np.sin(np.arange(1600) / 3) * 32767).astype("<i2").tobytes()
    requests = [_config(video=True, audio=True, fps=fps)]
    for i in range(100):
        requests.append(_video(i / fps, jpeg))
        if i % 3 == 0:
            requests.append(_audio(tone, i / fps))
    replies = _run(client, requests)
    result = replies[-1].result
    notices = {m.notice.code for m in replies if m.WhichOneof("message") == "notice"}
    assert result.skipped.video_load > 0 and "frames_dropped_under_load" in notices
    assert len(result.frames) == 100 - result.skipped.video_load
    assert result.media.duration == pytest.approx(99 / fps + 0.1, abs=0.05)  # all audio kept
    assert result.skipped.video_rate == 0


def test_bad_session_does_not_disturb_a_good_one(server, jpeg):
    from ahmer.client import AhmerClient

    outcome = {}

    def paced():
        yield _config()
        for i in range(15):
            yield _video(i * 0.2, jpeg)
            time.sleep(0.1)

    def good():
        with AhmerClient(server.target) as c:
            outcome["good"] = list(c.stream(paced()))[-1].result

    worker = threading.Thread(target=good)
    worker.start()
    with AhmerClient(server.target) as c:
        for _ in range(3):
            err = _error(lambda: _run(c, [_config(), _video(1.0, jpeg), _video(0.5, jpeg)]))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    worker.join(60)
    good = outcome["good"]
    assert len(good.frames) == 15 and good.skipped.video_load == 0
    assert sum(f.HasField("face") for f in good.frames) == 15
