from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FaceRef(_message.Message):
    __slots__ = ("box", "track_id", "quality", "pose", "blendshapes")
    class BlendshapesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    BOX_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    POSE_FIELD_NUMBER: _ClassVar[int]
    BLENDSHAPES_FIELD_NUMBER: _ClassVar[int]
    box: _containers.RepeatedScalarFieldContainer[float]
    track_id: int
    quality: float
    pose: _containers.RepeatedScalarFieldContainer[float]
    blendshapes: _containers.ScalarMap[str, float]
    def __init__(self, box: _Optional[_Iterable[float]] = ..., track_id: _Optional[int] = ..., quality: _Optional[float] = ..., pose: _Optional[_Iterable[float]] = ..., blendshapes: _Optional[_Mapping[str, float]] = ...) -> None: ...

class FrameResult(_message.Message):
    __slots__ = ("time", "face", "emotion", "emotion_label", "valence", "ah_probability", "ah_label", "attribution", "modalities")
    class EmotionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class AttributionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ModalitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    TIME_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    EMOTION_FIELD_NUMBER: _ClassVar[int]
    EMOTION_LABEL_FIELD_NUMBER: _ClassVar[int]
    VALENCE_FIELD_NUMBER: _ClassVar[int]
    AH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    AH_LABEL_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    time: float
    face: FaceRef
    emotion: _containers.ScalarMap[str, float]
    emotion_label: str
    valence: float
    ah_probability: float
    ah_label: int
    attribution: _containers.ScalarMap[str, float]
    modalities: _containers.ScalarMap[str, bool]
    def __init__(self, time: _Optional[float] = ..., face: _Optional[_Union[FaceRef, _Mapping]] = ..., emotion: _Optional[_Mapping[str, float]] = ..., emotion_label: _Optional[str] = ..., valence: _Optional[float] = ..., ah_probability: _Optional[float] = ..., ah_label: _Optional[int] = ..., attribution: _Optional[_Mapping[str, float]] = ..., modalities: _Optional[_Mapping[str, bool]] = ...) -> None: ...

class AHSegment(_message.Message):
    __slots__ = ("start", "end", "peak_time", "peak_probability")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PEAK_TIME_FIELD_NUMBER: _ClassVar[int]
    PEAK_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    peak_time: float
    peak_probability: float
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ..., peak_time: _Optional[float] = ..., peak_probability: _Optional[float] = ...) -> None: ...

class Cue(_message.Message):
    __slots__ = ("type", "cue", "start", "end", "weight", "evidence", "text")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CUE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    type: str
    cue: str
    start: float
    end: float
    weight: float
    evidence: _struct_pb2.Struct
    text: str
    def __init__(self, type: _Optional[str] = ..., cue: _Optional[str] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., weight: _Optional[float] = ..., evidence: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("summary", "cues")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CUES_FIELD_NUMBER: _ClassVar[int]
    summary: str
    cues: _containers.RepeatedCompositeFieldContainer[Cue]
    def __init__(self, summary: _Optional[str] = ..., cues: _Optional[_Iterable[_Union[Cue, _Mapping]]] = ...) -> None: ...

class TranscriptWord(_message.Message):
    __slots__ = ("start", "end", "text")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    text: str
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class ClipResult(_message.Message):
    __slots__ = ("ah_probability", "ah_label", "threshold", "segments", "emotion_distribution", "dominant_emotion", "mean_valence")
    class EmotionDistributionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    AH_LABEL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    EMOTION_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_EMOTION_FIELD_NUMBER: _ClassVar[int]
    MEAN_VALENCE_FIELD_NUMBER: _ClassVar[int]
    ah_probability: float
    ah_label: int
    threshold: float
    segments: _containers.RepeatedCompositeFieldContainer[AHSegment]
    emotion_distribution: _containers.ScalarMap[str, float]
    dominant_emotion: str
    mean_valence: float
    def __init__(self, ah_probability: _Optional[float] = ..., ah_label: _Optional[int] = ..., threshold: _Optional[float] = ..., segments: _Optional[_Iterable[_Union[AHSegment, _Mapping]]] = ..., emotion_distribution: _Optional[_Mapping[str, float]] = ..., dominant_emotion: _Optional[str] = ..., mean_valence: _Optional[float] = ...) -> None: ...

class MediaInfo(_message.Message):
    __slots__ = ("container", "duration", "has_video", "has_audio", "width", "height", "rotation", "video_codec", "video_fps", "audio_codec", "sample_rate", "channels")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    HAS_VIDEO_FIELD_NUMBER: _ClassVar[int]
    HAS_AUDIO_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    VIDEO_CODEC_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FPS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    container: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int
    height: int
    rotation: int
    video_codec: str
    video_fps: float
    audio_codec: str
    sample_rate: int
    channels: int
    def __init__(self, container: _Optional[str] = ..., duration: _Optional[float] = ..., has_video: _Optional[bool] = ..., has_audio: _Optional[bool] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., rotation: _Optional[int] = ..., video_codec: _Optional[str] = ..., video_fps: _Optional[float] = ..., audio_codec: _Optional[str] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class SkipCounts(_message.Message):
    __slots__ = ("video_rate", "video_load", "video_duplicate")
    VIDEO_RATE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_LOAD_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    video_rate: int
    video_load: int
    video_duplicate: int
    def __init__(self, video_rate: _Optional[int] = ..., video_load: _Optional[int] = ..., video_duplicate: _Optional[int] = ...) -> None: ...

class AnalysisResult(_message.Message):
    __slots__ = ("schema", "clip", "frames", "explanation", "transcript", "transcript_source", "media", "models", "timings", "warnings", "fps", "notice", "skipped")
    class ModelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TimingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    schema: str
    clip: ClipResult
    frames: _containers.RepeatedCompositeFieldContainer[FrameResult]
    explanation: Explanation
    transcript: _containers.RepeatedCompositeFieldContainer[TranscriptWord]
    transcript_source: str
    media: MediaInfo
    models: _containers.ScalarMap[str, str]
    timings: _containers.ScalarMap[str, float]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    fps: float
    notice: str
    skipped: SkipCounts
    def __init__(self, schema: _Optional[str] = ..., clip: _Optional[_Union[ClipResult, _Mapping]] = ..., frames: _Optional[_Iterable[_Union[FrameResult, _Mapping]]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., transcript: _Optional[_Iterable[_Union[TranscriptWord, _Mapping]]] = ..., transcript_source: _Optional[str] = ..., media: _Optional[_Union[MediaInfo, _Mapping]] = ..., models: _Optional[_Mapping[str, str]] = ..., timings: _Optional[_Mapping[str, float]] = ..., warnings: _Optional[_Iterable[str]] = ..., fps: _Optional[float] = ..., notice: _Optional[str] = ..., skipped: _Optional[_Union[SkipCounts, _Mapping]] = ...) -> None: ...
