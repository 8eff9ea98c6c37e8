"""The asyncio client (``grpc.aio``): the blocking client's methods as coroutines; errors
as :class:`~ahmer.client.AhmerError`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ahmer.v1 import live_pb2, results_pb2, service_pb2, service_pb2_grpc

from .aio_session import AsyncSession
from .calls import AsyncTranslatedCall
from .channel import ClientOptions, channel_options, credentials, metadata
from .errors import AhmerError, translated
from .live import session_config
from .requests import analyze_request, file_options, upload_requests

__all__ = ["AsyncAhmerClient"]


class AsyncAhmerClient:
    """asyncio client of ``ahmer.v1.AnalysisService`` (same methods as
    :class:`~ahmer.client.AhmerClient`, awaitable; ``stream_file`` is an async iterator)."""

    def __init__(self, target: str, options: ClientOptions | None = None, **kwargs) -> None:
        self.options = options or ClientOptions(**kwargs)
        opts = channel_options(self.options)
        if self.options.secure:
            self.channel = grpc.aio.secure_channel(target, credentials(self.options), opts)
        else:
            self.channel = grpc.aio.insecure_channel(target, opts)
        self.stub = service_pb2_grpc.AnalysisServiceStub(self.channel)

    async def __aenter__(self) -> AsyncAhmerClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    def _md(self, request_id: str | None = None):
        return metadata(self.options, request_id)

    async def health(self, service: str = "", timeout: float = 5.0) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        request = health_pb2.HealthCheckRequest(service=service)
        with translated():
            reply = await stub.Check(request, timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await self.health(timeout=2.0) == "SERVING":
                    return
            except AhmerError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not become SERVING in time")
            await asyncio.sleep(0.2)

    async def get_models(self, timeout: float | None = 30.0) -> service_pb2.ModelsInfo:
        with translated():
            return await self.stub.GetModels(
                service_pb2.GetModelsRequest(), timeout=timeout, metadata=self._md()
            )

    async def analyze_bytes(
        self, media: bytes, timeout: float | None = None, **kwargs
    ) -> results_pb2.AnalysisResult:
        request = analyze_request(media, **file_options(kwargs))
        with translated():
            return await self.stub.AnalyzeClip(
                request, timeout=timeout, metadata=self._md(request.request_id)
            )

    async def analyze_file(
        self, path: str | Path, timeout: float | None = None, **kwargs
    ) -> results_pb2.AnalysisResult:
        path = Path(path)
        kwargs.setdefault("container", path.name)
        media = await asyncio.to_thread(path.read_bytes)
        return await self.analyze_bytes(media, timeout=timeout, **kwargs)

    async def upload_file(
        self, path: str | Path, chunk_size: int = 1 << 20, timeout: float | None = None, **kwargs
    ) -> results_pb2.AnalysisResult:
        path = Path(path)
        kwargs.setdefault("container", path.name)
        kwargs = file_options(kwargs)

        async def requests():
            for request in upload_requests(path, chunk_size, **kwargs):
                yield request

        with translated():
            return await self.stub.UploadClip(
                requests(), timeout=timeout, metadata=self._md(kwargs.get("request_id"))
            )

    def stream(self, requests, timeout: float | None = None):
        """A raw live session call: ``requests`` is an (async) iterable, config first; the
        call is an async iterator of StreamResponse (``call.cancel()`` to stop). See
        :meth:`session` for the easy way."""
        call = self.stub.StreamSession(requests, timeout=timeout, metadata=self._md())
        return AsyncTranslatedCall(call)

    def session(self, config=None, timeout: float | None = None, **kwargs) -> AsyncSession:
        """A live session the app feeds frame by frame (see
        :class:`~ahmer.client.AsyncSession`); arguments as for
        :meth:`AhmerClient.session <ahmer.client.AhmerClient.session>`. Starts on
        ``async with`` (or ``await start()``, or the first send)."""
        return AsyncSession(self.stub, session_config(config, **kwargs), self._md(), timeout)

    async def stream_file(
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
    ) -> AsyncIterator[live_pb2.StreamResponse]:
        """Replay ``path`` as a live session (see :meth:`AhmerClient.stream_file`)."""
        from .replay import replay_config, replay_requests

        config = await asyncio.to_thread(replay_config, path, fps, session_id, provisional, strict)
        config.config.turn_silence = turn_silence
        items = await asyncio.to_thread(lambda: list(replay_requests(path, **replay)))

        async def requests():
            yield config
            start = time.monotonic()
            for ready, request in items:
                if realtime:
                    delay = start + ready / speed - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if sent is not None and request.HasField("video"):
                    sent[round(request.video.pts, 4)] = time.monotonic()
                yield request

        call = self.stub.StreamSession(requests(), timeout=timeout, metadata=self._md())
        try:
            with translated():
                async for response in call:
                    yield response
        finally:
            call.cancel()
