"""The client SDK: transcript arguments (a Path is a file, a str is text), the error
hierarchy on every kind of call, retries of UNAVAILABLE on the idempotent calls, the live
session objects (against a scripted fake server for the mechanics, and the real server for
the results), and a cheap ``import ahmer.client``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from media import have_espeak
from serving import free_port, metric_value

from ahmer.v1 import (
    live_pb2,
    options_pb2,
    results_pb2,
    service_pb2,
    service_pb2_grpc,
)

# -- transcript arguments ----------------------------------------------------------------


def test_transcript_path_is_a_file_and_str_is_the_text(tmp_path):
    from ahmer.client.requests import transcript

    vtt = tmp_path / "answer.vtt"
    vtt.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n")
    from_file = transcript(vtt)
    assert from_file.data == vtt.read_bytes()
    assert from_file.format == options_pb2.Transcript.VTT  # from the suffix

    # a str is the text itself, even when it names an existing file
    as_text = transcript(str(vtt))
    assert as_text.data == str(vtt).encode() and as_text.format == 0

    class Custom(os.PathLike):  # any os.PathLike is a file
        def __fspath__(self):
            return str(vtt)

    assert transcript(Custom()).data == vtt.read_bytes()
    odd = tmp_path / "answer.transcript"  # an unknown suffix: the server guesses
    odd.write_text("hello there")
    assert transcript(odd).format == options_pb2.Transcript.FORMAT_UNSPECIFIED
    assert transcript(b"hi", "srt").format == options_pb2.Transcript.SRT
    with pytest.raises(TypeError, match="Path"):
        transcript(42)
    with pytest.raises(ValueError, match="unknown transcript format"):
        transcript("hi", "doc")


# -- the error hierarchy -------------------------------------------------------------------


def test_every_status_maps_to_its_error_class():
    import ahmer.client as sdk
    from ahmer.client.errors import error_from

    expected = {
        grpc.StatusCode.INVALID_ARGUMENT: sdk.InvalidInput,
        grpc.StatusCode.FAILED_PRECONDITION: sdk.FailedPrecondition,
        grpc.StatusCode.OUT_OF_RANGE: sdk.OutOfRange,
        grpc.StatusCode.UNAUTHENTICATED: sdk.Unauthenticated,
        grpc.StatusCode.PERMISSION_DENIED: sdk.PermissionDenied,
        grpc.StatusCode.UNAVAILABLE: sdk.Unavailable,
        grpc.StatusCode.RESOURCE_EXHAUSTED: sdk.ResourceExhausted,
        grpc.StatusCode.DEADLINE_EXCEEDED: sdk.DeadlineExceeded,
        grpc.StatusCode.CANCELLED: sdk.Cancelled,
        grpc.StatusCode.INTERNAL: sdk.Internal,
        grpc.StatusCode.UNIMPLEMENTED: sdk.AhmerError,
    }

    class Raw(grpc.RpcError):  # what gRPC raises: an error that is also a call
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

        def details(self):
            return "why"

        def trailing_metadata(self):
            return (("k", "v"),)

    for code, cls in expected.items():
        err = error_from(Raw(code))
        assert type(err) is cls and isinstance(err, sdk.AhmerError)
        assert isinstance(err, grpc.RpcError)  # `except grpc.RpcError` code keeps working
        assert err.code() is code and err.details() == "why"
        assert err.trailing_metadata() == (("k", "v"),) and str(err) == f"{code.name}: why"


# -- a scripted server: retries and errors without the models -------------------------------


class Scripted(service_pb2_grpc.AnalysisServiceServicer):
    """Fails the first ``failures`` calls of each method with UNAVAILABLE, then answers;
    a live session echoes one final frame per video frame and refuses frames out of order."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: Counter = Counter()

    def _attempt(self, method: str, context) -> None:
        self.calls[method] += 1
        if self.calls[method] <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "models still loading")

    def GetModels(self, request, context):
        self._attempt("GetModels", context)
        return service_pb2.ModelsInfo(backend="scripted")

    def AnalyzeClip(self, request, context):
        self._attempt("AnalyzeClip", context)
        if not request.media:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty media")
        return results_pb2.AnalysisResult(warnings=[f"{len(request.media)} bytes"])

    def UploadClip(self, request_iterator, context):
        size = sum(len(r.chunk.data) for r in request_iterator)
        self._attempt("UploadClip", context)
        return results_pb2.AnalysisResult(warnings=[f"{size} bytes"])

    def StreamSession(self, request_iterator, context):
        self._attempt("StreamSession", context)
        config = next(request_iterator).config
        yield live_pb2.StreamResponse(
            started=live_pb2.SessionStarted(session_id=config.session_id or "made", fps=5.0)
        )
        frames, last, audio = 0, -1.0, 0
        for request in request_iterator:
            if request.HasField("video"):
                if request.video.pts < last:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "video pts out of order")
                last = request.video.pts
                # the frame's bytes come back (as its label): as much data out as in
                label = request.video.data.decode()
                frame = results_pb2.FrameResult(time=request.video.pts, emotion_label=label)
                yield live_pb2.StreamResponse(
                    frame=live_pb2.FrameUpdate(frame=frame, index=frames, final=True)
                )
                frames += 1
            elif request.HasField("audio"):
                audio += len(request.audio.data)
        result = results_pb2.AnalysisResult(warnings=[f"{frames} frames", f"{audio} bytes"])
        yield live_pb2.StreamResponse(result=result)


