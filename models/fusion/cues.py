"""Interpretable per-frame cue features computed from a timeline (numpy in, numpy out).

These are the ``cues`` input of the fusion graph (:mod:`ahmer.models.fusion.graph`): one column per
entry of :data:`CUE_NAMES`, each scaled to roughly 0..1, plus the per-frame modality masks.
What each cue measures and why it signals A/H is documented in ``models/CUES.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ahmer.models.contract import EMOTIONS
from ahmer.models.fusion.lexicon import LEXICONS, find_phrases, normalise
from ahmer.preprocessing.timeline import Timeline, Word

__all__ = [
    "CUE_NAMES",
    "CUE_GROUPS",
    "NEGATIVE_EMOTIONS",
    "CueFrames",
    "Hit",
    "compute_cues",
    "lexical_hits",
]

NEGATIVE_EMOTIONS = ("angry", "disgust", "fear", "sad")

# Input columns of the fusion graph, in order, with the modality mask each is gated by.
CUE_GROUPS: dict[str, str] = {
    "face_negative": "visual",
    "face_mixed": "visual",
    "gaze_aversion": "visual",
    "head_shake": "visual",
    "brow_tension": "visual",
    "lip_press": "visual",
    "pause": "vocal",
    "slow_speech": "vocal",
    "pitch_instability": "vocal",
    "low_energy": "vocal",
    "hedge": "verbal",
    "filler": "verbal",
    "contrast": "verbal",
    "uncertainty": "verbal",
    "negation": "verbal",
}
CUE_NAMES = tuple(CUE_GROUPS)

# Verbal cues look at the words spoken shortly before and after each frame.
WORDS_BEFORE_S = 1.5
WORDS_AFTER_S = 1.0


@dataclass(frozen=True)
class Hit:
    """A lexical cue found in the words: which list, the words and their time span."""

    cue: str
    start: float
    end: float
    words: tuple[int, ...]


@dataclass(frozen=True)
class CueFrames:
    """``cues`` [T, len(CUE_NAMES)] float32 and ``masks`` [T, 3] float32 (visual, vocal,
    verbal presence), plus the lexical hits behind the verbal cues (for explanations)."""

    cues: np.ndarray
    masks: np.ndarray
    hits: tuple[Hit, ...]


def compute_cues(tl: Timeline, emotion: np.ndarray | None) -> CueFrames:
    """Cue features for every frame of ``tl``. ``emotion`` is [T, 7] face-emotion
    probabilities (NaN rows where no face), or ``None`` when there is no face model."""
    n = len(tl)
    cues = np.zeros((n, len(CUE_NAMES)), np.float32)
    col = {name: i for i, name in enumerate(CUE_NAMES)}
    face = tl.masks["face"].copy()
    if emotion is not None:
        face &= ~np.isnan(emotion).any(axis=1)
    audio = tl.masks["audio"]
    verbal = np.full(n, bool(tl.words) or tl.transcript_source != "none", bool)
    masks = np.stack([face, audio, verbal], axis=1).astype(np.float32)

    if face.any():
        for name, values in _visual(tl, emotion).items():
            cues[:, col[name]] = np.where(face, values, 0.0)
    if audio.any():
        for name, values in _vocal(tl).items():
            cues[:, col[name]] = np.where(audio, values, 0.0)
    hits = lexical_hits(tl.words)
    for name in ("hedge", "filler", "contrast", "uncertainty", "negation"):
        cues[:, col[name]] = _hit_density(hits, name, tl.times)
    np.nan_to_num(cues, copy=False)
    return CueFrames(cues=np.clip(cues, 0.0, 1.0), masks=masks, hits=tuple(hits))


# -- visual --------------------------------------------------------------------------------


def _blend(tl: Timeline, *names: str) -> np.ndarray:
    index = {n: i for i, n in enumerate(tl.blendshape_names)}
    cols = [index[n] for n in names if n in index]
    if not cols:
        return np.zeros(len(tl), np.float32)
    return np.nanmean(tl.blendshapes[:, cols], axis=1)


def _visual(tl: Timeline, emotion: np.ndarray | None) -> dict[str, np.ndarray]:
    n = len(tl)
    out: dict[str, np.ndarray] = {}
    if emotion is not None:
        neg = emotion[:, [EMOTIONS.index(e) for e in NEGATIVE_EMOTIONS]].sum(axis=1)
        out["face_negative"] = np.clip((neg - 0.2) / 0.6, 0, 1)
        p = np.clip(emotion, 1e-6, 1.0)
        entropy = -(p * np.log(p)).sum(axis=1) / np.log(len(EMOTIONS))
        out["face_mixed"] = np.clip((entropy - 0.5) / 0.4, 0, 1)
    down = _blend(tl, "eyeLookDownLeft", "eyeLookDownRight")
    side = np.maximum(
        _blend(tl, "eyeLookOutLeft", "eyeLookInRight"),
        _blend(tl, "eyeLookInLeft", "eyeLookOutRight"),
    )
    yaw, pitch = tl.head_pose[:, 0], tl.head_pose[:, 1]
    head_away = np.clip((np.abs(np.nan_to_num(yaw)) - 15) / 20, 0, 1)
    out["gaze_aversion"] = np.clip(np.maximum.reduce([down, side, head_away]) * 1.3 - 0.2, 0, 1)
    out["head_shake"] = _oscillation(yaw, tl.times, tl.masks["face"])
    out["brow_tension"] = np.clip(
        _blend(tl, "browDownLeft", "browDownRight", "browInnerUp") * 2 - 0.2, 0, 1
    )
    out["lip_press"] = np.clip(
        _blend(tl, "mouthPressLeft", "mouthPressRight", "mouthRollLower") * 2 - 0.2, 0, 1
    )
    del pitch
    return {k: np.nan_to_num(v.astype(np.float32))[:n] for k, v in out.items()}


def _oscillation(yaw: np.ndarray, times: np.ndarray, valid: np.ndarray, half: float = 0.8):
    """Head shake: the number of yaw direction reversals of more than 3 degrees within
    ``half`` seconds either side, saturating at 2 reversals."""
    n = len(times)
    out = np.zeros(n, np.float32)
    y = np.where(valid, np.nan_to_num(yaw), np.nan)
    for i in range(n):
        sel = (times >= times[i] - half) & (times <= times[i] + half) & ~np.isnan(y)
        seq = y[sel]
        if len(seq) < 3:
            continue
        d = np.diff(seq)
        d = d[np.abs(d) > 3.0]
        reversals = int(np.sum(np.sign(d[1:]) != np.sign(d[:-1]))) if len(d) > 1 else 0
        out[i] = min(1.0, reversals / 2)
    return out


# -- vocal ---------------------------------------------------------------------------------


def _vocal(tl: Timeline) -> dict[str, np.ndarray]:
    n = len(tl)
    speaking = tl.masks["speech"]
    out: dict[str, np.ndarray] = {}
    # pauses inside the answer only: silence before the first or after the last speech is
    # the recording starting and stopping, not hesitation
    inside = np.zeros(n, bool)
    if tl.speech:
        inside = (tl.times > tl.speech[0].start) & (tl.times < tl.speech[-1].end)
    out["pause"] = np.where(inside, np.clip((tl.pause_s - 0.3) / 1.5, 0, 1), 0.0)
    rate = tl.speech_rate
    if speaking.sum() >= 3 and np.isfinite(rate[speaking]).any():
        median = float(np.nanmedian(rate[speaking]))
        slow = np.clip((median - rate) / max(median, 1e-3), 0, 1)
        out["slow_speech"] = np.where(speaking, np.nan_to_num(slow), 0.0)
    f0 = tl.f0_hz
    voiced = tl.voiced & np.isfinite(f0)
    if voiced.sum() >= 5:
        semitones = 12 * np.log2(np.where(voiced, f0, np.nan) / np.nanmedian(f0[voiced]))
        local = _rolling_std(semitones, tl.times, 0.5)
        clip_std = float(np.nanstd(semitones[voiced])) or 1.0
        out["pitch_instability"] = np.clip((local / clip_std - 1.0) / 1.5, 0, 1)
    energy = tl.energy_db
    if np.isfinite(energy[speaking]).sum() >= 3:
        median_e = float(np.nanmedian(energy[speaking]))
        out["low_energy"] = np.where(speaking, np.clip((median_e - energy) / 12, 0, 1), 0.0)
    return {k: np.nan_to_num(np.asarray(v, np.float32)) for k, v in out.items()}


def _rolling_std(values: np.ndarray, times: np.ndarray, half: float) -> np.ndarray:
    out = np.full(len(values), np.nan, np.float32)
    for i, t in enumerate(times):
        window = values[(times >= t - half) & (times <= t + half)]
        window = window[np.isfinite(window)]
        if len(window) >= 3:
            out[i] = np.std(window)
    return out


# -- verbal --------------------------------------------------------------------------------


def lexical_hits(words: list[Word]) -> list[Hit]:
    """Every lexicon phrase found in ``words``, with the span of the words it covers."""
    tokens: list[str] = []
    owner: list[int] = []
    for i, word in enumerate(words):
        for token in normalise(word.text):
            tokens.append(token)
            owner.append(i)
    hits: list[Hit] = []
    for cue, phrases in LEXICONS.items():
        for first, last in find_phrases(tokens, phrases):
            idx = tuple(sorted(set(owner[first : last + 1])))
            hits.append(Hit(cue, words[idx[0]].start, words[idx[-1]].end, idx))
    hits.sort(key=lambda h: (h.start, h.cue))
    return hits


def _hit_density(hits: list[Hit], cue: str, times: np.ndarray) -> np.ndarray:
    """1 - exp(-count) of ``cue`` hits overlapping [t - before, t + after]."""
    count = np.zeros(len(times), np.float32)
    for hit in hits:
        if hit.cue == cue:
            count += (hit.end > times - WORDS_BEFORE_S) & (hit.start < times + WORDS_AFTER_S)
    return 1.0 - np.exp(-count)
