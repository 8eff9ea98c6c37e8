"""Live sessions against the real server: a replayed clip ends with the same clip-level A/H
label as AnalyzeClip, frames come final and in order while the stream runs, audio-only and
client-transcript sessions, raw RGB frames, and cancellation frees everything."""

from __future__ import annotations

import io
import threading
import time

import grpc
import pytest
from media import HEDGING, have_espeak
from serving import metric_value, shared_analyzer

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def _collect(responses, received=None):
    by_kind: dict[str, list] = {}
    for msg in responses:
        kind = msg.WhichOneof("message")
        by_kind.setdefault(kind, []).append(getattr(msg, kind))
        if received is not None:
            received.append((time.monotonic(), kind, getattr(msg, kind)))
    return by_kind


@pytest.mark.parametrize("name", ["hedging", "confident"])
def test_live_replay_matches_analyze_clip(client, clips, name):
    sent: dict = {}
    received: list = []
    responses = client.stream_file(
        clips[name], realtime=True, speed=1.0, provisional=True, sent=sent
    )
    got = _collect(responses, received)
    offline = client.analyze_file(clips[name])
    result = got["result"][0]

    # the clip-level decision is the same as for the whole file
    assert result.clip.ah_label == offline.clip.ah_label == (1 if name == "hedging" else 0)
    assert abs(result.clip.ah_probability - offline.clip.ah_probability) < 0.15
    assert len(result.frames) == len(offline.frames)
    assert result.media.container == "live" and result.media.has_video and result.media.has_audio
    assert result.transcript_source == "asr" and len(result.transcript) >= 5
    # live sessions and whole clips: tiered faces at the default landmark rate
    assert result.models["face_landmark_fps"] == offline.models["face_landmark_fps"] == "1"

    # protocol: started first, every frame final exactly once and in order, provisional first
    assert received[0][1] == "started" and received[-1][1] == "result"
    final = [f for f in got["frame"] if f.final]
    assert [f.index for f in final] == list(range(len(result.frames)))
    times = [f.frame.time for f in final]
    assert times == sorted(times) and times == pytest.approx([f.time for f in result.frames])
    provisional = {f.index for f in got["frame"] if not f.final}
    assert len(provisional) >= len(final) // 2
    position = {}
    for i, (_, kind, body) in enumerate(received):
        if kind == "frame":
            position.setdefault((body.index, body.final), i)
    assert all(position[(i, False)] < position[(i, True)] for i in provisional)

    # results arrive while the stream runs, not only at the end (in real time: a frame waits
    # for ASR to decode the words after it, ~2.5 s behind the stream on 2 cores, so the
    # short confident clip may end first; see final_lag and max_final_lag)
    last_sent = max(sent.values())
    early = [t for t, kind, body in received if kind == "frame" and body.final and t < last_sent]
    assert len(early) >= (1 if name == "hedging" else 0)  # 10 of 30 quiet, 4 with 2 busy cores
    updates = got.get("update", [])
    assert all(0 <= u.ah_probability <= 1 for u in updates)
    assert all(u.skipped.video_rate > 0 for u in updates)
    if name == "hedging":  # long enough for rolling updates during the stream
        assert updates and updates[-1].frames_analyzed > updates[0].frames_analyzed - 1
        # an update describes the newest frame analysed, past the final frames sent so far
        newest_final, ahead = -1.0, 0
        for _, kind, body in received:
            if kind == "frame" and body.final:
                newest_final = max(newest_final, body.frame.time)
            elif kind == "update":
                assert body.time >= newest_final and body.window_start < body.time
                ahead += body.time > newest_final + 0.5
        assert ahead >= len(updates) // 2
    # backpressure accounting: a 15 fps camera analysed at 5 fps skips 2 frames in 3
    assert result.skipped.video_rate >= len(sent) // 2 and result.skipped.video_load == 0


def _audio_requests(path, chunk_s=0.1):
    from ahmer.client import replay_requests

    return [r for _, r in replay_requests(path, chunk_s=chunk_s, video=False)]


def test_audio_only_session(client, clips):
    from ahmer.client import stream_config

    requests = [stream_config("audio-only", video=False), *_audio_requests(clips["hedging"])]
    got = _collect(client.stream(requests))
    result = got["result"][0]
    assert not result.media.has_video and result.media.has_audio
    assert len(result.frames) == pytest.approx(result.media.duration * 5, abs=2)
    assert all(not f.HasField("face") for f in result.frames)
    assert result.transcript_source == "asr" and result.clip.ah_label == 1
    assert got["started"][0].session_id == "audio-only"