@pytest.fixture()
def scripted():
    """``scripted(failures) -> (servicer, target)``: a scripted server on 127.0.0.1."""
    servers = []

    def start(failures: int = 0):
        servicer = Scripted(failures)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        service_pb2_grpc.add_AnalysisServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def test_unavailable_is_retried_on_idempotent_calls(scripted):
    from ahmer.client import AhmerClient

    servicer, target = scripted(failures=2)
    with AhmerClient(target, retries=3) as client:
        assert client.get_models(timeout=10).backend == "scripted"
        big = b"x" * (2 << 20)  # larger than gRPC's default 256 KiB retry buffer
        assert client.analyze_bytes(big, timeout=10).warnings == [f"{len(big)} bytes"]
    assert servicer.calls["GetModels"] == 3 and servicer.calls["AnalyzeClip"] == 3


def test_retries_zero_fails_with_unavailable_chained(scripted):
    from ahmer.client import AhmerClient, Unavailable

    servicer, target = scripted(failures=1)
    with AhmerClient(target, retries=0) as client:
        with pytest.raises(Unavailable) as err:
            client.get_models(timeout=10)
    assert err.value.details() == "models still loading"
    assert isinstance(err.value.__cause__, grpc.RpcError)  # the original gRPC error
    assert servicer.calls["GetModels"] == 1


def test_streams_are_never_retried(scripted, tmp_path):
    from ahmer.client import AhmerClient, Unavailable

    servicer, target = scripted(failures=1)
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"y" * 1000)
    with AhmerClient(target, retries=3) as client:
        with pytest.raises(Unavailable):
            client.upload_file(media, chunk_size=100, timeout=10)
        with pytest.raises(Unavailable):
            client.session(video=True, audio=False).start()
    assert servicer.calls["UploadClip"] == 1 and servicer.calls["StreamSession"] == 1


def test_async_client_retries_and_raises_typed_errors(scripted):
    from ahmer.client import AsyncAhmerClient, InvalidInput, Unavailable

    servicer, target = scripted(failures=2)

    async def run():
        async with AsyncAhmerClient(target) as client:  # retries=3 by default
            info = await client.get_models(timeout=10)
            with pytest.raises(InvalidInput, match="empty media"):
                await client.analyze_bytes(b"", timeout=10)
        async with AsyncAhmerClient(target, retries=0) as client:
            servicer.calls.clear()
            with pytest.raises(Unavailable):
                await client.get_models(timeout=10)
        return info

    assert asyncio.run(run()).backend == "scripted"


def test_unreachable_server_is_unavailable():
    from ahmer.client import AhmerClient, ClientOptions, Unavailable

    with AhmerClient(f"127.0.0.1:{free_port()}", ClientOptions(retries=0)) as client:
        with pytest.raises(Unavailable):
            client.get_models(timeout=5)
    with pytest.raises(ValueError, match="retries"):
        ClientOptions(retries=5)  # gRPC allows at most 5 attempts


