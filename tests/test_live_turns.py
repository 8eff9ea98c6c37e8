"""Live answers that keep up: streaming ASR commits the words two passes agree on, the
whole-session result reuses them (and agrees with AnalyzeClip within a documented
tolerance), answer turns in one session each get AnalyzeClip's result for their span, and
VAD-detected turns end at a silence. Real models, real server, espeak-ng speech.

Tolerance (live vs AnalyzeClip on the test clips): the same clip-level A/H label, A/H
probability within :data:`PROB_TOLERANCE`, transcript word error rate within
:data:`WER_TOLERANCE` (streamed words are decoded from shorter windows than the whole clip;
``full_audio`` gives the whole clip's words exactly). The differences are printed (``-s``).
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from media import CONFIDENT, HEDGING, have_espeak, word_error_rate
from serving import shared_analyzer

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

PROB_TOLERANCE = 0.15  # |live - AnalyzeClip| clip A/H probability
WER_TOLERANCE = 0.25  # streamed transcript vs AnalyzeClip's
SPEED = 2.0  # replay pace (x real time)


def _shifted(path, offset: float, video: bool = True):
    """``(ready, request)`` of a replay of ``path`` moved ``offset`` s later on the clock."""
    from ahmer.client import replay_requests

    for ready, request in replay_requests(path, video=video):
        if request.HasField("video"):
            request.video.pts += offset
        else:
            request.audio.start_time += offset
        yield ready + offset, request


def _paced(parts, speed: float = SPEED):
    """The requests of ``parts`` (``(ready, request)`` iterables) at ``speed`` x real time."""
    start = time.monotonic()
    for part in parts:
        for ready, request in part:
            delay = start + ready / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield request


def _duration(path) -> float:
    from ahmer.preprocessing.media import probe

    return probe(path).duration


def _words(result) -> str:
    return " ".join(w.text for w in result.transcript)


def _differences(name, live, offline) -> tuple[float, float]:
    wer = word_error_rate(_words(offline), _words(live))
    dp = live.clip.ah_probability - offline.clip.ah_probability
    print(
        f"\n{name}: AnalyzeClip p={offline.clip.ah_probability:.3f} words=[{_words(offline)}]"
        f"\n{name}: live        p={live.clip.ah_probability:.3f} words=[{_words(live)}]"
        f"\n{name}: probability difference {dp:+.3f}, word error rate {wer:.3f}"
    )
    return wer, dp


# -- streaming ASR ---------------------------------------------------------------------------


def test_streaming_asr_commits_what_two_passes_agree_on(tmp_path):
    """Fed 0.5 s at a time, words are committed while the speech goes on, a committed word
    never changes, and the committed transcript is the whole-audio transcript's."""
    from media import read_wav, speak
    from scipy.signal import resample_poly

    from ahmer.preprocessing.asr_stream import StreamingTranscriber
    from ahmer.preprocessing.timeline import Segment
    from ahmer.preprocessing.vad import run_vad

    sr = 16000
    parts = []
    for text in (HEDGING, CONFIDENT):
        audio, rate = read_wav(speak(text, tmp_path / "s.wav"))
        parts += [resample_poly(audio[:, 0], sr, rate), np.zeros(sr // 2)]
    audio = np.concatenate(parts).astype(np.float32)
    transcriber = shared_analyzer().parts.transcriber
    offline = transcriber.transcribe(audio, language="en")

    stream = StreamingTranscriber(transcriber, "en")
    snapshots, committed_at = [], []
    now = 0.5
    while now <= len(audio) / sr:
        a0 = stream.buffer_start
        chunk = audio[int(a0 * sr) : int(now * sr)]
        speech = [Segment(s.start + a0, s.end + a0) for s in run_vad(chunk, sr).segments]
        step = stream.update(chunk, a0, speech)
        committed_at += [(now, w) for w in step.committed]
        snapshots.append([w.text for w in stream.committed])
        now += 0.5
    tail = audio[int(stream.buffer_start * sr) :]
    speech = [Segment(s.start + stream.buffer_start, s.end + stream.buffer_start)
              for s in run_vad(tail, sr).segments]  # fmt: skip
    stream.flush(tail, stream.buffer_start, speech)

    final = [w.text for w in stream.committed]
    for snap in snapshots:  # committed words are a growing prefix: never changed
        assert final[: len(snap)] == snap
    starts = [w.start for w in stream.committed]
    assert starts == sorted(starts)
    # words arrive while the person speaks: most are committed before the audio ends
    during = [w for t, w in committed_at if t < len(audio) / sr - 0.6]
    assert len(during) >= len(final) // 2
    lag = [t - w.end for t, w in committed_at]
    assert np.median(lag) < 1.6  # about two passes after the word
    wer = word_error_rate(offline.text, " ".join(final))
    print(f"\nstreamed vs whole audio: WER {wer:.3f}; commit lag median {np.median(lag):.2f} s")
    assert wer <= 0.1


# -- the whole session and its turns -----------------------------------------------------------


@pytest.mark.parametrize("name", ["hedging", "confident"])
def test_live_result_agrees_with_analyze_clip(client, clips, name):
    """The whole-session result reuses the streamed words (no second decode) and agrees
    with AnalyzeClip; ``full_audio`` decodes again and gives AnalyzeClip's words."""
    from ahmer.client import replay_requests, stream_config
    from ahmer.v1 import options_pb2

    offline = client.analyze_file(clips[name])
    results = {}
    for full in (False, True):
        config = stream_config(f"agree-{full}", options=options_pb2.AnalysisOptions())
        config.config.full_audio = full
        msgs = list(client.stream([config, *_paced([replay_requests(clips[name])])]))
        results[full] = msgs[-1].result
    live, full = results[False], results[True]
    wer, dp = _differences(name, live, offline)
    assert live.clip.ah_label == offline.clip.ah_label
    assert abs(dp) <= PROB_TOLERANCE and wer <= WER_TOLERANCE
    assert _words(full) == _words(offline)
    assert abs(full.clip.ah_probability - offline.clip.ah_probability) <= PROB_TOLERANCE
    assert "live_speech" in live.timings and live.timings["live_speech"] > 0


def test_turns_in_one_session(client, clips):
    """Two answers in one session, a TurnMarker between them: each turn's result is
    AnalyzeClip's for that clip (label, probability within tolerance, words), its frames
    are final before it, and the last turn's result comes right before the session's."""
    first, second = clips["hedging"], clips["confident"]
    offset = _duration(first)
    plan = [*_shifted(first, 0.0), (offset, "end of turn"), *_shifted(second, offset)]
    with client.session(session_id="turns") as session:  # the SDK's session, with end_turn
        for request in _paced([plan]):
            if request == "end of turn":
                session.end_turn("q1")
            else:
                session.send(request)
    msgs = list(session.results())
    assert list(session.turns) == [m.turn for m in msgs if m.WhichOneof("message") == "turn"]
    kinds = [m.WhichOneof("message") for m in msgs]
    turns = [m.turn for m in msgs if m.WhichOneof("message") == "turn"]
    assert kinds[0] == "started" and kinds[-1] == "result" and kinds[-2] == "turn"
    assert [t.index for t in turns] == [0, 1]
    assert [t.reason for t in turns] == ["marker", "end"] and turns[0].label == "q1"
    assert turns[0].start == 0 and turns[0].end == pytest.approx(offset, abs=0.15)
    assert turns[1].start == turns[0].end

    # every frame of the first turn is final before its TurnResult, none of the second's
    first_turn_at = kinds.index("turn")
    finals = [
        (i, m.frame.frame.time) for i, m in enumerate(msgs) if kinds[i] == "frame" and m.frame.final
    ]
    assert all(i < first_turn_at for i, t in finals if t < turns[0].end)
    assert all(i > first_turn_at for i, t in finals if t >= turns[0].end)

    for turn, path, name in ((turns[0], first, "hedging"), (turns[1], second, "confident")):
        offline = client.analyze_file(path)
        got = turn.result
        assert got.frames[0].time == pytest.approx(0.0, abs=0.25)  # times from the turn start
        assert len(got.frames) == pytest.approx(len(offline.frames), abs=2)
        wer, dp = _differences(f"turn {turn.index} ({name})", got, offline)
        assert got.clip.ah_label == offline.clip.ah_label
        assert abs(dp) <= PROB_TOLERANCE and wer <= WER_TOLERANCE
    whole = msgs[-1].result
    assert len(whole.frames) == len(turns[0].result.frames) + len(turns[1].result.frames)


def test_vad_turns_in_an_audio_only_session(client, clips):
    """With turn_silence, a long silence after speech ends a turn; the session's words are
    split between the turns."""
    from ahmer.client import replay_requests, stream_config

    first, second = clips["hedging"], clips["confident"]
    offset = _duration(first) + 2.5  # 2.5 s of silence (a gap in the audio) between them
    config = stream_config("vad-turns", video=False, turn_silence=1.5)
    parts = [replay_requests(first, video=False), _shifted(second, offset, video=False)]
    msgs = list(client.stream([config, *_paced(parts)]))
    turns = [m.turn for m in msgs if m.WhichOneof("message") == "turn"]
    assert [t.reason for t in turns] == ["silence", "end"]
    assert _duration(first) - 0.6 < turns[0].end < offset + 0.1
    assert "not sure" in _words(turns[0].result).lower()
    assert "definitely" in _words(turns[1].result).lower()
    assert "definitely" not in _words(turns[0].result).lower()


def test_turn_settings_out_of_range_are_refused(client):
    from ahmer.client import stream_config

    config = stream_config("bad", video=False, turn_silence=0.1)
    with pytest.raises(grpc.RpcError) as err:
        list(client.stream([config]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "turn_silence" in err.value.details()


def test_cli_stream_prints_each_turn(server, tmp_path):
    """``ahmer client stream --turns``: two answers with a pause between them, one line per
    turn with its own A/H."""
    import subprocess
    import sys

    from media import canvas, make_clip, portrait, read_wav, speak
    from scipy.signal import resample_poly

    parts = [np.zeros(4800, np.float32)]
    for text in (HEDGING, CONFIDENT):
        audio, rate = read_wav(speak(text, tmp_path / "s.wav"))
        parts += [resample_poly(audio[:, 0], 16000, rate).astype(np.float32)]
        parts += [np.zeros(16000 * 3, np.float32)]
    clip = make_clip(tmp_path / "two.mp4", canvas(portrait()), np.concatenate(parts), 16000, fps=15)
    cmd = [sys.executable, "-m", "ahmer.service.cli", "client", "stream", str(clip)]
    cmd += ["--server", server.target, "--realtime", "--speed", "3", "--turns", "1.5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("turn ")]
    assert [line.split()[1] for line in lines] == ["0", "1"], proc.stdout
    assert all(" A/H " in line for line in lines)
