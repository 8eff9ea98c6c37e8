"""Slow readers against the real server: a live session whose client does not read its
results keeps bounded queues (the session's high-water marks, ``SessionReport``), drops
frames by the documented policy and reports it, still delivers every final frame and the
result once the client reads, and does not slow down other sessions; a client that never
reads is ended at the server's wall-clock limit and its session freed while it still has
not read.

The clients use the raw stub with a tiny HTTP/2 receive window (``lookahead_bytes``, no BDP
probing) so that the server feels the slow reader after a few messages, not after whatever
the transport buffers would absorb.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import threading
import time

import grpc
import numpy as np
import pytest
from media import HEDGING, canvas, have_espeak, portrait, read_wav, speak
from serving import ServerThread, metric_value, shared_analyzer

pytestmark = [  # serial: latency beside a stalled session, a wall-clock limit kept to the second
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed"),
    pytest.mark.serial,
]

FPS = 15  # camera rate; the server analyses 5 fps
SECONDS = 20.0
SPEED = 2.0  # twice real time: a reading client at this pace loses no frames (test_live)
QUEUE_FRAMES = 12
SLOW_WINDOW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]


@pytest.fixture(scope="module")
def server(model_store):
    srv = ServerThread(
        analyzer=shared_analyzer(), live_queue_frames=QUEUE_FRAMES, max_sessions=3
    ).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A JPEG webcam frame of a real face and 20 s of PCM16 16 kHz audio: espeak speech at
    the start, then quiet room noise (so the session-end ASR pass stays short)."""
    from PIL import Image
    from scipy.signal import resample_poly

    folder = tmp_path_factory.mktemp("backpressure")
    speech, rate = read_wav(speak(HEDGING, folder / "speech.wav"))
    speech = resample_poly(speech[:, 0], 16000, rate).astype(np.float32)
    audio = np.random.default_rng(0).normal(0, 0.003, int(SECONDS * 16000)).astype(np.float32)
    audio[4000 : 4000 + len(speech)] += speech[: len(audio) - 4000]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    Image.fromarray(canvas(portrait(), size=(320, 180))).save(buf, format="JPEG", quality=80)
    return buf.getvalue(), pcm


def _config(session_id: str, audio: bool = True, provisional: bool = True):
    from ahmer.client import stream_config
    from ahmer.v1 import options_pb2

    msg = stream_config(session_id, True, audio, options_pb2.AnalysisOptions())
    msg.config.provisional_frames = provisional
    return msg


