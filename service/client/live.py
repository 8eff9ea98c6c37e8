"""The messages of a live session (``StreamSession``, see ``live.proto``), built from plain
values: the config, camera frames, microphone chunks, transcript segments.

One place builds them for every client path: the session objects (:mod:`.session`,
:mod:`.aio_session`) and file replay (:mod:`.replay`). :class:`SessionState` keeps what
both session objects remember of the server's messages.
"""

from __future__ import annotations

import grpc

from ahmer.v1 import live_pb2, options_pb2, results_pb2

from .errors import AhmerError
from .requests import split_options

__all__ = [
    "stream_config",
    "session_config",
    "video_request",
    "audio_request",
    "transcript_request",
    "turn_request",
    "SessionState",
]


def stream_config(
    session_id: str = "",
    video: bool = True,
    audio: bool = True,
    options: options_pb2.AnalysisOptions | None = None,
    client_transcript: bool = False,
    provisional: bool = False,
    sample_rate: int | None = None,
    channels: int = 1,
    turn_silence: float = 0.0,
    full_audio: bool = False,
) -> live_pb2.StreamRequest:
    """The first request of a session: JPEG video (when ``video``) and PCM16 audio (when
    ``audio``) of ``sample_rate`` Hz (default: the analysis rate, 16 kHz) and ``channels``;
    ``provisional`` asks for each frame's provisional result too. ``turn_silence`` (0.5..60
    s; 0: off) ends an answer turn at each silence that long after speech, each with its
    ``TurnResult`` (turns also end at :func:`turn_request`); ``full_audio`` has the
    whole-session result decode the audio again, as ``AnalyzeClip`` does, instead of
    reusing the streamed words. For PNG or raw RGB24 frames, change ``config.video`` of the
    result."""
    config = live_pb2.StreamConfig(
        session_id=session_id,
        client_transcript=client_transcript,
        provisional_frames=provisional,
        turn_silence=turn_silence,
        full_audio=full_audio,
    )
    if video:
        config.video.encoding = live_pb2.VideoFormat.JPEG
    if audio:
        if sample_rate is None:
            from ahmer.preprocessing.timeline import SAMPLE_RATE

            sample_rate = SAMPLE_RATE
        config.audio.encoding = live_pb2.AudioFormat.PCM16
        config.audio.sample_rate = sample_rate
        config.audio.channels = channels
    if options is not None:
        config.options.CopyFrom(options)
    return live_pb2.StreamRequest(config=config)


def session_config(config=None, **kwargs) -> live_pb2.StreamRequest:
    """``config`` (a ``StreamConfig`` or its ``StreamRequest``) as the first request, or one
    made from keyword arguments: those of :func:`stream_config` and the analysis options
    ``fps``, ``language``, ``frames``, ``explanation``, ``strict`` (as for whole clips)."""
    if config is not None:
        if kwargs:
            raise TypeError("give either a config or keyword arguments, not both")
        if isinstance(config, live_pb2.StreamConfig):
            return live_pb2.StreamRequest(config=config)
        if isinstance(config, live_pb2.StreamRequest) and config.HasField("config"):
            return config
        raise TypeError(f"config must be a StreamConfig, got {type(config).__name__}")
    options, rest = split_options(kwargs)
    return stream_config(options=options, **rest)


def video_request(data: bytes, pts: float) -> live_pb2.StreamRequest:
    """One camera frame: ``data`` encoded as the config says (JPEG by default), ``pts`` in
    seconds on the session clock (never decreasing)."""
    return live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=pts, data=bytes(data)))


def audio_request(data: bytes, start: float | None = None) -> live_pb2.StreamRequest:
    """Microphone samples (PCM16 little-endian, channels interleaved) starting at ``start``
    seconds on the session clock, or right after the previous chunk when ``None``."""
    chunk = live_pb2.AudioChunk(data=bytes(data))
    if start is not None:
        chunk.start_time = start
    return live_pb2.StreamRequest(audio=chunk)


def transcript_request(text: str, start: float, end: float) -> live_pb2.StreamRequest:
    """Words the app's own captioning heard between ``start`` and ``end`` seconds (only for
    sessions configured with ``client_transcript``)."""
    segment = live_pb2.TranscriptSegment(start=start, end=end, text=text)
    return live_pb2.StreamRequest(transcript=segment)


def turn_request(label: str = "") -> live_pb2.StreamRequest:
    """The end of an answer turn (everything sent before it belongs to the turn): the server
    answers with a ``TurnResult`` holding the turn's own clip-level result; ``label`` (the
    app's name for the turn, e.g. its question's id) comes back in it."""
    return live_pb2.StreamRequest(turn=live_pb2.TurnMarker(label=label))


class SessionState:
    """What both session objects hold: the call's arguments, and what they remember of
    the server's messages: ``started`` (the settings in effect), ``turns`` (each answer
    turn's ``TurnResult``, in order) and ``result`` (the whole session, after the close),
    or the error that ended the call."""

    started: live_pb2.SessionStarted | None = None
    result: results_pb2.AnalysisResult | None = None

    def __init__(self, stub, config: live_pb2.StreamRequest, metadata, timeout=None) -> None:
        self._stub = stub
        self._config = config
        self._metadata = metadata
        self._timeout = timeout
        self._call = None  # the StreamSession call, once started
        self._error: AhmerError | None = None
        self._half_closed = False
        self.turns: list[live_pb2.TurnResult] = []

    def _record(self, msg: live_pb2.StreamResponse) -> live_pb2.StreamResponse:
        kind = msg.WhichOneof("message")
        if kind == "started":
            self.started = msg.started
        elif kind == "result":
            self.result = msg.result
        elif kind == "turn":
            self.turns.append(msg.turn)
        return msg

    def _raise_ended(self) -> None:
        """The call is over without a result to give: raise why."""
        if self._error is not None:
            raise self._error
        raise AhmerError(grpc.StatusCode.UNKNOWN, "the session ended")
