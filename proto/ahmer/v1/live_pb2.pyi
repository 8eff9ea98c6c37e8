from ahmer.v1 import options_pb2 as _options_pb2
from ahmer.v1 import results_pb2 as _results_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VideoFormat(_message.Message):
    __slots__ = ("encoding", "width", "height")
    class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ENCODING_UNSPECIFIED: _ClassVar[VideoFormat.Encoding]
        JPEG: _ClassVar[VideoFormat.Encoding]
        PNG: _ClassVar[VideoFormat.Encoding]
        RGB24: _ClassVar[VideoFormat.Encoding]
    ENCODING_UNSPECIFIED: VideoFormat.Encoding
    JPEG: VideoFormat.Encoding
    PNG: VideoFormat.Encoding
    RGB24: VideoFormat.Encoding
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    encoding: VideoFormat.Encoding
    width: int
    height: int
    def __init__(self, encoding: _Optional[_Union[VideoFormat.Encoding, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class AudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rate", "channels")
    class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ENCODING_UNSPECIFIED: _ClassVar[AudioFormat.Encoding]
        PCM16: _ClassVar[AudioFormat.Encoding]
    ENCODING_UNSPECIFIED: AudioFormat.Encoding
    PCM16: AudioFormat.Encoding
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioFormat.Encoding
    sample_rate: int
    channels: int
    def __init__(self, encoding: _Optional[_Union[AudioFormat.Encoding, str]] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("session_id", "video", "audio", "options", "client_transcript", "provisional_frames", "full_audio", "turn_silence")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FULL_AUDIO_FIELD_NUMBER: _ClassVar[int]
    TURN_SILENCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    video: VideoFormat
    audio: AudioFormat
    options: _options_pb2.AnalysisOptions
    client_transcript: bool
    provisional_frames: bool
    full_audio: bool
    turn_silence: float
    def __init__(self, session_id: _Optional[str] = ..., video: _Optional[_Union[VideoFormat, _Mapping]] = ..., audio: _Optional[_Union[AudioFormat, _Mapping]] = ..., options: _Optional[_Union[_options_pb2.AnalysisOptions, _Mapping]] = ..., client_transcript: _Optional[bool] = ..., provisional_frames: _Optional[bool] = ..., full_audio: _Optional[bool] = ..., turn_silence: _Optional[float] = ...) -> None: ...

class VideoFrame(_message.Message):
    __slots__ = ("pts", "data")
    PTS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    pts: float
    data: bytes
    def __init__(self, pts: _Optional[float] = ..., data: _Optional[bytes] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("start_time", "sample_offset", "data")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    start_time: float
    sample_offset: int
    data: bytes
    def __init__(self, start_time: _Optional[float] = ..., sample_offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class TranscriptSegment(_message.Message):
    __slots__ = ("start", "end", "text")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    text: str
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class TurnMarker(_message.Message):
    __slots__ = ("label",)
    LABEL_FIELD_NUMBER: _ClassVar[int]
    label: str
    def __init__(self, label: _Optional[str] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("config", "video", "audio", "transcript", "turn")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    video: VideoFrame
    audio: AudioChunk
    transcript: TranscriptSegment
    turn: TurnMarker
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., video: _Optional[_Union[VideoFrame, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ..., transcript: _Optional[_Union[TranscriptSegment, _Mapping]] = ..., turn: _Optional[_Union[TurnMarker, _Mapping]] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "fps", "final_lag", "max_duration", "transcript_source", "max_final_lag")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FINAL_LAG_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MAX_FINAL_LAG_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    fps: float
    final_lag: float
    max_duration: float
    transcript_source: str
    max_final_lag: float
    def __init__(self, session_id: _Optional[str] = ..., fps: _Optional[float] = ..., final_lag: _Optional[float] = ..., max_duration: _Optional[float] = ..., transcript_source: _Optional[str] = ..., max_final_lag: _Optional[float] = ...) -> None: ...

class FrameUpdate(_message.Message):
    __slots__ = ("frame", "index", "final")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    frame: _results_pb2.FrameResult
    index: int
    final: bool
    def __init__(self, frame: _Optional[_Union[_results_pb2.FrameResult, _Mapping]] = ..., index: _Optional[int] = ..., final: _Optional[bool] = ...) -> None: ...

class RollingUpdate(_message.Message):
    __slots__ = ("time", "window_start", "ah_probability", "ah_label", "cues", "dominant_emotion", "frames_analyzed", "skipped", "words")
    TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    AH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    AH_LABEL_FIELD_NUMBER: _ClassVar[int]
    CUES_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_EMOTION_FIELD_NUMBER: _ClassVar[int]
    FRAMES_ANALYZED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    time: float
    window_start: float
    ah_probability: float
    ah_label: int
    cues: _containers.RepeatedCompositeFieldContainer[_results_pb2.Cue]
    dominant_emotion: str
    frames_analyzed: int
    skipped: _results_pb2.SkipCounts
    words: _containers.RepeatedCompositeFieldContainer[_results_pb2.TranscriptWord]
    def __init__(self, time: _Optional[float] = ..., window_start: _Optional[float] = ..., ah_probability: _Optional[float] = ..., ah_label: _Optional[int] = ..., cues: _Optional[_Iterable[_Union[_results_pb2.Cue, _Mapping]]] = ..., dominant_emotion: _Optional[str] = ..., frames_analyzed: _Optional[int] = ..., skipped: _Optional[_Union[_results_pb2.SkipCounts, _Mapping]] = ..., words: _Optional[_Iterable[_Union[_results_pb2.TranscriptWord, _Mapping]]] = ...) -> None: ...

class TurnResult(_message.Message):
    __slots__ = ("index", "start", "end", "reason", "label", "result")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    index: int
    start: float
    end: float
    reason: str
    label: str
    result: _results_pb2.AnalysisResult
    def __init__(self, index: _Optional[int] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., reason: _Optional[str] = ..., label: _Optional[str] = ..., result: _Optional[_Union[_results_pb2.AnalysisResult, _Mapping]] = ...) -> None: ...

class StreamNotice(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("started", "frame", "update", "notice", "result", "turn")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    started: SessionStarted
    frame: FrameUpdate
    update: RollingUpdate
    notice: StreamNotice
    result: _results_pb2.AnalysisResult
    turn: TurnResult
    def __init__(self, started: _Optional[_Union[SessionStarted, _Mapping]] = ..., frame: _Optional[_Union[FrameUpdate, _Mapping]] = ..., update: _Optional[_Union[RollingUpdate, _Mapping]] = ..., notice: _Optional[_Union[StreamNotice, _Mapping]] = ..., result: _Optional[_Union[_results_pb2.AnalysisResult, _Mapping]] = ..., turn: _Optional[_Union[TurnResult, _Mapping]] = ...) -> None: ...
