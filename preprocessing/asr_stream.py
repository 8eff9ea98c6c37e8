"""Streaming speech recognition: words as the person speaks, committed by local agreement.

Whisper decodes fixed windows, not a stream. :class:`StreamingTranscriber` turns it into one
the way whisper_streaming does (its *LocalAgreement-2* policy): every short step (about
0.5 s of new audio) the *buffer* — the audio since the last commit point, which lies in a
silence — is decoded again with :meth:`Transcriber.transcribe_window
<ahmer.preprocessing.asr.Transcriber.transcribe_window>` (same model, prompt, speech-only
decoding and word snapping as whole clips, but a 15 s encoder window instead of 30 s:
:data:`~ahmer.preprocessing.asr.STREAM_WINDOW_S`, half the encoder's cost per pass).
The words of this pass that come after the committed ones are compared with the previous
pass's: the longest common prefix (same words, in the same order) is *committed* and never
changes again; the rest is the *hypothesis*, shown to the caller as provisional and decoded
again at the next step with more audio after it.

A word is therefore committed once two passes that saw different amounts of audio after it
agree on it: typically one to two steps after it was spoken. Words cut in half at the
buffer's end never get committed on their own: the next pass sees the rest of them.

The buffer is trimmed after each pass to the last silence before the first uncommitted
word (so Whisper always starts at an utterance onset, never inside a word), and at most to
``max_buffer`` seconds, so a pass costs a bounded amount of work however long the stream
runs. :meth:`StreamingTranscriber.flush` commits everything up to a point (the end of a
turn or of the stream) with one last pass.

Numpy in, words out; times are absolute seconds on the caller's clock. Nothing here logs
text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .asr import ENCODER_WINDOW_S, STREAM_WINDOW_S, AsrOptions
from .timeline import SAMPLE_RATE, Segment, Word

__all__ = ["AGREE_NGRAM", "MIN_PAUSE_S", "StreamPass", "StreamingTranscriber", "same_words"]

MIN_PAUSE_S = 0.3  # a silence this long between speech segments is a safe place to cut
AGREE_NGRAM = 5  # at most this many committed words are matched against a pass's first ones
_EDGE_S = 0.3  # speech that starts this close to a buffer's cut keeps this much before it
_NORMAL = re.compile(r"[^\w']+")


def _norm(text: str) -> str:
    return _NORMAL.sub("", text.lower())


def same_words(a: Sequence[Word], b: Sequence[Word]) -> int:
    """How many leading words of ``a`` and ``b`` agree (case and punctuation ignored)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if _norm(x.text) != _norm(y.text):
            break
        n += 1
    return n


@dataclass(frozen=True)
class StreamPass:
    """What one pass changed: words newly ``committed`` (final, in order after every earlier
    commit), the ``hypothesis`` now (uncommitted words after them, may change) and the
    audio end (absolute seconds) the pass decoded to (``covered``)."""

    committed: list[Word]
    hypothesis: list[Word]
    covered: float


