"""The ``StreamSession`` call: protocol checks, backpressure and the session's tasks.

Three parts run per call. The *reader* (a task) reads client messages, checks their order
and limits, picks video frames at the analysis rate and queues work. The *worker* (a task)
takes work in order and runs it on the live thread pool (:class:`~.live.LiveSession`), plus
a speech step beside it whenever one is due. The handler itself writes the results.

Backpressure. The work queue holds at most ``live_queue_frames`` analysis frames: when a
new one arrives to a full queue the oldest waiting frame is dropped (``video_load``). Audio
and transcript items are never dropped: when more than :data:`MAX_PENDING_AUDIO` seconds of
audio or :data:`MAX_PENDING_ITEMS` items wait, the reader stops reading, so HTTP/2 flow
control slows the client. Results wait in a queue of :data:`OUT_QUEUE` messages, and the
handler hands gRPC one at a time (a write returns once HTTP/2 flow control lets it out). A
client that reads slowly first loses provisional frame results (not sent while the queue is
half full: the final result follows anyway; counted, noticed once, a warning in the result),
then stalls the worker, which makes frames drop instead of memory grow: final frame results,
rolling updates and the result are never dropped. A client that does not read at all keeps
the handler waiting in a write, where no timer of its own runs; a watchdog ends such a call
at the wall-clock limit (``DEADLINE_EXCEEDED``, delivered after the unread messages) and frees
the session at once. Each session's high-water marks are logged when it closes and kept in
``state.live_reports`` (:class:`SessionReport`, the last :data:`REPORTS_KEPT`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
import uuid
from dataclasses import dataclass

import grpc

from ahmer.models.contract import DEFAULT_FPS
from ahmer.v1 import live_pb2, options_pb2, results_pb2

from ..convert import cue_to_proto, frame_to_proto, skip_counts, to_proto
from ..live.session import (
    FrameOut,
    LiveConfig,
    LiveError,
    LiveSession,
    NoticeOut,
    RollingOut,
    TurnOut,
)
from ..logs import log_event
from .errors import RequestError, status_for
from .limits import check_id, resolve_options

__all__ = [
    "LiveHandler",
    "SessionReport",
    "MAX_PENDING_AUDIO",
    "MAX_PENDING_ITEMS",
    "MAX_PENDING_RESULTS",
    "OUT_QUEUE",
    "OVERLAP_TOLERANCE",
]

log = logging.getLogger("ahmer.service.live")

MAX_PENDING_AUDIO = 10.0  # seconds of audio waiting before the reader pauses
MAX_PENDING_ITEMS = 512  # audio chunks and transcript segments waiting before it pauses
OUT_QUEUE = 64  # result messages waiting for the client
MAX_PENDING_RESULTS = OUT_QUEUE + 1 + 3  # + the one being sent + a late notice per code
OVERLAP_TOLERANCE = 0.05  # s an audio chunk may start before the previous one's end
LATE_S = 1.0  # a frame that waited this long for analysis: the server is behind the stream
BEHIND_FRAMES = 2  # more analysis frames than this waiting: no provisional results for now
TURN_SILENCE = (0.5, 60.0)  # the range StreamConfig.turn_silence accepts (0: off), s
MAX_LABEL = 128  # characters of a TurnMarker label
GRACE = 30.0  # wall-clock seconds past max duration before DEADLINE_EXCEEDED
EXPIRE_MARGIN = 1.0  # s after that before a call stuck on a non-reading client is ended
_END = object()
_VIDEO = {
    live_pb2.VideoFormat.JPEG: "jpeg",
    live_pb2.VideoFormat.PNG: "png",
    live_pb2.VideoFormat.RGB24: "rgb24",
}


def _bad(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _precondition(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.FAILED_PRECONDITION, message)


class WorkQueue:
    """Ordered work with a bound on waiting video frames, on waiting audio seconds and on
    waiting items of other kinds; keeps the high-water marks of each. ``ended``: the
    client has half-closed (its ``end`` item is queued)."""

    def __init__(self, max_frames: int) -> None:
        self.items: collections.deque = collections.deque()
        self.max_frames = max_frames
        self.frames = 0
        self.audio_s = 0.0
        self.high_frames = 0
        self.high_audio_s = 0.0
        self.high_items = 0
        self.ended = False
        self.cond = asyncio.Condition()

    def _room(self) -> bool:
        others = len(self.items) - self.frames
        return self.audio_s < MAX_PENDING_AUDIO and others < MAX_PENDING_ITEMS

    async def put(self, kind: str, payload, audio_s: float = 0.0) -> bool:
        """Queue an item; returns False when a waiting video frame was dropped for it.
        Other kinds wait (the reader stops reading) until there is room."""
        async with self.cond:
            dropped = False
            if kind == "video" and self.frames >= self.max_frames:
                for i, (k, *_) in enumerate(self.items):
                    if k == "video":
                        del self.items[i]
                        self.frames -= 1
                        dropped = True
                        break
            if kind != "video":
                await self.cond.wait_for(self._room)
            self.items.append((kind, payload, audio_s, time.monotonic()))
            self.ended = self.ended or kind == "end"
            self.frames += kind == "video"
            self.audio_s += audio_s
            self.high_frames = max(self.high_frames, self.frames)
            self.high_audio_s = max(self.high_audio_s, self.audio_s)
            self.high_items = max(self.high_items, len(self.items))
            self.cond.notify_all()
            return not dropped

    async def get(self):
        """The next item: ``(kind, payload, seconds it waited)``."""
        async with self.cond:
            await self.cond.wait_for(lambda: bool(self.items))
            kind, payload, audio_s, queued = self.items.popleft()
            self.frames -= kind == "video"
            self.audio_s -= audio_s
            self.cond.notify_all()
            return kind, payload, time.monotonic() - queued


@dataclass(frozen=True)
class SessionReport:
    """The backpressure high-water marks of one finished session: the most result messages
    made but not yet sent (``pending_high``: the output queue, the one message gRPC is
    sending and notices that found the queue full; at most :data:`MAX_PENDING_RESULTS`),
    and the most analysis frames, audio seconds and items waiting in its work queue."""

    session_id: str
    skipped: dict[str, int]
    provisional_dropped: int  # provisional frame results not sent: the client was behind
    messages: int  # result messages made (frames, updates, notices, the result)
    pending_high: int
    frames_high: int
    audio_high_s: float
    items_high: int


class _Call:
    """State of one StreamSession call."""

    def __init__(self, handler: LiveHandler, context) -> None:
        self.handler = handler
        self.state = handler.state
        self.context = context
        self.out: asyncio.Queue = asyncio.Queue(OUT_QUEUE)
        self.error: BaseException | None = None
        self.session: LiveSession | None = None
        self.session_id = ""
        self.skipped = {"video_rate": 0, "video_load": 0, "video_duplicate": 0}
        self.notified: set[str] = set()
        self.last_pts = -math.inf
        self.audio_in = 0  # input frames (per channel) received so far
        self.fps = DEFAULT_FPS
        self.options = None
        self.max_s = handler.state.config.max_stream_seconds
        self.queue: WorkQueue | None = None
        self.tasks: list[asyncio.Task] = []  # the reader and the worker
        self.in_flight = 0  # 1 while gRPC sends a message taken from ``out``
        self.messages = 0
        self.pending_high = 0
        self.provisional_dropped = 0
        self.labels: collections.deque = collections.deque()  # labels of turns being ended
        self.late: collections.deque = collections.deque()  # notices past a full queue
        self.status_started = False  # a status (abort) is being sent
        self.released = False

    def _counted(self) -> None:
        self.messages += 1
        pending = self.out.qsize() + len(self.late) + self.in_flight
        self.pending_high = max(self.pending_high, pending)

    async def put(self, msg) -> None:
        """Queue a result message; waits while the client is ``OUT_QUEUE`` messages behind."""
        await self.out.put(msg)
        self._counted()

    def notify(self, msg) -> None:
        """Queue a notice without waiting: past a full queue it waits in ``late`` (one per
        notice code at most), which the handler sends before the next queued message."""
        try:
            self.out.put_nowait(msg)
        except asyncio.QueueFull:
            self.late.append(msg)
        self._counted()

    def report(self) -> SessionReport:
        q = self.queue
        return SessionReport(
            session_id=self.session_id,
            skipped=dict(self.skipped),
            provisional_dropped=self.provisional_dropped,
            messages=self.messages,
            pending_high=self.pending_high,
            frames_high=q.high_frames if q else 0,
            audio_high_s=round(q.high_audio_s, 3) if q else 0.0,
            items_high=q.high_items if q else 0,
        )

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        while not self.out.empty():  # pending results are moot: make room for the end
            self.out.get_nowait()
        self.late.clear()
        self.out.put_nowait(_END)


async def _abort_quietly(context, code: grpc.StatusCode, message: str) -> None:
    """Send ``code`` from outside the call's task; returns when it is sent or the client
    has gone."""
    try:
        await context.abort(code, message)
    except (Exception, asyncio.CancelledError):  # AbortError is how abort returns
        pass


class LiveHandler:
    def __init__(self, state) -> None:
        self.state = state
        self._aborts: set[asyncio.Future] = set()  # statuses sent by _expire

    async def run(self, request_iterator, context):
        state = self.state
        try:
            state.require_ready()
            slots = self._slots()
            slots.acquire()
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
        call = _Call(self, context)
        state.metrics.active_streams.inc()
        state.active_streams = slots.active
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        watchdog = loop.call_later(
            self.max_wall() + EXPIRE_MARGIN,
            self._expire,
            call,
            asyncio.current_task(),
            slots,
            started,
        )
        try:
            config = await self._first(request_iterator, call)
            call.session = await loop.run_in_executor(
                state.live_pool, LiveSession, state.analyzer, config
            )
            yield live_pb2.StreamResponse(started=self._started(call, config))
            queue = call.queue = WorkQueue(state.config.live_queue_frames)
            call.tasks = [
                asyncio.create_task(self._read(request_iterator, call, queue)),
                asyncio.create_task(self._work(call, queue)),
            ]
            deadline = started + self.max_wall()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, self._too_long(call))
                if call.late:
                    msg = call.late.popleft()
                else:
                    try:
                        msg = await asyncio.wait_for(call.out.get(), remaining)
                    except TimeoutError:
                        continue
                if msg is _END:
                    break
                call.in_flight = 1
                yield msg  # returns once gRPC has sent it (HTTP/2 flow control applies)
                call.in_flight = 0
            if call.error is not None:
                raise call.error
        except (RequestError, LiveError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            code, message = status_for(exc)  # a LiveError is FAILED_PRECONDITION
            if code == grpc.StatusCode.INTERNAL:
                log.error("live session failed", exc_info=exc)
            log_event(
                log, "session failed", logging.INFO, session_id=call.session_id, code=code.name
            )
            call.status_started = True
            await context.abort(code, message)  # waits while the client does not read
        finally:
            watchdog.cancel()
            self._release(call, slots, started)

    def _too_long(self, call: _Call) -> str:
        return (
            f"the session was open longer than the server's limit "
            f"({call.max_s:g} s of stream plus {self.grace():g} s)"
        )

    def _expire(self, call: _Call, task: asyncio.Task | None, slots, started: float) -> None:
        """The wall-clock limit passed and the call is still here: it is stuck sending to a
        client that does not read (a write, or the status, waits for HTTP/2 flow control),
        or waiting for a first message that never comes. End it from outside: queue a
        ``DEADLINE_EXCEEDED`` status (the client gets it after the messages it has not
        read), stop the call's task and free the session now."""
        if call.released:
            return
        log_event(
            log,
            "session expired",
            logging.WARNING,
            session_id=call.session_id,
            code="DEADLINE_EXCEEDED",
            sending=bool(call.in_flight or call.status_started),
        )
        if not call.status_started:
            call.status_started = True
            code = grpc.StatusCode.DEADLINE_EXCEEDED
            abort = asyncio.ensure_future(_abort_quietly(call.context, code, self._too_long(call)))
            self._aborts.add(abort)
            abort.add_done_callback(self._aborts.discard)
        if task is not None:
            task.cancel()
        self._release(call, slots, started)

    # -- helpers -------------------------------------------------------------------------

    def _slots(self):
        from .limits import SessionSlots

        if self.state.slots is None:
            self.state.slots = SessionSlots(self.state.config.max_sessions)
        return self.state.slots

    def grace(self) -> float:
        return min(GRACE, self.state.config.max_stream_seconds / 2)

    def max_wall(self) -> float:
        return self.state.config.max_stream_seconds + self.grace()

    def _release(self, call: _Call, slots, started: float) -> None:
        """The call is over: its slot is free at once (a client may retry right away); the
        session's resources are freed once its in-flight work is done, and only then does
        the ``active_streams`` gauge go down (it counts sessions holding resources)."""
        if call.released:
            return
        call.released = True
        for task in call.tasks:
            task.cancel()
        while not call.out.empty():  # nobody will send these now
            call.out.get_nowait()
        call.late.clear()
        state = self.state
        loop = asyncio.get_running_loop()
        slots.release()
        state.active_streams = slots.active

        report = call.report()
        state.live_reports.append(report)

        def done(_=None) -> None:
            state.metrics.active_streams.dec()
            log_event(
                log,
                "session closed",
                session_id=call.session_id,
                seconds=round(time.monotonic() - started, 2),
                skipped=report.skipped,
                provisional_dropped=report.provisional_dropped,
                messages=report.messages,
                pending_high=report.pending_high,
                queued_frames_high=report.frames_high,
                queued_audio_high_s=report.audio_high_s,
            )

        if call.session is None:
            done()
            return
        try:
            future = loop.run_in_executor(state.live_pool, call.session.close)
        except RuntimeError:  # pool already shut down (server stopping)
            call.session.close()
            done()
            return
        future.add_done_callback(done)

    async def _first(self, request_iterator, call: _Call) -> LiveConfig:
        try:
            first = await request_iterator.__anext__()
        except StopAsyncIteration:
            raise _bad("the stream ended before its StreamConfig") from None
        kind = first.WhichOneof("message")
        if kind != "config":
            raise _precondition(
                f"the first message must be a StreamConfig, got {kind or 'an empty message'}"
            )
        return self._config(first.config, call)

    def _config(self, c: live_pb2.StreamConfig, call: _Call) -> LiveConfig:
        cfg = self.state.config
        call.session_id = check_id(c.session_id, "session_id") or uuid.uuid4().hex[:16]
        opts = resolve_options(c.options, cfg.analysis.fps, cfg.analysis.strict)
        call.fps, call.options = opts.fps, opts
        video = ""
        if c.video.encoding:
            if c.video.encoding not in _VIDEO:
                raise _bad("unknown video.encoding")
            video = _VIDEO[c.video.encoding]
            if video == "rgb24" and not (
                16 <= c.video.width <= 4096 and 16 <= c.video.height <= 4096
            ):
                raise _bad("RGB24 video needs width and height in 16..4096")
        rate = channels = 0
        if c.audio.encoding:
            if c.audio.encoding != live_pb2.AudioFormat.PCM16:
                raise _bad("unknown audio.encoding")
            rate, channels = c.audio.sample_rate, c.audio.channels or 1
            if not 8000 <= rate <= 192000:
                raise _bad(f"audio.sample_rate must be 8000..192000 Hz, got {rate}")
            if not 1 <= channels <= 8:
                raise _bad(f"audio.channels must be 1..8, got {channels}")
        if not video and not rate:
            raise _bad("the StreamConfig declares neither video nor audio")
        low, high = TURN_SILENCE
        gap = c.turn_silence
        if not (gap == 0 or low <= gap <= high):
            raise _bad(f"turn_silence must be 0 (off) or {low:g}..{high:g} s, got {gap:g}")
        log_event(
            log,
            "session started",
            session_id=call.session_id,
            video=video or None,
            audio_rate=rate or None,
            fps=opts.fps,
            client_transcript=c.client_transcript,
        )
        return LiveConfig(
            fps=opts.fps,
            window=cfg.live_window,
            language=opts.language,
            client_transcript=c.client_transcript,
            video=video,
            width=c.video.width,
            height=c.video.height,
            audio_rate=rate,
            audio_channels=channels or 1,
            max_cues=0 if opts.explanation == options_pb2.EXPLANATION_NONE else 3,
            provisional=c.provisional_frames and opts.frames,
            strict=opts.strict,
            full_audio=c.full_audio,
            turn_silence=gap,
        )

    def _started(self, call: _Call, config: LiveConfig) -> live_pb2.SessionStarted:
        source = "client" if config.client_transcript else ("asr" if config.audio_rate else "none")
        return live_pb2.SessionStarted(
            session_id=call.session_id,
            fps=config.fps,
            final_lag=config.final_lag,
            max_final_lag=config.max_final_lag,
            max_duration=call.max_s,
            transcript_source=source,
        )

    # -- reader --------------------------------------------------------------------------

    async def _read(self, request_iterator, call: _Call, queue: WorkQueue) -> None:
        try:
            async for msg in request_iterator:
                kind = msg.WhichOneof("message")
                if kind == "video":
                    await self._video(msg.video, call, queue)
                elif kind == "audio":
                    await self._audio(msg.audio, call, queue)
                elif kind == "transcript":
                    self._transcript_check(msg.transcript, call)
                    await queue.put("transcript", msg.transcript)
                elif kind == "turn":
                    if len(msg.turn.label) > MAX_LABEL:
                        raise _bad(f"TurnMarker.label is over {MAX_LABEL} characters")
                    await queue.put("turn", msg.turn.label)
                elif kind == "config":
                    raise _precondition("a second StreamConfig was sent; send one per session")
                else:
                    raise _bad("an empty StreamRequest was sent")
            await queue.put("end", None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            call.fail(exc)

    async def _video(self, v, call: _Call, queue: WorkQueue) -> None:
        cfg = call.session.cfg
        if not cfg.video:
            raise _precondition("video frame sent, but the StreamConfig declared no video")
        pts = v.pts
        if not math.isfinite(pts) or pts < 0:
            raise _bad(f"video pts must be a finite number >= 0, got {pts}")
        if pts > call.max_s:
            raise RequestError(
                grpc.StatusCode.OUT_OF_RANGE,
                f"video pts {pts:.2f} s is past the server's max stream duration "
                f"({call.max_s:g} s)",
            )
        if pts < call.last_pts:
            raise _bad(f"video frames out of order: pts {pts:.4f} after {call.last_pts:.4f}")
        if pts == call.last_pts:
            call.skipped["video_duplicate"] += 1
            self.state.metrics.skipped.labels("duplicate").inc()
            self._notice(
                call,
                "duplicate_frame",
                f"video frame with duplicate pts {pts:.4f} dropped (reported once)",
            )
            return
        call.last_pts = pts
        if not call.session.grid.take(pts):
            call.skipped["video_rate"] += 1
            self.state.metrics.skipped.labels("rate").inc()
            return
        if not await queue.put("video", (pts, bytes(v.data))):
            call.skipped["video_load"] += 1
            self.state.metrics.skipped.labels("load").inc()
            self._notice(
                call,
                "frames_dropped_under_load",
                "analysis frames are being dropped: the server is behind this stream",
            )

    async def _audio(self, a, call: _Call, queue: WorkQueue) -> None:
        session = call.session
        cfg = session.cfg
        if not cfg.audio_rate:
            raise _precondition("audio chunk sent, but the StreamConfig declared no audio")
        frame_bytes = 2 * cfg.audio_channels
        if len(a.data) % frame_bytes:
            raise _bad(
                f"audio chunk of {len(a.data)} bytes is not a whole number of "
                f"{cfg.audio_channels}-channel PCM16 frames"
            )
        which = a.WhichOneof("start")
        start = call.audio_in
        if which == "start_time":
            if not math.isfinite(a.start_time) or a.start_time < 0:
                raise _bad("audio start_time must be a finite number >= 0")
            start = int(round(a.start_time * cfg.audio_rate))
        elif which == "sample_offset":
            if a.sample_offset < 0:
                raise _bad("audio sample_offset must be >= 0")
            start = a.sample_offset
        gap = start - call.audio_in
        tolerance = int(OVERLAP_TOLERANCE * cfg.audio_rate)
        if gap < -tolerance:
            raise _bad(
                f"audio out of order or overlapping: chunk starts at "
                f"{start / cfg.audio_rate:.3f} s, before the end of the audio received "
                f"({call.audio_in / cfg.audio_rate:.3f} s)"
            )
        data = bytes(a.data)
        if gap < 0:  # a small overlap (clock jitter): drop the repeated samples
            data, gap = data[-gap * frame_bytes :], 0
        frames = len(data) // frame_bytes
        end = (call.audio_in + gap + frames) / cfg.audio_rate
        if end > call.max_s + 1e-6:
            raise RequestError(
                grpc.StatusCode.OUT_OF_RANGE,
                f"audio reaches {end:.2f} s, past the server's max stream duration "
                f"({call.max_s:g} s)",
            )
        call.audio_in += gap + frames
        await queue.put("audio", (data, gap), audio_s=(gap + frames) / cfg.audio_rate)

    def _transcript_check(self, t, call: _Call) -> None:
        if not call.session.cfg.client_transcript:
            raise _precondition(
                "transcript segment sent, but the StreamConfig did not set client_transcript"
            )
        if not (math.isfinite(t.start) and math.isfinite(t.end)) or t.start < 0 or t.end < t.start:
            raise _bad("transcript segment needs 0 <= start <= end")
        if t.end > call.max_s:
            raise RequestError(
                grpc.StatusCode.OUT_OF_RANGE, "transcript segment past the max stream duration"
            )

    def _notice(self, call: _Call, code: str, message: str) -> None:
        if code in call.notified:
            return
        call.notified.add(code)
        msg = live_pb2.StreamResponse(notice=live_pb2.StreamNotice(code=code, message=message))
        call.notify(msg)

    # -- worker --------------------------------------------------------------------------

    async def _work(self, call: _Call, queue: WorkQueue) -> None:
        loop = asyncio.get_running_loop()
        pool = self.state.live_pool
        session = call.session
        speech: asyncio.Future | None = None
        try:
            while True:
                kind, payload, waited = await queue.get()
                t = time.perf_counter()
                if kind == "video":
                    # behind the stream: no provisional results until the queue catches up;
                    # after half-close none either (the final results follow at once)
                    behind = waited > LATE_S / 2 or queue.frames > BEHIND_FRAMES or queue.ended
                    if waited > LATE_S:
                        self._late(call, waited)
                    add = session.add_video
                    outs = await loop.run_in_executor(pool, add, *payload, not behind)
                    self.state.metrics.stages.labels("live_frame").observe(time.perf_counter() - t)
                elif kind == "audio":
                    outs = await loop.run_in_executor(pool, session.add_audio, *payload)
                elif kind == "transcript":
                    outs = session.add_transcript(payload.start, payload.end, payload.text)
                elif kind == "turn":
                    if speech is not None:  # the turn's last words need the step's state
                        await speech
                        speech = None
                    outs = await loop.run_in_executor(pool, session.end_turn)
                    call.labels.append(payload)
                else:
                    break
                await self._emit(call, outs)
                if speech is not None and speech.done():
                    speech.result()  # raises what the step raised
                    speech = None
                # after half-close the session's last step decodes what is left in one pass
                if speech is None and not queue.ended and session.speech_step_due():
                    speech = loop.run_in_executor(pool, self._timed_step, session)
            if speech is not None:
                await speech
            outs, result = await loop.run_in_executor(pool, session.finish)
            await self._emit(call, outs)
            opts = call.options
            if call.provisional_dropped:
                result.warnings.append(
                    f"{call.provisional_dropped} provisional frame results were not sent: the "
                    "client read results slower than they were made"
                )
            msg = to_proto(
                result, frames=opts.frames, explanation=opts.explanation, skipped=call.skipped
            )
            await call.put(live_pb2.StreamResponse(result=msg))
            await call.out.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            call.fail(exc)

    def _late(self, call: _Call, waited: float) -> None:
        self._notice(
            call,
            "finals_late",
            f"the server is behind this stream (a frame waited {waited:.1f} s for analysis): "
            "final results come later than final_lag, provisional results are skipped until "
            "it catches up, and frames dropped for load are counted in skipped.video_load "
            "(reported once)",
        )

    def _timed_step(self, session: LiveSession) -> None:
        t = time.perf_counter()
        session.run_speech_step()
        self.state.metrics.stages.labels("live_speech").observe(time.perf_counter() - t)

    async def _emit(self, call: _Call, outs: list) -> None:
        opts = call.options
        for out in outs:
            if isinstance(out, FrameOut):
                if not opts.frames:
                    continue
                if not out.final and call.out.qsize() >= OUT_QUEUE // 2:
                    self._provisional_dropped(call)
                    continue
                msg = live_pb2.StreamResponse(
                    frame=live_pb2.FrameUpdate(
                        frame=frame_to_proto(out.frame), index=out.index, final=out.final
                    )
                )
            elif isinstance(out, RollingOut):
                msg = live_pb2.StreamResponse(update=self._rolling(out, call))
            elif isinstance(out, NoticeOut):
                msg = live_pb2.StreamResponse(
                    notice=live_pb2.StreamNotice(code=out.code, message=out.message)
                )
            elif isinstance(out, TurnOut):
                msg = live_pb2.StreamResponse(turn=self._turn(out, call))
            else:
                continue
            await call.put(msg)

    def _turn(self, out: TurnOut, call: _Call) -> live_pb2.TurnResult:
        opts = call.options
        label = call.labels.popleft() if out.reason == "marker" and call.labels else ""
        return live_pb2.TurnResult(
            index=out.index,
            start=out.start,
            end=out.end,
            reason=out.reason,
            label=label,
            result=to_proto(out.result, frames=opts.frames, explanation=opts.explanation),
        )

    def _provisional_dropped(self, call: _Call) -> None:
        """The client is half a queue behind: a provisional result would only delay the
        final one that supersedes it, so it is not sent (counted, noticed once)."""
        call.provisional_dropped += 1
        self._notice(
            call,
            "provisional_dropped",
            "provisional frame results are not sent while the client reads results slower "
            "than they are made; final frame results are all sent",
        )

    def _rolling(self, out: RollingOut, call: _Call) -> live_pb2.RollingUpdate:
        update = live_pb2.RollingUpdate(
            time=out.time,
            window_start=out.window_start,
            ah_probability=out.ah_probability,
            ah_label=out.ah_label,
            dominant_emotion=out.dominant_emotion or "",
            frames_analyzed=out.frames_analyzed,
            skipped=skip_counts(call.skipped),
        )
        if call.options.explanation != options_pb2.EXPLANATION_NONE:
            update.cues.extend(cue_to_proto(c) for c in out.cues)
        if call.options.frames:
            update.words.extend(
                results_pb2.TranscriptWord(start=w.start, end=w.end, text=w.text) for w in out.words
            )
        return update
