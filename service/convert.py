"""Result dataclasses (:mod:`ahmer.models.results`) <-> protobuf (:mod:`ahmer.v1`).

``to_proto`` goes through the JSON form (``AnalysisResult.to_dict``), so the protobuf and
``ahmer analyze --json`` carry the same content by construction; ``from_proto`` rebuilds the
dataclasses (``from_proto(to_proto(r)).to_dict() == r.to_dict()``, up to float32 rounding
that ``to_dict``'s 4-decimal rounding removes).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from google.protobuf import json_format

from ahmer.models.results import (
    AHSegment,
    AnalysisResult,
    ClipResult,
    Cue,
    Explanation,
    FaceRef,
    FrameResult,
    TranscriptWord,
    json_ready,
)
from ahmer.v1 import options_pb2, results_pb2

__all__ = ["to_proto", "from_proto", "frame_to_proto", "cue_to_proto", "skip_counts", "to_dict"]


def to_proto(
    result: AnalysisResult,
    frames: bool = True,
    explanation: int = options_pb2.EXPLANATION_FULL,
    skipped: dict[str, int] | None = None,
) -> results_pb2.AnalysisResult:
    """The protobuf form of ``result``, with frames and explanation as the request asked."""
    data = result.to_dict(frames=frames)
    if explanation == options_pb2.EXPLANATION_NONE:
        data.pop("explanation", None)
    elif explanation == options_pb2.EXPLANATION_SUMMARY:
        data["explanation"]["cues"] = []
    msg = json_format.ParseDict(data, results_pb2.AnalysisResult(), ignore_unknown_fields=True)
    if skipped:
        msg.skipped.CopyFrom(skip_counts(skipped))
    return msg


def frame_to_proto(frame: FrameResult) -> results_pb2.FrameResult:
    data = json_ready(asdict(frame))
    return json_format.ParseDict(data, results_pb2.FrameResult(), ignore_unknown_fields=True)


def cue_to_proto(cue: Cue) -> results_pb2.Cue:
    data = json_ready(asdict(cue))
    return json_format.ParseDict(data, results_pb2.Cue(), ignore_unknown_fields=True)


def skip_counts(counts: dict[str, int]) -> results_pb2.SkipCounts:
    return results_pb2.SkipCounts(
        video_rate=int(counts.get("video_rate", 0)),
        video_load=int(counts.get("video_load", 0)),
        video_duplicate=int(counts.get("video_duplicate", 0)),
    )


def to_dict(msg: results_pb2.AnalysisResult) -> dict[str, Any]:
    """The ``ahmer.result/1`` JSON form of a protobuf result (``skipped`` added when set)."""
    data = from_proto(msg).to_dict(frames=bool(msg.frames))
    if msg.HasField("skipped"):
        data["skipped"] = json_format.MessageToDict(
            msg.skipped, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        data["skipped"] = {k: int(v) for k, v in data["skipped"].items()}
    return data


def _evidence(struct) -> dict[str, Any]:
    return _ints(json_format.MessageToDict(struct))


def _ints(value):
    """Struct numbers are doubles: give whole numbers back as ints (as the JSON form has)."""
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _frame(f: results_pb2.FrameResult) -> FrameResult:
    face = None
    if f.HasField("face"):
        face = FaceRef(
            tuple(float(v) for v in f.face.box),
            f.face.track_id,
            f.face.quality,
            tuple(float(v) for v in f.face.pose) or None,
            dict(f.face.blendshapes) or None,
        )
    return FrameResult(
        time=f.time,
        face=face,
        emotion=dict(f.emotion) or None,
        emotion_label=f.emotion_label or None,
        valence=f.valence,
        ah_probability=f.ah_probability,
        ah_label=f.ah_label,
        attribution=dict(f.attribution),
        modalities=dict(f.modalities),
    )


def _cue(c: results_pb2.Cue) -> Cue:
    return Cue(c.type, c.cue, c.start, c.end, c.weight, _evidence(c.evidence), c.text)


def from_proto(msg: results_pb2.AnalysisResult) -> AnalysisResult:
    """Rebuild the dataclasses from the protobuf form."""
    c = msg.clip
    clip = ClipResult(
        ah_probability=c.ah_probability,
        ah_label=c.ah_label,
        threshold=c.threshold,
        segments=tuple(
            AHSegment(s.start, s.end, s.peak_time, s.peak_probability) for s in c.segments
        ),
        emotion_distribution=dict(c.emotion_distribution) or None,
        dominant_emotion=c.dominant_emotion or None,
        mean_valence=c.mean_valence,
    )
    media = json_format.MessageToDict(
        msg.media, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for key in ("width", "height", "rotation", "sample_rate", "channels"):
        media[key] = int(media.get(key, 0))
    return AnalysisResult(
        clip=clip,
        frames=[_frame(f) for f in msg.frames],
        explanation=Explanation(
            msg.explanation.summary, tuple(_cue(c) for c in msg.explanation.cues)
        ),
        transcript=[TranscriptWord(w.start, w.end, w.text) for w in msg.transcript],
        transcript_source=msg.transcript_source,
        media=media,
        models=dict(msg.models),
        timings=dict(msg.timings),
        warnings=list(msg.warnings),
        fps=msg.fps,
        schema=msg.schema,
        notice=msg.notice,
    )