def _requests(session_id, jpeg, pcm, seconds, speed, sent=None, hold=None):
    """Config, then ``seconds`` of 15 fps frames each with its 1/15 s of audio, paced at
    ``speed`` times real time (``0``: as fast as the server takes them)."""
    from ahmer.v1 import live_pb2

    yield _config(session_id, audio=pcm is not None)
    start = time.monotonic()
    for i in range(int(seconds * FPS)):
        yield live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=i / FPS, data=jpeg))
        if pcm is not None:
            a, b = 2 * (i * 16000 // FPS), 2 * ((i + 1) * 16000 // FPS)
            yield live_pb2.StreamRequest(audio=live_pb2.AudioChunk(data=pcm[a:b]))
        if speed:
            time.sleep(max(0.0, start + (i + 1) / FPS / speed - time.monotonic()))
    if sent is not None:
        sent.set()
    if hold is not None:
        hold.wait(60)


def _stub(target: str, options=()):
    from ahmer.v1 import service_pb2_grpc

    channel = grpc.insecure_channel(target, list(options))
    return channel, service_pb2_grpc.AnalysisServiceStub(channel)


def _report(server, session_id: str):
    reports = server.server.state.live_reports
    found = [r for r in reports if r.session_id == session_id]
    assert found, f"no report for session {session_id!r}"
    return found[-1]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _normal_session(target, jpeg, pcm, outcome):
    """A well-behaved client beside the slow one: 3 s at real time, reading as it goes."""
    channel, stub = _stub(target)
    start = time.monotonic()
    try:
        for msg in stub.StreamSession(_requests("normal", jpeg, pcm, 3.0, 1.0), timeout=60):
            kind = msg.WhichOneof("message")
            if kind == "frame":
                outcome.setdefault("first_frame_s", time.monotonic() - start)
            elif kind == "result":
                outcome["result"] = msg.result
                outcome["done_s"] = time.monotonic() - start
    finally:
        channel.close()


def test_slow_reader_queues_stay_bounded_and_others_are_served(server, media):
    from ahmer.service.grpc.stream import (
        MAX_PENDING_AUDIO,
        MAX_PENDING_ITEMS,
        MAX_PENDING_RESULTS,
        OUT_QUEUE,
    )

    jpeg, pcm = media
    url = server.metrics_url
    load_before = metric_value(url, "ahmer_live_skipped_frames_total", {"reason": "load"})
    rss_before = _rss_mb()
    sent = threading.Event()
    channel, stub = _stub(server.target, SLOW_WINDOW)
    try:
        # 20 s of camera and microphone at twice real time; nothing is read meanwhile
        responses = stub.StreamSession(
            _requests("slow", jpeg, pcm, SECONDS, SPEED, sent=sent), timeout=120
        )
        # the slow session's worker stalls on its full output queue, so frames drop
        deadline = time.monotonic() + SECONDS / SPEED
        while time.monotonic() < deadline:
            load = metric_value(url, "ahmer_live_skipped_frames_total", {"reason": "load"})
            if load > load_before:
                break
            time.sleep(0.2)
        assert load > load_before, "the unread results never stalled the session"
        # meanwhile another client is served promptly
        other: dict = {}
        normal = threading.Thread(target=_normal_session, args=(server.target, jpeg, pcm, other))
        normal.start()
        normal.join(60)
        assert sent.wait(SECONDS / SPEED + 30)
        rss_stalled = _rss_mb()
        received = list(responses)  # only now does the slow client read
    finally:
        channel.close()

    # the other session: first frame result within seconds, complete, nothing dropped
    assert other["first_frame_s"] < 3.0, other
    assert other["result"].skipped.video_load == 0
    assert len(other["result"].frames) == 15

    kinds = [m.WhichOneof("message") for m in received]
    assert kinds[0] == "started" and kinds[-1] == "result" and kinds.count("result") == 1
    result = received[-1].result
    report = _report(server, "slow")
    print(
        f"\nslow reader: {report}\nclient got {len(received)} messages; server RSS "
        f"{rss_before:.0f} MB before, {rss_stalled:.0f} MB with the reader stalled; the "
        f"other session's first frame after {other['first_frame_s']:.2f} s"
    )

    # the bounds held, and were reached: the unread results stalled the worker
    # (the output queue full, one message in flight, a notice or two that found it full)
    assert OUT_QUEUE + 1 <= report.pending_high <= MAX_PENDING_RESULTS
    assert report.frames_high <= QUEUE_FRAMES
    # the report rounds to milliseconds: allow that rounding, not more
    assert report.audio_high_s <= MAX_PENDING_AUDIO + 1 / FPS + 5e-4 + 1e-9
    assert report.items_high <= QUEUE_FRAMES + MAX_PENDING_ITEMS
    # every message made was delivered (started is sent before the queue)
    assert report.messages == len(received) - 1

    # skips are reported: counts in the result and the updates, a notice for each policy
    analysis_frames = int(SECONDS * 5)
    assert result.skipped.video_rate == int(SECONDS * FPS) - analysis_frames
    assert result.skipped.video_load == report.skipped["video_load"] > 0
    assert len(result.frames) == analysis_frames - result.skipped.video_load
    codes = [m.notice.code for m in received if m.WhichOneof("message") == "notice"]
    notices = set(codes)
    assert "frames_dropped_under_load" in notices
    # the frames waited: finals come late, which the session says once, as it happens
    assert codes.count("finals_late") == 1
    late = next(m.notice for m in received if m.WhichOneof("message") == "notice"
                and m.notice.code == "finals_late")  # fmt: skip
    assert "behind this stream" in late.message and "skipped.video_load" in late.message
    updates = [m.update for m in received if m.WhichOneof("message") == "update"]
    assert updates and updates[-1].skipped.video_load > 0
    loads = [u.skipped.video_load for u in updates]
    assert loads == sorted(loads)
    # provisional results go first when the client is behind; each is told
    assert report.provisional_dropped > 0 and "provisional_dropped" in notices
    assert any(f"{report.provisional_dropped} provisional" in w for w in result.warnings)

    # no final result is ever dropped: each final frame once, in order, as in the result
    final = [m.frame for m in received if m.WhichOneof("message") == "frame" and m.frame.final]
    assert [f.index for f in final] == list(range(len(result.frames)))
    assert [f.frame.time for f in final] == pytest.approx([f.time for f in result.frames])
    assert result.media.duration == pytest.approx(SECONDS, abs=0.01)  # all audio kept
    assert result.transcript_source == "asr" and len(result.transcript) >= 5


@pytest.fixture()
def short_server(model_store):
    """A server with a 4 s stream limit (plus 2 s of grace) and room for one session."""
    srv = ServerThread(
        analyzer=shared_analyzer(), max_stream_seconds=4.0, max_sessions=1
    ).wait_ready()
    yield srv
    srv.stop()


def test_client_that_never_reads_is_ended_at_the_wall_limit(short_server, media, caplog):
    """The handler waits in a write to a client that does not read: the session is still
    ended at the wall-clock limit and its slot and resources freed, without the client's
    help; the client finds DEADLINE_EXCEEDED after the messages it had not read."""
    from ahmer.service.grpc.stream import MAX_PENDING_RESULTS

    jpeg, _ = media
    url = short_server.metrics_url
    hold = threading.Event()
    channel, stub = _stub(short_server.target, SLOW_WINDOW)
    caplog.set_level(logging.WARNING, logger="ahmer.service.live")
    try:
        started = time.monotonic()
        responses = stub.StreamSession(_requests("mute", jpeg, None, 3.9, 0, hold=hold), timeout=60)
        time.sleep(1.0)
        assert metric_value(url, "ahmer_active_streams") == 1
        while metric_value(url, "ahmer_active_streams") and time.monotonic() - started < 20:
            time.sleep(0.1)
        freed_after = time.monotonic() - started
        assert metric_value(url, "ahmer_active_streams") == 0
        assert 6.0 <= freed_after < 10.0  # 4 s + 2 s of grace + 1 s margin, not "never"

        # the only slot is free again while the first client still has not read
        other_channel, other = _stub(short_server.target)
        with other_channel:
            replies = list(other.StreamSession(_requests("next", jpeg, None, 1.0, 0)))
        assert replies[-1].WhichOneof("message") == "result"
        assert len(replies[-1].result.frames) == 5

        with pytest.raises(grpc.RpcError) as err:
            for _ in responses:
                pass
    finally:
        hold.set()
        channel.close()
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "open longer than the server's limit" in err.value.details()
    expired = [r for r in caplog.records if r.getMessage() == "session expired"]
    assert expired and expired[0].fields["session_id"] == "mute"
    assert expired[0].fields["sending"]  # stuck sending to the client, ended from outside
    report = _report(short_server, "mute")
    code = {"grpc_code": "CANCELLED", "grpc_method": "StreamSession"}
    print(
        f"\nnever-reading client: {report}; {json.dumps(expired[0].fields)}; freed after "
        f"{freed_after:.1f} s; calls counted CANCELLED: "
        f"{metric_value(url, 'grpc_server_handled_total', code)}"
    )
    assert report.pending_high <= MAX_PENDING_RESULTS
