"""From media to one :class:`~ahmer.preprocessing.timeline.Timeline`.

The audio branch (decode, voice activity, ASR) runs in a worker thread while the main thread
decodes frames and tracks faces: CTranslate2, MediaPipe and FFmpeg release the GIL, so on two
cores the two branches overlap. Then prosody and words are sampled at the frame times.

Cancelling. ``preprocess(cancel=...)`` asks ``cancel()`` before every analysis frame, between
the stages (probe, audio decode, voice activity, ASR, prosody) and inside the long ones of the
audio branch (every 10 s of audio decoded, every 32 s of audio scored for voice activity,
every ASR segment), and raises :class:`Cancelled` once it is true: both branches stop, so a
caller that has gone away leaves little work behind (the figures: ``bench/README.md``).

Partial media. A stream that decodes to less than its declared duration (a cut or damaged
file; the tolerance: :mod:`.truncation`) gives a ``truncated media: ...`` warning in the
timeline, naming the decoded and declared seconds. With ``PreprocessConfig.strict`` it is an
error instead: :func:`check_complete`, the one place strictness is applied, raises
:class:`~.media.TruncatedMedia` as soon as either branch knows (the other one stops).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import errors
from .face_options import DEFAULT_ENGINE, DEFAULT_LANDMARK_FPS
from .media import (
    DecodeReport,
    MediaError,
    MediaSource,
    TruncatedMedia,
    iter_frames,
    load_audio,
    probe,
)
from .options import DEFAULT_FPS, RULES
from .prosody import compute_prosody
from .timeline import SAMPLE_RATE, MediaInfo, Segment, Timeline, Word
from .transcript import align_transcript, parse_transcript
from .truncation import is_incomplete
from .vad import VadError, run_vad

__all__ = [
    "Cancelled",
    "PreprocessConfig",
    "Progress",
    "audio_features",
    "check_complete",
    "preprocess",
    "raise_if_cancelled",
    "set_words",
    "speech_at",
    "word_index_at",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
"""``progress(stage, fraction_done)``; called from the main thread."""


class Cancelled(errors.Cancelled):
    """The work stopped because its ``cancel`` said so."""


def raise_if_cancelled(cancel: Callable[[], bool] | None) -> None:
    """Raise :class:`Cancelled` when ``cancel`` is given and returns true."""
    if cancel is not None and cancel():
        raise Cancelled("the analysis was cancelled")


def check_complete(warnings: list[str], strict: bool) -> None:
    """Strict analysis refuses partial media: raise :class:`~.media.TruncatedMedia` when
    ``strict`` and ``warnings`` hold a truncation (or live audio/video drift) warning
    (:func:`.truncation.is_incomplete`). Clips, batches, the server and live sessions all
    apply strictness here."""
    found = [w for w in warnings if is_incomplete(w)]
    if strict and found:
        raise TruncatedMedia("; ".join(found) + "; strict analysis refuses partial media")


@dataclass
class PreprocessConfig:
    """What to run and with which model files (paths come from the model store)."""

    fps: float = DEFAULT_FPS
    face_landmarker: Path | None = None
    face_detector: Path | None = None
    short_range_detector: Path | None = None
    # tiered faces: the full landmarker at about this rate, the short-range detector's
    # keypoints in between (0 = landmarks on every analysis frame); see faces.py
    landmark_fps: float = DEFAULT_LANDMARK_FPS
    face_search_every: int = 5
    # "litert": MediaPipe's face models run directly (the default, faster); "tasks":
    # through MediaPipe Tasks (the reference); see faces.py and face_models.py
    face_engine: str = DEFAULT_ENGINE
    # LiteRT threads per face model: 1, as ASR runs beside the face stage (on 2 cores, 2 face
    # threads made the whole clip slower, the face stage no faster: bench/README.md)
    face_threads: int = 1
    whisper_model: str | Path | None = None
    language: str | None = None
    asr: bool = True
    max_faces: int = 4
    crop_size: int = 112
    max_side: int = 1280
    asr_threads: int = 0  # CTranslate2 threads; 0: asr.auto_threads (by the cores)
    sample_rate: int = SAMPLE_RATE
    # partial media (a stream short of its declared duration) is an error, not a warning
    strict: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, rule in RULES.items():
            rule.check(name, getattr(self, name))

    @property
    def landmarks_every(self) -> int:
        """Run the landmarker on every k-th analysis frame (1 with ``landmark_fps`` 0, or
        without a short-range detector on the Tasks engine)."""
        if self.landmark_fps <= 0:
            return 1
        if self.short_range_detector is None and self.face_engine == "tasks":
            return 1
        return max(1, round(self.fps / self.landmark_fps))

    def face_analyzer(self):
        """A :class:`~ahmer.preprocessing.faces.FaceAnalyzer` set up as this config says."""
        from .faces import FaceAnalyzer

        return FaceAnalyzer(
            self.face_landmarker,
            detector_path=self.face_detector,
            max_faces=self.max_faces,
            crop_size=self.crop_size,
            landmarks_every=self.landmarks_every,
            # the LiteRT engine follows faces with the landmarker bundle's own short-range
            # detector (the same model); loading the store's copy too would be work twice
            short_range_detector_path=(
                self.short_range_detector if self.face_engine == "tasks" else None
            ),
            face_search_every=self.face_search_every,
            engine=self.face_engine,
            threads=self.face_threads,
        )


class _Stopped(errors.Cancelled):
    """The caller stopped (an exception in the main thread): the audio branch gives up."""


@dataclass
class _AudioState:
    """Shared between the main thread and the audio branch: how far ASR got, whether the
    main thread has given up, and the caller's ``cancel``; :meth:`check` (asked between the
    audio stages and inside them) raises when either says stop. ``refused``: the audio
    branch's :class:`TruncatedMedia` (strict), which stops the video branch too."""

    asr_fraction: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    cancel: Callable[[], bool] | None = None
    refused: TruncatedMedia | None = None

    def video_cancel(self) -> bool:
        """The video branch's ``cancel``: the caller's, or the audio branch refused."""
        return self.refused is not None or (self.cancel is not None and bool(self.cancel()))

    def check(self) -> None:
        if self.stop.is_set():
            raise _Stopped("preprocessing was stopped")
        raise_if_cancelled(self.cancel)

    def asr_progress(self, fraction: float) -> None:
        self.check()
        self.asr_fraction = fraction


