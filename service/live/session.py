"""Live analysis of one stream session, incremental over a sliding window.

Per analysis frame (called in order, from one worker thread at a time): decode the image,
track faces (one MediaPipe ``FaceAnalyzer`` in VIDEO mode per session, made by the
analyzer's :class:`~ahmer.models.analyzer.LiveParts` as clips get theirs), run the
face-emotion model on the primary face and keep only small per-frame features
(:mod:`.frames`). Which frames are analysed is decided by the session's one
:class:`~.frames.FrameGrid` (video frames at the analysis rate; grid frames for audio-only
sessions). Audio goes to a fixed-size ring; every ``audio_step`` (0.5 s) of new audio a step
of :class:`~.speech.SpeechTracker` (VAD, one streaming-ASR pass, prosody) runs in a
separate job, so frames keep flowing while Whisper decodes; words are committed as two
passes agree on them (:mod:`ahmer.preprocessing.asr_stream`).

A frame is *final* once the stream has advanced ``final_lag`` seconds past it (the
look-ahead of its own verbal cues and text embedding, :data:`FINAL_LAG`: 1 s) and, with
server ASR, once a pass has decoded the audio up to the words after it (the uncommitted
hypothesis counts, so a frame never waits for two passes to agree), but at most
``max_final_lag`` (:data:`MAX_FINAL_LAG`, 6 s; past it the frame is final without the words
not yet decoded, and notice ``words_late`` says so once). Its neighbours' words, which the
A/H smoothing mixes in, reach a little further: a final frame can differ slightly from the
whole-answer result (measured in ``bench/README.md``). Then a timeline over the last
``window`` seconds is built, cues and fusion run on it (the parts' ``predict``, with the
face emotion computed as the frames arrived and a per-session cache of text embeddings), and
every newly final frame is emitted, with a rolling update of the window's A/H and top cues
about once a second. That window runs to the newest frame analysed, past the final ones
(with the words known so far: committed, then the hypothesis), so the updates describe the
stream up to about the last second, not ``final_lag`` behind it.

On half-close, :meth:`LiveSession.finish` analyses the whole session like ``AnalyzeClip``
from what the session already has: the committed words (one last ASR pass only when speech
went on past the last one), the VAD segments and the prosody of every frame. With
``full_audio`` (and a session short enough for the ring to hold all its audio) VAD, ASR and
prosody are redone over the whole audio instead, exactly as offline, at the cost of a
whole-audio decode after the end.

Turns. :meth:`LiveSession.end_turn` (a client's ``TurnMarker``) or, with
``turn_silence``, a silence that long after speech ends the current answer turn: its words
are committed, its frames made final and it gets its own clip-level result, analysed as
``AnalyzeClip`` analyses a clip of that span (times from the turn's start).

Clock drift. When the audio and the video a client sends drift apart by more than
``max_skew`` the session says so once, as it happens (notice ``clock_skew``); when they end
further apart than the partial-media tolerance (:mod:`ahmer.preprocessing.truncation`), the
whole-session result carries an ``audio/video drift: ...`` warning, and a strict session
(``LiveConfig.strict``) fails instead (:func:`~ahmer.preprocessing.pipeline.check_complete`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ahmer.models.analyzer import LiveParts, frame_results
from ahmer.models.contract import SAMPLE_RATE, VOICE_EMBED_DIM
from ahmer.models.results import AnalysisResult, Cue, FrameResult, TranscriptWord
from ahmer.preprocessing.asr import ENCODER_WINDOW_S
from ahmer.preprocessing.errors import FailedPrecondition
from ahmer.preprocessing.pipeline import check_complete, set_words
from ahmer.preprocessing.timeline import MediaInfo, Segment, Word
from ahmer.preprocessing.transcript import spread_text
from ahmer.preprocessing.truncation import drift_warning
from ahmer.preprocessing.voice import voice_embedding

from .audio import AudioRing, PcmResampler
from .config import FINAL_LAG, MAX_FINAL_LAG, LiveConfig
from .frames import FrameGrid, FrameStore, decode_image
from .speech import SpeechState, SpeechTracker

__all__ = [
    "FINAL_LAG",
    "MAX_FINAL_LAG",
    "FULL_AUDIO_MAX_S",
    "LiveConfig",
    "LiveSession",
    "LiveError",
    "FrameOut",
    "RollingOut",
    "NoticeOut",
    "TurnOut",
]

log = logging.getLogger(__name__)

# LiteRT threads per face model in a live session, where whole clips use 1 (ASR runs beside
# their face stage): live latency (bench/README.md, stream.py) was measured with 2, and faces
# alone are faster with 2 threads than with 1 (bench/README.md, "Earlier: landmarks once a
# second")
LIVE_FACE_THREADS = 2
TEXT_CACHE_SIZE = 512  # text embeddings a session keeps (its windows repeat their texts)
FULL_AUDIO_MAX_S = 30.0  # longest session whose audio the ring keeps whole (full_audio)
PROSODY_WINDOW = 4.0  # s of recent audio whose frames' prosody a speech step refreshes
NO_AUDIO = "no audio in this session: vocal and spoken cues are absent"


class LiveError(FailedPrecondition):
    """The session cannot go on in its current state (closed, or ended without media)."""


@dataclass(frozen=True)
class FrameOut:
    index: int
    frame: FrameResult
    final: bool = True


@dataclass(frozen=True)
class RollingOut:
    time: float
    window_start: float
    ah_probability: float
    ah_label: int
    cues: tuple[Cue, ...]
    dominant_emotion: str | None
    frames_analyzed: int
    words: tuple[TranscriptWord, ...]


@dataclass(frozen=True)
class NoticeOut:
    code: str
    message: str


@dataclass(frozen=True)
class TurnOut:
    """One answer turn's clip-level result: turn ``index`` (0, 1, ...) spans ``[start,
    end)`` seconds of the session; ``result`` is analysed as ``AnalyzeClip`` would analyse a
    clip of that span (its times from the turn's start); ``reason``: ``"marker"``,
    ``"silence"`` or ``"end"`` (the last turn, at half-close)."""

    index: int
    start: float
    end: float
    reason: str
    result: AnalysisResult


@dataclass
class _Clock:
    video_end: float = 0.0  # newest video pts + one frame
    video_frames: int = 0
    first_size: tuple[int, int] = (0, 0)
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds


class LiveSession:
    """The analysis state of one session. Not thread-safe for concurrent ``add_*`` calls
    (the handler serialises them); :meth:`run_speech_step` may run beside them."""

    def __init__(self, parts: LiveParts, config: LiveConfig) -> None:
        """``parts``: an analyzer's :class:`LiveParts` (a loaded ``Analyzer`` gives its own)."""
        parts = getattr(parts, "parts", parts)
        self.parts = parts
        self.cfg = config
        # a fusion that reads embeddings needs them kept per frame: the images are not
        self.embeddings = parts.uses_embeddings
        self.store = FrameStore(embeddings=self.embeddings)
        self.grid = FrameGrid(config.fps)  # which frames are analysis frames
        # the session's own cache of embeddings (keyed digests, no text), dropped on close
        self.text_encoder = parts.text_encoder.with_cache(TEXT_CACHE_SIZE)
        self.clock = _Clock()
        self._lock = threading.RLock()  # shared state (the speech step runs beside frames)
        self._busy = threading.Lock()  # held by add_*/finish: close waits for them
        self._idle = threading.Condition(self._lock)  # signalled when a speech step ends
        self._faces = None
        self.names: list[str] = []
        # tiered faces, as in whole clips: full landmarks at the analyzer's landmark rate, the
        # detector's keypoints between; the primary face's frames since its last landmark
        # frame (that frame first), interpolated when the next one arrives
        self.landmarks_every = 1
        self._since_fresh: list = []
        if config.video:
            self._faces = parts.face_analyzer(fps=config.fps, threads=LIVE_FACE_THREADS)
            self.landmarks_every = self._faces.landmarks_every
            self.names = list(self._faces.blendshape_names)
        self.ring = AudioRing(max(FULL_AUDIO_MAX_S, config.window + 25.0))
        self.resampler = (
            PcmResampler(config.audio_rate, config.audio_channels) if config.audio_rate else None
        )
        self.tracker = SpeechTracker(
            parts.transcriber,
            config.language,
            asr=not config.client_transcript,
            step=config.audio_step,
        )
        self.speech = SpeechState()
        self.client_words: list[Word] = []
        self._step_running = False
        self.next_emit = 0
        self._next_update = config.update_interval
        self.speech_done = 0.0  # audio end (s) covered by the last finished speech step
        self._next_eval = 0.0
        self.threshold = parts.threshold
        self.turn_start = 0.0  # session time where the current answer turn began
        self.turns = 0  # turns ended so far
        self._turn_due: float | None = None  # a silence ended a turn here (turn_silence)
        self.closed = False
        self._finishing = False
        self._skew_noticed = False
        self._words_late_noticed = False
        self._voice_warned = False

    # -- input ---------------------------------------------------------------------------

    def add_video(self, pts: float, data: bytes, provisional: bool = True) -> list:
        """One analysis frame (one :attr:`grid` accepted); ``provisional=False`` skips its
        provisional result (the handler is behind: the final one follows)."""
        with self._busy:
            self._check_open()
            return self._add_video(pts, data, provisional)

    def _check_open(self) -> None:
        if self.closed:
            raise LiveError("the session is closed")

    def _add_video(self, pts: float, data: bytes, provisional: bool = True) -> list:
        t0 = time.perf_counter()
        cfg = self.cfg
        image = decode_image(data, cfg.video, cfg.width, cfg.height)
        t1 = time.perf_counter()
        faces = self._faces.process(image, pts)
        emotion = face_emb = None
        if faces and faces[0].crop is not None:
            crop, one = faces[0].crop[None], np.ones(1, bool)
            if self.embeddings:
                probs, embs = self.parts.face_encoder.encode(crop, one, with_embedding=True)
                emotion, face_emb = probs[0], embs[0]
            else:
                emotion = self.parts.face_encoder.encode(crop, valid=one)[0]
        t2 = time.perf_counter()
        with self._lock:
            if self.clock.video_frames == 0:
                self.clock.first_size = (image.shape[1], image.shape[0])
            self.clock.video_frames += 1
            self.clock.video_end = pts + 1.0 / cfg.fps
            face = faces[0] if faces else None
            index = self.store.append(pts, face, emotion, len(faces), face_emb=face_emb)
            if faces and self.landmarks_every > 1:
                self._fill_landmark_gap(index, faces[0])
        self.clock.add("live_decode", t1 - t0)
        self.clock.add("live_faces", t2 - t1)
        return self._evaluate(newest=index if cfg.provisional and provisional else None)

    def _fill_landmark_gap(self, index: int, face) -> None:
        """Tiered faces (lock held): when the primary face's next landmark frame arrives,
        the frames since its previous one get interpolated blendshapes, pitch and yaw (as
        offline, :func:`~ahmer.preprocessing.faces.interpolate_landmark_gaps`), where they
        are not final yet; their provisional results carried the last landmark frame's."""
        from ahmer.preprocessing.faces import interpolate_landmark_gaps

        run = self._since_fresh
        if run and run[0][1].track_id != face.track_id:
            run.clear()  # another face became the primary one
        if not run and not face.landmarks_fresh:
            return  # wait for this track's first landmark frame
        # what interpolation reads, without the face's crop and mesh: no image is kept
        run.append((index, replace(face, crop=None, landmarks=None)))
        if not face.landmarks_fresh or len(run) == 1:
            return
        if len(run) > 2:
            indices = [i for i, _ in run]
            filled = interpolate_landmark_gaps([[f] for _, f in run], self.store.times[indices])
            for i, found in zip(indices[1:-1], filled[1:-1], strict=True):
                if i >= self.next_emit:
                    self.store.set_face_values(i, found[0])
        self._since_fresh = [run[-1]]

    def add_audio(self, data: bytes, gap_frames: int = 0) -> list:
        """PCM16 ``data`` after ``gap_frames`` input frames of silence."""
        with self._busy:
            self._check_open()
            return self._add_audio(data, gap_frames)

    def _add_audio(self, data: bytes, gap_frames: int) -> list:
        parts = []
        if gap_frames > 0:
            parts.append(self.resampler.silence(gap_frames))
        parts.append(self.resampler.convert(data))
        with self._lock:
            for part in parts:
                self.ring.append(part)
            if not self.cfg.video:
                self._grid_frames(self.ring.seconds)
        return self._evaluate()

    def add_transcript(self, start: float, end: float, text: str) -> list:
        with self._lock:
            self.client_words.extend(spread_text(text, start, max(start, end)))
            self.client_words.sort(key=lambda w: w.start)
        return []

    def _grid_frames(self, until: float) -> None:
        for t in self.grid.fill(until):
            self.store.append(t, video=False)

    # -- speech steps --------------------------------------------------------------------

    def speech_step_due(self) -> bool:
        with self._lock:
            if self._step_running or self.resampler is None:
                return False
            due = self.tracker.due(self.ring.seconds)
            if due:
                self._step_running = True
            return due

    def run_speech_step(self, final: bool = False, until: float | None = None) -> None:
        """VAD, one streaming-ASR pass and prosody on the open region (in a worker thread,
        after :meth:`speech_step_due` said yes); ``final`` commits every word up to the
        audio's end or ``until`` seconds (the caller holds the step slot: see
        :meth:`_flush_speech`)."""
        t = time.perf_counter()
        try:
            with self._lock:
                if self.closed:
                    return
                end = self.ring.end
                if until is not None:
                    end = min(end, int(round(until * SAMPLE_RATE)))
                start = int(
                    self.tracker.region_start(
                        self.speech, end / SAMPLE_RATE, self.ring.start / SAMPLE_RATE
                    )
                    * SAMPLE_RATE
                )
                audio = self.ring.get(start, end)
                state = self.speech
            new = self.tracker.step(state, audio, start / SAMPLE_RATE, final=final)
            with self._lock:
                if self.closed or (self._finishing and not final):
                    return
                self.speech = new
                self.speech_done = end / SAMPLE_RATE
                self._check_turn()
            self._update_prosody(end)
        finally:
            with self._lock:
                if not final:
                    self._step_running = False
                    self._idle.notify_all()
            self.clock.add("live_speech", time.perf_counter() - t)

    def _flush_speech(self, until: float | None = None) -> None:
        """Wait for a running speech step, then run a final one: every word up to the
        audio's end (or ``until`` s) committed (a turn's end, or the session's)."""
        with self._lock:
            while self._step_running:
                self._idle.wait()
            self._step_running = True
        try:
            if self.resampler is not None:
                self.run_speech_step(final=True, until=until)
        finally:
            with self._lock:
                self._step_running = False
                self._idle.notify_all()

    def _words(self) -> list[Word]:
        return self.client_words if self.cfg.client_transcript else self.speech.all_words()

    def _update_prosody(self, end: int) -> None:
        """Audio features of the frames in the last :data:`PROSODY_WINDOW` seconds up to
        sample ``end``; older frames keep the values of the last step that covered them
        (computed outside the lock; frames only ever get appended, so indices stay valid)."""
        with self._lock:
            now = end / SAMPLE_RATE
            w0 = max(self.ring.start / SAMPLE_RATE, now - PROSODY_WINDOW)
            a, b = self.store.index_at(w0), self.store.index_at(now)
            if b <= a:
                return
            audio = self.ring.get(int(w0 * SAMPLE_RATE), end)
            times = self.store.times[a:b].copy()
            words = [w for w in self._words() if w.end > w0]
            speech = self.speech.all_speech()
        values = self.tracker.prosody(audio, w0, times, speech, words or None)
        if self.embeddings:
            values["voice_emb"] = self._voice(audio, w0, times, speech)
        with self._lock:
            if not self.closed:
                self.store.set_audio(a, values)

    def _voice(self, audio: np.ndarray, start: float, times: np.ndarray, speech) -> np.ndarray:
        """Voice embeddings of the frames at ``times`` (absolute) from ``audio`` starting at
        ``start`` (the window's, as prosody: a frame's value is refreshed while the window
        still covers it); the width warning is logged once per session."""
        rel = [Segment(s.start - start, s.end - start) for s in speech if s.end > start]
        got = voice_embedding(
            self.parts.transcriber, audio, times - start, self.cfg.fps, rel, VOICE_EMBED_DIM
        )
        if got.warning and not self._voice_warned:
            self._voice_warned = True
            log.warning("live session: %s", got.warning)
        return got.values

    # -- evaluation ----------------------------------------------------------------------

    def stream_time(self) -> float:
        """How far the stream has advanced (the older of video and audio, unless one lags
        by more than ``max_skew``)."""
        ends = []
        if self.cfg.video and self.clock.video_frames:
            ends.append(self.clock.video_end)
        if self.resampler is not None:
            ends.append(self.ring.seconds)
        if not ends:
            return 0.0
        low, high = min(ends), max(ends)
        return low if high - low <= self.cfg.max_skew else high - self.cfg.max_skew

    def _ends(self) -> tuple[float, float] | None:
        """(audio end, video end) in seconds when the session has both (lock held)."""
        if self.resampler is None or not (self.cfg.video and self.clock.video_frames):
            return None
        return self.ring.seconds, self.clock.video_end

    def _skew_notice(self) -> list:
        """Once per session, a notice when audio and video are more than ``max_skew`` apart
        (lock held): finality then follows the one ahead, the other's cues are missing."""
        ends = self._ends()
        if self._skew_noticed or ends is None or abs(ends[0] - ends[1]) <= self.cfg.max_skew:
            return []
        self._skew_noticed = True
        audio, video = ends
        return [
            NoticeOut(
                "clock_skew",
                f"audio ({audio:.2f} s) and video ({video:.2f} s) are more than "
                f"{self.cfg.max_skew:g} s apart: check the client's clocks (reported once)",
            )
        ]

    def drift(self) -> str | None:
        """The ``audio/video drift`` warning when the session's audio and video end apart
        beyond the partial-media tolerance, else None (lock held)."""
        ends = self._ends()
        return None if ends is None else drift_warning(*ends, frame_rate=self.cfg.fps)

    def final_until(self) -> tuple[float, bool]:
        """Frames at or before this time are final, and whether it is ``max_final_lag`` that
        bounds it (speech recognition so far behind that frames go final before their words
        are decoded) (lock held)."""
        cfg = self.cfg
        now = self.stream_time()
        until = now - cfg.final_lag
        if self.resampler is None or cfg.client_transcript:
            return until, False
        # wait for the words around the frame, but not forever
        words, bound = self.speech_done - cfg.words_after, now - cfg.max_final_lag
        return min(until, max(words, bound)), bound > words and bound < until

    def _words_late_notice(self, capped: bool) -> list:
        """Once per session, a notice when frames go final without the words after them
        (lock held)."""
        if not capped or self._words_late_noticed:
            return []
        self._words_late_noticed = True
        behind = self.stream_time() - self.speech_done
        return [
            NoticeOut(
                "words_late",
                f"speech recognition is {behind:.1f} s behind the stream: frames are made final "
                f"{self.cfg.max_final_lag:g} s behind it without the words not yet decoded "
                "(the session and turn results have every word; reported once)",
            )
        ]

    def _evaluate(self, newest: int | None = None) -> list:
        """Emit the frames that became final (at most every ``eval_interval`` of stream
        time, so one window evaluation serves several frames) and frame ``newest``
        provisionally."""
        with self._lock:
            out: list = self._skew_notice()
            now = self.stream_time()
            until, capped = self.final_until()
            k = self.store.index_at(until + 1e-6)
            due = k > self.next_emit and now >= self._next_eval
            if due:
                out += self._words_late_notice(capped)
        if due:
            out += self._emit_final(k, now)
        if newest is not None and newest >= self.next_emit:
            out.append(self._provisional(newest))
        with self._lock:
            at, self._turn_due = self._turn_due, None
        if at is not None:
            out += self._end_turn(at, "silence")
        return out

    # -- turns ---------------------------------------------------------------------------

    def end_turn(self) -> list:
        """The client marked the end of an answer turn here (after everything it sent so
        far): the turn's words are committed, its frames emitted final and its clip-level
        result returned (a :class:`TurnOut` after the frames)."""
        with self._busy:
            self._check_open()
            with self._lock:
                at = self._media_end()
            return self._end_turn(at, "marker")

    def _media_end(self) -> float:
        """The end of the media received so far, video or audio (lock held)."""
        return max(self.clock.video_end if self.clock.video_frames else 0.0, self.ring.seconds)

    def _check_turn(self) -> None:
        """With ``turn_silence``: after a speech step, a silence of that length following
        the current turn's speech ends the turn (lock held; the worker ends it)."""
        gap = self.cfg.turn_silence
        if gap <= 0 or self._turn_due is not None:
            return
        speech = [seg for seg in self.speech.all_speech() if seg.end > self.turn_start]
        if not speech:
            return
        nexts = [s.start for s in speech[1:]] + [self.speech_done]
        for seg, after in zip(speech, nexts, strict=True):
            if after - seg.end >= gap:  # the first such silence in the turn ends it
                self._turn_due = seg.end + gap
                return

    def _end_turn(self, at: float, reason: str) -> list:
        """Close the turn ``[turn_start, at)``: flush the words, emit its frames final,
        analyse the span. Returns the frames and the :class:`TurnOut` (none for an empty
        turn)."""
        if at <= self.turn_start:
            return []
        self._flush_speech(until=at)
        with self._lock:
            self.tracker.restart(at)
            k = self.store.index_at(at)
            now = self.stream_time()
        out: list = []
        if k > self.next_emit:
            out += self._emit_final(k, now, rolling=False)
        turn = self._turn(at, reason)
        return out + ([turn] if turn is not None else [])

    def _turn(self, at: float, reason: str) -> TurnOut | None:
        """The clip-level result of the turn ending at ``at``, analysed as ``AnalyzeClip``
        analyses a clip of that span: times from the turn's start, its own words, speech
        and statistics; the next turn starts at ``at``."""
        t0 = self.turn_start
        with self._lock:
            a, b = self.store.index_at(t0), self.store.index_at(at)
            self.turn_start = at
            if b <= a:
                return None
            tl, given = self._window(a, b)
            words = [
                Word(w.start - t0, w.end - t0, w.text, w.probability)
                for w in self._words()
                if t0 - 1e-6 <= w.start < at
            ]
            speech = [
                Segment(max(seg.start, t0) - t0, min(seg.end, at) - t0)
                for seg in self.speech.all_speech()
                if seg.end > t0 and seg.start < at
            ]
            index, self.turns = self.turns, self.turns + 1
        tl.times = tl.times - t0
        tl.info = replace(tl.info, duration=round(at - t0, 4))
        tl.speech = speech
        set_words(tl, words)
        t = time.perf_counter()
        pred = self.parts.predict(tl, embed=self.text_encoder.encode, **given)
        result = self.parts.postprocess(tl, pred)
        self.clock.add("live_turn", time.perf_counter() - t)
        if self.resampler is None:
            result.warnings.append(NO_AUDIO)
        return TurnOut(index, t0, at, reason, result)

    def _emit_final(self, k: int, now: float, rolling: bool = True) -> list:
        cfg = self.cfg
        with self._lock:
            n = len(self.store)
            first = self.next_emit
            times = self.store.times
            a = self.store.index_at(times[first] - (cfg.window - cfg.final_lag))
            tl, given = self._window(a, n)
            self.next_emit = k
            self._next_eval = now + cfg.eval_interval
        t = time.perf_counter()
        pred = self.parts.predict(tl, embed=self.text_encoder.encode, **given)
        newest = float(tl.times[-1])  # the window runs past the final frames, to now
        out: list = []
        if rolling and newest >= self._next_update:
            self._next_update = newest + cfg.update_interval
            result = self.parts.postprocess(tl, pred)
            frames = result.frames[first - a : k - a]
            out.append(self._rolling(result, float(tl.times[0]), newest, n))
        else:
            frames = frame_results(tl, pred, self.threshold, range(first - a, k - a))
        self.clock.add("live_window", time.perf_counter() - t)
        return [FrameOut(first + j, f) for j, f in enumerate(frames)] + out

    def _provisional(self, i: int) -> FrameOut:
        """Frame ``i`` from a short causal window: what is known the moment it arrives."""
        with self._lock:
            a = self.store.index_at(self.store.times[i] - self.cfg.provisional_window)
            tl, given = self._window(a, i + 1)
        t = time.perf_counter()
        pred = self.parts.predict(tl, embed=self.text_encoder.encode, **given)
        frame = frame_results(tl, pred, self.threshold, [i - a])[0]
        self.clock.add("live_provisional", time.perf_counter() - t)
        return FrameOut(i, frame, final=False)

    def _window(self, a: int, b: int):
        """Timeline of frames ``[a, b)`` and what the session encoded of them, as
        :meth:`Analyzer.predict` arguments: ``emotion`` and, when kept, ``face_emb`` and
        ``voice_emb`` (lock held)."""
        info = self._info()
        tl = self.store.timeline(a, b, info, self.names)
        tl.fps = self.cfg.fps
        words: list[Word] = []
        if len(tl):
            t0, t1 = tl.times[0] - 2.5, tl.times[-1] + 1.5
            words = [w for w in self._words() if w.end > t0 and w.start < t1]
            tl.speech = [s for s in self.speech.all_speech() if s.end > t0 and s.start < t1]
        set_words(tl, words)
        tl.transcript_source = self._transcript_source()
        tl.language = self.tracker.language_found or (self.cfg.language or "")
        return tl, {"emotion": self.store.emotion(a, b), **self.store.embeddings(a, b)}

    def _transcript_source(self) -> str:
        if self.cfg.client_transcript:
            return "client"
        return "asr" if self.resampler is not None else "none"

    def _rolling(self, result: AnalysisResult, start: float, end: float, k: int) -> RollingOut:
        cues = tuple(result.explanation.cues[: self.cfg.max_cues])
        words = tuple(w for w in result.transcript if w.end > start and w.start <= end)
        return RollingOut(
            time=end,
            window_start=start,
            ah_probability=result.clip.ah_probability,
            ah_label=result.clip.ah_label,
            cues=cues,
            dominant_emotion=result.clip.dominant_emotion,
            frames_analyzed=k,
            words=words,
        )

    def _info(self) -> MediaInfo:
        cfg, clock = self.cfg, self.clock
        duration = max(clock.video_end if clock.video_frames else 0.0, self.ring.seconds)
        video_fps = clock.video_frames / clock.video_end if clock.video_end > 0 else 0.0
        return MediaInfo(
            container="live",
            duration=round(duration, 4),
            has_video=bool(cfg.video),
            has_audio=self.resampler is not None,
            width=clock.first_size[0],
            height=clock.first_size[1],
            video_codec={"jpeg": "mjpeg", "png": "png", "rgb24": "rawvideo"}.get(cfg.video, ""),
            video_fps=round(video_fps, 3),
            audio_codec="pcm_s16le" if cfg.audio_rate else "",
            sample_rate=cfg.audio_rate,
            channels=cfg.audio_channels if cfg.audio_rate else 0,
        )

    # -- end -----------------------------------------------------------------------------

    def finish(self) -> tuple[list, AnalysisResult]:
        """Analyse the whole session; returns the frames not yet emitted (and, in a session
        with turns, the last turn's :class:`TurnOut`) and the result."""
        with self._busy:
            self._check_open()
            with self._lock:
                self._finishing = True
            return self._finish()

    def _finish(self) -> tuple[list, AnalysisResult]:
        t = time.perf_counter()
        with self._lock:
            if self.resampler is not None:
                self.ring.append(self.resampler.flush())
                if not self.cfg.video:
                    self._grid_frames(self.ring.seconds)
            n = len(self.store)
            drift = self.drift()
            end = self._media_end()
        if n == 0:
            raise LiveError("the session ended before any video frame or audio was received")
        check_complete([drift] if drift else [], self.cfg.strict)  # before the analysis
        full = self.cfg.full_audio and self.ring.complete and not self.cfg.client_transcript
        if self.resampler is not None and full:
            with self._lock:
                while self._step_running:
                    self._idle.wait()
            self._full_audio_pass()
        else:
            self._flush_speech()
        with self._lock:
            tl, given = self._window(0, n)
            tl.speech = list(self.speech.all_speech())
            set_words(tl, list(self._words()))
        pred = self.parts.predict(tl, embed=self.text_encoder.encode, **given)
        result = self.parts.postprocess(tl, pred)
        self.clock.add("live_finish", time.perf_counter() - t)
        result.timings.update({k: round(v, 4) for k, v in self.clock.timings.items()})
        if self.resampler is None:
            result.warnings.append(NO_AUDIO)
        if drift:
            result.warnings.append(drift)
        if self.cfg.full_audio and not full and self.resampler is not None:
            result.warnings.append(
                f"full_audio was asked for, but the session is longer than the "
                f"{FULL_AUDIO_MAX_S:g} s of audio kept: its words are the streamed ones"
            )
        out: list = [FrameOut(i, result.frames[i]) for i in range(self.next_emit, n)]
        self.next_emit = n
        out += self._silence_turns(end)
        if self._last_turn_wanted(end):
            turn = self._turn(end, "end")
            out += [turn] if turn is not None else []
        return out, result

    def _silence_turns(self, end: float) -> list:
        """At the end: the turns that silences ended but the stream did not get to (the
        last speech steps saw them late, on a busy server), in order."""
        out = []
        while True:
            with self._lock:
                self._check_turn()
                at, self._turn_due = self._turn_due, None
            if at is None or at >= end:
                return out
            turn = self._turn(at, "silence")
            out += [turn] if turn is not None else []

    def _last_turn_wanted(self, end: float) -> bool:
        """Whether the session's last turn gets a result at the end: after a TurnMarker,
        always; with ``turn_silence``, when speech came after the last turn (a trailing
        silence is no answer)."""
        if self.turns and not self.cfg.turn_silence:
            return True
        if self.cfg.turn_silence <= 0:
            return False
        t0 = self.turn_start
        return any(s.end > t0 and s.start < end for s in self.speech.all_speech())

    def _full_audio_pass(self) -> None:
        """VAD, ASR and prosody over the whole session audio, as the offline pipeline does
        (``full_audio``): the committed words are replaced."""
        audio = self.ring.get(0, self.ring.end)
        tracker = SpeechTracker(
            self.parts.transcriber,
            self.cfg.language,
            asr=True,
            max_region=math.inf,
            window_s=ENCODER_WINDOW_S,  # decoded as AnalyzeClip decodes
        )
        new = tracker.step(SpeechState(), audio, 0.0, final=True)
        with self._lock:
            self.speech = new
            times = self.store.times[: len(self.store)].copy()
            words = self._words()
        values = tracker.prosody(audio, 0.0, times, new.all_speech(), words or None)
        if self.embeddings:
            values["voice_emb"] = self._voice(audio, 0.0, times, new.all_speech())
        with self._lock:
            self.store.set_audio(0, values)

    def close(self) -> None:
        """Free the face models and buffers (waits for a frame being processed)."""
        with self._busy, self._lock:
            self.closed = True
            if self._faces is not None:
                self._faces.close()
                self._faces = None
            self.text_encoder.clear_cache()
            self._since_fresh = []
            self.client_words = []
            self.speech = SpeechState()
