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
import traceback
from collections import deque
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

from ahmer.models.analyzer import Analyzer, Cancelled
from ahmer.models.config import CallOptions
from ahmer.models.contract import (
    AH_LABELS,
    EMOTIONS,
    FACE_DETECTOR_FULL,
    FACE_LANDMARKER,
    FER_MODEL,
    FUSION_MODEL,
    RESULT_SCHEMA,
    TEXT_MODEL,
    WHISPER_MODEL,
)
from ahmer.v1 import service_pb2, service_pb2_grpc

from ..convert import to_proto
from ..logs import log_event
from .errors import RequestError, status_for
from .limits import (
    TRANSCRIPT_FORMATS,
    MediaBudget,
    SessionSlots,
    check_id,
    check_upload_size,
    resolve_options,
)
from .prometheus import Metrics
from .settings import ServerConfig

__all__ = [
    "ServerState",
    "AnalysisServicer",
    "MODEL_ROLES",
    "SETTINGS",
    "answer",
    "release_frames",
]

log = logging.getLogger("ahmer.service")

MODEL_ROLES = {
    FACE_LANDMARKER: ("face detection, landmarks, blendshapes, head pose", ()),
    FACE_DETECTOR_FULL: ("face detection (small faces)", ()),
    FER_MODEL: ("facial emotion", EMOTIONS),
    TEXT_MODEL: ("text embedding", ()),
    WHISPER_MODEL: ("speech recognition with word times", ()),
    FUSION_MODEL: ("A/H and emotion fusion (zero-shot cue prior)", AH_LABELS),
}

SETTINGS = ("fusion", "fusion_contract", "cues", "face_engine", "face_landmark_fps")
"""Entries of the analyzer's ``versions`` (a result's ``models``) that are settings, not
models: GetModels answers them in ``ModelsInfo.settings``."""


REPORTS_KEPT = 32  # reports of finished live sessions kept in ServerState.live_reports


@dataclass
class ServerState:
    """What the handlers share: config, the analyzer once loaded, pools, metrics, flags, the
    budget of clip media held in memory."""

    config: ServerConfig
    metrics: Metrics
    analyzer: Analyzer | None = None
    ready: bool = False
    stopping: bool = False
    broken: str | None = None  # why the server stopped serving for good (a corrupt store)
    backend_down: str | None = None  # why it does not serve for now (Triton is unavailable)
    clip_pool: ThreadPoolExecutor | None = None
    live_pool: ThreadPoolExecutor | None = None
    slots: SessionSlots | None = None  # live-session slots, made by the first live call
    active_streams: int = 0  # live sessions still holding resources (the health report's)
    live_reports: deque = field(default_factory=lambda: deque(maxlen=REPORTS_KEPT))
    """The reports (``stream.SessionReport``) of the last :data:`REPORTS_KEPT` live sessions."""
    media: MediaBudget = field(init=False)

    def __post_init__(self) -> None:
        self.media = MediaBudget(self.config.max_buffered_bytes)
        media = self.media
        self.metrics.media_held.set_function(lambda: media.held)  # read at each scrape

    def require_ready(self) -> None:
        if self.stopping:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if self.broken:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, self.broken)
        if self.backend_down:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, self.backend_down)
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


