"""Protobuf fuzz of every AnalysisService call (issue 14): raw bytes over a real channel to a
real server that has bearer tokens, from a seeded generator (the same inputs every run).

Three targets, run for each of AnalyzeClip, UploadClip, StreamSession and GetModels:

- ``raw`` (:data:`RAW_INPUTS` inputs per call, with a token): random bytes and valid
  serialized messages mutated at the wire level: bit flips, truncation, inserted bytes,
  repeated fields, wrong wire types, huge or overlong length prefixes, nested fields too
  (:func:`protofuzz.mutate`). For the streaming calls one message of a valid sequence is
  mutated. When protobuf cannot parse the bytes the status must be INVALID_ARGUMENT.
- ``refused`` (:data:`REFUSED_INPUTS` inputs per call): the same kinds of bytes with no token
  or a wrong one. Always UNAUTHENTICATED: the token is checked before any message is parsed.
- ``structured`` (:data:`STRUCTURED_INPUTS` inputs per call, with a token): valid messages with
  odd values (:func:`protofuzz.odd_message`): NaN, infinities and extreme numbers, empty and
  huge strings, unknown enum values and unknown fields, odd option combinations, garbage
  and near-valid media, frames and transcripts; streams with messages in odd orders.

So 4 x (RAW_INPUTS + REFUSED_INPUTS + STRUCTURED_INPUTS) calls in all; ``pytest -s`` prints
each target's count and the statuses it got. Every call must end before its deadline (a
client-side DEADLINE_EXCEEDED is a hang) with a status other than UNKNOWN or INTERNAL, which
are reserved for bugs; after each target the server must still answer a real GetModels and a
tiny AnalyzeClip. A failure names the seed and the input's index.
"""

from __future__ import annotations

import collections
import io
import random
import wave

import grpc
import numpy as np
import pytest
from protofuzz import mutate, odd_message, unknown_field
from serving import TOKEN, ServerThread, shared_analyzer

from ahmer.v1 import live_pb2, options_pb2, results_pb2, service_pb2

SEED = 14
RAW_INPUTS = 120
REFUSED_INPUTS = 30
STRUCTURED_INPUTS = 100
DEADLINE = 30.0  # seconds per call: far above any answer here, so running into it is a hang
SERVICE = "/ahmer.v1.AnalysisService/"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}


def _wav(seconds: float = 0.4, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(tone.tobytes())
    return out.getvalue()


def _jpeg() -> bytes:
    import cv2

    image = np.full((48, 64, 3), 128, np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


WAV = _wav()
JPEG = _jpeg()
PCM = np.zeros(1600, "<i2").tobytes()  # 0.1 s at 16 kHz
PAYLOADS = (WAV, JPEG, PCM, bytes(16 * 16 * 3))
OPTIONS = options_pb2.AnalysisOptions(
    fps=5, language="en", frames=False, explanation=options_pb2.EXPLANATION_SUMMARY
)
TRANSCRIPT = options_pb2.Transcript(data=b"I guess maybe", format=options_pb2.Transcript.TEXT)


def _clip_request() -> service_pb2.AnalyzeClipRequest:
    return service_pb2.AnalyzeClipRequest(
        media=WAV, container="a.wav", transcript=TRANSCRIPT, options=OPTIONS, request_id="fz-1"
    )


def _header(size: int) -> service_pb2.UploadHeader:
    return service_pb2.UploadHeader(
        container="a.wav", transcript=TRANSCRIPT, options=OPTIONS, request_id="fz-2",
        total_size=size,
    )  # fmt: skip


def _config() -> live_pb2.StreamConfig:
    return live_pb2.StreamConfig(
        session_id="fuzz",
        video=live_pb2.VideoFormat(encoding=live_pb2.VideoFormat.JPEG),
        audio=live_pb2.AudioFormat(encoding=live_pb2.AudioFormat.PCM16, sample_rate=16000),
        options=OPTIONS,
        client_transcript=True,
    )


def _stream_seed() -> list:
    return [
        live_pb2.StreamRequest(config=_config()),
        live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=0.0, data=JPEG)),
        live_pb2.StreamRequest(audio=live_pb2.AudioChunk(start_time=0.0, data=PCM)),
        live_pb2.StreamRequest(
            transcript=live_pb2.TranscriptSegment(start=0.0, end=0.1, text="maybe")
        ),
        live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=0.2, data=JPEG)),
    ]


# A garbage media payload for the raw target: mutations of a decodable clip would mostly
# decode and spend their time in the analysis, not in the parsing this fuzz is about.
_GARBAGE_MEDIA = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 2

