"""Interpretable per-frame cue features computed from a timeline (numpy in, numpy out).

These are the ``cues`` input of the fusion graph (:mod:`ahmer.models.fusion.graph`): one column per
entry of :data:`CUE_NAMES`, each scaled to roughly 0..1, plus the per-frame modality masks.
What each cue measures and why it signals A/H is documented in ``models/CUES.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ahmer.models.contract import EMOTIONS
from ahmer.models.fusion.context import WORDS_AFTER_S, WORDS_BEFORE_S
from ahmer.models.fusion.lexicon import (
    AFFIRMATIVES,
    COMMITMENTS,
    FIRST_PERSON,
    LEXICONS,
    NEGATION_GAP,
    NEGATIVES,
    NEGATORS,
    REPORTING_VERBS,
    SCOPED_CUES,
    find_phrases,
    normalise,
)
from ahmer.preprocessing.prosody import RATE_WINDOW
from ahmer.preprocessing.timeline import Timeline, Word

CUE_REVISION = "2"
"""The revision of what the cue features measure, named by every result
(``models["cues"]``). Raised when a fix changes the cues of the same media without a new
fusion version (``models/CUES.md``, "Measurement fixes"): 1 as ``@3`` was introduced, 2
since 2026-12-07 (nods between landmark frames, a commitment as a verbal yes). Batch runs
re-score results made under another revision."""

__all__ = [
    "CUE_REVISION",
    "CUE_NAMES",
    "CUE_GROUPS",
    "CUE_GATES",
    "DELIVERY",
    "NEGATIVE_EMOTIONS",
    "CueFrames",
    "Delivery",
    "Hit",
    "answer_hits",
    "compute_cues",
    "lexical_hits",
    "out_of_scope",
    "articulation_rate",
    "rate_reference",
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
    # contract 3: delivery and cross-modal cues
    "restart": "verbal",
    "latency": "vocal",
    "yes_no_conflict": "cross_modal",
}
CUE_NAMES = tuple(CUE_GROUPS)
CUE_GATES: dict[str, tuple[str, ...]] = {
    name: ("visual", "verbal") if group == "cross_modal" else (group,)
    for name, group in CUE_GROUPS.items()
}
"""The modality masks that must all be present for a cue to count."""


@dataclass(frozen=True)
class Delivery:
    """Documented reference values of the delivery cues (``models/CUES.md``)."""

    population_rate: float = 2.5
    """Words per second of conversational English (about 150 words a minute): the slow-speech
    reference when a clip has too little speech to have a rate of its own."""
    own_rate_min_speech_s: float = 4.0
    """Seconds of speech a clip needs before its own median rate is the reference."""
    slow_from: float = 0.85
    """Rate as a fraction of the reference below which speech counts as slow ..."""
    slow_span: float = 0.45
    """... reaching 1 this much lower (a rate under 40 % of the reference)."""
    pause_from_s: float = 0.5
    """A silence inside the answer shorter than this is ordinary phrasing ..."""
    pause_span_s: float = 1.5
    """... one this much longer counts fully (2 s)."""
    sentence_end_pause: float = 0.5
    """Factor of a pause after a finished sentence (the transcript's . ? !): a breath
    between sentences is less telling than a silence in the middle of one."""
    latency_from_s: float = 1.5
    """Silence before the first speech longer than this is a late answer ..."""
    latency_span_s: float = 2.0
    """... counting fully this much later (3.5 s)."""


DELIVERY = Delivery()


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

    visual: dict[str, np.ndarray] = {}
    if face.any():
        visual = _visual(tl, emotion)
        for name, values in visual.items():
            if name in col:
                cues[:, col[name]] = np.where(face, values, 0.0)
    if audio.any():
        for name, values in _vocal(tl).items():
            cues[:, col[name]] = np.where(audio, values, 0.0)
    hits = lexical_hits(tl.words)
    for name in ("hedge", "filler", "contrast", "uncertainty", "negation", "restart"):
        cues[:, col[name]] = _hit_density(hits, name, tl.times)
    answers = answer_hits(tl.words)
    if face.any() and answers:
        conflict = _yes_no_conflict(answers, tl.times, visual["head_shake"], visual["head_nod"])
        cues[:, col["yes_no_conflict"]] = np.where(face, conflict, 0.0)
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
    out["head_nod"] = _oscillation(pitch, tl.times, tl.masks["face"])
    out["brow_tension"] = np.clip(
        _blend(tl, "browDownLeft", "browDownRight", "browInnerUp") * 2 - 0.2, 0, 1
    )
    out["lip_press"] = np.clip(
        _blend(tl, "mouthPressLeft", "mouthPressRight", "mouthRollLower") * 2 - 0.2, 0, 1
    )
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
    d = DELIVERY
    speaking = tl.masks["speech"]
    out: dict[str, np.ndarray] = {}
    # pauses inside the answer only: silence before the first or after the last speech is
    # the recording starting and stopping (a late start is the latency cue)
    inside = np.zeros(n, bool)
    if tl.speech:
        inside = (tl.times > tl.speech[0].start) & (tl.times < tl.speech[-1].end)
    pause = np.clip((tl.pause_s - d.pause_from_s) / d.pause_span_s, 0, 1)
    out["pause"] = np.where(inside, pause * _pause_position(tl), 0.0)
    rate = articulation_rate(tl)
    if speaking.sum() >= 3 and np.isfinite(rate[speaking]).any():
        reference = rate_reference(tl)
        slow = np.clip((d.slow_from - rate / reference) / d.slow_span, 0, 1)
        out["slow_speech"] = np.where(speaking, np.nan_to_num(slow), 0.0)
    if tl.speech:
        onset = float(tl.speech[0].start)
        late = float(np.clip((onset - d.latency_from_s) / d.latency_span_s, 0, 1))
        out["latency"] = np.where(tl.times <= onset + 0.5, late, 0.0)
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


def articulation_rate(tl: Timeline) -> np.ndarray:
    """Words per second of *speaking* time around each frame: the timeline's speech rate
    (words per second of a 2 s window) over the share of that window spent speaking (at
    least 0.3), so that a pause beside a word does not read as slow speech (the pause is a
    cue of its own)."""
    speaking = tl.masks["speech"].astype(np.float64)
    k = max(1, int(round(RATE_WINDOW * tl.fps)))
    # "full" cut to the frames: "same" is as long as the kernel when the timeline is shorter
    share, lead = speaking, (k - 1) // 2
    if len(speaking):
        share = np.convolve(speaking, np.ones(k) / k, mode="full")[lead : lead + len(speaking)]
    return (tl.speech_rate / np.maximum(share, 0.3)).astype(np.float32)


def rate_reference(tl: Timeline) -> float:
    """The speech rate (words/s of speaking time) that ``slow_speech`` compares with: the
    clip's own median rate while speaking when it has :attr:`Delivery.own_rate_min_speech_s`
    of speech, else the documented population rate."""
    speaking = tl.masks["speech"]
    speech_s = sum(max(0.0, s.end - s.start) for s in tl.speech)
    rates = articulation_rate(tl)[speaking]
    rates = rates[np.isfinite(rates)]
    if speech_s >= DELIVERY.own_rate_min_speech_s and rates.size >= 3:
        return max(float(np.median(rates)), 0.5)
    return DELIVERY.population_rate


def _pause_position(tl: Timeline) -> np.ndarray:
    """Per frame, 1 inside a pause in the middle of a sentence, :attr:`Delivery.
    sentence_end_pause` inside a pause after a word ending a sentence; 1 without words (the
    pause is measured from the audio and needs no words)."""
    factor = np.ones(len(tl), np.float32)
    if not tl.words:
        return factor
    ends = np.array([w.end for w in tl.words], np.float64)
    done = np.array([w.text.rstrip().endswith((".", "?", "!")) for w in tl.words], bool)
    before = np.searchsorted(ends, tl.times, side="right") - 1
    silent = tl.pause_s > 0
    finished = silent & (before >= 0) & done[np.clip(before, 0, None)]
    factor[finished] = DELIVERY.sentence_end_pause
    return factor


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
    """Every lexicon phrase found in ``words``, with the span of the words it covers.

    Hedges, uncertainty and contrast (:data:`SCOPED_CUES`) do not count inside a negation
    ("there is no doubt in my mind") or inside another person's reported words ("my friends
    said maybe next year; I said this week"): see :func:`out_of_scope`. Restarts are a word
    or a pair of words said twice in a row ("I, I will"), or a word cut off with a dash."""
    tokens, owner = _tokens(words)
    blocked = out_of_scope(words, tokens, owner)
    hits: list[Hit] = []

    def add(cue: str, first: int, last: int) -> None:
        idx = tuple(sorted(set(owner[first : last + 1])))
        hits.append(Hit(cue, words[idx[0]].start, words[idx[-1]].end, idx))

    for cue, phrases in LEXICONS.items():
        for first, last in find_phrases(tokens, phrases):
            if cue in SCOPED_CUES and blocked[first]:
                continue
            add(cue, first, last)
    for first, last in _restarts(words, tokens, owner):
        add("restart", first, last)
    hits.sort(key=lambda h: (h.start, h.cue))
    return hits


def out_of_scope(words: list[Word], tokens: list[str], owner: list[int]) -> np.ndarray:
    """Per token, whether a hedge there is negated or someone else's reported words.

    Negation: a negator (:data:`NEGATORS`) right before the token, or separated from it only
    by words such as "any", "real", "shadow of" ("no real doubt"); a phrase that holds the
    negation itself ("not sure", "I don't know") is matched whole and stays a hedge.
    Quotation: tokens inside quotation marks, and tokens after a reporting verb ("said",
    "told") whose subject is not the speaker ("my friends said", not "I said"), up to the
    end of the clause (a word ending with , ; . ! ? :)."""
    n = len(tokens)
    blocked = np.zeros(n, bool)
    for i in range(n):
        j = i - 1
        while j >= 0 and tokens[j] in NEGATION_GAP and i - j <= 3:
            j -= 1
        blocked[i] = j >= 0 and tokens[j] in NEGATORS
    clause_end = [
        words[owner[k]].text.rstrip().endswith((",", ";", ".", "!", "?", ":"))
        and (k + 1 == n or owner[k + 1] != owner[k])
        for k in range(n)
    ]
    quoting = False
    for k in range(n):
        if quoting:
            blocked[k] = True
            if clause_end[k]:
                quoting = False
            continue
        if tokens[k] in REPORTING_VERBS and k > 0 and tokens[k - 1] not in FIRST_PERSON:
            if not clause_end[k]:
                quoting = True
    inside = False
    for k in range(n):
        text = words[owner[k]].text
        opens = text.lstrip().startswith(('"', "\u201c"))
        closes = text.rstrip(".,;!?").endswith(('"', "\u201d"))
        if opens and (k == 0 or owner[k - 1] != owner[k]):
            inside = True
        if inside:
            blocked[k] = True
        if closes and (k + 1 == n or owner[k + 1] != owner[k]):
            inside = False
    return blocked


def _restarts(words: list[Word], tokens: list[str], owner: list[int]) -> list[tuple[int, int]]:
    """``(first, last)`` token spans of restarts: a token or two-token group said twice in a
    row ("I, I will"; "I will, I will"), or a word cut off with a dash ("I wa- I want")."""
    spans: list[tuple[int, int]] = []
    k = 0
    while k < len(tokens):
        if k + 1 < len(tokens) and tokens[k] == tokens[k + 1] and owner[k] != owner[k + 1]:
            spans.append((k, k + 1))
            k += 2
            continue
        if (
            k + 3 < len(tokens)
            and tokens[k : k + 2] == tokens[k + 2 : k + 4]
            and owner[k + 1] != owner[k + 2]
        ):
            spans.append((k, k + 3))
            k += 4
            continue
        if words[owner[k]].text.rstrip().endswith(("-", "\u2014")) and (
            k + 1 == len(tokens) or owner[k + 1] != owner[k]
        ):
            spans.append((k, min(k + 1, len(tokens) - 1)))
        k += 1
    return spans


def _tokens(words: list[Word]) -> tuple[list[str], list[int]]:
    tokens: list[str] = []
    owner: list[int] = []
    for i, word in enumerate(words):
        for token in normalise(word.text):
            tokens.append(token)
            owner.append(i)
    return tokens, owner


def answer_hits(words: list[Word]) -> list[Hit]:
    """The verbal yes (``yes_word``: "yes", "sure", "definitely", ..., or a stated
    commitment: "I will", "I'm going to") and no (``no_word``) said in ``words``; a negated
    yes ("not sure", "I will not") is no yes."""
    tokens, owner = _tokens(words)
    blocked = out_of_scope(words, tokens, owner)
    hits = []
    kinds = (("yes_word", AFFIRMATIVES), ("yes_word", COMMITMENTS), ("no_word", NEGATIVES))
    for cue, phrases in kinds:
        for first, last in find_phrases(tokens, phrases):
            if cue == "yes_word" and blocked[first]:
                continue
            end = words[owner[last]].text.rstrip()
            after = tokens[last + 1] if last + 1 < len(tokens) else ""
            if phrases is COMMITMENTS and after in NEGATORS:
                continue  # "I will not": no commitment
            if cue == "no_word" and not (
                end.endswith((",", ".", "!", ";")) or not after or after in FIRST_PERSON
            ):
                continue  # "no doubt", "never again": a negated phrase, not an answer
            idx = tuple(sorted(set(owner[first : last + 1])))
            hits.append(Hit(cue, words[idx[0]].start, words[idx[-1]].end, idx))
    return sorted(hits, key=lambda h: h.start)


def _yes_no_conflict(
    hits: list[Hit], times: np.ndarray, shake: np.ndarray, nod: np.ndarray
) -> np.ndarray:
    """Per frame, a verbal yes within -1/+1 s times the head shake there, or a verbal no
    times the head nod (the larger of the two)."""
    out = np.zeros(len(times), np.float32)
    for hit in hits:
        if hit.cue not in ("yes_word", "no_word"):
            continue
        near = (times >= hit.start - 1.0) & (times <= hit.end + 1.0)
        motion = shake if hit.cue == "yes_word" else nod
        if near.any():
            out[near] = np.maximum(out[near], float(np.max(motion[near])))
    return out


def _hit_density(hits: list[Hit], cue: str, times: np.ndarray) -> np.ndarray:
    """1 - exp(-count) of ``cue`` hits overlapping [t - before, t + after]."""
    count = np.zeros(len(times), np.float32)
    for hit in hits:
        if hit.cue == cue:
            count += (hit.end > times - WORDS_BEFORE_S) & (hit.start < times + WORDS_AFTER_S)
    return 1.0 - np.exp(-count)
