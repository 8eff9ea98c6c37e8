"""Cancelled work stops: a long real clip (espeak-ng speech over the real face photo) cancelled
against a real server leaves little CPU work behind, and ``Analyzer.analyze(cancel=...)``
stops its audio branch (decoding, voice activity, ASR) as well as its frames.

Work is counted in CPU-seconds of this process (the server runs in it) and in calls of the
pipeline's own callbacks, never in wall time."""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from media import CONFIDENT, HEDGING, canvas, have_espeak, make_clip, portrait, read_wav, speak
from scipy.signal import resample_poly
from serving import ServerThread, metric_value, shared_analyzer, speech_clip

from ahmer.preprocessing.pipeline import Cancelled

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

SR = 16000
LONG_S = 120.0
IDLE_CPU_S = 0.05  # CPU-seconds in one second under which the process counts as idle


class Stop(Exception):
    """Raised by a test's ``check`` callback."""


def _stop_at(n: int, asked: list):
    """A ``check`` that records each call in ``asked`` and raises :class:`Stop` at the n-th."""

    def check() -> None:
        asked.append(1)
        if len(asked) == n:
            raise Stop

    return check


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _leftover_cpu_s(timeout: float = 120.0) -> float:
    """CPU-seconds this process spends from now until it has been idle for a second (the
    idle second itself not counted)."""
    start = _cpu_s()
    samples = [(time.monotonic(), start)]
    deadline = samples[0][0] + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now, used = time.monotonic(), _cpu_s()
        samples.append((now, used))
        old = [s for s in samples if s[0] <= now - 1.0]
        if old and used - old[-1][1] < IDLE_CPU_S:
            return old[-1][1] - start
    raise AssertionError(f"still busy {timeout:.0f} s after the cancel")


def _speech(text: str, folder: Path) -> np.ndarray:
    audio, rate = read_wav(speak(text, folder / f"{abs(hash(text))}.wav"))
    return resample_poly(audio[:, 0], SR, rate).astype(np.float32)


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory) -> np.ndarray:
    """LONG_S seconds of answers: the two test sentences in turn, 1 s and 2.5 s apart (the
    longer pauses split ASR's clips), at 16 kHz."""
    folder = tmp_path_factory.mktemp("cancel_audio")
    sentences = [_speech(HEDGING, folder), _speech(CONFIDENT, folder)]
    pieces, total, i = [], 0, 0
    while total < LONG_S * SR:
        pause = np.zeros(int((1.0 if i % 2 == 0 else 2.5) * SR), np.float32)
        pieces += [pause, sentences[i % 2]]
        total += len(pause) + len(sentences[i % 2])
        i += 1
    return np.concatenate(pieces)[: int(LONG_S * SR)]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, long_audio) -> Path:
    """The answers over the portrait at 10 fps, H.264/AAC."""
    folder = tmp_path_factory.mktemp("cancel_clip")
    return make_clip(folder / "long.mp4", canvas(portrait()), long_audio, SR, fps=10)


# -- the long loops of the audio branch ---------------------------------------------------


def test_vad_in_batches_matches_faster_whisper_and_stops_on_check(long_audio):
    """VAD runs in 32 s batches so that a cancel can stop it: the probabilities are exactly
    faster-whisper's single pass, ``check`` is asked before each batch, and what it raises
    ends the pass there."""
    from faster_whisper.vad import get_vad_model

    from ahmer.preprocessing.vad import run_vad

    padded = np.pad(long_audio, (0, 512 - len(long_audio) % 512))
    reference = np.asarray(get_vad_model()(padded.copy()), np.float32).reshape(-1)
    asked = []
    result = run_vad(long_audio, SR, check=lambda: asked.append(1))
    assert np.array_equal(result.probabilities, reference)
    assert len(asked) == int(np.ceil(len(reference) / 1000)) >= 4
    asked.clear()
    with pytest.raises(Stop):
        run_vad(long_audio, SR, check=_stop_at(2, asked))
    assert len(asked) == 2


def test_load_audio_asks_check_every_10_s(long_clip, long_audio):
    from ahmer.preprocessing.media import load_audio

    asked = []
    audio = load_audio(long_clip, check=lambda: asked.append(1))
    assert len(asked) == int(np.ceil(len(audio) / (10 * SR))) == int(np.ceil(LONG_S / 10))
    asked.clear()
    with pytest.raises(Stop):
        load_audio(long_clip, check=_stop_at(3, asked))
    assert len(asked) == 3


# -- Analyzer.analyze(cancel=...) ----------------------------------------------------------


