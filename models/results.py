"""Typed analysis results and their versioned JSON form (``ahmer.result/1``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ahmer.models.contract import DEFAULT_FPS, RESULT_SCHEMA

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
    "trained_notice",
]

PRIOR_NOTICE = (
    "A/H scores come from a zero-shot cue prior (hand-set weights over interpretable cues), "
    "not from a model trained on BAH; treat them as a screening aid, not a diagnosis."
)


def _metric(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def trained_notice(name: str, card: dict[str, Any] | None) -> str:
    """The notice of results whose A/H scores come from trained fusion ``name``: what its
    model card (``ahmer train``) measured on its test split, in place of
    :data:`PRIOR_NOTICE`; without a card (a bare graph), that no measurement backs it."""
    tail = "treat them as a screening aid, not a diagnosis."
    if not card:
        return (
            f"A/H scores come from fusion {name}, a graph without a model card: no measured "
            f"metrics back it; {tail}"
        )
    fingerprint = str((card.get("data") or {}).get("fingerprint") or "unknown data")[:12]
    test = ((card.get("metrics") or {}).get("test") or {}).get("trained") or {}
    frame, video = test.get("frame") or {}, test.get("video") or {}
    if not frame and not video:
        measured = "no test split was evaluated"
    else:
        parts = []
        if frame:
            parts.append(
                f"test frame AVGF1 {_metric(frame.get('avgf1'))}, AP {_metric(frame.get('ap'))}"
            )
        if video:
            parts.append(
                f"video AVGF1 {_metric(video.get('avgf1'))}, AP {_metric(video.get('ap'))} "
                f"({video.get('n', '?')} test videos)"
            )
        measured = "; ".join(parts)
    small = [w for w in card.get("warnings") or () if w.startswith(("the val", "the test"))]
    if small:  # figures from a handful of videos are not a measurement
        measured += f" (warning: {'; '.join(small)})"
    return f"A/H scores come from fusion {name} trained on {fingerprint}: {measured}; {tail}"


@dataclass(frozen=True)
class FaceRef:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 normalised to the frame
    track_id: int
    quality: float
    # head pose in degrees: pitch (nodding, + down), yaw (turning), roll (tilting); NaN/None
    # where no landmarks were computed for the frame (--landmark-fps below the rate)
    pose: tuple[float, float, float] | None = None
    # the 52 MediaPipe blendshape scores (0..1) by name, where landmarks were computed
    blendshapes: dict[str, float] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceRef:
        pose = data.get("pose")  # absent from results written before they were added
        return cls(
            tuple(_float(v) for v in data["box"]),
            int(data["track_id"]),
            _float(data["quality"]),
            None if pose is None else tuple(_float(v) for v in pose),
            _floats(data.get("blendshapes")),
        )


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameResult:
        face = data["face"]
        return cls(
            time=_float(data["time"]),
            face=None if face is None else FaceRef.from_dict(face),
            emotion=_floats(data["emotion"]),
            emotion_label=data["emotion_label"],
            valence=_float(data["valence"]),
            ah_probability=_float(data["ah_probability"]),
            ah_label=int(data["ah_label"]),
            attribution=_floats(data["attribution"]),
            modalities={k: bool(v) for k, v in data["modalities"].items()},
        )


@dataclass(frozen=True)
class AHSegment:
    start: float
    end: float
    peak_time: float
    peak_probability: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AHSegment:
        return cls(*(_float(data[k]) for k in ("start", "end", "peak_time", "peak_probability")))


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cue:
        return cls(
            type=data["type"],
            cue=data["cue"],
            start=_float(data["start"]),
            end=_float(data["end"]),
            weight=_float(data["weight"]),
            evidence=dict(data["evidence"]),
            text=data["text"],
        )


@dataclass(frozen=True)
class Explanation:
    summary: str
    cues: tuple[Cue, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        return cls(data["summary"], tuple(Cue.from_dict(c) for c in data["cues"]))


@dataclass(frozen=True)
class TranscriptWord:
    start: float
    end: float
    text: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptWord:
        return cls(_float(data["start"]), _float(data["end"]), data["text"])


@dataclass(frozen=True)
class ClipResult:
    ah_probability: float
    ah_label: int
    threshold: float
    segments: tuple[AHSegment, ...]
    emotion_distribution: dict[str, float] | None
    dominant_emotion: str | None
    mean_valence: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipResult:
        return cls(
            ah_probability=_float(data["ah_probability"]),
            ah_label=int(data["ah_label"]),
            threshold=_float(data["threshold"]),
            segments=tuple(AHSegment.from_dict(s) for s in data["segments"]),
            emotion_distribution=_floats(data["emotion_distribution"]),
            dominant_emotion=data["dominant_emotion"],
            mean_valence=_float(data["mean_valence"]),
        )


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
    fps: float = DEFAULT_FPS
    schema: str = RESULT_SCHEMA
    notice: str = PRIOR_NOTICE

    def to_dict(self, frames: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not frames:
            data.pop("frames")
        return json_ready(data)

    def to_json(self, indent: int | None = None, frames: bool = True) -> str:
        return json.dumps(self.to_dict(frames=frames), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisResult:
        """The typed result of its JSON form (what :meth:`to_dict` writes, with or without
        frames). Lists come back as tuples where the dataclass has tuples and a number written
        as null (NaN or infinity) as NaN, so ``from_dict(d).to_dict() == d``. Keys of no field
        (such as the ``id`` and ``batch`` that ``ahmer score`` adds) are ignored. Raises
        ValueError for another schema or a missing field."""
        schema = data.get("schema", RESULT_SCHEMA)
        if schema != RESULT_SCHEMA:
            raise ValueError(f"result schema {schema!r} is not {RESULT_SCHEMA!r}")
        try:
            return cls(
                clip=ClipResult.from_dict(data["clip"]),
                frames=[FrameResult.from_dict(f) for f in data.get("frames", ())],
                explanation=Explanation.from_dict(data["explanation"]),
                transcript=[TranscriptWord.from_dict(w) for w in data["transcript"]],
                transcript_source=data["transcript_source"],
                media=dict(data["media"]),
                models=dict(data["models"]),
                timings=_floats(data["timings"]),
                warnings=list(data.get("warnings", ())),
                fps=_float(data.get("fps", DEFAULT_FPS)),
                schema=schema,
                notice=data.get("notice", PRIOR_NOTICE),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an {RESULT_SCHEMA} result: {type(exc).__name__} {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> AnalysisResult:
        return cls.from_dict(json.loads(text))


def _float(value: Any) -> float:
    """A JSON number as a float; null (what ``to_dict`` writes for NaN and infinity) -> NaN."""
    return math.nan if value is None else float(value)


def _floats(values: dict[str, Any] | None) -> dict[str, float] | None:
    return None if values is None else {k: _float(v) for k, v in values.items()}


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
