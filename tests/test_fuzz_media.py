"""Media and transcript fuzz (issue 14): damaged clips, frames, PCM and transcripts from a
seeded generator (the same inputs every run) through every way in: ``AnalyzeClip`` on a real
server, live sessions through the SDK, and ``ahmer analyze`` in a subprocess.

Targets and the inputs each run tries (``pytest -s`` prints the counts and what came back):

- ``AnalyzeClip`` media: :data:`CLIP_INPUTS` damaged clips (:func:`mediafuzz.mutate_media`:
  bit flips, truncation, MP4 ``ftyp``/``moov``/``mdat`` boxes and codec fourccs damaged, WAV
  headers claiming another format, Matroska codec ids swapped, runs repeated or cut) over a
  real MP4 (H.264 + AAC, a face and espeak-ng speech), an MKV and a WAV.
- live sessions: :data:`LIVE_SESSIONS` sessions, each with damaged JPEG frames (bit flips,
  truncation, another format's magic, random bytes) and damaged PCM (odd lengths, noise,
  full-scale square waves) among good ones.
- ``ahmer analyze``: :data:`CLI_INPUTS` damaged clips (each run starts Python and loads models).
- transcripts: :data:`PARSE_INPUTS` malformed, huge (near and past the 4 MiB limit) and deeply
  nested (JSON 10^4 to 4x10^5 deep) VTT, SRT and JSON transcripts into the parser;
  :data:`TRANSCRIPT_INPUTS` of them with a real clip through ``AnalyzeClip``, and
  :data:`CLI_TRANSCRIPTS` through ``ahmer analyze --transcript``.

Acceptance: no crash, nothing past its deadline, no ``UNKNOWN``/``INTERNAL`` status; the CLI
exits 0 (warnings allowed) or 1/2 with one ``error:`` line, never an internal error or a
traceback; afterwards the server still analyses a good clip and holds no session.
"""

from __future__ import annotations

import collections
import io
import random
import subprocess
import sys
import threading
import wave

import grpc
import numpy as np
import pytest
from mediafuzz import MEDIA_MUTATIONS, TRANSCRIPT_KINDS, mutate_media, odd_transcript
from serving import ServerThread, settled_metric, shared_analyzer, speech_clip

from ahmer.client import AhmerClient, AhmerError
from ahmer.preprocessing.transcript import MAX_BYTES, TranscriptError, parse_transcript

SEED = 14
CLIP_INPUTS = 36
LIVE_SESSIONS = 16
CLI_INPUTS = 4
PARSE_INPUTS = 300
TRANSCRIPT_INPUTS = 30
CLI_TRANSCRIPTS = 3
DEADLINE = 90.0  # seconds per call: far above any answer here, so running into it is a hang
BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}
CLI = [sys.executable, "-m", "ahmer.service.cli"]
TEXT = "um, I guess maybe."


def _wav_bytes(audio: np.ndarray, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, bytes]:
    """Intact inputs: an MP4 (H.264 + AAC: a face, speech), an MKV of the same, a WAV."""
    from media import canvas, make_clip, portrait, read_wav

    folder = tmp_path_factory.mktemp("fuzz-media")
    mp4 = speech_clip(folder, TEXT, "answer", lead=0.2)
    audio, rate = read_wav(folder / "answer.wav")
    from scipy.signal import resample_poly

    audio = resample_poly(audio[:, 0], 16000, rate).astype(np.float32)
    frame = canvas(portrait(), size=(320, 240))
    mkv = make_clip(folder / "answer.mkv", frame, audio, 16000, fps=10)
    return {"mp4": mp4.read_bytes(), "mkv": mkv.read_bytes(), "wav": _wav_bytes(audio)}


@pytest.fixture(scope="module")
def fuzz_server(model_store):
    srv = ServerThread(analyzer=shared_analyzer()).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(fuzz_server):
    with AhmerClient(fuzz_server.target) as c:
        yield c


def _code(call, *args, **kwargs) -> tuple[str, str]:
    """Run ``call(*args, **kwargs)``; the status name it ended with and its message."""
    try:
        call(*args, **kwargs)
    except AhmerError as exc:
        return exc.code().name, exc.details()
    return "OK", ""


