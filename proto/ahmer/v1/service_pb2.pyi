from ahmer.v1 import live_pb2 as _live_pb2
from ahmer.v1 import options_pb2 as _options_pb2
from ahmer.v1 import results_pb2 as _results_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnalyzeClipRequest(_message.Message):
    __slots__ = ("media", "container", "transcript", "options", "request_id")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    media: bytes
    container: str
    transcript: _options_pb2.Transcript
    options: _options_pb2.AnalysisOptions
    request_id: str
    def __init__(self, media: _Optional[bytes] = ..., container: _Optional[str] = ..., transcript: _Optional[_Union[_options_pb2.Transcript, _Mapping]] = ..., options: _Optional[_Union[_options_pb2.AnalysisOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("container", "transcript", "options", "request_id", "total_size")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    container: str
    transcript: _options_pb2.Transcript
    options: _options_pb2.AnalysisOptions
    request_id: str
    total_size: int
    def __init__(self, container: _Optional[str] = ..., transcript: _Optional[_Union[_options_pb2.Transcript, _Mapping]] = ..., options: _Optional[_Union[_options_pb2.AnalysisOptions, _Mapping]] = ..., request_id: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class UploadChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: UploadChunk
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[_Union[UploadChunk, _Mapping]] = ...) -> None: ...

class GetModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "role", "labels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    role: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., role: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelsInfo(_message.Message):
    __slots__ = ("models", "backend", "device", "backend_details", "fps", "threshold", "emotion_labels", "ah_labels", "result_schema", "server_version", "settings")
    class BackendDetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODELS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_DETAILS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EMOTION_LABELS_FIELD_NUMBER: _ClassVar[int]
    AH_LABELS_FIELD_NUMBER: _ClassVar[int]
    RESULT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    backend: str
    device: str
    backend_details: _containers.ScalarMap[str, str]
    fps: float
    threshold: float
    emotion_labels: _containers.RepeatedScalarFieldContainer[str]
    ah_labels: _containers.RepeatedScalarFieldContainer[str]
    result_schema: str
    server_version: str
    settings: _containers.ScalarMap[str, str]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., backend: _Optional[str] = ..., device: _Optional[str] = ..., backend_details: _Optional[_Mapping[str, str]] = ..., fps: _Optional[float] = ..., threshold: _Optional[float] = ..., emotion_labels: _Optional[_Iterable[str]] = ..., ah_labels: _Optional[_Iterable[str]] = ..., result_schema: _Optional[str] = ..., server_version: _Optional[str] = ..., settings: _Optional[_Mapping[str, str]] = ...) -> None: ...
