"""Explanations built from evidence: ranked cues with time spans and a summary made of them.

Nothing here is invented: each :class:`~ahmer.models.results.Cue` points at frames where the
fusion graph's own per-cue contribution (``cue_contrib``) is high, and carries the measured
evidence there (the words and their times, the pause length, the expression and its
probability, the two valences). The summary sentence is composed only from those cues.

A trained fusion's learned terms (``learned_face``, ``learned_voice``, ``learned_text``) read
embeddings, not named cues: where one contributes, the cue says only that — "a learned voice
pattern" — with its span, the frames that drove it and its contribution as evidence, and
claims no reason the model does not give. The prior's learned weights are zero, so it never
cites them.
"""

from __future__ import annotations

import numpy as np

from ahmer.models.contract import EMOTIONS, SEGMENT_GAP
from ahmer.models.fusion.cues import (
    NEGATIVE_EMOTIONS,
    CueFrames,
    Hit,
    answer_hits,
    articulation_rate,
    rate_reference,
)
from ahmer.models.fusion.graph import CONTRIB_GROUPS, CONTRIB_NAMES, LEARNED_NAMES
from ahmer.models.results import AHSegment, Cue, Explanation
from ahmer.preprocessing.timeline import Timeline

__all__ = ["explain", "segments_from", "spans_above"]

TYPE_OF_GROUP = {
    "visual": "visual",
    "vocal": "vocal",
    "verbal": "verbal",
    "cross_modal": "cross-modal",
}
MIN_WEIGHT = 0.15  # logit contribution below which a cue is not worth citing
MAX_DRIVING_FRAMES = 50  # a learned pattern's evidence lists at most this many frames
LEXICAL = ("hedge", "filler", "contrast", "uncertainty", "negation", "restart")
PHRASE = {
    "hedge": "hedging",
    "filler": "filled pause",
    "contrast": "contrast",
    "uncertainty": "uncertainty",
    "negation": "negation",
    "restart": "restart",
}
CHANNEL = {"visual": "face", "vocal": "voice", "verbal": "words"}


def spans_above(values: np.ndarray, times: np.ndarray, threshold: float, gap: float = 0.0):
    """Contiguous runs where ``values > threshold``, as ``(first, last)`` frame indices;
    runs separated by less than ``gap`` seconds are merged."""
    above = np.flatnonzero(values > threshold)
    runs: list[list[int]] = []
    for i in above:
        if runs and (i == runs[-1][1] + 1 or times[i] - times[runs[-1][1]] <= gap):
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [(a, b) for a, b in runs]


def _frame_end(times: np.ndarray, i: int, fps: float, duration: float | None = None) -> float:
    """Where frame ``i`` ends: the next frame's time, or one frame step on, but never past
    the media's ``duration`` (at a low analysis rate a step can be longer than the clip)."""
    if i + 1 < len(times):
        return float(times[i + 1])
    end = float(times[i] + 1.0 / fps)
    if duration and duration > times[i]:
        end = min(end, float(duration))
    return end


def segments_from(
    prob: np.ndarray,
    times: np.ndarray,
    fps: float,
    threshold: float = 0.5,
    duration: float | None = None,
) -> list[AHSegment]:
    """A/H segments: runs of frames above ``threshold`` (gaps < 0.4 s merged), ending no
    later than the media's ``duration`` when given."""
    out = []
    for a, b in spans_above(prob, times, threshold, gap=SEGMENT_GAP):
        peak = a + int(np.argmax(prob[a : b + 1]))
        out.append(
            AHSegment(
                start=float(times[a]),
                end=_frame_end(times, b, fps, duration),
                peak_time=float(times[peak]),
                peak_probability=float(prob[peak]),
            )
        )
    return out


def explain(
    tl: Timeline,
    cues: CueFrames,
    contrib: np.ndarray,
    emotion: np.ndarray | None,
    valence: np.ndarray,
    clip_probability: float,
    threshold: float = 0.5,
    max_cues: int = 8,
    prototype_match: np.ndarray | None = None,
    prototypes: tuple[str, ...] = (),
) -> Explanation:
    """Ranked evidence and a summary for one clip. ``contrib`` is [T, C] (``cue_contrib``,
    columns ``CONTRIB_NAMES``), ``emotion`` the raw face-emotion probabilities [T, 7] (NaN
    without a face). ``prototype_match`` [T, 2] (the graph's output: index of the nearest
    ambivalent prototype, its similarity) and ``prototypes`` (the graph's ambivalent
    prototype sentences) let a stated-ambivalence cue name the sentence it matched. The
    summary names the channels that were absent (no face, no audio, no words): they were
    not counted against A/H."""
    found: list[Cue] = []
    match = (prototype_match, prototypes)
    col = {name: i for i, name in enumerate(CONTRIB_NAMES)}
    times = tl.times
    for group in _group_hits(cues.hits):
        found.append(_lexical_cue(tl, group, contrib[:, col[group[0].cue]]))
    for name in CONTRIB_NAMES:
        if name in LEXICAL:
            continue
        values = contrib[:, col[name]]
        for a, b in spans_above(values, times, MIN_WEIGHT, gap=0.3):
            cue = _span_cue(tl, name, a, b, values, emotion, valence, match)
            if cue is not None:
                found.append(cue)
    found = [c for c in found if c.weight >= MIN_WEIGHT]
    found.sort(key=lambda c: (-c.weight, c.start))
    ranked = tuple(_dedupe(found)[:max_cues])
    present = cues.masks.max(axis=0) > 0 if len(cues.masks) else np.zeros(len(CHANNEL), bool)
    absent = [CHANNEL[m] for m, on in zip(CHANNEL, present, strict=True) if not on]
    summary = _summary(ranked, clip_probability, threshold, absent)
    return Explanation(summary=summary, cues=ranked)