@dataclass
class _AudioResult:
    audio: np.ndarray | None = None
    speech: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    language: str = ""
    source: str = "none"
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def preprocess(
    source: MediaSource,
    config: PreprocessConfig | None = None,
    transcript: str | bytes | None = None,
    transcript_format: str | None = None,
    progress: Progress | None = None,
    transcriber=None,
    face_analyzer=None,
    cancel: Callable[[], bool] | None = None,
) -> Timeline:
    """Decode ``source`` and fill a :class:`Timeline` at ``config.fps``.

    ``transcript`` (plain text, WebVTT, SRT or JSON words) replaces ASR when given.
    ``transcriber`` is an already loaded :class:`~ahmer.preprocessing.asr.Transcriber`
    (reused across calls by servers); otherwise one is made from ``config.whisper_model``.
    ``face_analyzer`` is a :class:`~ahmer.preprocessing.faces.FaceAnalyzer` to reuse (it is
    reset, not closed; one clip at a time); otherwise one is made and closed here.
    ``cancel`` (e.g. a :class:`threading.Event`'s ``is_set``) is asked as the module
    docstring says; once it returns true, :class:`Cancelled` is raised.
    Raises :class:`MediaError` when the input has neither usable video nor audio.
    """
    config = config or PreprocessConfig()
    if hasattr(source, "read"):
        source = source.read()  # several passes over the media: keep the bytes in memory
    t0 = time.perf_counter()
    info = probe(source)
    timings = {"probe": time.perf_counter() - t0}
    if not info.has_video and not info.has_audio:
        raise MediaError("the input has neither a video nor an audio stream")
    raise_if_cancelled(cancel)

    client = parse_transcript(transcript, transcript_format) if transcript is not None else None
    state = _AudioState(cancel=cancel)
    pool = ThreadPoolExecutor(1, thread_name_prefix="ahmer-audio")
    try:
        audio_job = pool.submit(_audio_branch, source, info, config, client, transcriber, state)
        try:
            times, faces, names, video_warnings = _video_branch(
                source, info, config, timings, progress, face_analyzer, state.video_cancel
            )
            audio_result = _wait_for_audio(audio_job, state, progress)
        except BaseException as exc:  # Ctrl-C, a cancelled call, a bad video: stop ASR too
            state.stop.set()
            if isinstance(exc, Cancelled) and state.refused is not None:
                raise state.refused from None  # the audio branch refused the media
            raise
    finally:
        # after a stop the audio branch ends at its next check, but an ASR window already
        # being decoded runs to its end: the caller does not wait for it (a Ctrl-C or a
        # cancelled call returns at once); after success the branch is already done
        pool.shutdown(wait=False)

    if times is None and audio_result.audio is None:  # e.g. a WAV with no samples
        why = "; ".join(video_warnings + audio_result.warnings) or "no frames, no samples"
        raise MediaError(f"nothing to analyse: {why}")
    if times is None:  # audio only: a regular grid over the duration
        n = max(1, int(np.floor(info.duration * config.fps + 1e-6)))
        times = np.arange(n, dtype=np.float64) / config.fps
    tl = Timeline.empty(times, config.fps, info, n_blendshapes=len(names) or 52)
    tl.blendshape_names = names
    tl.warnings.extend(video_warnings + audio_result.warnings)
    if faces is not None:
        _fill_faces(tl, faces, config.crop_size)
        tl.masks["video"][:] = True

    tl.audio = audio_result.audio
    tl.sample_rate = config.sample_rate
    tl.speech = audio_result.speech
    set_words(tl, audio_result.words)
    tl.language = audio_result.language
    tl.transcript_source = audio_result.source
    timings.update(audio_result.timings)
    if tl.audio is not None and len(tl.audio):
        raise_if_cancelled(cancel)
        t = time.perf_counter()
        _fill_audio(tl, config)
        timings["prosody"] = time.perf_counter() - t
    tl.timings = {k: round(v, 4) for k, v in timings.items()}
    if progress:
        progress("done", 1.0)
    return tl


