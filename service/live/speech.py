"""Incremental speech analysis for live sessions: voice activity, words and prosody over the
recent audio, committed once they can no longer change.

Every ``step`` seconds of new audio (0.5 s by default, or as soon as the previous step is
done when steps take longer), :meth:`SpeechTracker.step` runs Silero VAD on the *open
region* (the audio since the last commit point) and, unless the client sends its own
transcript, one pass of :class:`~ahmer.preprocessing.asr_stream.StreamingTranscriber`:
Whisper re-decodes the short buffer since its last commit, the words two passes agree on
are committed (LocalAgreement, as in whisper_streaming) and the rest stays a hypothesis,
shown to the session as open words. Speech segments that ended more than ``hold`` seconds
ago are committed; the rest stays open. So words arrive as the person speaks, a pass costs
a bounded amount of work, and the session's whole-answer result reuses the committed words
instead of decoding the audio again.

Per-frame prosody (energy, pitch, voicing, speech rate, pause length) is computed over the
recent audio at each step and written to the frames it covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ahmer.models.contract import SAMPLE_RATE
from ahmer.preprocessing.asr import STREAM_WINDOW_S
from ahmer.preprocessing.asr_stream import StreamingTranscriber
from ahmer.preprocessing.pipeline import audio_features, speech_at
from ahmer.preprocessing.timeline import Segment, Word
from ahmer.preprocessing.vad import run_vad

__all__ = ["SpeechState", "SpeechTracker"]

SR = SAMPLE_RATE


@dataclass
class SpeechState:
    """Segments and words: ``committed`` ones are final, ``open`` ones may still change."""

    speech: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    open_speech: list[Segment] = field(default_factory=list)
    open_words: list[Word] = field(default_factory=list)
    commit_t: float = 0.0

    def all_speech(self) -> list[Segment]:
        return self.speech + self.open_speech

    def all_words(self) -> list[Word]:
        return self.words + self.open_words


class SpeechTracker:
    """Runs the steps; the caller provides the audio (16 kHz mono, absolute times).
    ``window_s``: the streaming passes' encoder window (30 s: as whole clips)."""

    def __init__(
        self,
        transcriber,
        language: str | None,
        asr: bool,
        step: float = 0.5,
        hold: float = 1.0,
        max_region: float = 20.0,
        window_s: float = STREAM_WINDOW_S,
    ) -> None:
        self.asr = asr
        self.words = StreamingTranscriber(transcriber, language, window_s=window_s)
        self.step_s, self.hold, self.max_region = step, hold, max_region
        self.next_step = step

    @property
    def language_found(self) -> str:
        return self.words.language_found

    def restart(self, at: float) -> None:
        """A turn ended at ``at`` (everything before it committed): the next step's
        region starts there."""
        self.words.restart(at)
        self.next_step = at + self.step_s

    def due(self, audio_end: float) -> bool:
        return audio_end >= self.next_step

    def region_start(self, state: SpeechState, audio_end: float, held_from: float) -> float:
        start = min(state.commit_t - 0.2, self.words.buffer_start) if self.asr else state.commit_t
        return max(start, audio_end - self.max_region - self.step_s, held_from, 0)

    def step(
        self, state: SpeechState, audio: np.ndarray, start: float, final: bool = False
    ) -> SpeechState:
        """Analyse ``audio`` (the open region, starting at ``start`` seconds) and return the
        new state (``state`` is not modified; the word stream advances). ``final`` commits
        everything (the end of a turn or of the session)."""
        end = start + len(audio) / SR
        self.next_step = end + self.step_s
        segments: list[Segment] = []
        if len(audio) >= 512:
            found = run_vad(audio, SR).segments
            segments = [Segment(s.start + start, s.end + start) for s in found]
        if self.asr and final:
            self.words.flush(audio, start, segments)
        elif self.asr:
            self.words.update(audio, start, segments)
        if final:
            commit_to = end
        else:
            commit_to = end - self.hold
            pending = [s for s in segments if s.end > end - self.hold]
            if pending and (end - start) <= self.max_region:
                commit_to = min(commit_to, pending[0].start)
        commit_to = max(commit_to, state.commit_t)
        new = SpeechState(speech=list(state.speech), commit_t=commit_to)
        for seg in segments:
            if seg.start < state.commit_t - 1e-6:  # already committed before this region
                seg = Segment(state.commit_t, seg.end) if seg.end > state.commit_t else None
                if seg is None:
                    continue
            if seg.end <= commit_to + 1e-6:
                new.speech.append(seg)
            elif seg.start < commit_to:
                new.speech.append(Segment(seg.start, commit_to))
                new.open_speech.append(Segment(commit_to, seg.end))
            else:
                new.open_speech.append(seg)
        if self.asr:
            new.words, new.open_words = list(self.words.committed), list(self.words.hypothesis)
        return new

    @staticmethod
    def prosody(
        audio: np.ndarray,
        start: float,
        times: np.ndarray,
        speech: list[Segment],
        words: list[Word] | None,
    ) -> dict[str, np.ndarray]:
        """Per-frame audio features for ``times`` (absolute) from ``audio`` starting at
        ``start``; speech and words in absolute times. The features of whole clips
        (:func:`~ahmer.preprocessing.pipeline.audio_features`), on the window's clock, plus
        ``vad``."""
        rel_times = times - start
        rel_speech = [Segment(s.start - start, s.end - start) for s in speech if s.end > start]
        rel_words = None
        if words:
            rel_words = [
                Word(w.start - start, w.end - start, w.text) for w in words if w.end > start
            ]
        values = audio_features(audio, SR, rel_times, rel_speech, rel_words or None)
        values["vad"] = speech_at(speech, times).astype(np.float32)
        return values