def _peak(values: np.ndarray, times: np.ndarray, start: float, end: float) -> float:
    sel = (times >= start - 0.5) & (times <= end + 0.5)
    return float(values[sel].max()) if sel.any() else 0.0


def _group_hits(hits, gap: float = 1.0) -> list[list[Hit]]:
    """Hits of the same cue less than ``gap`` seconds apart, as one group each."""
    groups: list[list[Hit]] = []
    last: dict[str, list[Hit]] = {}
    for hit in sorted(hits, key=lambda h: h.start):
        group = last.get(hit.cue)
        if group is not None and hit.start - group[-1].end < gap:
            group.append(hit)
        else:
            group = [hit]
            groups.append(group)
            last[hit.cue] = group
    return groups


def _lexical_cue(tl: Timeline, group: list[Hit], values: np.ndarray) -> Cue:
    occurrences = []
    for hit in group:
        words = " ".join(tl.words[i].text.strip() for i in hit.words).strip(" ,.;:!?")
        occurrences.append({"words": words, "start": round(hit.start, 3), "end": round(hit.end, 3)})
    start, end = group[0].start, max(h.end for h in group)
    quoted = ", ".join(f"\u201c{o['words']}\u201d" for o in occurrences)
    when = f"{start:.1f}s" if len(group) == 1 else f"{start:.1f}-{end:.1f}s"
    return Cue(
        type="verbal",
        cue=group[0].cue,
        start=round(start, 3),
        end=round(end, 3),
        weight=round(_peak(values, tl.times, start, end), 4),
        evidence={
            "words": ", ".join(o["words"] for o in occurrences),
            "occurrences": occurrences,
        },
        text=f"{PHRASE[group[0].cue]} {quoted} at {when}",
    )