@dataclass
class StreamingTranscriber:
    """LocalAgreement-2 over a trimmed buffer, on a loaded :class:`~.asr.Transcriber`.

    ``language``: as for :meth:`Transcriber.transcribe`. ``max_buffer``: the longest audio a
    pass decodes, seconds. ``window_s``: the encoder window of a batched pass
    (:data:`~ahmer.preprocessing.asr.STREAM_WINDOW_S`; 30 s decodes as whole clips do).
    One instance per stream; not thread-safe (one pass at a time)."""

    transcriber: object
    language: str | None = None
    max_buffer: float = 12.0
    window_s: float = STREAM_WINDOW_S
    buffer_start: float = 0.0  # absolute seconds: where the next pass's audio begins
    committed: list[Word] = field(default_factory=list)
    hypothesis: list[Word] = field(default_factory=list)
    language_found: str = ""
    passes: int = 0
    covered: float = 0.0  # absolute end of the audio the last pass decoded

    @property
    def committed_end(self) -> float:
        return self.committed[-1].end if self.committed else 0.0

    def words(self) -> list[Word]:
        """Committed words, then the hypothesis."""
        return self.committed + self.hypothesis

    def update(
        self, audio: np.ndarray, start: float, speech: Sequence[Segment], final: bool = False
    ) -> StreamPass:
        """Decode ``audio`` (16 kHz mono from ``start`` absolute seconds, which should be at
        or before :attr:`buffer_start`) with its voice-activity ``speech`` segments
        (absolute), commit what this pass and the previous one agree on (everything with
        ``final``) and trim the buffer."""
        skip = max(0, int(round((self.buffer_start - start) * SAMPLE_RATE)))
        audio, start = audio[skip:], start + skip / SAMPLE_RATE
        end = start + len(audio) / SAMPLE_RATE
        rel = [
            Segment(max(s.start, start) - start, min(s.end, end) - start)
            for s in speech
            if s.end > start and s.start < end
        ]
        words: list[Word] = []
        if rel and len(audio) >= SAMPLE_RATE // 10:
            tr = self.transcriber.transcribe_window(audio, self._options(), rel)
            self.language_found = tr.language or self.language_found
            words = [Word(w.start + start, w.end + start, w.text, w.probability) for w in tr.words]
        self.passes += 1
        self.covered = end
        fresh = self._fresh(words)
        if final:
            agreed = len(fresh)
        else:
            agreed = same_words(fresh, self.hypothesis)
        new = fresh[:agreed]
        self.committed.extend(new)
        self.hypothesis = fresh[agreed:]
        self._trim(start, end, rel, final)
        return StreamPass(list(new), list(self.hypothesis), end)

    def _options(self) -> AsrOptions:
        """A pass's decoding: the transcriber's, with :attr:`window_s` as the encoder
        window when batched (a buffer holds a few seconds; chunks are cut to fit)."""
        decoding = getattr(self.transcriber, "decoding", "batched")
        window = self.window_s if decoding == "batched" else ENCODER_WINDOW_S
        return AsrOptions(self.language, decoding=decoding, window_s=window)

    def flush(self, audio: np.ndarray, start: float, speech: Sequence[Segment]) -> StreamPass:
        """Commit every word (the end of a turn or of the stream). When the last pass
        already heard all the speech, with :data:`MIN_PAUSE_S` of silence after it, its
        hypothesis is committed as it is; otherwise one last pass decodes the buffer."""
        end = start + len(audio) / SAMPLE_RATE
        heard = self.passes and all(s.end <= self.covered - MIN_PAUSE_S for s in speech)
        if not heard:
            return self.update(audio, start, speech, final=True)
        new, self.hypothesis = self.hypothesis, []
        self.committed.extend(new)
        self.buffer_start = max(self.buffer_start, end)
        return StreamPass(list(new), [], end)

    def restart(self, at: float) -> None:
        """Forget the hypothesis and start the next buffer at ``at`` (a turn boundary: the
        audio before it is done with)."""
        self.hypothesis = []
        self.buffer_start = max(self.buffer_start, at)

    def _fresh(self, words: list[Word]) -> list[Word]:
        """The words of a pass that come after the committed ones: those whose middle is
        past the last committed word's end, less a leading repeat of the last committed
        words (a pass may place a committed word a little later than the pass that
        committed it)."""
        last = self.committed_end
        fresh = [w for w in words if (w.start + w.end) / 2 > last - 0.05]
        if not self.committed or not fresh or fresh[0].start > last + 1.0:
            return fresh
        tail = self.committed[-AGREE_NGRAM:]
        for n in range(min(len(tail), len(fresh)), 0, -1):
            if same_words(tail[-n:], fresh[:n]) == n:
                return fresh[n:]
        return fresh

    def _trim(self, start: float, end: float, rel: list[Segment], final: bool) -> None:
        """Move :attr:`buffer_start` to the last silence before the first uncommitted word,
        or (past ``max_buffer``) to the last committed word's end."""
        if final:
            self.buffer_start = max(self.buffer_start, end)
            return
        limit = self.hypothesis[0].start if self.hypothesis else end
        if not rel:  # no speech: keep a little audio in case speech starts at the edge
            self.buffer_start = max(self.buffer_start, end - _EDGE_S)
            return
        gaps = [(start, start + rel[0].start)]
        gaps += [(start + a.end, start + b.start) for a, b in zip(rel, rel[1:], strict=False)]
        gaps.append((start + rel[-1].end, end))
        cut = None
        for g0, g1 in gaps:
            after_commit = g0 >= self.committed_end - 0.05
            if g1 - g0 >= MIN_PAUSE_S and after_commit and g1 <= limit + 1e-6:
                cut = max(g0, g1 - _EDGE_S)
        if cut is None and end - self.buffer_start > self.max_buffer and self.committed:
            cut = self.committed_end
        if cut is not None:
            self.buffer_start = max(self.buffer_start, min(cut, end))