def test_client_transcript_session_with_raw_rgb_frames(client, clips):
    from ahmer.client import stream_config
    from ahmer.preprocessing.media import iter_frames
    from ahmer.v1 import live_pb2

    config = stream_config("rgb", video=True, audio=False, client_transcript=True)
    config.config.video.encoding = live_pb2.VideoFormat.RGB24
    requests = [config]
    for frame in iter_frames(clips["confident"], fps=5.0, max_side=320):
        h, w = frame.image.shape[:2]
        config.config.video.width, config.config.video.height = w, h
        requests.append(
            live_pb2.StreamRequest(
                video=live_pb2.VideoFrame(pts=frame.time, data=frame.image.tobytes())
            )
        )
    requests.insert(
        3,
        live_pb2.StreamRequest(
            transcript=live_pb2.TranscriptSegment(start=0.3, end=2.5, text="Part of me wants to")
        ),
    )
    got = _collect(client.stream(requests))
    result = got["result"][0]
    assert result.transcript_source == "client"
    assert [w.text for w in result.transcript] == ["Part", "of", "me", "wants", "to"]
    assert result.media.width == w and result.media.video_codec == "rawvideo"
    assert sum(1 for f in result.frames if f.HasField("face")) >= len(result.frames) - 1
    assert result.clip.dominant_emotion == "happy"


def test_png_frames_and_no_frames_option(client, clips):
    from PIL import Image

    from ahmer.client import stream_config
    from ahmer.preprocessing.media import iter_frames
    from ahmer.v1 import live_pb2, options_pb2

    options = options_pb2.AnalysisOptions(frames=False, explanation=options_pb2.EXPLANATION_NONE)
    config = stream_config("png", video=True, audio=False, options=options)
    config.config.video.encoding = live_pb2.VideoFormat.PNG
    requests = [config]
    for frame in iter_frames(clips["confident"], fps=5.0, max_side=320):
        buf = io.BytesIO()
        Image.fromarray(frame.image).save(buf, format="PNG")
        requests.append(
            live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=frame.time, data=buf.getvalue()))
        )
    got = _collect(client.stream(requests))
    assert "frame" not in got
    result = got["result"][0]
    assert not result.frames and not result.HasField("explanation")
    assert result.clip.dominant_emotion == "happy"
    assert all(not u.cues for u in got.get("update", []))


def test_cancel_mid_stream_frees_the_session(server, client, clips):
    url = server.metrics_url
    responses = client.stream_file(clips["hedging"], realtime=True, speed=1.0)
    seen = 0
    active_during = None
    for msg in responses:
        if msg.WhichOneof("message") == "frame":
            seen += 1
            if seen == 2:
                active_during = metric_value(url, "ahmer_active_streams")
                responses.close()  # cancels the call
                break
    assert active_during == 1
    deadline = time.monotonic() + 10
    while metric_value(url, "ahmer_active_streams") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(url, "ahmer_active_streams") == 0
    cancelled = {"grpc_method": "StreamSession", "grpc_code": "CANCELLED"}
    assert metric_value(url, "grpc_server_handled_total", cancelled) >= 1
    assert client.get_models().models  # the server is fine


def test_client_disconnect_frees_the_session(server, clips):
    """A client that vanishes (channel closed without a cancel) frees its session too."""
    from ahmer.client import AhmerClient

    url = server.metrics_url
    client = AhmerClient(server.target)
    stop = threading.Event()

    def consume():
        try:
            for _ in client.stream_file(clips["hedging"], realtime=True):
                if stop.is_set():
                    break
        except grpc.RpcError:
            pass

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while metric_value(url, "ahmer_active_streams") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(url, "ahmer_active_streams") == 1
    client.close()  # the connection goes away mid-stream
    stop.set()
    deadline = time.monotonic() + 15
    while metric_value(url, "ahmer_active_streams") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(url, "ahmer_active_streams") == 0
    worker.join(10)


