from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplanationDetail(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLANATION_DETAIL_UNSPECIFIED: _ClassVar[ExplanationDetail]
    EXPLANATION_NONE: _ClassVar[ExplanationDetail]
    EXPLANATION_SUMMARY: _ClassVar[ExplanationDetail]
    EXPLANATION_FULL: _ClassVar[ExplanationDetail]
EXPLANATION_DETAIL_UNSPECIFIED: ExplanationDetail
EXPLANATION_NONE: ExplanationDetail
EXPLANATION_SUMMARY: ExplanationDetail
EXPLANATION_FULL: ExplanationDetail

class AnalysisOptions(_message.Message):
    __slots__ = ("fps", "language", "frames", "explanation", "strict")
    FPS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    fps: float
    language: str
    frames: bool
    explanation: ExplanationDetail
    strict: bool
    def __init__(self, fps: _Optional[float] = ..., language: _Optional[str] = ..., frames: _Optional[bool] = ..., explanation: _Optional[_Union[ExplanationDetail, str]] = ..., strict: _Optional[bool] = ...) -> None: ...

class Transcript(_message.Message):
    __slots__ = ("data", "format")
    class Format(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FORMAT_UNSPECIFIED: _ClassVar[Transcript.Format]
        TEXT: _ClassVar[Transcript.Format]
        VTT: _ClassVar[Transcript.Format]
        SRT: _ClassVar[Transcript.Format]
        JSON: _ClassVar[Transcript.Format]
    FORMAT_UNSPECIFIED: Transcript.Format
    TEXT: Transcript.Format
    VTT: Transcript.Format
    SRT: Transcript.Format
    JSON: Transcript.Format
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    format: Transcript.Format
    def __init__(self, data: _Optional[bytes] = ..., format: _Optional[_Union[Transcript.Format, str]] = ...) -> None: ...