def _problem(code: str, details: str) -> str | None:
    if grpc.StatusCode[code] in BAD:
        return f"got {code}: {details[:200]}"
    if "Traceback" in details or "<class" in details or "set_int_max_str_digits" in details:
        return f"a Python internal in the message: {details[:200]}"
    return None


def _still_serves(client, bases, url: str) -> None:
    result = client.analyze_bytes(bases["mp4"], container="a.mp4", fps=2, timeout=DEADLINE)
    assert result.clip.ah_label in (0, 1) and result.media.duration > 0
    assert settled_metric(url, "ahmer_active_streams", None, 0.0) == 0.0


def _report(target: str, count: int, seen: collections.Counter, failures: list[str]) -> None:
    print(f"\nfuzz {target}: {count} inputs, outcomes {dict(sorted(seen.items()))}")
    assert not failures, "\n".join(failures[:20])


# -- whole clips ---------------------------------------------------------------------------


def test_analyze_clip_survives_damaged_media(client, bases, fuzz_server):
    """Damaged MP4/MKV/WAV bytes: OK (a partial result, warnings) or a clear refusal,
    never UNKNOWN/INTERNAL, never past the deadline; the server serves a good clip after."""
    rng = random.Random(f"{SEED}/clip")
    seen: collections.Counter = collections.Counter()
    failures = []
    names = sorted(bases)
    for index in range(CLIP_INPUTS):
        base = names[index % len(names)]
        kind = MEDIA_MUTATIONS[index // len(names) % len(MEDIA_MUTATIONS)]
        how, data = mutate_media(rng, bases[base], kind)
        code, details = _code(
            client.analyze_bytes, data, container=f"a.{base}", fps=2, timeout=DEADLINE
        )
        seen[code] += 1
        problem = _problem(code, details)
        if problem:
            failures.append(f"input {index} ({base}, {how}; seed {SEED}/clip): {problem}")
    _report("AnalyzeClip media", CLIP_INPUTS, seen, failures)
    _still_serves(client, bases, fuzz_server.metrics_url)


def _cli_ok(proc: subprocess.CompletedProcess) -> str | None:
    """None when ``ahmer analyze`` ended as docs/bad-input.md promises, else what is wrong."""
    err = proc.stderr
    if "Traceback" in err or "internal error" in err:
        return f"traceback or internal error: {err[-1500:]}"
    if proc.returncode == 0:
        return None
    if proc.returncode not in (1, 2):
        return f"exit {proc.returncode}: {err[-1500:]}"
    errors = [line for line in err.splitlines() if "error:" in line]
    if len(errors) != 1:
        return f"{len(errors)} error lines: {err[-1500:]}"
    return None


def test_ahmer_analyze_survives_damaged_media(bases, tmp_path, model_store):
    """``ahmer analyze`` on damaged files (one of each mutation): exit 0, or 1/2 with one
    ``error:`` line; never a traceback or an internal error."""
    rng = random.Random(f"{SEED}/cli")
    seen: collections.Counter = collections.Counter()
    failures = []
    for index, kind in enumerate(MEDIA_MUTATIONS[:CLI_INPUTS]):
        base = ("mp4", "mkv", "wav", "mp4")[index]
        how, data = mutate_media(rng, bases[base], kind)
        path = tmp_path / f"damaged{index}.{base}"
        path.write_bytes(data)
        proc = subprocess.run(
            [*CLI, "analyze", str(path), "--fps", "2", "--quiet"],
            capture_output=True, text=True, timeout=DEADLINE * 2,
        )  # fmt: skip
        seen[f"exit {proc.returncode}"] += 1
        problem = _cli_ok(proc)
        if problem:
            failures.append(f"input {index} ({base}, {how}; seed {SEED}/cli): {problem}")
    _report("ahmer analyze media", CLI_INPUTS, seen, failures)


# -- live ----------------------------------------------------------------------------------


def _jpeg(frame: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".jpg", frame[:, :, ::-1])[1].tobytes()


def _damage_frame(rng: random.Random, jpeg: bytes) -> tuple[str, bytes]:
    how = rng.choice(("bit_flip", "truncate", "png_magic", "random", "empty_scan", "huge_dims"))
    out = bytearray(jpeg)
    if how == "bit_flip":
        for _ in range(rng.choice((1, 8, 64))):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    elif how == "truncate":
        out = out[: rng.randrange(len(out))]
    elif how == "png_magic":
        out[:8] = b"\x89PNG\r\n\x1a\n"
    elif how == "random":
        out = bytearray(rng.randbytes(rng.choice((1, 100, 5000))))
    elif how == "empty_scan":
        sos = out.find(b"\xff\xda")
        out = out[: sos + 2] + b"\xff\xd9" if sos > 0 else out
    else:  # the SOF0 header claims 65535 x 65535
        sof = out.find(b"\xff\xc0")
        if sof > 0:
            out[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"
    return how, bytes(out)


def _damage_pcm(rng: random.Random, pcm: bytes) -> tuple[str, bytes]:
    how = rng.choice(("odd_length", "noise", "square", "truncate", "empty"))
    if how == "odd_length":
        return how, pcm + b"\x01"
    if how == "noise":
        return how, rng.randbytes(len(pcm))
    if how == "square":
        return how, (np.sign(np.sin(np.arange(len(pcm) // 2))) * 32767).astype("<i2").tobytes()
    if how == "truncate":
        return how, pcm[: rng.randrange(len(pcm))]
    return how, b""


def test_live_sessions_survive_damaged_frames_and_pcm(client, bases, fuzz_server):
    """Sessions with damaged JPEG frames and PCM among good ones: each ends OK or with a
    clear refusal (INVALID_ARGUMENT for an undecodable frame or partial PCM frames), never
    UNKNOWN/INTERNAL; afterwards no session is held and a good clip still works."""
    from media import canvas, portrait

    rng = random.Random(f"{SEED}/live")
    good = _jpeg(canvas(portrait(), size=(320, 240)))
    speech = np.frombuffer(bases["wav"][44:], "<i2")
    seen: collections.Counter = collections.Counter()
    failures = []
    for index in range(LIVE_SESSIONS):
        damaged: list[str] = []

        def run_session(damaged: list[str] = damaged) -> None:
            with client.session(fps=5, video=True, audio=True, timeout=DEADLINE) as s:
                for k in range(6):  # 1.2 s: 6 frames at 5 fps, 0.2 s of audio each
                    frame, pcm = good, speech[k * 3200 : (k + 1) * 3200].tobytes()
                    if rng.random() < 0.4:
                        how, frame = _damage_frame(rng, frame)
                        damaged.append(f"frame {k} {how}")
                    if rng.random() < 0.3:
                        how, pcm = _damage_pcm(rng, pcm)
                        damaged.append(f"pcm {k} {how}")
                    s.send_frame(frame, pts=k * 0.2)
                    if pcm:
                        s.send_audio(pcm, start=k * 0.2)
                s.close()

        code, details = _code(run_session)
        seen[code] += 1
        problem = _problem(code, details)
        if problem:
            failures.append(f"session {index} ({damaged}; seed {SEED}/live): {problem}")
    _report("StreamSession frames and PCM", LIVE_SESSIONS, seen, failures)
    _still_serves(client, bases, fuzz_server.metrics_url)


# -- transcripts ---------------------------------------------------------------------------


def test_transcript_parser_refuses_only_with_transcript_errors():
    """Every odd transcript parses or raises TranscriptError (nothing else: no
    RecursionError, no int() digit limit), in a worker thread as on the server; JSON nested
    10^4 deep and more is refused as nested too deeply."""
    rng = random.Random(f"{SEED}/parse")
    seen: collections.Counter = collections.Counter()
    failures = []

    def run() -> None:
        for index in range(PARSE_INPUTS):
            kind = TRANSCRIPT_KINDS[index % len(TRANSCRIPT_KINDS)]
            how, fmt, data = odd_transcript(rng, MAX_BYTES, kind)
            try:
                parse_transcript(data, fmt)
                seen[f"{kind} parsed"] += 1
            except TranscriptError as exc:
                seen[f"{kind} refused"] += 1
                if kind.startswith("deep") and "nested too deeply" not in str(exc):
                    failures.append(f"input {index} ({how}): {exc}")
            except BaseException as exc:  # noqa: BLE001 - any other exception is the bug
                failures.append(f"input {index} ({how}): {type(exc).__name__}: {exc}"[:300])

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    _report("parse_transcript", PARSE_INPUTS, seen, failures)


FORMATS = {"text": 1, "vtt": 2, "srt": 3, "json": 4}  # options_pb2.Transcript.Format


def test_analyze_clip_refuses_odd_transcripts_clearly(client, bases, fuzz_server):
    """Odd transcripts with a real clip: INVALID_ARGUMENT with a message about the
    transcript (or OK when they parse), never UNKNOWN/INTERNAL."""
    rng = random.Random(f"{SEED}/transcript")
    seen: collections.Counter = collections.Counter()
    failures = []
    for index in range(TRANSCRIPT_INPUTS):
        kind = TRANSCRIPT_KINDS[index % len(TRANSCRIPT_KINDS)]
        how, fmt, data = odd_transcript(rng, MAX_BYTES, kind)
        code, details = _code(
            client.analyze_bytes, bases["wav"], container="a.wav", fps=2, transcript=data,
            transcript_format=fmt, timeout=DEADLINE,
        )  # fmt: skip
        seen[f"{kind} {code}"] += 1
        problem = _problem(code, details)
        if not problem and code != "OK":
            if code != "INVALID_ARGUMENT" or "transcript" not in details:
                problem = f"{code}: {details[:200]}"
        if not problem and kind in ("deep_json", "deep_json_words", "over_limit", "binary"):
            if code != "INVALID_ARGUMENT":
                problem = f"accepted: {code}"
        if problem:
            failures.append(f"input {index} ({how}; seed {SEED}/transcript): {problem}")
    _report("AnalyzeClip transcripts", TRANSCRIPT_INPUTS, seen, failures)
    _still_serves(client, bases, fuzz_server.metrics_url)


def test_ahmer_analyze_refuses_odd_transcripts_clearly(bases, tmp_path, model_store):
    """``ahmer analyze --transcript`` with a deeply nested JSON, a number of thousands of
    digits and a lone surrogate: exit 1 or 2 with one ``error:`` line about the transcript."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes(bases["wav"])
    transcripts = {
        # objects: a bare "[[" is sniffed as plain text, as ahmer analyze passes no format
        "deep.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "long.srt": b"1\n" + b"9" * 5000 + b":00:00,000 --> 00:00:01,000\nword\n",
        "surrogate.json": b'{"text": "\\ud800 maybe"}',
    }
    assert len(transcripts) == CLI_TRANSCRIPTS
    seen: collections.Counter = collections.Counter()
    failures = []
    for name, data in transcripts.items():
        (tmp_path / name).write_bytes(data)
        proc = subprocess.run(
            [*CLI, "analyze", str(clip), "--transcript", str(tmp_path / name), "--quiet"],
            capture_output=True, text=True, timeout=DEADLINE * 2,
        )  # fmt: skip
        seen[f"exit {proc.returncode}"] += 1
        problem = _cli_ok(proc)
        if not problem and (proc.returncode == 0 or "transcript" not in proc.stderr):
            problem = f"exit {proc.returncode}, not a transcript error: {proc.stderr[-500:]}"
        if problem:
            failures.append(f"{name}: {problem}")
    _report("ahmer analyze --transcript", CLI_TRANSCRIPTS, seen, failures)


def test_a_wav_header_claiming_an_undecodable_format_is_invalid_argument(client, bases):
    """A WAV whose header claims 0 bits per sample (FFmpeg has no decoder for it, so PyAV
    gives the stream no codec context; probing it was an AttributeError, INTERNAL)."""
    data = bytearray(bases["wav"])
    fmt = data.find(b"fmt ") + 8
    data[fmt + 14 : fmt + 16] = b"\x00\x00"
    code, details = _code(client.analyze_bytes, bytes(data), container="a.wav", timeout=DEADLINE)
    assert code == "INVALID_ARGUMENT" and "can be decoded" in details, details