def test_incremental_asr_commits_each_word_once(clips, model_store):
    """Speech steps over growing audio commit words once, in order, close to the text; a
    committed word never changes (the next steps only add words after it)."""
    from media import word_error_rate

    from ahmer.preprocessing.media import load_audio
    from ahmer.preprocessing.transcript import spread_text
    from ahmer.service.live.speech import SpeechState, SpeechTracker

    words = spread_text("I guess maybe", 1.0, 2.0)
    assert [w.text for w in words] == ["I", "guess", "maybe"]
    assert words[0].start == 1.0 and words[-1].end == pytest.approx(2.0)

    audio = load_audio(clips["hedging"])
    tracker = SpeechTracker(shared_analyzer().transcriber, "en", asr=True, step=1.0)
    state = SpeechState()
    end = 1.0
    while end < len(audio) / 16000:
        start = tracker.region_start(state, end, 0.0)
        before = list(state.words)
        state = tracker.step(state, audio[int(start * 16000) : int(end * 16000)], start)
        assert state.words[: len(before)] == before
        assert all(w.end <= end + 0.05 for w in state.all_words())
        end += 1.0
    start = tracker.region_start(state, len(audio) / 16000, 0.0)
    state = tracker.step(state, audio[int(start * 16000) :], start, final=True)
    assert not state.open_words and not state.open_speech
    starts = [w.start for w in state.words]
    assert starts == sorted(starts)
    assert all(b.start >= a.end - 0.05 for a, b in zip(state.words, state.words[1:], strict=False))
    text = " ".join(w.text for w in state.words)
    assert word_error_rate(HEDGING, text) < 0.5, text


def test_live_faces_are_tiered_and_gaps_interpolated():
    """A live session follows the face as whole clips do: full landmarks on every 5th
    frame at 5 fps (the default rate of one per second), and once the next landmark frame
    arrives the frames between get blendshapes interpolated in time, not the last landmark
    frame's carried values (these frames are not final yet: the final lag is longer)."""
    import numpy as np
    from media import canvas, portrait

    from ahmer.service.live import LiveConfig, LiveSession

    base = canvas(portrait())
    h, w = base.shape[:2]
    session = LiveSession(shared_analyzer(), LiveConfig(fps=5.0, video="rgb24", width=w, height=h))
    fresh: list[bool] = []
    process = session._faces.process

    def spy(image, t):  # records which frames ran the full landmarker
        faces = process(image, t)
        fresh.append(bool(faces) and faces[0].landmarks_fresh)
        return faces

    session._faces.process = spy
    try:
        for i in range(24):  # a seated sway, a few pixels per frame
            frame = np.roll(base, (round(3 * np.sin(i / 2.3)), round(8 * np.sin(i / 1.7))), (0, 1))
            session.add_video(i / 5, frame.tobytes())
        session.finish()
        assert session.landmarks_every == 5
        anchors = [i for i, f in enumerate(fresh) if f]
        assert anchors[:5] == [0, 5, 10, 15, 20]
        blend = session.store.arrays["blendshapes"]
        times = session.store.times
        a, b = anchors[1], anchors[2]
        assert np.abs(blend[a] - blend[b]).max() > 1e-3  # the sway moved the blendshapes
        for m in range(a + 1, b):
            wgt = (times[m] - times[a]) / (times[b] - times[a])
            np.testing.assert_allclose(blend[m], (1 - wgt) * blend[a] + wgt * blend[b], atol=1e-5)
    finally:
        session.close()


@pytest.mark.parametrize("asr_keeps_up", [True, False])
def test_frames_wait_for_their_words_then_say_so(asr_keeps_up):
    """A frame is final once speech recognition has decoded the words after it; when it
    falls ``max_final_lag`` behind, frames go final without them and one ``words_late``
    notice says so. With the speech steps run as they fall due, none is sent."""
    import numpy as np

    from ahmer.service.live import LiveConfig, LiveSession
    from ahmer.service.live.session import FrameOut, NoticeOut

    config = LiveConfig(fps=5.0, audio_rate=16000, final_lag=1.0, max_final_lag=2.5)
    session = LiveSession(shared_analyzer(), config)
    chunk = np.zeros(1600, "<i2").tobytes()  # 0.1 s of silence
    finals, notices = [], []
    try:
        for k in range(1, 61):  # 6 s
            for out in session.add_audio(chunk):
                if isinstance(out, FrameOut) and out.final:
                    finals.append((k / 10, out.frame.time))
                elif isinstance(out, NoticeOut):
                    notices.append(out.code)
            if asr_keeps_up and session.speech_step_due():
                session.run_speech_step()
        assert finals, "no frame went final in 6 s"
        lags = [now - t for now, t in finals]
        if asr_keeps_up:
            assert "words_late" not in notices
            assert max(lags) < 2.5  # final behind the decoded words, not at the bound
        else:
            assert notices.count("words_late") == 1
            assert min(lags) >= 2.5 - 1e-6  # nothing decoded: final only at the bound
    finally:
        session.close()