def release_frames(exc: BaseException | None) -> None:
    """Clear the local variables of the finished frames in the tracebacks of ``exc`` and of
    the exceptions chained to it (file names and line numbers stay, for logs).

    A traceback keeps every local of its frames alive (a clip's media, an upload's buffer)
    for as long as the exception lives, and exceptions outlive calls: gRPC keeps a finished
    call's abort exception until its next call, and a frame that holds the future or the
    exception it failed with makes a reference cycle that only the cyclic collector frees,
    which may not run for many calls. Frames still running are left alone."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        todo += [exc.__cause__, exc.__context__]


async def answer(context, work: Awaitable):
    """Await ``work`` (one call's handler): its result, or the call ended with the status of
    what it raised. Whatever it raised, the frames it ran let go of their locals."""
    try:
        return await work
    except grpc.aio.AbortError as exc:
        release_frames(exc)
        raise
    except Exception as exc:
        release_frames(exc)
        await abort_for(context, exc)
    except BaseException as exc:  # cancelled: the call is gone
        release_frames(exc)
        raise


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
        return await answer(context, self._analyze_clip(request, context))

    async def _analyze_clip(self, request, context):
        self.state.require_ready()
        with self.state.media.hold() as held:
            held.add(len(request.media))
            return await self._analyze(
                context,
                request.media,
                request.transcript,
                request.options,
                request.request_id,
                request.container,
            )

    async def UploadClip(self, request_iterator, context):
        return await answer(context, self._upload_clip(request_iterator, context))

    async def _upload_clip(self, request_iterator, context):
        """Receive the chunks into one buffer, then copy it once into the bytes the analysis
        reads. Against the server's media budget each byte counts twice until the copy is
        made (buffer and copy exist together for a moment): reserved as chunks come, or all
        at once from the header's size, so a call that cannot fit fails before it sends."""
        self.state.require_ready()
        limit = self.state.config.max_upload_bytes
        header = None
        data = bytearray()
        with self.state.media.hold() as held:
            try:
                async for msg in request_iterator:
                    kind = msg.WhichOneof("message")
                    if header is None:
                        if kind != "header":
                            raise RequestError(
                                grpc.StatusCode.INVALID_ARGUMENT,
                                "the first UploadClip message must be an UploadHeader",
                            )
                        header = msg.header
                        if header.total_size < 0:
                            raise RequestError(
                                grpc.StatusCode.INVALID_ARGUMENT,
                                "UploadHeader.total_size must be the media's size in bytes, or "
                                f"0 when unknown; got {header.total_size}",
                            )
                        check_upload_size(header.total_size, limit)
                        held.add(2 * header.total_size)
                    elif kind == "chunk":
                        size = len(data) + len(msg.chunk.data)
                        check_upload_size(size, limit)
                        held.add(2 * size - held.size)
                        data += msg.chunk.data
                    else:
                        raise RequestError(
                            grpc.StatusCode.INVALID_ARGUMENT, "only one UploadHeader is allowed"
                        )
                msg = None  # the last chunk: not kept during the analysis
                if header is None:
                    raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "empty upload")
                if header.total_size and header.total_size != len(data):
                    raise RequestError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"upload incomplete: header said {header.total_size} bytes, "
                        f"received {len(data)}",
                    )
                held.drop(held.size - 2 * len(data))
                media = bytes(data)
                data.clear()  # frees the buffer, whoever still refers to it
                held.drop(len(media))
                return await self._analyze(
                    context,
                    media,
                    header.transcript,
                    header.options,
                    header.request_id,
                    header.container,
                )
            finally:
                data.clear()

    async def _analyze(self, context, media, transcript, options, request_id, container):
        state = self.state
        opts = resolve_options(options, state.config.analysis.fps, state.config.analysis.strict)
        check_id(request_id, "request_id")
        if len(container) > 64:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "container hint too long")
        text, fmt = _transcript(transcript)
        cancel = threading.Event()
        analyze = functools.partial(
            state.analyzer.analyze,
            media,
            transcript=text,
            options=CallOptions(
                fps=opts.fps, language=opts.language, transcript_format=fmt, strict=opts.strict
            ),
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
        return await answer(context, self._models())

    async def _models(self):
        self.state.require_ready()
        return models_info(self.state)


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
        if name in SETTINGS:
            info.settings[name] = str(model_version)
            continue
        role, labels = MODEL_ROLES.get(name, ("", ()))
        if name == analyzer.versions.get("fusion") and name != FUSION_MODEL:
            role, labels = "A/H and emotion fusion (trained)", AH_LABELS
        info.models.add(name=name, version=model_version, role=role, labels=list(labels))
    return info