def _wait_for_audio(job, state: _AudioState, progress: Progress | None) -> _AudioResult:
    """The audio branch's result; meanwhile report ASR progress (long audio-only files spend
    most of their time there) and give ``progress`` the chance to stop the wait."""
    if progress is None:
        return job.result()
    while True:
        try:
            return job.result(timeout=0.5)
        except TimeoutError:
            progress("speech", state.asr_fraction)


# -- video ---------------------------------------------------------------------------------


def _video_branch(
    source, info: MediaInfo, config: PreprocessConfig, timings, progress, shared=None, cancel=None
):
    """Decode frames at the analysis rate and track faces. Returns times, per-frame faces
    (primary first, or an empty list), blendshape names and warnings."""
    if not info.has_video:
        return None, None, [], []
    from .faces import FaceError, interpolate_landmark_gaps

    analyzer = shared
    warnings: list[str] = []
    if shared is not None:
        shared.reset()
        shared.set_landmarks_every(config.landmarks_every)
    elif config.face_landmarker is not None:
        analyzer = config.face_analyzer()
    else:
        warnings.append("no face model configured: faces were not analysed")
    times: list[float] = []
    faces: list[list] = []
    face_errors = 0
    decode_s = faces_s = 0.0
    expected = max(1, int(info.duration * config.fps)) if info.duration else 0
    report = DecodeReport()
    try:
        frames = iter_frames(source, fps=config.fps, max_side=config.max_side, report=report)
        t = time.perf_counter()
        for frame in frames:
            raise_if_cancelled(cancel)
            now = time.perf_counter()
            decode_s += now - t
            found = []
            if analyzer is not None:
                try:
                    found = analyzer.process(frame.image, frame.time)
                except FaceError:  # an odd frame: no face for it, the clip goes on
                    face_errors += 1
            t = time.perf_counter()
            faces_s += t - now
            times.append(frame.time)
            faces.append(found)
            if progress and expected and len(times) % 10 == 0:
                progress("frames", min(1.0, len(times) / expected))
    except MediaError as exc:
        if not times:
            if info.has_audio:  # keep the audio-only analysis, say why video is missing
                warnings.append(f"video could not be decoded: {exc}")
                _add_shortfall(warnings, report, "video", config.strict)
                return None, None, [], warnings
            raise
        warnings.append(f"video decoding stopped early at {times[-1]:.2f}s: {exc}")
    finally:
        names = list(analyzer.blendshape_names) if analyzer is not None else []
        if analyzer is not None and shared is None:
            analyzer.close()
    _add_shortfall(warnings, report, "video", config.strict)
    if face_errors:
        warnings.append(f"{face_errors} frame(s) could not be analysed for faces")
    timings["decode"] = decode_s
    timings["faces"] = faces_s
    if not times:
        warnings.append("the video stream held no decodable frames")
        return None, None, names, warnings
    if config.landmarks_every > 1:  # offline: interpolate what tiered mode carried forward
        faces = interpolate_landmark_gaps(faces, times)
    return np.asarray(times, np.float64), faces, names, warnings


