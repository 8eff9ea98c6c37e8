"""Partial media is never silent: the one decision whether a decoded stream ended short of
the duration its container declares (a file cut short, a damaged tail), and whether a live
session's audio and video ended apart, with the warning text users see. A light module (no
FFmpeg, no numpy), so tables and reports can recognise the warning without the decoder.

Tolerance. A stream counts as truncated when it decoded to less than the declared duration
minus ``max(0.5 s, 2 frame intervals at the source's frame rate, 5 % of the declared
duration)`` (:func:`tolerance`). Whole files are not exact either, and must not be flagged:

* 0.5 s: encoders pad and trim audio by whole codec frames (AAC 1024 samples, MP3 1152),
  containers round their durations (Matroska to milliseconds), and the streams of one file
  often end a few hundred milliseconds apart where only the container's (longest) duration
  is declared;
* 2 frames: the last frame of a low-rate or variable-rate video may carry no duration of
  its own, and a few muxers round the last frame's timestamp by one interval;
* 5 %: some durations are estimates, not facts: an MP3 or MPEG-TS without an index gets its
  duration from the bitrate and file size, and a variable-bitrate file's estimate can be off
  by a few percent.

What a cut file loses is far more than that (the reported case: 1.2 s of 6.9 s), so the
warning catches truncation without flagging whole files. A container that declares no
duration (a live-recorded WebM, a raw stream) gives nothing to compare with: no warning.

Strictness is applied once, by :func:`ahmer.preprocessing.pipeline.check_complete`, which
raises :class:`~ahmer.preprocessing.media.TruncatedMedia` for these warnings.
"""

from __future__ import annotations

__all__ = [
    "TRUNCATED",
    "DRIFT",
    "tolerance",
    "truncation_warning",
    "drift_warning",
    "is_incomplete",
]

TRUNCATED = "truncated media"
"""How every truncation warning starts (``"truncated media: the video stream ..."``)."""

DRIFT = "audio/video drift"
"""How every warning of a live session whose audio and video ended apart starts."""

MIN_SECONDS = 0.5
MIN_FRAMES = 2
FRACTION = 0.05


def tolerance(declared: float, frame_rate: float | None = None) -> float:
    """How much shorter than ``declared`` seconds a whole stream may decode (module
    docstring): ``max(0.5 s, 2 / frame_rate, 5 % of declared)``."""
    frames = MIN_FRAMES / frame_rate if frame_rate and frame_rate > 0 else 0.0
    return max(MIN_SECONDS, frames, FRACTION * max(0.0, declared))


def truncation_warning(
    stream: str, decoded: float | None, declared: float | None, frame_rate: float | None = None
) -> str | None:
    """The warning when the ``stream`` ("video" or "audio") decoded to ``decoded`` seconds of
    the ``declared`` ones, short by more than :func:`tolerance`; None when whole or when
    either is unknown."""
    if decoded is None or declared is None or declared <= 0:
        return None
    if declared - decoded <= tolerance(declared, frame_rate):
        return None
    return (
        f"{TRUNCATED}: the {stream} stream decoded to {max(0.0, decoded):.2f} s of the "
        f"{declared:.2f} s declared (the file is cut short or damaged)"
    )


def drift_warning(
    audio_end: float, video_end: float, frame_rate: float | None = None
) -> str | None:
    """The warning when a live session's audio and video ended further apart than
    :func:`tolerance` of the longer one (a client whose clocks drifted, or that stopped
    sending one of them); None otherwise."""
    longer = max(audio_end, video_end)
    if abs(audio_end - video_end) <= tolerance(longer, frame_rate):
        return None
    shorter = "audio" if audio_end < video_end else "video"
    return (
        f"{DRIFT}: the audio ends at {audio_end:.2f} s and the video at {video_end:.2f} s; "
        f"the last {abs(audio_end - video_end):.2f} s have no {shorter}"
    )


def is_incomplete(warning: str) -> bool:
    """Whether ``warning`` is one of this module's (truncation or drift)."""
    return warning.startswith((TRUNCATED + ":", DRIFT + ":"))