def test_raw_streams_raise_typed_errors(scripted):
    from ahmer.client import AhmerClient, AsyncAhmerClient, InvalidInput, stream_config

    _, target = scripted()

    def requests():
        yield stream_config(video=True, audio=False)
        for pts in (1.0, 0.5):
            yield live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=pts, data=b"j"))

    with AhmerClient(target) as client:
        with pytest.raises(InvalidInput, match="out of order"):
            list(client.stream(requests(), timeout=10))

    async def run():
        async with AsyncAhmerClient(target) as client:

            async def arequests():
                for r in requests():
                    yield r

            call = client.stream(arequests(), timeout=10)
            with pytest.raises(InvalidInput, match="out of order"):
                async for _ in call:
                    pass

    asyncio.run(run())


# -- session objects: the mechanics -----------------------------------------------------------


def test_session_with_a_reader_thread(scripted):
    from ahmer.client import AhmerClient

    _, target = scripted()
    with AhmerClient(target) as client:
        with client.session(session_id="s1", fps=5) as s:
            assert s.started.session_id == "s1"
            seen: list = []
            reader = threading.Thread(target=lambda: seen.extend(s.results()))
            reader.start()
            for i in range(40):
                s.send_frame(b"jpeg", pts=i * 0.1)
                s.send_audio(b"\0\0" * 1600)
            result = s.close()
            reader.join(10)
        assert not reader.is_alive()
    assert list(result.warnings) == ["40 frames", f"{40 * 3200} bytes"]
    frames = [m.frame.index for m in seen if m.WhichOneof("message") == "frame"]
    assert frames == list(range(40))  # every frame, in order, to the reader
    assert seen[0].started == s.started and seen[-1].result == result and s.result == result
    with pytest.raises(RuntimeError, match="closed"):
        s.send_frame(b"jpeg", pts=5.0)


def test_session_sending_without_reading_never_stalls(scripted):
    """Megabytes of results nobody reads while sending: the session keeps them (the server
    is never held up by an unread connection), close returns, results() has them all."""
    from ahmer.client import AhmerClient

    _, target = scripted()
    frame = b"j" * 60_000  # 18 MB each way: past what gRPC buffers for an unread call
    with AhmerClient(target) as client:
        with client.session(video=True, audio=False, timeout=60) as s:
            for i in range(300):
                s.send_frame(frame, pts=i * 0.1)
            result = s.close()
        seen = list(s.results())
    assert result.warnings[0] == "300 frames"
    frames = [m.frame for m in seen if m.HasField("frame")]
    assert len(frames) == 300 and all(f.frame.emotion_label == frame.decode() for f in frames)


def test_session_close_alone_drains_and_errors_are_typed(scripted):
    from ahmer.client import AhmerClient, InvalidInput

    _, target = scripted()
    with AhmerClient(target) as client:
        s = client.session(video=True, audio=False)
        s.send_frame(b"jpeg", 0.0)  # starts the session
        assert s.close().warnings[0] == "1 frames"

        with pytest.raises(InvalidInput, match="out of order") as err:
            with client.session(video=True, audio=False) as bad:
                bad.send_frame(b"jpeg", 1.0)
                bad.send_frame(b"jpeg", 0.5)
                bad.close()
        assert isinstance(err.value.__cause__, grpc.RpcError)


def test_cancelled_sessions_end_with_cancelled(scripted):
    from ahmer.client import AhmerClient, AsyncAhmerClient, Cancelled

    _, target = scripted()
    with AhmerClient(target) as client:
        with pytest.raises(KeyError):  # an error in the block cancels the session
            with client.session(video=True, audio=False) as s:
                s.send_frame(b"jpeg", 0.0)
                raise KeyError("app bug")
        with pytest.raises(Cancelled):
            list(s.results())

    async def run():
        async with AsyncAhmerClient(target) as client:
            s = await client.session(video=True, audio=False).start()
            await s.send_frame(b"jpeg", 0.0)
            s.cancel()
            with pytest.raises(Cancelled):
                await s.close()

    asyncio.run(run())


