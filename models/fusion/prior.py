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
    "WEIGHTS_ID_V2",
    "PRIOR_VERSIONS",
    "BIAS",
    "CALIBRATION",
    "CUES",
    "LEARNED_DOCS",
    "ANCHORS",
    "PROTOTYPES",
    "MODALITY_SHARES",
    "SHARE_FLOOR",
    "CueDoc",
    "zeroshot_weights",
    "zeroshot_weights_v2",
    "cue_table_markdown",
]

# @1: the same weights under fusion contract 1; @2 adds the embedding inputs and the learned
# terms, all zero, so its outputs are @1's; @3 (contract 3) adds the delivery, stated-
# ambivalence and head/word conflict cues, scope for hedges, presence scaling and a
# calibrated clip head (models/CUES.md)
WEIGHTS_ID = "ahmer-ah-zeroshot@3"
WEIGHTS_ID_V2 = "ahmer-ah-zeroshot@2"
# sigmoid(-2.2) = 0.10: with no cue a frame is unlikely A/H (17 % of BAH frames are positive)
BIAS = -2.2
# visual, vocal, verbal: each frame's contributions are divided by the shares present there
MODALITY_SHARES = (0.35, 0.30, 0.35)
SHARE_FLOOR = 0.5
# stated_ambivalence: the similarity margin (ambivalent minus committed) mapped to 0..1
BANK_MARGIN = (0.08, 0.28)
# the clip head's temperature (clip_scale) and bias, fitted on the generated calibration set
# (bench/validity.py --calibrate; models/CUES.md, "Calibration")
CALIBRATION = {"clip_scale": 2.25, "clip_bias": 2.636}


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
        2.6,
        "length of a silence inside the answer (VAD, no words needed), 0.5..2.0 s mapped to "
        "0..1; halved after a word that ends a sentence",
        "pauses in the middle of what one is saying are annotated vocal hesitations",
    ),
    CueDoc(
        "slow_speech",
        1.4,
        "articulation rate (words per second of speaking time) under 85 % of the speaker's "
        "own median (clips with 4 s of speech) or of 2.5 words/s (shorter clips); 1 at 40 %",
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
        "hedges (maybe, perhaps, I think, kind of, could, try, ...) within -1.5/+1.0 s, "
        "not negated ('no maybe') nor in someone else's reported words",
        "hedging language is the paper's main verbal cue",
    ),
    CueDoc(
        "filler",
        1.4,
        "density of filled pauses (um, uh, er, hmm) within -1.5/+1.0 s ('you know', 'well' "
        "are discourse markers, not counted)",
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
        "explicit uncertainty (not sure, I don't know, I guess, doubt, ...), not negated "
        "('no doubt in my mind') nor reported ('my friends said ...')",
        "stating one's own uncertainty is direct hesitancy",
    ),
    CueDoc(
        "negation",
        0.0,
        "negations (not, never, don't, can't, ...)",
        "weight 0 since @3: negation is as common in committed answers ('no doubt', "
        "'never again'); kept as an input a trained fusion may weigh",
    ),
    CueDoc(
        "restart",
        1.6,
        "a word or two said twice in a row ('I, I will') or cut off with a dash, within "
        "-1.5/+1.0 s",
        "restarts and repetitions are disfluencies the annotators marked as hesitation",
    ),
    CueDoc(
        "latency",
        1.5,
        "silence before the first speech, 1.5..3.5 s mapped to 0..1, on the frames up to "
        "0.5 s into the answer",
        "a long wait before answering is a hesitation",
    ),
    CueDoc(
        "yes_no_conflict",
        2.0,
        "a verbal yes (yes, sure, definitely, ..., or a stated commitment: \"I will\", "
        "\"I'm going to\", unless negated or reported) within +-1 s of a head shake, or a "
        "verbal no within +-1 s of a nod (pitch reversals), where face and words are both "
        "present",
        "'yes' with a head shake is the paper's example of inconsistency between modalities",
    ),
    CueDoc(
        "semantic_hesitancy",
        0.6,
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
    CueDoc(
        "stated_ambivalence",
        2.2,
        "MiniLM similarity of the words around the frame to the nearest ambivalent prototype "
        "minus the nearest committed prototype (PROTOTYPES), 0.08..0.28 mapped to 0..1",
        "saying one wants two opposite things is ambivalence, with or without hedge words",
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

PROTOTYPES: dict[str, tuple[str, ...]] = {
    # stated ambivalence, in plain words: none of them needs a hedge word to say it
    "ambivalent": (
        "Part of me wants to change and part of me does not.",
        "I want two opposite things at once.",
        "I feel torn between the two choices.",
        "I am pulled in two directions.",
        "I want to stop, and I also want to keep going.",
        "One side of me wants it and the other side does not.",
        "I go back and forth about it.",
        "My head says yes and my heart says no.",
        "I keep changing my mind about this.",
        "I have mixed feelings about it.",
        "I would like to do it, yet I do not want to give it up.",
        "I cannot decide what I want.",
        "Half of me wants to, the other half does not.",
        "I love it and I hate it at the same time.",
        "Some days I want to change, other days I do not.",
        "I want it and I do not want it.",
        "It matters to me, and the opposite matters to me as well.",
        "I feel like two different people who want different things.",
    ),
    "committed": (
        "I have decided and I will do it.",
        "I am completely committed to this change.",
        "I know exactly what I want.",
        "I will start tomorrow without fail.",
        "My mind is made up.",
        "I am sure this is the right choice.",
        "Yes, I will do it.",
        "I am ready and determined.",
        "There is no doubt in my mind.",
        "I have a clear plan and I will follow it.",
        "I stopped and I feel great about it.",
        "I am going to do it every day.",
        "The weather was nice and we went to the park.",
        "I read the instructions and followed them.",
    ),
}
"""The prototype bank of ``stated_ambivalence``: embedded once, when the store builds the
graph (``models/fusion/export.py``), never per call. The committed side also holds two
plain statements that are about no choice at all, so ordinary talk is not read as stated
ambivalence. The explanation names the ambivalent prototype that matched and how well."""

Embed = Callable[[list[str]], np.ndarray]


def _centroids(embed: Embed) -> np.ndarray:
    columns = []
    for key in ("hesitant", "confident", "positive", "negative"):
        centroid = np.asarray(embed(list(ANCHORS[key])), np.float32).mean(axis=0)
        columns.append(centroid / max(float(np.linalg.norm(centroid)), 1e-6))
    return np.stack(columns, axis=1)


def zeroshot_weights(embed: Embed) -> FusionWeights:
    """The prior (``@3``) as :class:`FusionWeights`; ``embed`` is the MiniLM text encoder
    (unit-norm embeddings), used once to place the anchor centroids and the prototypes."""
    assert tuple(c.name for c in CUES) == FEATURE_NAMES, "CUES must follow FEATURE_NAMES"
    assert tuple(c.name for c in LEARNED_DOCS) == LEARNED_NAMES
    ambivalent, committed = PROTOTYPES["ambivalent"], PROTOTYPES["committed"]
    bank = np.asarray(embed([*ambivalent, *committed]), np.float32).T
    return FusionWeights(
        weights_id=WEIGHTS_ID,
        bias=BIAS,
        contrib_weights={c.name: c.weight for c in CUES},
        anchors=_centroids(embed),
        bank=bank,
        bank_split=len(ambivalent),
        bank_offset=BANK_MARGIN[0],
        bank_scale=1.0 / (BANK_MARGIN[1] - BANK_MARGIN[0]),
        modality_shares=MODALITY_SHARES,
        share_floor=SHARE_FLOOR,
        clip_scale=CALIBRATION["clip_scale"],
        clip_bias=CALIBRATION["clip_bias"],
        metadata={
            "kind": "zero-shot cue prior (not trained on BAH)",
            "prototypes_ambivalent": "\n".join(ambivalent),
        },
    )  # no learned terms: LearnedTerm.zero for each, uses_embeddings "0"


# the weights of @2, kept so that `ahmer evaluate --fusion ahmer-ah-zeroshot@2` can compare
V2_WEIGHTS = {
    "face_negative": 0.9,
    "face_mixed": 0.4,
    "gaze_aversion": 0.6,
    "head_shake": 0.9,
    "brow_tension": 0.5,
    "lip_press": 0.4,
    "pause": 1.0,
    "slow_speech": 0.5,
    "pitch_instability": 0.3,
    "low_energy": 0.3,
    "hedge": 1.3,
    "filler": 0.9,
    "contrast": 1.1,
    "uncertainty": 1.5,
    "negation": 0.3,
    "semantic_hesitancy": 1.0,
    "valence_discord": 1.2,
}


def zeroshot_weights_v2(embed: Embed) -> FusionWeights:
    """The ``@2`` prior under this contract: its 17 weights, the new cues at 0, no prototype
    bank, no presence scaling, no calibration. It reads this version's cue columns (scoped
    hedges, mid-utterance pauses), so it is @2's weighting of @3's measurements."""
    return FusionWeights(
        weights_id=WEIGHTS_ID_V2,
        bias=BIAS,
        contrib_weights={name: V2_WEIGHTS.get(name, 0.0) for name in FEATURE_NAMES},
        anchors=_centroids(embed),
        metadata={"kind": "zero-shot cue prior @2 (kept for comparison)"},
    )


PRIOR_VERSIONS: dict[str, Callable[[Embed], FusionWeights]] = {
    WEIGHTS_ID: zeroshot_weights,
    WEIGHTS_ID_V2: zeroshot_weights_v2,
}
"""Each prior version a run can name (``--fusion ahmer-ah-zeroshot@2``) and its weights."""


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
