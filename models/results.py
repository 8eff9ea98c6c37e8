"""Typed analysis results and their versioned JSON form (``ahmer.result/1``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .contract import RESULT_SCHEMA

__all__ = [
    "PRIOR_NOTICE",
    "FaceRef",
    "FrameResult",
    "AHSegment",
    "Cue",
    "Explanation",
    "ClipResult",
    "TranscriptWord",
    "AnalysisResult",
    "json_ready",
]

PRIOR_NOTICE = (
    "A/H scores come from a zero-shot cue prior (hand-set weights over interpretable cues), "
    "not from a model trained on BAH; treat them as a screening aid, not a diagnosis."
)


@dataclass(frozen=True)
class FaceRef:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 normalised to the frame
    track_id: int
    quality: float


@dataclass(frozen=True)
class FrameResult:
    time: float
    face: FaceRef | None
    emotion: dict[str, float] | None  # None where no face backs the frame
    emotion_label: str | None
    valence: float
    ah_probability: float
    ah_label: int
    attribution: dict[str, float]  # leave-one-modality-out change in A/H probability
    modalities: dict[str, bool]  # visual, vocal, verbal present


@dataclass(frozen=True)
class AHSegment:
    start: float
    end: float
    peak_time: float
    peak_probability: float


@dataclass(frozen=True)
class Cue:
    """One piece of evidence: ``type`` is visual, vocal, verbal or cross-modal; ``weight`` its
    contribution to the A/H logit at its peak (from the fusion graph)."""

    type: str
    cue: str
    start: float
    end: float
    weight: float
    evidence: dict[str, Any]
    text: str  # one phrase describing the evidence, used by the summary


@dataclass(frozen=True)
class Explanation:
    summary: str
    cues: tuple[Cue, ...]


@dataclass(frozen=True)
class TranscriptWord:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class ClipResult:
    ah_probability: float
    ah_label: int
    threshold: float
    segments: tuple[AHSegment, ...]
    emotion_distribution: dict[str, float] | None
    dominant_emotion: str | None
    mean_valence: float


@dataclass
class AnalysisResult:
    clip: ClipResult
    frames: list[FrameResult]
    explanation: Explanation
    transcript: list[TranscriptWord]
    transcript_source: str
    media: dict[str, Any]
    models: dict[str, str]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    fps: float = 5.0
    schema: str = RESULT_SCHEMA
    notice: str = PRIOR_NOTICE

    def to_dict(self, frames: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not frames:
            data.pop("frames")
        return json_ready(data)

    def to_json(self, indent: int | None = None, frames: bool = True) -> str:
        return json.dumps(self.to_dict(frames=frames), indent=indent, allow_nan=False)


def json_ready(value):
    """The JSON form of result values: floats rounded to 4 decimals, NaN and infinity -> None,
    tuples -> lists, numpy scalars -> Python numbers (what :meth:`AnalysisResult.to_dict`
    writes, and the protobuf converter reuses)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value