def _fill_faces(tl: Timeline, faces: list[list], crop_size: int) -> None:
    n = len(tl)
    crops = np.zeros((n, crop_size, crop_size, 3), np.uint8)
    for i, found in enumerate(faces):
        tl.face_count[i] = len(found)
        if not found:
            continue
        face = found[0]
        tl.masks["face"][i] = True
        tl.face_box[i] = face.box
        tl.face_track[i] = face.track_id
        tl.face_score[i] = face.score
        tl.face_quality[i] = face.quality
        tl.head_pose[i] = face.pose
        if len(face.blendshapes) == tl.blendshapes.shape[1]:
            tl.blendshapes[i] = face.blendshapes
        if face.crop is not None and face.crop.shape[:2] == (crop_size, crop_size):
            crops[i] = face.crop
    tl.crops = crops


# -- audio ---------------------------------------------------------------------------------


def _audio_branch(
    source, info: MediaInfo, config: PreprocessConfig, client, transcriber, state=None
):
    state = state or _AudioState()
    result = _AudioResult()
    if not info.has_audio:
        result.warnings.append("no audio track: vocal and spoken cues are absent")
        if client is not None:  # words without audio: spread over the whole clip
            result.words = _client_words(client, [], info.duration, result.warnings)
            result.source = "client"
        return result
    t = time.perf_counter()
    state.check()
    report = DecodeReport()
    try:
        audio = load_audio(source, sample_rate=config.sample_rate, report=report, check=state.check)
    except MediaError as exc:
        result.warnings.append(f"audio could not be decoded: {exc}")
        audio = None
    try:
        _add_shortfall(result.warnings, report, "audio", config.strict)
    except TruncatedMedia as exc:
        state.refused = exc  # the video branch stops at its next frame
        raise
    if audio is None:
        return result
    result.timings["audio_decode"] = time.perf_counter() - t
    if len(audio) < config.sample_rate // 100:  # under 10 ms: nothing to listen to
        result.warnings.append("the audio track holds no samples: vocal cues are absent")
        return result
    result.audio = audio
    duration = len(audio) / config.sample_rate
    state.check()
    t = time.perf_counter()
    try:
        result.speech = run_vad(audio, config.sample_rate, check=state.check).segments
    except VadError as exc:
        result.warnings.append(f"voice activity could not be detected: {exc}")
    result.timings["vad"] = time.perf_counter() - t
    if client is not None:
        duration = max(duration, info.duration)
        result.words = _client_words(client, result.speech, duration, result.warnings)
        result.source = "client"
    elif config.asr and result.speech:
        if transcriber is None and config.whisper_model is not None:
            from .asr import Transcriber

            # a broken model is an error of the setup, not of this clip: raise it here
            transcriber = Transcriber(config.whisper_model, cpu_threads=config.asr_threads)
            transcriber.load()
        if transcriber is None:
            result.warnings.append("no ASR model configured: words were not transcribed")
            return result
        from .asr import AsrError

        state.check()
        t = time.perf_counter()
        try:
            transcript = transcriber.transcribe(
                audio,
                language=config.language,
                vad_segments=result.speech,
                on_progress=state.asr_progress,
            )
        except AsrError as exc:  # this clip's audio, not the model: keep the rest
            result.warnings.append(f"speech could not be transcribed: {exc}")
            return result
        result.timings["asr"] = time.perf_counter() - t
        result.words = list(transcript.words)
        result.language = transcript.language
        result.source = "asr"
    return result