def _span_cue(tl, name, a, b, values, emotion, valence, match=(None, ())) -> Cue | None:
    times = tl.times
    duration = getattr(tl.info, "duration", None)
    start, end = float(times[a]), _frame_end(times, b, tl.fps, duration)
    weight = float(values[a : b + 1].max())
    group = CONTRIB_GROUPS[name]
    sl = slice(a, b + 1)
    evidence: dict = {}
    if name == "pause":
        length = float(np.nanmax(tl.pause_s[sl]))
        if length <= 0:
            return None
        pause = _pause_around(tl, start, end)
        if pause is not None:
            start, end = pause
        before = [w for w in tl.words if w.end <= start + 0.05]
        mid = not before or not before[-1].text.rstrip().endswith((".", "?", "!"))
        evidence = {"pause_s": round(length, 2), "mid_sentence": mid}
        where = "mid-sentence " if mid and tl.words else ""
        text = f"a {length:.1f}s {where}pause at {start:.1f}s"
    elif name in ("face_negative", "face_mixed") and emotion is not None:
        mean = np.nanmean(emotion[sl], axis=0)
        if np.isnan(mean).all():
            return None
        pool = [EMOTIONS.index(e) for e in NEGATIVE_EMOTIONS] if name == "face_negative" else None
        k = pool[int(np.argmax(mean[pool]))] if pool else int(np.argmax(mean))
        evidence = {"expression": EMOTIONS[k], "probability": round(float(mean[k]), 3)}
        kind = "negative" if name == "face_negative" else "mixed"
        text = f"a {kind} facial expression ({EMOTIONS[k]} {mean[k]:.2f}) at {start:.1f}-{end:.1f}s"
    elif name == "valence_discord":
        face_v = _face_valence(emotion[sl]) if emotion is not None else float("nan")
        words = " ".join(w.text.strip() for w in tl.words_between(start - 1.5, end + 1.0))
        evidence = {"facial_valence": round(face_v, 2), "words": words.strip()}
        text = f"face and words disagree in valence at {start:.1f}-{end:.1f}s"
    elif name == "semantic_hesitancy":
        words = " ".join(w.text.strip() for w in tl.words_between(start - 1.5, end + 1.0))
        evidence = {"words": words.strip()}
        text = f"hesitant wording at {start:.1f}-{end:.1f}s"
    elif name in LEARNED_NAMES:
        evidence, text = _learned_evidence(tl, name, a, b, values, start, end)
    elif name == "head_shake":
        yaw = tl.head_pose[sl, 0]
        evidence = {"yaw_range_deg": round(float(np.nanmax(yaw) - np.nanmin(yaw)), 1)}
        text = f"a head shake at {start:.1f}-{end:.1f}s"
    elif name == "slow_speech":
        rate = float(np.nanmean(articulation_rate(tl)[sl]))
        reference = rate_reference(tl)
        evidence = {"words_per_s": round(rate, 2), "reference_words_per_s": round(reference, 2)}
        text = (
            f"slower speech at {start:.1f}-{end:.1f}s ({rate:.1f} words/s against {reference:.1f})"
        )
    elif name == "latency":
        onset = float(tl.speech[0].start) if tl.speech else end
        evidence = {"latency_s": round(onset, 2)}
        start, end = 0.0, onset
        text = f"a {onset:.1f}s wait before answering"
    elif name == "yes_no_conflict":
        said = [h for h in answer_hits(tl.words) if h.start < end + 1.0 and h.end > start - 1.0]
        words = ", ".join(" ".join(tl.words[i].text.strip() for i in h.words) for h in said)
        nod = any(h.cue == "no_word" for h in said)
        axis = 1 if nod else 0
        motion = tl.head_pose[sl, axis]
        evidence = {
            "words": words.strip(" ,.;:!?"),
            "head": "nod" if nod else "shake",
            "range_deg": round(float(np.nanmax(motion) - np.nanmin(motion)), 1),
        }
        gesture = "nodding" if nod else "shaking the head"
        text = f"\u201c{evidence['words']}\u201d said while {gesture} at {start:.1f}-{end:.1f}s"
    elif name == "stated_ambivalence":
        words = " ".join(w.text.strip() for w in tl.words_between(start - 1.5, end + 1.0))
        evidence = {"words": words.strip()}
        text = f"stated ambivalence at {start:.1f}-{end:.1f}s"
        found, sentences = match
        if found is not None and len(sentences):
            peak = a + int(np.argmax(values[a : b + 1]))
            k = int(round(float(found[peak, 0])))
            if 0 <= k < len(sentences):
                similarity = round(float(found[peak, 1]), 2)
                evidence.update(prototype=sentences[k], similarity=similarity)
                text += f" (close to \u201c{sentences[k]}\u201d, similarity {similarity:.2f})"
    else:
        label = name.replace("_", " ")
        evidence = {"mean_cue": round(float(np.nanmean(values[sl])), 3)}
        text = f"{label} at {start:.1f}-{end:.1f}s"
    return Cue(
        type=TYPE_OF_GROUP[group],
        cue=name,
        start=round(start, 3),
        end=round(end, 3),
        weight=round(weight, 4),
        evidence=evidence,
        text=text,
    )


def _learned_evidence(tl, name, a, b, values, start, end) -> tuple[dict, str]:
    """A learned term's evidence: its peak and mean contribution over the span and the
    frames that drove it (at least half the peak), by index and time."""
    span = values[a : b + 1]
    peak = float(span.max())
    driving = a + np.flatnonzero(span >= 0.5 * peak)[:MAX_DRIVING_FRAMES]
    kind = name.removeprefix("learned_")
    evidence = {
        "contribution": round(peak, 3),
        "mean_contribution": round(float(span.mean()), 3),
        "peak_time": round(float(tl.times[a + int(np.argmax(span))]), 3),
        "frames": [int(i) for i in driving],
        "frame_times": [round(float(tl.times[i]), 3) for i in driving],
    }
    # the cue's weight is its peak contribution, printed beside the text: not repeated here
    return evidence, f"a learned {kind} pattern at {start:.1f}-{end:.1f}s"


def _face_valence(emotion: np.ndarray) -> float:
    mean = np.nanmean(emotion, axis=0)
    neg = sum(mean[EMOTIONS.index(e)] for e in NEGATIVE_EMOTIONS)
    return float(mean[EMOTIONS.index("happy")] - neg)


def _pause_around(tl: Timeline, start: float, end: float):
    for prev, nxt in zip(tl.speech, tl.speech[1:], strict=False):
        if prev.end <= end and nxt.start >= start:
            return prev.end, nxt.start
    return None


def _dedupe(cues: list[Cue]) -> list[Cue]:
    """Drop a cue whose type, name and span repeat a stronger one already kept."""
    kept: list[Cue] = []
    for c in cues:
        if any(k.cue == c.cue and k.start < c.end and c.start < k.end for k in kept):
            continue
        kept.append(c)
    return kept


def _summary(cues: tuple[Cue, ...], p: float, threshold: float, absent=()) -> str:
    if p >= threshold:
        head = f"Ambivalence/hesitancy likely (p={p:.2f})"
    else:
        head = f"No clear ambivalence/hesitancy (p={p:.2f})"
    tail = ""
    if absent:
        tail = f" Absent: {', '.join(absent)} (scored from the channels present)."
    if not cues:
        return head + "; no cue stood out." + tail
    parts = [c.text for c in cues[:3]]
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    lead = "driven by " if p >= threshold else "strongest cues: "
    return f"{head}, {lead}{joined}.{tail}"
