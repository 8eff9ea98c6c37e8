"""A live session fed by the app, asyncio: push camera frames and microphone audio as they
are captured, read the server's messages, close for the whole session's result.

Requests are written straight to the call (``grpc.aio``'s ``write``), so ``await
s.send_frame(...)`` returns once gRPC has taken the frame and waits when the connection does
not keep up (HTTP/2 flow control). A reader task takes the server's messages as they come
and keeps them until :meth:`AsyncSession.results` hands them out: an app that sends for
minutes before it reads never stalls the server (at 5 analysis fps a 10-minute session's
messages are a few MB), and :meth:`AsyncSession.close` needs no reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from ahmer.v1 import live_pb2, results_pb2

from .errors import AhmerError, Cancelled, translated
from .live import SessionState, audio_request, transcript_request, turn_request, video_request

__all__ = ["AsyncSession"]

_END = object()  # the end of the messages


class AsyncSession(SessionState):
    """A live session (``StreamSession``) on an asyncio client; made by
    :meth:`AsyncAhmerClient.session <ahmer.client.AsyncAhmerClient.session>`.

    >>> async with client.session(fps=5) as s:   # starts: config sent, SessionStarted read
    ...     await s.send_frame(jpeg, pts=0.0)      # JPEG bytes, seconds on the session clock
    ...     await s.send_audio(pcm16, start=0.0)   # 16 kHz mono PCM16 bytes
    ...     await s.end_turn("q1")                 # optional: one answer ends, the next begins
    ...     result = await s.close()               # half-close; the session's AnalysisResult

    ``async for msg in s.results()`` yields the server's messages in order (one reader;
    typically another task while this one sends). Every error is an
    :class:`~ahmer.client.AhmerError`, raised by whichever call meets it first.
    """

    def __init__(self, stub, config: live_pb2.StreamRequest, metadata, timeout=None) -> None:
        super().__init__(stub, config, metadata, timeout)
        self._reader: asyncio.Task | None = None
        self._messages: asyncio.Queue = asyncio.Queue()  # read, not yet handed out; _END last
        self._ready = asyncio.Event()  # SessionStarted came, or the call ended
        self._done = asyncio.Event()  # the call ended (result or error)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> AsyncSession:
        """Open the call, send the config and wait for ``SessionStarted`` (in ``started``);
        a refusal (token, too many sessions, bad config) raises here."""
        if self._call is None:
            self._call = self._stub.StreamSession(timeout=self._timeout, metadata=self._metadata)
            self._reader = asyncio.create_task(self._read_all())
            await self._write(self._config)
        await self._ready.wait()
        if self.started is None:
            self._raise_ended()
        return self

    async def close(self) -> results_pb2.AnalysisResult | None:
        """Half-close, wait for the end of the session and return its result (the last
        message of :meth:`results` too)."""
        await self.start()
        if not self._half_closed:
            self._half_closed = True
            with translated():
                await self._call.done_writing()
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self.result

    def cancel(self) -> None:
        """End the session at once, without a result (the server frees it)."""
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncSession:
        return await self.start()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            await self.close()
            return
        self.cancel()
        if self._reader is not None:
            await asyncio.wait({self._reader})

    # -- sending -------------------------------------------------------------------------

    async def send_frame(self, data: bytes, pts: float) -> None:
        """One camera frame, encoded as the config says (JPEG unless you set another
        encoding), at ``pts`` seconds on the session clock (never decreasing)."""
        await self._send(video_request(data, pts))

    async def send_audio(self, data: bytes, start: float | None = None) -> None:
        """Microphone samples, PCM16 little-endian (16 kHz mono unless configured
        otherwise), starting at ``start`` seconds (``None``: right after the last chunk)."""
        await self._send(audio_request(data, start))

    async def send_transcript(self, text: str, start: float, end: float) -> None:
        """Words heard between ``start`` and ``end`` (sessions with ``client_transcript``)."""
        await self._send(transcript_request(text, start, end))

    async def end_turn(self, label: str = "") -> None:
        """End the current answer turn after everything sent so far (the session goes on):
        the server sends a ``TurnResult`` with the turn's own clip-level result (in
        :meth:`results`, and kept in ``turns``); ``label`` comes back in it."""
        await self._send(turn_request(label))

    async def send(self, request: live_pb2.StreamRequest) -> None:
        """Any other ``StreamRequest`` (not a config)."""
        await self._send(request)

    async def _send(self, request) -> None:
        await self.start()
        if self._half_closed:
            raise RuntimeError("the session is closed: nothing more can be sent")
        await self._write(request)

    async def _write(self, request) -> None:
        try:
            with translated():
                await self._call.write(request)
        except (AhmerError, asyncio.InvalidStateError):
            await self._done.wait()  # the reader has the call's status
            self._raise_ended()

    # -- reading -------------------------------------------------------------------------

    async def results(self) -> AsyncIterator[live_pb2.StreamResponse]:
        """The server's messages (``StreamResponse``: started, frames, rolling updates,
        notices, the result last) until the session ends; raises the session's error if
        it fails."""
        await self.start()
        while (msg := await self._messages.get()) is not _END:
            yield msg
        self._messages.put_nowait(_END)  # the end stays visible to a later call
        if self._error is not None:
            raise self._error

    async def _read_all(self) -> None:
        try:
            with translated():
                async for msg in self._call:
                    self._messages.put_nowait(self._record(msg))
                    if self.started is not None:
                        self._ready.set()
        except AhmerError as exc:
            self._error = exc
        except asyncio.CancelledError:  # the call was cancelled (cancel(), or the loop)
            self._error = Cancelled(grpc.StatusCode.CANCELLED, "the session was cancelled")
            raise
        finally:
            self._messages.put_nowait(_END)
            self._done.set()
            self._ready.set()