def _add_shortfall(warnings: list[str], report: DecodeReport, stream: str, strict: bool) -> None:
    """Add the ``stream``'s truncation warning, if any, to ``warnings``; strict: raise it."""
    warning = report.shortfall(stream)
    if warning is not None:
        warnings.append(warning)
        check_complete([warning], strict)


def _client_words(client, speech: list[Segment], duration: float, warnings: list[str]):
    """The client's transcript aligned to the media; timed words or cues that start after
    the media ends are dropped, and a warning says how many (counts only, never words)."""
    words = align_transcript(client, speech, duration)
    timed = {"words": client.words, "cues": client.cues}.get(client.timing, [])
    late = sum(1 for item in timed if item.start >= duration)
    if late:
        unit = "word" if client.timing == "words" else "cue"
        warnings.append(
            f"{late} of {len(timed)} transcript {unit}s start after the media ends "
            f"({duration:.1f}s) and were dropped"
        )
    return words


def _fill_audio(tl: Timeline, config: PreprocessConfig) -> None:
    features = audio_features(tl.audio, config.sample_rate, tl.times, tl.speech, tl.words or None)
    tl.masks["audio"] = features.pop("audio")
    tl.vad = speech_at(tl.speech, tl.times).astype(np.float32)
    tl.masks["speech"] = tl.vad > 0.5
    for key, values in features.items():
        setattr(tl, key, values)


def audio_features(
    audio: np.ndarray,
    sample_rate: int,
    times: np.ndarray,
    speech: list[Segment],
    words: list[Word] | None,
) -> dict[str, np.ndarray]:
    """Per-frame audio features at ``times`` (seconds from the first sample of ``audio``;
    ``speech`` and ``words`` on the same clock): ``audio`` (the frame lies inside the audio)
    and the prosody of the timeline's fields ``energy_db``, ``f0_hz``, ``voiced``,
    ``speech_rate``, ``pause_s``, NaN (``voiced`` False) past the audio's end. Whole clips
    and live windows both take their audio features from here."""
    pros = compute_prosody(audio, sample_rate, times, speech, words)
    inside = times < len(audio) / sample_rate
    energy, f0, voiced = pros.energy_db, pros.f0_hz, pros.voiced
    energy[~inside], f0[~inside], voiced[~inside] = np.nan, np.nan, False
    return {
        "audio": inside,
        "energy_db": energy,
        "f0_hz": f0,
        "voiced": voiced,
        "speech_rate": pros.speech_rate,
        "pause_s": pros.pause_s,
    }


def speech_at(speech: list[Segment], times: np.ndarray) -> np.ndarray:
    """Per time, whether it lies inside one of the voice-activity ``speech`` segments."""
    out = np.zeros(len(times), bool)
    for seg in speech:
        out |= (times >= seg.start) & (times < seg.end)
    return out


def set_words(tl: Timeline, words: list[Word]) -> None:
    """Give ``tl`` its ``words`` and what follows from them: per frame, the index of the word
    being spoken (``tl.word_index``) and the ``words`` mask. Whole clips and live windows both
    set their words here."""
    tl.words = words
    tl.word_index = word_index_at(words, tl.times)
    tl.masks["words"] = tl.word_index >= 0


def word_index_at(words: list[Word], times: np.ndarray) -> np.ndarray:
    """Index of the word being spoken at each time (-1 between words)."""
    index = np.full(len(times), -1, np.int32)
    if not words:
        return index
    starts = np.array([w.start for w in words])
    ends = np.array([w.end for w in words])
    pos = np.searchsorted(starts, times, side="right") - 1
    ok = (pos >= 0) & (ends[np.clip(pos, 0, None)] > times)
    index[ok] = pos[ok]
    return index
