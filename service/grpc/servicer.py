"""The ``ahmer.v1.AnalysisService`` handlers.

CPU-heavy work never runs on the event loop: whole clips go to the clip thread pool (sized
by ``--workers``), live sessions to their own pool (see :mod:`.stream`), so one long
clip cannot stall the frames of a live stream, and health checks always answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

from ahmer.models.analyzer import Cancelled
from ahmer.models.contract import AH_LABELS, EMOTIONS, FUSION_MODEL, RESULT_SCHEMA
from ahmer.v1 import service_pb2, service_pb2_grpc

from ..convert import to_proto
from ..logs import log_event
from .errors import RequestError, status_for
from .limits import TRANSCRIPT_FORMATS, check_id, check_upload_size, resolve_options
from .prometheus import Metrics
from .settings import ServerConfig

__all__ = ["ServerState", "AnalysisServicer", "MODEL_ROLES"]

log = logging.getLogger("ahmer.service")

MODEL_ROLES = {
    "face_landmarker": ("face detection, landmarks, blendshapes, head pose", ()),
    "face_detector_full_range": ("face detection (small faces)", ()),
    "face_engine": ("how the face models run: litert (direct) or tasks (MediaPipe Tasks)", ()),
    "face_landmark_fps": ("full face landmarks per second (0: every analysis frame)", ()),
    "fer_emotion": ("facial emotion", EMOTIONS),
    "minilm": ("text embedding", ()),
    "whisper_tiny_en": ("speech recognition with word times", ()),
    FUSION_MODEL: ("A/H and emotion fusion (zero-shot cue prior)", AH_LABELS),
}


@dataclass
class ServerState:
    """What the handlers share: config, the analyzer once loaded, pools, metrics, flags."""

    config: ServerConfig
    metrics: Metrics
    analyzer: object | None = None
    ready: bool = False
    stopping: bool = False
    clip_pool: ThreadPoolExecutor | None = None
    live_pool: ThreadPoolExecutor | None = None
    extra: dict = field(default_factory=dict)

    def require_ready(self) -> None:
        if self.stopping:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if not self.ready or self.analyzer is None:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "the models are still loading; retry shortly"
            )


async def abort_for(context, exc: BaseException):
    """End the call with the status ``exc`` maps to (logged without content)."""
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("internal error in a handler", exc_info=exc)
    await context.abort(code, message)


def _transcript(msg) -> tuple[bytes | None, str | None]:
    if not msg.data:
        return None, None
    if msg.format not in TRANSCRIPT_FORMATS:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "unknown transcript.format")
    return bytes(msg.data), TRANSCRIPT_FORMATS[msg.format]


class AnalysisServicer(service_pb2_grpc.AnalysisServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        from .stream import LiveHandler

        self.live = LiveHandler(state)

    # -- whole clips ---------------------------------------------------------------------

    async def AnalyzeClip(self, request, context):
        try:
            self.state.require_ready()
            return await self._analyze(
                context,
                bytes(request.media),
                request.transcript,
                request.options,
                request.request_id,
                request.container,
            )
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_for(context, exc)

    async def UploadClip(self, request_iterator, context):
        try:
            self.state.require_ready()
            limit = self.state.config.max_upload_bytes
            header = None
            data = bytearray()
            async for msg in request_iterator:
                kind = msg.WhichOneof("message")
                if header is None:
                    if kind != "header":
                        raise RequestError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "the first UploadClip message must be an UploadHeader",
                        )
                    header = msg.header
                    check_upload_size(max(0, header.total_size), limit)
                elif kind == "chunk":
                    check_upload_size(len(data) + len(msg.chunk.data), limit)
                    data += msg.chunk.data
                else:
                    raise RequestError(
                        grpc.StatusCode.INVALID_ARGUMENT, "only one UploadHeader is allowed"
                    )
            if header is None:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "empty upload")
            if header.total_size and header.total_size != len(data):
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"upload incomplete: header said {header.total_size} bytes, "
                    f"received {len(data)}",
                )
            return await self._analyze(
                context,
                bytes(data),
                header.transcript,
                header.options,
                header.request_id,
                header.container,
            )
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_for(context, exc)

    async def _analyze(self, context, media, transcript, options, request_id, container):
        state = self.state
        opts = resolve_options(options, state.config.analysis.fps)
        check_id(request_id, "request_id")
        if len(container) > 64:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "container hint too long")
        text, fmt = _transcript(transcript)
        cancel = threading.Event()
        analyze = functools.partial(
            state.analyzer.analyze,
            media,
            transcript=text,
            transcript_format=fmt,
            fps=opts.fps,
            language=opts.language,
            cancel=cancel.is_set,
        )
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        future = loop.run_in_executor(state.clip_pool, analyze)
        try:
            result = await future
        except asyncio.CancelledError:
            cancel.set()  # the worker stops at its next progress call
            raise
        except Cancelled:
            raise RequestError(grpc.StatusCode.CANCELLED, "cancelled") from None
        except Exception as exc:
            code, message = status_for(exc)
            if code == grpc.StatusCode.INVALID_ARGUMENT and container:
                message = f"{message} (client said the container is {container!r})"
            raise RequestError(code, message) from exc
        state.metrics.observe_stages(result.timings)
        log_event(
            log,
            "clip analysed",
            request_id=request_id or None,
            media_bytes=len(media),
            frames=len(result.frames),
            fps=opts.fps,
            transcript_source=result.transcript_source,
            seconds=round(time.perf_counter() - t, 3),
            warnings=len(result.warnings),
        )
        return to_proto(result, frames=opts.frames, explanation=opts.explanation)

    # -- live ----------------------------------------------------------------------------

    async def StreamSession(self, request_iterator, context):
        async for response in self.live.run(request_iterator, context):
            yield response

    # -- models --------------------------------------------------------------------------

    async def GetModels(self, request, context):
        try:
            self.state.require_ready()
            return models_info(self.state)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_for(context, exc)


def models_info(state: ServerState) -> service_pb2.ModelsInfo:
    from importlib.metadata import PackageNotFoundError, version

    analyzer = state.analyzer
    described = analyzer.backend.describe() if analyzer.backend is not None else {}
    try:
        server_version = version("ahmer")
    except PackageNotFoundError:  # pragma: no cover - bare checkout
        server_version = "unknown"
    info = service_pb2.ModelsInfo(
        backend=str(described.get("kind", state.config.analysis.backend)),
        device=str(described.get("device", state.config.analysis.device)),
        fps=state.config.analysis.fps,
        threshold=analyzer.config.threshold,
        emotion_labels=list(EMOTIONS),
        ah_labels=list(AH_LABELS),
        result_schema=RESULT_SCHEMA,
        server_version=server_version,
    )
    for key, value in described.items():
        if key not in ("kind", "device", "models"):
            info.backend_details[key] = str(value)
    for name, model_version in sorted(analyzer.versions.items()):
        role, labels = MODEL_ROLES.get(name, ("", ()))
        info.models.add(name=name, version=model_version, role=role, labels=list(labels))
    return info