RPCS = {
    # name: (kind, request type, valid sequence of messages for the raw target)
    "AnalyzeClip": ("unary", service_pb2.AnalyzeClipRequest, [
        service_pb2.AnalyzeClipRequest(
            media=_GARBAGE_MEDIA, container="a.mp4", transcript=TRANSCRIPT, options=OPTIONS,
            request_id="fz-0",
        )]),
    "UploadClip": ("client_stream", service_pb2.UploadRequest, [
        service_pb2.UploadRequest(header=_header(2 * len(_GARBAGE_MEDIA))),
        service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=_GARBAGE_MEDIA)),
        service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=_GARBAGE_MEDIA)),
    ]),
    "StreamSession": ("bidi", live_pb2.StreamRequest, _stream_seed()),
    # no fields: its seed carries unknown fields, so that mutations have fields to work on
    "GetModels": ("unary", service_pb2.GetModelsRequest, [
        service_pb2.GetModelsRequest.FromString(b"\x08\x01\x12\x05hello\x1d\x00\x00\x80\x3f")
    ]),
}  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_server(model_store):
    srv = ServerThread(analyzer=shared_analyzer(), tokens=TOKEN).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def channel(fuzz_server):
    with grpc.insecure_channel(fuzz_server.target) as ch:
        yield ch


def _send(channel, name: str, messages: list[bytes], metadata) -> tuple[grpc.StatusCode, str]:
    """Send raw ``messages`` to ``name``; the status the call ended with, and its message."""
    kind = RPCS[name][0]
    method = SERVICE + name
    try:
        if kind == "unary":
            channel.unary_unary(method)(messages[0], metadata=metadata, timeout=DEADLINE)
        elif kind == "client_stream":
            channel.stream_unary(method)(iter(messages), metadata=metadata, timeout=DEADLINE)
        else:
            for _ in channel.stream_stream(method)(
                iter(messages), metadata=metadata, timeout=DEADLINE
            ):
                pass
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _parses(name: str, data: bytes) -> bool:
    try:
        RPCS[name][1].FromString(data)
    except Exception:
        return False
    return True


def _raw_input(rng: random.Random, name: str) -> list[bytes]:
    """A valid sequence with one message mutated (or random bytes in its place)."""
    messages = [m.SerializeToString() for m in RPCS[name][2]]
    i = rng.randrange(len(messages))
    messages[i] = mutate(rng, messages[i])[1]
    if len(messages) > 1 and rng.random() < 0.2:
        messages = messages[: i + 1]  # the mutated one last
    return messages


def _odd(rng: random.Random, cls, base=None, payloads=PAYLOADS):
    """An odd ``cls`` message; with ``base``, half the time ``base`` with a few odd fields."""
    if base is not None and rng.random() < 0.5:
        msg = cls()
        msg.CopyFrom(base)
        msg.MergeFrom(odd_message(rng, cls, payloads, density=0.2))
        return msg
    return odd_message(rng, cls, payloads)


def _structured_input(rng: random.Random, name: str) -> list[bytes]:
    if name == "AnalyzeClip":
        messages = [_odd(rng, service_pb2.AnalyzeClipRequest, _clip_request())]
    elif name == "GetModels":
        messages = [service_pb2.GetModelsRequest()]
    elif name == "UploadClip":
        header = _odd(rng, service_pb2.UploadHeader, _header(len(WAV)))
        messages = [service_pb2.UploadRequest(header=header)]
        if rng.random() < 0.5:
            messages += [service_pb2.UploadRequest(chunk=service_pb2.UploadChunk(data=WAV))]
        for _ in range(rng.randint(0, 3)):
            messages.append(_odd(rng, service_pb2.UploadRequest))
        if rng.random() < 0.2:
            rng.shuffle(messages)
    else:
        config = _odd(rng, live_pb2.StreamConfig, _config())
        messages = [live_pb2.StreamRequest(config=config)]
        for _ in range(rng.randint(0, 5)):
            messages.append(_odd(rng, live_pb2.StreamRequest, rng.choice(_stream_seed()[1:])))
        if rng.random() < 0.2:
            rng.shuffle(messages)
    raw = [m.SerializeToString() for m in messages]
    if rng.random() < 0.2:  # an unknown field somewhere: must be ignored
        i = rng.randrange(len(raw))
        raw[i] += unknown_field(rng)
    return raw


def _refused_input(rng: random.Random, name: str) -> tuple[list[bytes], tuple]:
    metadata = rng.choice(
        [None, (("authorization", "Bearer wrong-token-0123456789"),), (("authorization", "x"),)]
    )
    if rng.random() < 0.5:
        return _raw_input(rng, name), metadata
    return _structured_input(rng, name), metadata


