"""The settings of a live session, in a light module (no numpy, no models loaded): the
server's settings and ``ahmer serve --help`` read their defaults without importing the
pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from ahmer.models.config import AnalyzerConfig
from ahmer.models.fusion.context import WORDS_AFTER_S

__all__ = ["FINAL_LAG", "MAX_FINAL_LAG", "LiveConfig"]

FINAL_LAG = WORDS_AFTER_S
"""The look-ahead of a frame's own verbal cues and text embedding, s: they read the words up
to :data:`~ahmer.models.fusion.context.WORDS_AFTER_S` after it. Through the A/H smoothing
(a Gaussian of sigma 0.4 s) a frame also takes in its neighbours, whose words reach further:
offline, with only the words that end by 1 s after each frame, 2.7 % of the frame labels
differ from the whole clip's, by 1.5 s 0.6 %, by 2 s none (``bench/lookahead.py``,
``bench/README.md``). A live final frame can therefore differ a little from the session's
whole-answer result, which is analysed with every word."""

MAX_FINAL_LAG = 6.0
"""The longest a frame waits for speech recognition to decode the words after it, s. A frame
made final before its words are decoded lacks its verbal evidence: at 2 s (the bound before
2026-12-08) half the final labels of two streams on 2 cores differed from the whole-answer
result (the ASR passes of both sessions share the CPU and fall 2-4 s behind); at 6 s,
5.6-6.7 %, as for one stream (``bench/README.md``, ``stream.py``). Past it a frame is final
with the words known, and the session says so once (notice ``words_late``)."""


@dataclass(frozen=True)
class LiveConfig:
    """One session's media (kind, size, audio rate), rates, windows and options."""

    fps: float = AnalyzerConfig.fps  # the handler passes the call's rate
    window: float = 8.0
    final_lag: float = FINAL_LAG
    audio_step: float = 0.5  # stream seconds between streaming-ASR passes
    update_interval: float = 1.0
    full_audio: bool = False  # redo VAD/ASR/prosody over the whole audio at the end
    max_skew: float = 3.0  # a modality lagging more than this is ignored for finality
    max_final_lag: float = MAX_FINAL_LAG  # longest a frame waits for ASR before it is final
    words_after: float = WORDS_AFTER_S  # verbal context after a frame
    turn_silence: float = 0.0  # > 0: a silence this long after speech ends an answer turn
    provisional: bool = False  # also emit each frame's provisional result at once
    provisional_window: float = 2.0  # causal context of a provisional result, s
    eval_interval: float = 0.2  # stream seconds between evaluations of final frames
    language: str | None = None
    client_transcript: bool = False
    video: str = ""  # "jpeg", "png", "rgb24" or "" (none)
    width: int = 0
    height: int = 0
    audio_rate: int = 0  # 0: no audio
    audio_channels: int = 1
    max_cues: int = 3
    strict: bool = False  # audio and video ending apart is an error, not a warning
