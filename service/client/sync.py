"""The blocking client: every RPC as a method; errors as :class:`~ahmer.client.AhmerError`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ahmer.v1 import live_pb2, results_pb2, service_pb2, service_pb2_grpc

from .calls import TranslatedCall
from .channel import ClientOptions, channel_options, credentials, metadata
from .errors import AhmerError, translated
from .live import session_config
from .requests import analyze_request, file_options, upload_requests
from .session import Session

__all__ = ["AhmerClient"]


class AhmerClient:
    """Blocking client of ``ahmer.v1.AnalysisService``.

    >>> with AhmerClient("localhost:50051", token="...") as client:
    ...     result = client.analyze_file("answer.mp4")
    ...     print(result.clip.ah_probability)

    Every call raises an :class:`~ahmer.client.AhmerError` subclass for its status
    (``InvalidInput``, ``Unavailable``, ...); UNAVAILABLE is retried first on the calls
    without side effects (``ClientOptions.retries``).
    """

    def __init__(self, target: str, options: ClientOptions | None = None, **kwargs) -> None:
        self.options = options or ClientOptions(**kwargs)
        opts = channel_options(self.options)
        if self.options.secure:
            self.channel = grpc.secure_channel(target, credentials(self.options), opts)
        else:
            self.channel = grpc.insecure_channel(target, opts)
        self.stub = service_pb2_grpc.AnalysisServiceStub(self.channel)

    def __enter__(self) -> AhmerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _md(self, request_id: str | None = None):
        return metadata(self.options, request_id)

    # -- calls ---------------------------------------------------------------------------

    def health(self, service: str = "", timeout: float = 5.0) -> str:
        """The server's health status name (SERVING, NOT_SERVING, ...)."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        with translated():
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until health says SERVING."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.health(timeout=2.0) == "SERVING":
                    return
            except AhmerError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not become SERVING in time")
            time.sleep(0.2)

    def get_models(self, timeout: float | None = 30.0) -> service_pb2.ModelsInfo:
        """The server's models, backend and defaults."""
        with translated():
            return self.stub.GetModels(
                service_pb2.GetModelsRequest(), timeout=timeout, metadata=self._md()
            )

    def analyze_bytes(
        self, media: bytes, timeout: float | None = None, **kwargs
    ) -> results_pb2.AnalysisResult:
        """Analyse ``media`` (a whole file's bytes) in one message; keyword arguments as
        for :meth:`analyze_file`."""
        request = analyze_request(media, **file_options(kwargs))
        with translated():
            return self.stub.AnalyzeClip(
                request, timeout=timeout, metadata=self._md(request.request_id)
            )

    def analyze_file(
        self, path: str | Path, timeout: float | None = None, **kwargs
    ) -> results_pb2.AnalysisResult:
        """Send the whole file in one message (``AnalyzeClip``); keyword arguments:
        ``transcript`` (a ``Path``: a file to read; a ``str``: the text itself; or bytes),
        ``transcript_format`` (text, vtt, srt, json; default: the file's suffix, else
        guessed), ``fps``, ``language``, ``frames``, ``explanation`` ("none", "summary",
        "full"), ``strict`` (refuse partial media: INVALID_ARGUMENT), ``request_id``."""
        path = Path(path)
        kwargs.setdefault("container", path.name)
        return self.analyze_bytes(path.read_bytes(), timeout=timeout, **kwargs)

    def upload_file(
        self, path: str | Path, chunk_size: int = 1 << 20, timeout: float | None = None, **kwargs
    ) -> results_pb2.AnalysisResult:
        """Send the file in chunks (``UploadClip``), for files larger than one message."""
        path = Path(path)
        kwargs.setdefault("container", path.name)
        kwargs = file_options(kwargs)
        with translated():
            return self.stub.UploadClip(
                upload_requests(path, chunk_size, **kwargs),
                timeout=timeout,
                metadata=self._md(kwargs.get("request_id")),
            )

    def stream(
        self, requests: Iterable[live_pb2.StreamRequest], timeout: float | None = None
    ) -> Iterator[live_pb2.StreamResponse]:
        """A raw live session: your requests (config first) in, the server's messages out
        (the call: iterate it, ``cancel()`` it). See :meth:`session` for the easy way."""
        call = self.stub.StreamSession(iter(requests), timeout=timeout, metadata=self._md())
        return TranslatedCall(call)

    def session(self, config=None, timeout: float | None = None, **kwargs) -> Session:
        """A live session the app feeds frame by frame (see :class:`~ahmer.client.Session`):
        ``config`` (a ``StreamConfig``) or keyword arguments: ``session_id``, ``video``,
        ``audio`` (True: JPEG frames, 16 kHz mono PCM16), ``sample_rate``, ``channels``,
        ``provisional``, ``client_transcript``, ``fps``, ``language``, ``frames``,
        ``explanation``, ``strict``. Starts on ``with`` (or ``start()``, or the first send)."""
        return Session(self.stub, session_config(config, **kwargs), self._md(), timeout)

    def stream_file(
        self,
        path: str | Path,
        realtime: bool = False,
        speed: float = 1.0,
        fps: float = 0.0,
        session_id: str = "",
        provisional: bool = False,
        strict: bool | None = None,
        timeout: float | None = None,
        sent: dict | None = None,
        turn_silence: float = 0.0,
        **replay,
    ) -> Iterator[live_pb2.StreamResponse]:
        """Replay ``path`` as a live session and yield the server's messages. ``realtime``
        paces the requests at ``speed`` times real time; ``sent``, when given, receives
        ``pts -> monotonic send time`` of each video frame (for latency measurements);
        ``turn_silence`` (s) ends an answer turn at each silence that long (``TurnResult``
        messages)."""
        from .replay import replay_config, replay_requests

        config = replay_config(path, fps, session_id, provisional, strict)
        config.config.turn_silence = turn_silence
        stop = threading.Event()

        def requests():
            yield config
            start = time.monotonic()
            for ready, request in replay_requests(path, **replay):
                if stop.is_set():
                    return
                if realtime:
                    delay = start + ready / speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if sent is not None and request.HasField("video"):
                    sent[round(request.video.pts, 4)] = time.monotonic()
                yield request

        call = self.stub.StreamSession(requests(), timeout=timeout, metadata=self._md())
        try:
            with translated():
                yield from call
        finally:
            stop.set()
            call.cancel()