class _CountingTranscriber:
    """The analyzer's real Transcriber, with every ASR progress call recorded; at the first
    decoded segment it waits until the video branch is done, then flips ``cancel``."""

    def __init__(self, inner, cancel: threading.Event, video_done: threading.Event) -> None:
        self.inner, self.cancel, self.video_done = inner, cancel, video_done
        self.calls: list[float] = []

    def transcribe(self, audio, on_progress=None, **kwargs):
        def counted(fraction: float) -> None:
            self.calls.append(fraction)
            if len(self.calls) == 2:  # the first segment is decoded (call 1 came before it)
                assert self.video_done.wait(300), "the video branch never finished"
                self.cancel.set()
            on_progress(fraction)

        return self.inner.transcribe(audio, on_progress=counted, **kwargs)


def test_cancel_during_asr_stops_at_that_segment(long_clip):
    """Cancelled while ASR runs (the frames are all analysed by then): the analysis raises
    Cancelled at the segment being decoded, with most of the audio left undecoded, and
    nothing after it (no further ASR segment, no prosody, no encoders)."""
    analyzer = shared_analyzer()
    cancel, video_done = threading.Event(), threading.Event()
    counting = _CountingTranscriber(analyzer.transcriber, cancel, video_done)
    stages = []

    def progress(stage: str, fraction: float) -> None:
        stages.append(stage)
        if stage == "speech":  # the main thread waits for the audio branch: frames are done
            video_done.set()

    real, analyzer.transcriber = analyzer.transcriber, counting
    try:
        with pytest.raises(Cancelled):
            analyzer.analyze(long_clip, progress=progress, cancel=cancel.is_set)
    finally:
        analyzer.transcriber = real
    assert counting.calls[0] == 0.0 and len(counting.calls) == 2
    assert 0.0 < counting.calls[1] < 0.5  # the first segment: most of the speech remained
    assert "frames" in stages and "done" not in stages


def test_predict_asks_cancel_before_each_stage(tmp_path):
    analyzer = shared_analyzer()
    tl = analyzer.preprocess(speech_clip(tmp_path, HEDGING, "hedging"))
    asked = []
    analyzer.predict(tl, cancel=lambda: asked.append(1) and False)
    assert len(asked) == 4  # emotion, text, cues, fusion
    asked.clear()
    with pytest.raises(Cancelled):
        analyzer.predict(tl, cancel=lambda: asked.append(1) or len(asked) == 2)
    assert len(asked) == 2  # stopped before the text encoder


# -- a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(model_store):
    srv = ServerThread(analyzer=shared_analyzer()).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stub(server):
    from ahmer.v1 import service_pb2_grpc

    options = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(server.target, options=options) as channel:
        yield service_pb2_grpc.AnalysisServiceStub(channel)


@pytest.mark.serial  # compares CPU seconds after the cancel with the clip's: skewed by other work
def test_cancelled_call_leaves_little_work_behind(server, stub, long_clip, tmp_path):
    """Cancel the long clip early (audio decoding / voice activity) and midway (ASR and the
    faces): the server's CPU-seconds after the cancel stay under a fifth of what the whole
    clip costs, and the next call is answered.

    The bound: after a cancel the server finishes at most the step it is in: one analysis
    frame, 10 s of audio decoding, 32 s of audio through VAD, one ASR window (up to 30 s of
    audio: CTranslate2 decodes a window in one call, the largest step that cannot be cut),
    or one stage of the encoders. On this clip's 120 s that is a small part of the whole, so
    a fifth leaves room for a loaded machine, and is still well under what an audio branch
    that ran on after the cancel would spend (ASR is about half of the clip's CPU)."""
    from ahmer.v1 import service_pb2

    request = service_pb2.AnalyzeClipRequest(media=long_clip.read_bytes())
    _leftover_cpu_s()  # start from an idle server
    before = _cpu_s()
    whole = stub.AnalyzeClip(request, timeout=600)
    whole_cpu = _cpu_s() - before
    assert whole.clip.segments or whole.frames  # it really was analysed

    url = server.metrics_url
    labels = {"grpc_method": "AnalyzeClip", "grpc_code": "CANCELLED"}
    cancelled_before = metric_value(url, "grpc_server_handled_total", labels)
    for fraction in (0.03, 0.4):  # of the whole clip's CPU, spent before the cancel
        _leftover_cpu_s()
        start = _cpu_s()
        call = stub.AnalyzeClip.future(request, timeout=600)
        while _cpu_s() - start < fraction * whole_cpu and not call.done():
            time.sleep(0.02)
        assert not call.done(), "the call ended before it could be cancelled"
        call.cancel()
        left = _leftover_cpu_s()
        assert left < 0.2 * whole_cpu, (fraction, left, whole_cpu)
        with pytest.raises(grpc.FutureCancelledError):
            call.result()
    deadline = time.monotonic() + 10
    while metric_value(url, "grpc_server_handled_total", labels) < cancelled_before + 2:
        assert time.monotonic() < deadline, "the server did not record the cancels"
        time.sleep(0.05)

    short = speech_clip(tmp_path, HEDGING, "short")
    reply = stub.AnalyzeClip(service_pb2.AnalyzeClipRequest(media=short.read_bytes()), timeout=120)
    assert reply.frames and reply.transcript
