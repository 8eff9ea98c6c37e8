"""The zero-shot A/H cue prior: fusion weights set by hand from documented cues.

This is a **prior, not a model trained on BAH**. Each weight says how strongly a cue, as the
BAH paper describes the annotators' cues, should move the A/H logit. A trained model with the
same fusion contract replaces these weights without code changes. ``models/CUES.md`` holds the
table below; ``python -m ahmer.models.fusion.prior`` prints it (a test keeps the two equal).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ahmer.models.fusion.graph import CONTRIB_GROUPS, FEATURE_NAMES, LEARNED_NAMES, FusionWeights

__all__ = [
    "WEIGHTS_ID",
    "BIAS",
    "CUES",
    "LEARNED_DOCS",
    "ANCHORS",
    "CueDoc",
    "zeroshot_weights",
    "cue_table_markdown",
]

# @1: the same weights under fusion contract 1; @2 adds the embedding inputs and the learned
# terms, all zero here, so the prior's outputs are unchanged
WEIGHTS_ID = "ahmer-ah-zeroshot@2"
# sigmoid(-2.2) = 0.10: with no cue a frame is unlikely A/H (17 % of BAH frames are positive)
BIAS = -2.2


@dataclass(frozen=True)
class CueDoc:
    name: str
    weight: float
    measures: str
    why: str


CUES: tuple[CueDoc, ...] = (
    CueDoc(
        "face_negative",
        0.9,
        "P(angry+disgust+fear+sad) of the face-emotion model, 0.2..0.8 mapped to 0..1",
        "negative facial expression while answering; with positive words it is the "
        "face/word inconsistency annotators marked",
    ),
    CueDoc(
        "face_mixed",
        0.4,
        "entropy of the face-emotion distribution above 0.5 of its maximum",
        "mixed or ambiguous expressions accompany inner conflict",
    ),
    CueDoc(
        "gaze_aversion",
        0.6,
        "eyes looking down/aside (MediaPipe blendshapes) or head turned > 15 degrees",
        "looking away while answering is a body-language hesitation cue",
    ),
    CueDoc(
        "head_shake",
        0.9,
        "yaw direction reversals (> 3 degrees) within +-0.8 s, 2 reversals = 1",
        "a head shake while saying yes is the paper's example of cross-modal conflict",
    ),
    CueDoc(
        "brow_tension",
        0.5,
        "browDown and browInnerUp blendshapes",
        "frowning / worried brows signal doubt",
    ),
    CueDoc(
        "lip_press",
        0.4,
        "mouthPress and mouthRollLower blendshapes",
        "pressed lips signal holding back",
    ),
    CueDoc(
        "pause",
        1.0,
        "length of a silent pause inside the answer, 0.3..1.8 s mapped to 0..1",
        "pauses and hesitations in the voice are annotated vocal cues",
    ),
    CueDoc(
        "slow_speech",
        0.5,
        "speech rate below the clip's median rate",
        "slowing down marks hesitant, less committed speech",
    ),
    CueDoc(
        "pitch_instability",
        0.3,
        "local F0 spread (semitones, +-0.5 s) above the clip's spread",
        "unsteady pitch is an annotated vocal cue",
    ),
    CueDoc(
        "low_energy",
        0.3,
        "speech energy below the clip's median (12 dB = 1)",
        "trailing-off, quieter speech accompanies hesitancy",
    ),
    CueDoc(
        "hedge",
        1.3,
        "hedges (maybe, perhaps, I think, kind of, could, try, ...) within -1.5/+1.0 s",
        "hedging language is the paper's main verbal cue",
    ),
    CueDoc(
        "filler",
        0.9,
        "filled pauses (um, uh, er, hmm, you know) within -1.5/+1.0 s",
        "filled pauses are verbal hesitations",
    ),
    CueDoc(
        "contrast",
        1.1,
        "contrast connectives (but, though, however, part of me, ...) within -1.5/+1.0 s",
        "'part of me wants to, but' - contradiction inside the words is ambivalence",
    ),
    CueDoc(
        "uncertainty",
        1.5,
        "explicit uncertainty (not sure, I don't know, I guess, no idea, ...)",
        "stating one's own uncertainty is direct hesitancy",
    ),
    CueDoc(
        "negation",
        0.3,
        "negations (not, never, don't, can't, ...)",
        "weak alone; negated commitment often co-occurs with A/H",
    ),
    CueDoc(
        "semantic_hesitancy",
        1.0,
        "MiniLM similarity of the words around the frame to hesitant minus confident "
        "anchor sentences",
        "catches hesitant wording the word lists miss",
    ),
    CueDoc(
        "valence_discord",
        1.2,
        "abs(facial valence - verbal valence) above 0.6 when both are present",
        "inconsistency between modalities (positive words, sad face) defines ambivalence",
    ),
)

LEARNED_DOCS: tuple[CueDoc, ...] = (
    CueDoc(
        "learned_face",
        0.0,
        "standardised face embedding (fer_emotion's pooled last block, 128-d) times learned "
        "weights, where a face is present",
        "none in the prior (weight 0); a trained fusion learns which facial patterns go with "
        "A/H on labelled data: cited only as a 'learned face pattern'",
    ),
    CueDoc(
        "learned_voice",
        0.0,
        "standardised voice embedding (Whisper encoder states pooled to the frame, 384-d) "
        "times learned weights, where there is audio",
        "none in the prior (weight 0); a trained fusion learns vocal patterns of A/H: cited "
        "only as a 'learned voice pattern'",
    ),
    CueDoc(
        "learned_text",
        0.0,
        "standardised MiniLM embedding of the words around the frame times learned weights, "
        "where there are words",
        "none in the prior (weight 0); a trained fusion learns wording of A/H: cited only as "
        "a 'learned text pattern'",
    ),
)

ANCHORS: dict[str, tuple[str, ...]] = {
    "hesitant": (
        "I'm not sure.",
        "Maybe, I don't know.",
        "I guess I could try, but I'm not sure.",
        "Part of me wants to, but part of me doesn't.",
        "I want to, but it's hard.",
        "I don't know if I can do it.",
    ),
    "confident": (
        "I will definitely do it.",
        "I'm sure, absolutely.",
        "Yes, I am completely committed to this.",
        "I know exactly what I want to do.",
        "I have decided and I will do it.",
        "There is no doubt in my mind.",
    ),
    "positive": (
        "I feel great about this.",
        "I'm happy and excited.",
        "This is wonderful, I love it.",
        "I'm proud of myself.",
    ),
    "negative": (
        "I feel terrible about this.",
        "I'm sad and upset.",
        "This is awful, I hate it.",
        "I'm ashamed and disappointed.",
    ),
}

Embed = Callable[[list[str]], np.ndarray]


def zeroshot_weights(embed: Embed) -> FusionWeights:
    """The prior as :class:`FusionWeights`; ``embed`` is the MiniLM text encoder (unit-norm
    embeddings), used once to place the anchor centroids."""
    assert tuple(c.name for c in CUES) == FEATURE_NAMES, "CUES must follow FEATURE_NAMES"
    assert tuple(c.name for c in LEARNED_DOCS) == LEARNED_NAMES
    columns = []
    for key in ("hesitant", "confident", "positive", "negative"):
        centroid = np.asarray(embed(list(ANCHORS[key])), np.float32).mean(axis=0)
        columns.append(centroid / max(float(np.linalg.norm(centroid)), 1e-6))
    return FusionWeights(
        weights_id=WEIGHTS_ID,
        bias=BIAS,
        contrib_weights={c.name: c.weight for c in CUES},
        anchors=np.stack(columns, axis=1),
        metadata={"kind": "zero-shot cue prior (not trained on BAH)"},
    )  # no learned terms: LearnedTerm.zero for each, uses_embeddings "0"


def cue_table_markdown() -> str:
    lines = [
        "| cue | modality | weight | what is measured | why it signals A/H (BAH paper) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in (*CUES, *LEARNED_DOCS):
        weight = f"{c.weight:+.1f}" if c in CUES else "0 (learned)"
        group = CONTRIB_GROUPS[c.name]
        lines.append(f"| `{c.name}` | {group} | {weight} | {c.measures} | {c.why} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(cue_table_markdown())
