"""Speech recognition with faster-whisper (CTranslate2): timed words of what was said.

:class:`Transcriber` wraps ``faster_whisper.WhisperModel``. The model is a CTranslate2 Whisper
folder (the model store's ``whisper_tiny_en``, passed in by the caller) or a name that
faster-whisper knows (``"small.en"``, ``"Systran/faster-whisper-base"``); names are downloaded
from the Hugging Face Hub and so only work where the user has network. The service itself
passes store folders and never downloads.

Decoding choices, measured on espeak-ng speech with tiny.en int8 on 2 CPU cores (the figures
are in ``bench/README.md``, "Measured by hand", and ``tests/test_asr.py``):

- ``word_timestamps=True``, ``condition_on_previous_text=False`` (no hallucination loops
  carried from one window to the next), greedy decoding (``beam_size=1``): beam 5 gave the same
  word error rate on the test sentences in several times the time.
- Filled pauses ("um", "uh", "hmm", "er") are a hesitancy cue, and Whisper tends to drop them.
  A short prompt full of fillers (:data:`FILLER_PROMPT`) keeps most of them and lowers the
  word error rate on the test sentences. It is given as faster-whisper's ``hotwords``, which
  is prepended to *every* 30 s window; faster-whisper's ``initial_prompt`` is forgotten after
  the first window when ``condition_on_previous_text`` is off. ``suppress_tokens=[]`` /
  ``suppress_blank=False`` kept no more fillers and let "[BLANK_AUDIO]" through, so the
  defaults stay.
- Only speech is decoded: the VAD segments (given, or computed here) are merged across
  pauses shorter than :data:`MERGE_GAP_S` (no second VAD pass). Decoding whole sentences
  keeps the context that single short segments lose, and cutting long silences keeps
  Whisper from inventing words in them; this was as fast as concatenating the speech
  (faster-whisper's ``vad_filter``) and placed utterance onsets better. Audio without speech
  is not decoded at all (Whisper hallucinates "Thank you." in silence).
- Two ways to decode those regions (:data:`DECODINGS`). ``"batched"`` (the default): the
  merged regions are cut into chunks of at most :data:`CHUNK_S` (at pauses) and decoded by
  faster-whisper's ``BatchedInferencePipeline`` without timestamp tokens (word times come
  from the alignment pass): each chunk costs one encoder window. Chunks per encoder and
  decoder call: 1 on the CPU, :data:`BATCH_SIZE` on a GPU. A call cannot be stopped
  midway, so a cancel waits for the chunks in it; on the CPU batching saved little
  (``bench/README.md``), less than keeping a cancel's leftover at one window is worth.
  The encoder window is 30 s (3000 mel frames; shorter chunks are zero-padded), unless the
  call asks for a shorter one (``AsrOptions.window_s``): the features are then cut to that
  window and chunks kept :data:`WINDOW_MARGIN_S` shorter. The encoder's cost is about
  proportional to its window, so a 15 s window halves it, which is what live passes over a
  few seconds of audio need (:data:`STREAM_WINDOW_S`). Whisper was trained on padded 30 s
  windows: with windows under ~10 s tiny.en repeats the last words or invents some after
  the speech; at 15 s the words differed from 30 s windows in a few of 20 test excerpts
  (``bench/README.md``). Whole clips keep 30 s.
  ``"sequential"`` (the path before): the regions go to
  ``WhisperModel.transcribe`` as ``clip_timestamps``, which decodes with timestamp tokens
  and seeks window by window, so a region of 25-30 s often costs two encoder windows (the
  second starting at the last complete segment). Kept for comparison
  (``bench/asr_paths.py``); the word error rates and word-time differences between the two
  are in ``bench/README.md``.
- Whisper's word boundaries tend to swallow the pause before a word. Each word is therefore
  trimmed to the VAD segment it overlaps most, so that pauses measured from words match
  the silences measured from the audio; words outside every speech segment are dropped
  (with the filler prompt, Whisper writes "uh, hmm" over tones and clicks).

Word times are seconds from the start of the given audio. Privacy: a :class:`Transcript`'s
``repr`` shows counts only, and nothing here logs text.

:meth:`Transcriber.encoder_states` runs only Whisper's encoder (CTranslate2) over 30 s
windows: a speech representation from the model already loaded for ASR, pooled to frames by
:mod:`ahmer.preprocessing.voice`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import Cancelled, Internal
from .timeline import SAMPLE_RATE, Segment, Word
from .vad import check_audio, run_vad

__all__ = [
    "BATCH_SIZE",
    "CHUNK_S",
    "DECODINGS",
    "DEFAULT_DECODING",
    "ENCODER_HOP_S",
    "ENCODER_WINDOW_S",
    "FILLER_PROMPT",
    "MERGE_GAP_S",
    "MIN_WINDOW_S",
    "STREAM_WINDOW_S",
    "WINDOW_MARGIN_S",
    "AsrError",
    "AsrOptions",
    "Transcript",
    "Transcriber",
    "auto_threads",
    "speech_chunks",
]

log = logging.getLogger(__name__)

FILLER_PROMPT = "So, um, I was like, uh, you know, hmm, er, not sure."
MERGE_GAP_S = 2.0  # speech segments closer than this are decoded together
DECODINGS = ("batched", "sequential")
DEFAULT_DECODING = "batched"
CHUNK_S = 30.0  # the longest chunk of the batched decoding: one encoder window
BATCH_SIZE = 8  # chunks per encoder/decoder call of the batched decoding on a GPU
ENCODER_WINDOW_S = 30  # Whisper's encoder always sees 30 s (3000 mel frames, zero-padded)
ENCODER_HOP_S = 0.02  # one encoder state per 20 ms (10 ms mel hop, stride-2 convolution)
MIN_WINDOW_S = 10.0  # shorter encoder windows make tiny.en repeat and invent words
STREAM_WINDOW_S = 15.0  # the encoder window of live passes (buffers of a few seconds)
WINDOW_MARGIN_S = 1.0  # a chunk stays this much shorter than a window under 30 s
_MEL_PER_S = 100  # log-mel frames per second (10 ms hop)
_ENCODER_BATCH = 4  # windows per encoder call
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class AsrError(Internal, RuntimeError):
    """The model cannot be loaded or the audio cannot be transcribed."""


@dataclass(frozen=True)
class AsrOptions:
    """How one call of :meth:`Transcriber.transcribe_window` decodes.

    ``language``: an ISO code, or ``None`` to detect it. ``initial_prompt``: text shown to
    the decoder before every window (:data:`FILLER_PROMPT` keeps filled pauses; ``None`` or
    ``""`` for none). ``decoding``: one of :data:`DECODINGS`. ``batch_size``: chunks per
    call of the batched decoding (``None``: 1 on the CPU, :data:`BATCH_SIZE` on a GPU; see
    the module docstring). ``merge_gap_s``: speech segments closer than this are decoded
    together. ``window_s``: the encoder window of the batched decoding, seconds
    (:data:`MIN_WINDOW_S` to :data:`ENCODER_WINDOW_S`): under 30 s the features are cut to it
    instead of padded to 30 s and the chunks kept :data:`WINDOW_MARGIN_S` shorter; cheaper
    for short audio, slightly different words (the module docstring)."""

    language: str | None = None
    initial_prompt: str | None = FILLER_PROMPT
    decoding: str = DEFAULT_DECODING
    batch_size: int | None = None
    merge_gap_s: float = MERGE_GAP_S
    window_s: float = ENCODER_WINDOW_S

    def __post_init__(self) -> None:
        if self.decoding not in DECODINGS:
            raise AsrError(f"decoding must be one of {', '.join(DECODINGS)}, got {self.decoding!r}")
        size = self.batch_size
        if size is not None and not (isinstance(size, int) and 1 <= size <= 64):
            raise AsrError(f"batch_size must be an integer in 1..64, got {self.batch_size!r}")
        if not (0.0 <= self.merge_gap_s < 1e6):
            raise AsrError(f"merge_gap_s must be >= 0, got {self.merge_gap_s!r}")
        if not (MIN_WINDOW_S <= self.window_s <= ENCODER_WINDOW_S):
            raise AsrError(
                f"window_s must be in {MIN_WINDOW_S:g}..{ENCODER_WINDOW_S} s, got {self.window_s!r}"
            )
        if self.window_s < ENCODER_WINDOW_S and self.decoding != "batched":
            raise AsrError("window_s under 30 s needs the batched decoding")

    @property
    def chunk_s(self) -> float:
        """The longest chunk decoded in one encoder window."""
        if self.window_s >= ENCODER_WINDOW_S:
            return CHUNK_S
        return self.window_s - WINDOW_MARGIN_S


def auto_threads(cores: int | None = None) -> int:
    """CTranslate2 threads per decode when the caller leaves it to us (``cpu_threads=0``):
    every core on up to 2 cores, else half the cores up to 4. On 2 cores the video branch
    finishes well before the audio branch, so a second ASR thread shortens the clip: 3.40 s
    against 3.81 s for the 30 s bench clip on a quiet 2-core EPYC, the same results
    (``bench/README.md``)."""
    from .host import host_info

    cores = host_info().cores if cores is None else cores
    return max(1, cores) if cores <= 2 else min(4, cores // 2)


@dataclass(frozen=True, repr=False)
class Transcript:
    """What was said: timed words, the language, Whisper's segments (time spans) and the
    text (the words joined by spaces).

    ``repr`` (and ``str``) show counts only: logs must never carry what a person said.
    """

    words: list[Word]
    language: str
    segments: list[Segment]
    text: str = field(default="", repr=False)
    duration: float = 0.0

    def __repr__(self) -> str:
        return (
            f"Transcript(words={len(self.words)}, segments={len(self.segments)}, "
            f"language={self.language!r}, duration={self.duration:.2f})"
        )

    __str__ = __repr__


class Transcriber:
    """faster-whisper behind a small, thread-safe interface.

    ``model``: a CTranslate2 Whisper folder (holding ``model.bin``, ``config.json`` and
    ``tokenizer.json``) or a faster-whisper model name / Hub id (downloaded: needs network).
    ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"``; ``compute_type``: CTranslate2's
    (``"int8"`` on CPU, ``"float16"`` or ``"int8_float16"`` on GPU). ``cpu_threads``: threads
    per decode (0: :func:`auto_threads`, chosen by the cores this process may use).
    ``num_workers``: decodes that may run at once when several threads call
    :meth:`transcribe`. ``beam_size``: 1 (greedy) is the measured best trade-off on CPU.
    ``decoding``: :data:`DEFAULT_DECODING` or ``"sequential"`` (the module docstring says
    how they differ), the default of every call.

    The model loads on first use or on :meth:`load`; both are safe to call from several
    threads, and so is :meth:`transcribe`.
    """

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        num_workers: int = 1,
        beam_size: int = 1,
        decoding: str = DEFAULT_DECODING,
    ) -> None:
        if cpu_threads < 0 or num_workers < 1 or beam_size < 1:
            raise AsrError("cpu_threads must be >= 0, num_workers and beam_size >= 1")
        AsrOptions(decoding=decoding)  # checks the name
        self.decoding = decoding
        self.model = model
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.beam_size = beam_size
        self._whisper = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Transcriber(model={str(self.model)!r}, device={self.device!r}, "
            f"compute_type={self.compute_type!r}, loaded={self.loaded})"
        )

    @property
    def loaded(self) -> bool:
        return self._whisper is not None

    def load(self) -> Transcriber:
        """Load the model now (otherwise the first :meth:`transcribe` does)."""
        if self._whisper is None:
            with self._lock:
                if self._whisper is None:
                    self._whisper = self._load()
        return self

    def _load(self):
        source = _model_source(self.model)
        threads = self.cpu_threads or (auto_threads() if self.device == "cpu" else 0)
        try:
            from faster_whisper import WhisperModel

            t = time.perf_counter()
            whisper = WhisperModel(
                source,
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=threads,
                num_workers=self.num_workers,
            )
        except Exception as exc:  # ctranslate2/hub errors have no common type
            why = " ".join(str(exc).split()) or type(exc).__name__  # one line (hub errors: two)
            hint = "" if os.path.isdir(source) else " (a name needs network to download it)"
            raise AsrError(
                f"could not load Whisper model {str(self.model)!r}{hint}: {why}"
            ) from exc
        from .host import host_info, simd_summary

        host = host_info()
        log.info(
            "loaded Whisper model %s on %s (%s, %s thread(s)%s, %s decoding) in %.2f s "
            "[%d cores; %s]",
            Path(source).name if os.path.isdir(source) else source,
            self.device,
            self.compute_type,
            threads or "default",
            "" if self.cpu_threads else " chosen by core count",
            self.decoding,
            time.perf_counter() - t,
            host.cores,
            simd_summary(host.flags),
        )
        return whisper

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = None,
        vad_segments: Sequence[Segment] | None = None,
        initial_prompt: str | None = FILLER_PROMPT,
        sample_rate: int = SAMPLE_RATE,
        on_progress: Callable[[float], None] | None = None,
    ) -> Transcript:
        """Transcribe 16 kHz mono float ``audio``.

        ``language``: an ISO code such as ``"en"``, or ``None`` to detect it (English-only
        models always answer ``"en"``). ``vad_segments``: the speech segments already found
        (``preprocessing.vad``); ``None`` runs the VAD here. Only speech is decoded, and no
        speech gives an empty transcript. ``initial_prompt``: text shown to the decoder
        before every window (the default keeps filled pauses; ``None`` or ``""`` for none).
        ``on_progress(fraction)`` is called before the first window is decoded (with 0.0)
        and after each decoded segment with the fraction of the audio covered so far; an
        exception it raises stops decoding and propagates (a caller's way to cancel a long
        transcription between segments). Decoded as :attr:`decoding` says
        (:meth:`transcribe_window` takes every option).
        """
        options = AsrOptions(language, initial_prompt, self.decoding)
        return self.transcribe_window(audio, options, vad_segments, sample_rate, on_progress)

    def transcribe_window(
        self,
        audio: np.ndarray,
        options: AsrOptions | None = None,
        vad_segments: Sequence[Segment] | None = None,
        sample_rate: int = SAMPLE_RATE,
        on_progress: Callable[[float], None] | None = None,
    ) -> Transcript:
        """Transcribe a window of 16 kHz mono float ``audio`` (a whole clip, or a live
        buffer) with ``options`` (:class:`AsrOptions`; ``None``: the defaults with this
        transcriber's :attr:`decoding`). ``vad_segments`` and ``on_progress`` as for
        :meth:`transcribe`. Word times are seconds from the window's first sample."""
        options = options or AsrOptions(decoding=self.decoding)
        language = options.language
        audio = _check_audio(audio, sample_rate)
        duration = len(audio) / SAMPLE_RATE
        if vad_segments is None:
            vad_segments = run_vad(audio, SAMPLE_RATE).segments
        speech = _clip_segments(vad_segments, duration)
        if not speech:
            return Transcript([], language or "", [], "", duration)
        whisper = self.load()._whisper
        t = time.perf_counter()
        common = {
            "language": language,
            "beam_size": self.beam_size,
            "word_timestamps": True,
            "vad_filter": False,
            "hotwords": options.initial_prompt or None,
        }
        try:
            if options.decoding == "batched":
                clips = speech_chunks(speech, options.merge_gap_s, options.chunk_s)
                # a pipeline per call: it keeps state between its batches
                pieces, info = _pipeline(whisper, options.window_s).transcribe(
                    audio,
                    without_timestamps=True,
                    clip_timestamps=[{"start": c.start, "end": c.end} for c in clips],
                    batch_size=options.batch_size or self._batch_size(),
                    **common,
                )
            else:
                clips = _merge(speech, options.merge_gap_s)
                pieces, info = whisper.transcribe(
                    audio,
                    condition_on_previous_text=False,
                    clip_timestamps=[t for seg in clips for t in (seg.start, seg.end)],
                    **common,
                )
            pieces = _decode(pieces, duration, on_progress)
        except _Interrupted as stop:
            raise stop.cause from None
        except Exception as exc:
            raise AsrError(f"transcription failed: {type(exc).__name__}: {exc}") from exc
        words: list[Word] = []
        segments: list[Segment] = []
        for piece in pieces:
            start, end = _clamp(piece.start, piece.end, duration)
            segments.append(Segment(start, end))
            for w in piece.words or []:
                text = w.word.strip()
                if text:
                    ws, we = _clamp(w.start, w.end, duration)
                    words.append(Word(ws, we, text, float(w.probability)))
        words = _snap_to_speech(words, speech)
        log.debug(
            "transcribed %.1f s of audio (%d %s chunks): %d words in %.2f s",
            duration,
            len(clips),
            options.decoding,
            len(words),
            time.perf_counter() - t,
        )
        text = " ".join(w.text for w in words)
        return Transcript(words, info.language, segments, text, duration)

    def _batch_size(self) -> int:
        """Chunks per call when the options leave it open: 1 on the CPU, where a cancel
        waits for the whole call and batching saves little; :data:`BATCH_SIZE` on a GPU."""
        return 1 if self.device == "cpu" else BATCH_SIZE

    def encoder_states(
        self,
        audio: np.ndarray,
        windows: Sequence[int] | None = None,
        check: Callable[[], None] | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> np.ndarray:
        """Whisper's encoder output for 16 kHz mono float ``audio``: ``[S, d_model]``
        float32, state ``k`` covering ``[k, k + 1) * ENCODER_HOP_S`` seconds, ``S =
        ceil(len(audio) / 320)``.

        The audio is cut into :data:`ENCODER_WINDOW_S` windows, each turned into log-mel
        features by faster-whisper's own extractor (so each window is normalised on its own,
        as faster-whisper's batched pipeline does) and padded to 30 s as the encoder needs;
        the states past a window's end are dropped. ``windows``: indices of the windows to
        encode (others stay zero), e.g. only those with speech. ``check()`` is called before
        each encoder call (raise to stop). Thread-safe, like :meth:`transcribe`."""
        audio = _check_audio(audio, sample_rate)
        window = ENCODER_WINDOW_S * SAMPLE_RATE
        per_state = int(round(ENCODER_HOP_S * SAMPLE_RATE))
        frames = window // per_state  # states per full window
        count = -(-len(audio) // window)
        wanted = sorted(set(range(count) if windows is None else windows) & set(range(count)))
        out = np.zeros((-(-len(audio) // per_state), self.encoder_width()), np.float32)
        for start in range(0, len(wanted), _ENCODER_BATCH):
            if check is not None:
                check()
            batch = wanted[start : start + _ENCODER_BATCH]
            chunks = [audio[i * window : (i + 1) * window] for i in batch]
            states = self._encode(chunks)
            for i, chunk, st in zip(batch, chunks, states, strict=True):
                keep = min(frames, -(-len(chunk) // per_state))
                out[i * frames : i * frames + keep] = st[:keep]
        return out

    def encoder_width(self) -> int:
        """The encoder's state width (``d_model``: 384 for tiny, 512 base, 768 small), found
        once by encoding a short silence."""
        width = getattr(self, "_width", None)
        if width is None:
            width = self._width = int(self._encode([np.zeros(SAMPLE_RATE, np.float32)]).shape[-1])
        return width

    def _encode(self, chunks: list[np.ndarray]) -> np.ndarray:
        """Encoder states ``[len(chunks), 1500, d_model]`` of audio chunks of <= 30 s."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_ctranslate2_storage

        whisper = self.load()._whisper
        try:
            mels = np.stack([pad_or_trim(whisper.feature_extractor(c)[..., :-1]) for c in chunks])
            states = whisper.model.encode(get_ctranslate2_storage(mels), to_cpu=True)
            return np.asarray(states, dtype=np.float32)
        except Exception as exc:  # ctranslate2 errors have no common type
            raise AsrError(f"Whisper encoder failed: {type(exc).__name__}: {exc}") from exc


# -- internals -----------------------------------------------------------------------------


class _Interrupted(Cancelled):
    """Carries an exception raised by an ``on_progress`` callback out of the decoding loop."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _pipeline(whisper, window_s: float):
    """faster-whisper's batched pipeline over ``whisper``; with a window under 30 s, one
    that cuts the (padded) features of each batch to ``window_s`` before the encoder."""
    from faster_whisper import BatchedInferencePipeline

    if window_s >= ENCODER_WINDOW_S:
        return BatchedInferencePipeline(whisper)
    pipeline = _windowed_pipeline()(whisper)
    pipeline.frames = int(round(window_s * _MEL_PER_S / 2)) * 2  # even: encoder stride 2
    return pipeline


@functools.cache
def _windowed_pipeline() -> type:
    """The batched pipeline with its features cut to ``frames`` (made once, on first use:
    faster-whisper is imported lazily)."""
    from faster_whisper import BatchedInferencePipeline

    class WindowedPipeline(BatchedInferencePipeline):
        frames = ENCODER_WINDOW_S * _MEL_PER_S  # set per instance by _pipeline

        def forward(self, features, tokenizer, chunks_metadata, options):
            cut = np.ascontiguousarray(features[..., : self.frames])
            return super().forward(cut, tokenizer, chunks_metadata, options)

    return WindowedPipeline


def _decode(pieces, duration: float, on_progress) -> list:
    """Iterate faster-whisper's lazy segments (decoding happens while iterating), reporting
    progress before the first (faster-whisper computes the whole audio's features before
    it) and after each one."""

    def report(fraction: float) -> None:
        if on_progress is not None:
            try:
                on_progress(min(1.0, max(0.0, fraction)))
            except BaseException as exc:  # noqa: BLE001 - the caller's stop, passed on as is
                raise _Interrupted(exc) from None

    out = []
    report(0.0)
    for piece in pieces:
        out.append(piece)
        report(float(piece.end) / max(duration, 1e-6))
    return out


def _model_source(model: str | Path) -> str:
    """A model folder (checked) or a name faster-whisper downloads."""
    text = str(model)
    if isinstance(model, Path) or os.path.isdir(text) or not _is_model_name(text):
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise AsrError(
                f"Whisper model not found: {text!r} is neither a model folder nor a known "
                "model name (such as tiny.en, base or small)"
            )
        missing = [name for name in _MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise AsrError(
                f"{text} is not a CTranslate2 Whisper model folder (missing {', '.join(missing)})"
            )
        return str(folder)
    return text


def _is_model_name(text: str) -> bool:
    from faster_whisper.utils import available_models

    return text in available_models() or bool(_HUB_ID.match(text))


def _check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return check_audio(audio, sample_rate, error=AsrError, stage="ASR")


def _clamp(start: float, end: float, duration: float) -> tuple[float, float]:
    start = min(max(float(start), 0.0), duration)
    return start, min(max(float(end), start), duration)


def _clip_segments(segments: Sequence[Segment], duration: float) -> list[Segment]:
    """Segments sorted and clipped to the audio; empty ones dropped."""
    out = []
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        if not (np.isfinite(seg.start) and np.isfinite(seg.end)):
            raise AsrError("VAD segments must have finite times")
        start, end = _clamp(seg.start, seg.end, duration)
        if end > start:
            out.append(Segment(start, end))
    return out


def speech_chunks(
    segments: Sequence[Segment], max_gap: float = MERGE_GAP_S, max_len: float = CHUNK_S
) -> list[Segment]:
    """The chunks the batched decoding decodes: sorted speech ``segments`` joined across
    pauses shorter than ``max_gap`` while the chunk stays within ``max_len`` seconds (one
    encoder window), so chunks end at pauses; a single segment longer than ``max_len`` is
    cut into pieces of ``max_len``."""
    out: list[Segment] = []
    for seg in segments:
        if out and seg.start - out[-1].end < max_gap and seg.end - out[-1].start <= max_len:
            out[-1] = Segment(out[-1].start, max(out[-1].end, seg.end))
            continue
        start = seg.start
        while seg.end - start > max_len:
            out.append(Segment(start, start + max_len))
            start += max_len
        out.append(Segment(start, seg.end))
    return out


def _merge(segments: list[Segment], max_gap: float) -> list[Segment]:
    """Join sorted segments separated by less than ``max_gap`` seconds."""
    merged = [segments[0]]
    for seg in segments[1:]:
        last = merged[-1]
        if seg.start - last.end < max_gap:
            merged[-1] = Segment(last.start, max(last.end, seg.end))
        else:
            merged.append(seg)
    return merged


def _snap_to_speech(words: list[Word], speech: list[Segment]) -> list[Word]:
    """Trim each word to the speech segment it overlaps most (Whisper's word starts tend to
    swallow the preceding pause) and drop words outside every segment: the VAD heard no
    speech there, and Whisper, prompted with fillers, invents "uh, hmm" over tones and
    clicks. Starts are then made non-decreasing."""
    out: list[Word] = []
    previous_start = 0.0
    for w in words:
        best, best_overlap = None, -1.0
        for seg in speech:
            overlap = min(w.end, seg.end) - max(w.start, seg.start)
            if overlap >= 0.0 and overlap > best_overlap:  # 0: a zero-length word inside
                best, best_overlap = seg, overlap
        if best is None:
            continue
        start = max(w.start, best.start, previous_start)
        end = max(min(w.end, best.end), start)
        previous_start = start
        out.append(Word(start, end, w.text, w.probability))
    return out