def test_async_session_with_a_reader_task(scripted):
    from ahmer.client import AsyncAhmerClient, InvalidInput

    _, target = scripted()

    async def run():
        async with AsyncAhmerClient(target) as client:
            async with client.session(session_id="a1") as s:
                assert s.started.session_id == "a1"

                async def read():
                    return [msg async for msg in s.results()]

                reader = asyncio.create_task(read())
                for i in range(20):
                    await s.send_frame(b"jpeg", i * 0.2)
                    await s.send_audio(b"\0\0" * 800, start=i * 0.2)
                result = await s.close()
                seen = await reader
            alone = client.session(video=True, audio=False)
            await alone.send_frame(b"jpeg", 0.0)
            assert (await alone.close()).warnings[0] == "1 frames"
            with pytest.raises(InvalidInput):
                async with client.session() as bad:
                    await bad.send_frame(b"jpeg", 1.0)
                    await bad.send_frame(b"jpeg", 0.5)
                    await bad.close()
            return result, seen

    result, seen = asyncio.run(run())
    assert list(result.warnings) == ["20 frames", f"{20 * 1600} bytes"]
    assert [m.frame.index for m in seen if m.HasField("frame")] == list(range(20))
    assert seen[0].HasField("started") and seen[-1].result == result


# -- session objects against the real server ---------------------------------------------------


def _captured(path: Path):
    """What a webcam app would have: (kind, data, time) of JPEG frames and PCM16 chunks."""
    from ahmer.client import replay_requests

    for _, request in replay_requests(path):
        if request.HasField("video"):
            yield "frame", request.video.data, request.video.pts
        else:
            yield "audio", request.audio.data, request.audio.start_time


def _final_frames(messages) -> list:
    return [m.frame for m in messages if m.HasField("frame") and m.frame.final]


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_session_on_the_real_server(server, clips):
    from ahmer.client import AhmerClient

    captured = list(_captured(clips["confident"]))
    with AhmerClient(server.target) as client:
        with client.session(session_id="webcam", explanation="summary") as s:
            assert s.started.session_id == "webcam" and s.started.fps == pytest.approx(5.0)
            seen: list = []
            reader = threading.Thread(target=lambda: seen.extend(s.results()))
            reader.start()
            for kind, data, t in captured:
                if kind == "frame":
                    s.send_frame(data, pts=t)
                else:
                    s.send_audio(data, start=t)
            result = s.close()
            reader.join(30)
    final = _final_frames(seen)
    assert [f.index for f in final] == list(range(len(result.frames))) and final
    assert [f.frame.time for f in final] == pytest.approx([f.time for f in result.frames])
    assert result.media.container == "live" and result.media.has_video
    assert result.media.has_audio and result.transcript_source == "asr"
    assert result.explanation.summary
    _sessions_freed(server)


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_async_session_on_the_real_server(server, clips):
    from ahmer.client import AsyncAhmerClient

    captured = list(_captured(clips["confident"]))

    async def run():
        async with AsyncAhmerClient(server.target) as client:
            async with client.session(provisional=True) as s:

                async def read():
                    return [msg async for msg in s.results()]

                reader = asyncio.create_task(read())
                for kind, data, t in captured:
                    if kind == "frame":
                        await s.send_frame(data, t)
                    else:
                        await s.send_audio(data, t)
                result = await s.close()
                return result, await reader

    result, seen = asyncio.run(run())
    final = _final_frames(seen)
    assert [f.index for f in final] == list(range(len(result.frames))) and final
    assert any(m.HasField("frame") and not m.frame.final for m in seen)  # provisional too
    assert seen[-1].result == result and result.media.has_video
    _sessions_freed(server)


def _sessions_freed(server) -> None:
    deadline = time.monotonic() + 10
    while metric_value(server.metrics_url, "ahmer_active_streams") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(server.metrics_url, "ahmer_active_streams") == 0


# -- import cost ------------------------------------------------------------------------------


def test_importing_the_client_is_cheap():
    """``import ahmer.client`` loads no gRPC, numpy or media decoder; the clients load
    gRPC but not numpy, the decoder or the server's code (those come with file replay)."""
    code = (
        "import sys, ahmer.client\n"
        "print(sorted(m for m in ('grpc', 'numpy', 'av') if m in sys.modules))\n"
        "from ahmer.client import AhmerClient, AsyncAhmerClient, AhmerError, Session\n"
        "print(sorted(m for m in ('grpc', 'numpy', 'av', 'ahmer.preprocessing',"
        " 'ahmer.models', 'ahmer.service') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['grpc']"]
