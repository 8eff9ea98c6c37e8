"""A live session fed by the app, blocking: push camera frames and microphone audio as they
are captured, read the server's messages, close for the whole session's result.

The requests go through a small bounded queue to the thread gRPC sends them from, so
``send_*`` returns at once while the connection keeps up and waits (HTTP/2 flow control)
when it does not. A reader thread takes the server's messages as they come and keeps them
until :meth:`Session.results` hands them out: an app that sends for minutes before it
reads never stalls the server (at 5 analysis fps a 10-minute session's messages are a few
MB), and :meth:`Session.close` needs no reader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from ahmer.v1 import live_pb2, results_pb2

from .errors import AhmerError, translated
from .live import SessionState, audio_request, transcript_request, turn_request, video_request

__all__ = ["Session"]

_END = object()  # the end of the requests (half-close) or of the messages
_POLL_S = 0.1  # how often a blocked sender or the request thread looks at the call


class Session(SessionState):
    """A live session (``StreamSession``) on a blocking client; made by
    :meth:`AhmerClient.session <ahmer.client.AhmerClient.session>`.

    >>> with client.session(fps=5) as s:       # starts: config sent, SessionStarted read
    ...     s.send_frame(jpeg, pts=0.0)         # JPEG bytes, seconds on the session clock
    ...     s.send_audio(pcm16, start=0.0)      # 16 kHz mono PCM16 bytes
    ...     s.end_turn("q1")                    # optional: one answer ends, the next begins
    ...     result = s.close()                  # half-close; the session's AnalysisResult

    :meth:`results` yields the server's messages in order (one reader; typically on
    another thread while this one sends). Every error is an
    :class:`~ahmer.client.AhmerError`, raised by whichever call meets it first.
    """

    def __init__(self, stub, config: live_pb2.StreamRequest, metadata, timeout=None) -> None:
        super().__init__(stub, config, metadata, timeout)
        self._requests_q: queue.Queue = queue.Queue(maxsize=32)
        self._messages: queue.Queue = queue.Queue()  # read, not yet handed out; _END last
        self._stop = threading.Event()  # the request iterator stops (cancel, end of call)
        self._ready = threading.Event()  # SessionStarted came, or the call ended
        self._done = threading.Event()  # the call ended (result or error)
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Session:
        """Open the call, send the config and wait for ``SessionStarted`` (in ``started``);
        a refusal (token, too many sessions, bad config) raises here."""
        with self._lock:
            if self._call is None:
                self._call = self._stub.StreamSession(
                    self._requests(), timeout=self._timeout, metadata=self._metadata
                )
                threading.Thread(target=self._read_all, daemon=True).start()
        self._ready.wait()
        if self.started is None:
            self._raise_ended()
        return self

    def close(self) -> results_pb2.AnalysisResult | None:
        """Half-close (after every request sent so far), wait for the end of the session
        and return its result (the last message of :meth:`results` too)."""
        self.start()
        if not self._half_closed:
            self._half_closed = True
            self._put(_END)
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self.result

    def cancel(self) -> None:
        """End the session at once, without a result (the server frees it)."""
        self._stop.set()
        if self._call is not None:
            self._call.cancel()

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.cancel()

    # -- sending -------------------------------------------------------------------------

    def send_frame(self, data: bytes, pts: float) -> None:
        """One camera frame, encoded as the config says (JPEG unless you set another
        encoding), at ``pts`` seconds on the session clock (never decreasing)."""
        self._send(video_request(data, pts))

    def send_audio(self, data: bytes, start: float | None = None) -> None:
        """Microphone samples, PCM16 little-endian (16 kHz mono unless configured
        otherwise), starting at ``start`` seconds (``None``: right after the last chunk)."""
        self._send(audio_request(data, start))

    def send_transcript(self, text: str, start: float, end: float) -> None:
        """Words heard between ``start`` and ``end`` (sessions with ``client_transcript``)."""
        self._send(transcript_request(text, start, end))

    def end_turn(self, label: str = "") -> None:
        """End the current answer turn after everything sent so far (the session goes on):
        the server sends a ``TurnResult`` with the turn's own clip-level result (in
        :meth:`results`, and kept in ``turns``); ``label`` comes back in it."""
        self._send(turn_request(label))

    def send(self, request: live_pb2.StreamRequest) -> None:
        """Any other ``StreamRequest`` (not a config)."""
        self._send(request)

    def _send(self, request) -> None:
        self.start()
        if self._half_closed:
            raise RuntimeError("the session is closed: nothing more can be sent")
        self._put(request)

    def _put(self, item) -> None:
        while not self._done.is_set():
            try:
                self._requests_q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        self._raise_ended()

    def _requests(self) -> Iterator[live_pb2.StreamRequest]:
        yield self._config
        while not self._stop.is_set():
            try:
                item = self._requests_q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    # -- reading -------------------------------------------------------------------------

    def results(self) -> Iterator[live_pb2.StreamResponse]:
        """The server's messages (``StreamResponse``: started, frames, rolling updates,
        notices, the result last) until the session ends; raises the session's error if
        it fails."""
        self.start()
        while (msg := self._messages.get()) is not _END:
            yield msg
        self._messages.put(_END)  # the end stays visible to a later call
        if self._error is not None:
            raise self._error

    def _read_all(self) -> None:
        try:
            with translated():
                for msg in self._call:
                    self._messages.put(self._record(msg))
                    if self.started is not None:
                        self._ready.set()
        except AhmerError as exc:
            self._error = exc
        finally:
            self._stop.set()
            self._messages.put(_END)
            self._done.set()
            self._ready.set()