def _still_serves(channel) -> None:
    """A real GetModels and a tiny AnalyzeClip still answer, with a token."""
    models = service_pb2.ModelsInfo.FromString(
        channel.unary_unary(SERVICE + "GetModels")(b"", metadata=AUTH, timeout=DEADLINE)
    )
    assert models.models and models.emotion_labels
    request = service_pb2.AnalyzeClipRequest(media=WAV, options=OPTIONS).SerializeToString()
    reply = channel.unary_unary(SERVICE + "AnalyzeClip")(request, metadata=AUTH, timeout=60)
    result = results_pb2.AnalysisResult.FromString(reply)
    assert result.schema and result.clip.ah_label in (0, 1)


def _run(channel, name: str, target: str, count: int, make, check) -> None:
    rng = random.Random(f"{SEED}/{target}/{name}")
    seen: collections.Counter = collections.Counter()
    failures = []
    for index in range(count):
        made = make(rng, name)
        messages, metadata = made if target == "refused" else (made, AUTH)
        code, details = _send(channel, name, messages, metadata)
        seen[code.name] += 1
        problem = check(name, messages, code)
        if not problem and ("<class" in details or "Error parsing" in details):
            problem = f"a Python exception in the message: {details!r}"
        if problem:
            failures.append(f"input {index} (seed {SEED}/{target}/{name}): {problem}")
    print(f"\nfuzz {target} {name}: {count} inputs, statuses {dict(sorted(seen.items()))}")
    assert not failures, "\n".join(failures[:20])
    _still_serves(channel)


def _check_authorized(name: str, messages: list[bytes], code: grpc.StatusCode) -> str | None:
    """Never a bug's status; bytes protobuf cannot parse: INVALID_ARGUMENT."""
    if code in BAD:
        return f"got {code.name}"
    unparsed = [i for i, m in enumerate(messages) if not _parses(name, m)]
    if unparsed and code != grpc.StatusCode.INVALID_ARGUMENT:
        return f"message {unparsed[0]} does not parse, but the status is {code.name}"
    return None


def _check_refused(name: str, messages: list[bytes], code: grpc.StatusCode) -> str | None:
    if code != grpc.StatusCode.UNAUTHENTICATED:
        return f"no valid token, but the status is {code.name}"
    return None


@pytest.mark.parametrize("name", list(RPCS))
def test_raw_bytes(channel, name):
    """Random and mutated bytes: never UNKNOWN or INTERNAL; unparsable: INVALID_ARGUMENT."""
    _run(channel, name, "raw", RAW_INPUTS, _raw_input, _check_authorized)


@pytest.mark.parametrize("name", list(RPCS))
def test_without_a_token_nothing_is_parsed(channel, name):
    """Garbage or valid, no valid token: UNAUTHENTICATED, never a parse error."""
    _run(channel, name, "refused", REFUSED_INPUTS, _refused_input, _check_refused)


@pytest.mark.parametrize("name", list(RPCS))
def test_valid_messages_with_odd_values(channel, name):
    """Valid messages with odd values and orders: never UNKNOWN or INTERNAL."""
    _run(channel, name, "structured", STRUCTURED_INPUTS, _structured_input, _check_authorized)


@pytest.mark.parametrize(
    "method, kind",
    [
        ("/grpc.health.v1.Health/Check", "unary"),
        ("/grpc.health.v1.Health/Watch", "server_stream"),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "bidi"),
    ],
)
def test_health_and_reflection_answer_garbage_with_invalid_argument(channel, method, kind):
    """The services the server hosts beside ours (no token needed) get the same tolerant
    parsing: garbage is INVALID_ARGUMENT with a plain message, not UNKNOWN."""
    garbage = b"\xff\xff\xff"
    with pytest.raises(grpc.RpcError) as caught:
        if kind == "unary":
            channel.unary_unary(method)(garbage, timeout=DEADLINE)
        elif kind == "server_stream":
            list(channel.unary_stream(method)(garbage, timeout=DEADLINE))
        else:
            list(channel.stream_stream(method)(iter([garbage]), timeout=DEADLINE))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "protobuf cannot parse it" in caught.value.details()
    assert "DecodeError" not in caught.value.details()


def test_mutations_make_what_they_say():
    """The mutator makes unparsable bytes of each kind that should be (so the raw target
    does reach the decoder), and keeps every kind reachable."""
    from protofuzz import MUTATIONS

    rng = random.Random(SEED)
    data = RPCS["StreamSession"][2][0].SerializeToString()
    kinds = collections.Counter()
    broken = collections.Counter()
    for _ in range(400):
        kind, out = mutate(rng, data)
        kinds[kind] += 1
        broken[kind] += not _parses("StreamSession", out)
    assert set(kinds) == set(MUTATIONS)
    for kind in ("truncate", "wrong_wire_type", "huge_length"):
        assert broken[kind] > 0, kind
