"""The timeline: everything preprocessing found, aligned at the analysis frame rate.

One :class:`Timeline` carries per-frame arrays (struct of arrays, length ``T``), the words,
the voice-activity segments and a mask per modality. Every later stage reads it; nothing
reaches back into decoding. ``to_json``/``from_json`` round-trip everything except the raw
audio and the face crops, which stay in memory only (they are media; see the privacy rules).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .rates import SAMPLE_RATE

__all__ = [
    "SCHEMA",
    "MODALITIES",
    "SAMPLE_RATE",
    "MediaInfo",
    "Word",
    "Segment",
    "Timeline",
]

SCHEMA = "ahmer.timeline/1"
MODALITIES = ("video", "face", "audio", "speech", "words")


@dataclass(frozen=True)
class MediaInfo:
    """What the container holds, as probed before decoding."""

    container: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    rotation: int = 0
    video_codec: str = ""
    video_fps: float = 0.0
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True)
class Word:
    """A word with its time span in seconds from the start of the media."""

    start: float
    end: float
    text: str
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    """A time span in seconds (voice activity, A/H segment, ...)."""

    start: float
    end: float


def _frame_arrays(n: int, n_blend: int) -> dict[str, np.ndarray]:
    nan = np.float32(np.nan)
    return {
        "face_box": np.full((n, 4), nan, np.float32),
        "face_track": np.full(n, -1, np.int32),
        "face_count": np.zeros(n, np.int32),
        "face_score": np.zeros(n, np.float32),
        "face_quality": np.zeros(n, np.float32),
        "head_pose": np.full((n, 3), nan, np.float32),
        "blendshapes": np.full((n, n_blend), nan, np.float32),
        "vad": np.zeros(n, np.float32),
        "energy_db": np.full(n, nan, np.float32),
        "f0_hz": np.full(n, nan, np.float32),
        "voiced": np.zeros(n, bool),
        "speech_rate": np.full(n, nan, np.float32),
        "pause_s": np.zeros(n, np.float32),
        "word_index": np.full(n, -1, np.int32),
    }


# Per-frame array fields, in serialisation order, with their dtypes.
FRAME_FIELDS = tuple(_frame_arrays(0, 0).keys())


@dataclass
class Timeline:
    """Time-aligned features of one clip at ``fps`` analysis frames per second.

    Per-frame arrays (length ``T = len(times)``):

    - ``times``: presentation time (s) of each analysis frame.
    - ``face_box``: primary face box ``x0, y0, x1, y1`` normalised to the (rotated) frame, NaN
      when no face. ``face_track``: its track id (-1 none). ``face_count``: faces seen.
      ``face_score``: detector confidence. ``face_quality``: 0..1 from size, sharpness, pose.
    - ``head_pose``: yaw, pitch, roll in degrees. ``blendshapes``: the 52 MediaPipe
      blendshape scores, named by ``blendshape_names``.
    - ``vad``: 1 inside a voice-activity segment (Silero, padded), else 0.
      ``energy_db``: RMS level (dBFS). ``f0_hz``: pitch, NaN when unvoiced. ``voiced``:
      voicing flag. ``speech_rate``: words per second around the frame.
      ``pause_s``: length of the silence the frame lies in (0 while speaking).
    - ``word_index``: index into ``words`` of the word spoken at that time (-1 none).

    ``masks[m]`` says, per frame, whether modality ``m`` (one of ``MODALITIES``) is present;
    absent values are NaN/-1/0 as above and must be read through the mask.
    ``crops`` (``T, S, S, 3`` uint8 aligned primary-face crops) and ``audio`` (16 kHz mono
    float32) are kept in memory for the encoders and never serialised.
    """

    fps: float
    times: np.ndarray
    info: MediaInfo
    masks: dict[str, np.ndarray]
    words: list[Word] = field(default_factory=list)
    speech: list[Segment] = field(default_factory=list)
    transcript_source: str = "none"  # "asr", "client" or "none"
    language: str = ""
    blendshape_names: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    face_box: np.ndarray | None = None
    face_track: np.ndarray | None = None
    face_count: np.ndarray | None = None
    face_score: np.ndarray | None = None
    face_quality: np.ndarray | None = None
    head_pose: np.ndarray | None = None
    blendshapes: np.ndarray | None = None
    vad: np.ndarray | None = None
    energy_db: np.ndarray | None = None
    f0_hz: np.ndarray | None = None
    voiced: np.ndarray | None = None
    speech_rate: np.ndarray | None = None
    pause_s: np.ndarray | None = None
    word_index: np.ndarray | None = None
    crops: np.ndarray | None = field(default=None, repr=False)
    audio: np.ndarray | None = field(default=None, repr=False)
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def empty(
        cls, times: np.ndarray, fps: float, info: MediaInfo, n_blendshapes: int = 52
    ) -> Timeline:
        """A timeline over ``times`` with every modality absent and every array allocated."""
        times = np.asarray(times, np.float64)
        n = len(times)
        masks = {m: np.zeros(n, bool) for m in MODALITIES}
        return cls(fps=fps, times=times, info=info, masks=masks, **_frame_arrays(n, n_blendshapes))

    def __len__(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        return self.info.duration

    def words_between(self, start: float, end: float) -> list[Word]:
        """Words overlapping ``[start, end)``."""
        return [w for w in self.words if w.end > start and w.start < end]

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        frames = {"time": _encode(self.times)}
        for name in FRAME_FIELDS:
            frames[name] = _encode(getattr(self, name))
        return {
            "schema": SCHEMA,
            "fps": self.fps,
            "info": self.info.__dict__.copy(),
            "transcript_source": self.transcript_source,
            "language": self.language,
            "words": [w.__dict__.copy() for w in self.words],
            "speech": [s.__dict__.copy() for s in self.speech],
            "blendshape_names": list(self.blendshape_names),
            "masks": {m: _encode(v) for m, v in self.masks.items()},
            "frames": frames,
            "timings": dict(self.timings),
            "warnings": list(self.warnings),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an {SCHEMA} document (schema={data.get('schema')!r})")
        frames = data["frames"]
        times = np.asarray(frames["time"], np.float64)
        names = data.get("blendshape_names", [])
        tl = cls.empty(times, data["fps"], MediaInfo(**data["info"]), n_blendshapes=len(names))
        tl.masks = {m: np.asarray(v, bool) for m, v in data["masks"].items()}
        tl.words = [Word(**w) for w in data["words"]]
        tl.speech = [Segment(**s) for s in data["speech"]]
        tl.transcript_source = data.get("transcript_source", "none")
        tl.language = data.get("language", "")
        tl.blendshape_names = list(names)
        tl.timings = dict(data.get("timings", {}))
        tl.warnings = list(data.get("warnings", []))
        for name in FRAME_FIELDS:
            template = getattr(tl, name)
            setattr(tl, name, _decode(frames[name], template.dtype, template.shape[1:]))
        return tl

    @classmethod
    def from_json(cls, text: str) -> Timeline:
        return cls.from_dict(json.loads(text))


def _encode(array: np.ndarray) -> list:
    """Array to nested lists with NaN as ``None`` (JSON has no NaN) and floats rounded."""
    if array.dtype.kind == "f":
        rounded = np.round(array.astype(np.float64), 5)
        return _nan_to_none(rounded.tolist())
    return array.tolist()


def _nan_to_none(value):
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _decode(values: list, dtype: np.dtype, tail: tuple[int, ...]) -> np.ndarray:
    if dtype.kind == "f":
        array = np.array(_none_to_nan(values), dtype=np.float64).astype(dtype)
    else:
        array = np.asarray(values, dtype=dtype)
    if array.size == 0:
        array = array.reshape((0, *tail))
    return array


def _none_to_nan(value):
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return math.nan if value is None else value
