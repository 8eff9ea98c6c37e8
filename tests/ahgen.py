"""A challenge set for A/H from every channel, in the BAH release layout, generated at test time.

A sibling of :mod:`bahgen` (whose A/H clips all carry hedge words). Each clip belongs to one
**category**, so a score can be read per category (``bench/validity.py``,
``tests/test_ah_channels.py``):

=====================  =====  ================================================================
category               label  what the clip holds
=====================  =====  ================================================================
``lexical``            1      hedges, fillers and uncertainty ("um, I guess I could try")
``delivery``           1      no hedge word: a late start, restarts ("I, I will"), pauses in
                              the middle of the sentence, a slowed part
``stated``             1      ambivalence said in plain words, without hedges ("I want to quit,
                              and I want to keep smoking too")
``crossmodal``         1      "yes" with a head shake, "no" with a nod, or sad words over a
                              smiling face
``audio_only``         1      hedges, fillers and pauses with no video track
``negated``            0      committed answers with negated or quoted hedges ("there is no
                              doubt in my mind", "my friends said maybe next year")
``fluent``             0      fluent committed answers
``read``               0      read-aloud factual sentences at a steady pace
``casual``             0      casual talk full of discourse markers ("well", "you know") about
                              no choice at all
``audio_fluent``       0      fluent committed answers with no video track
=====================  =====  ================================================================

Voices (espeak-ng variants and rates), faces (the astronaut placed, lit and mirrored per
participant) and wordings vary; every participant answers in every category
(``per_category`` clips each), so participant-disjoint splits hold every category. Head
shakes and nods are real head rotations of the face mesh (found once per participant by the
store's MediaPipe landmarker), rendered with a piecewise affine warp. The A/H frames of a
positive clip are its hesitant or ambivalent part.

Everything follows from ``seed``. Layout as :mod:`bahgen` (``Videos/``, ``splits/``,
``video_annotation.yaml``, ``class_id.yaml``) plus ``categories.csv`` (``source,category``).
The split files hold plain transcripts (no times), as the BAH release's split files do.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bahgen import (
    FPS,
    RATE,
    SIZE,
    VOICES,
    BahClip,
    BahSet,
    _pcm,
    _silence,
    assign_splits,
    write_layout,
)
from media import canvas, make_clip, portrait, warp_points

__all__ = [
    "CATEGORIES",
    "AhClip",
    "AhSet",
    "make_ah_challenge",
    "read_categories",
]

CATEGORIES: dict[str, int] = {
    "lexical": 1,
    "delivery": 1,
    "stated": 1,
    "crossmodal": 1,
    "audio_only": 1,
    "negated": 0,
    "fluent": 0,
    "read": 0,
    "casual": 0,
    "audio_fluent": 0,
}
"""Each category and its clips' label."""
AUDIO_ONLY = ("audio_only", "audio_fluent")

LEXICAL = (
    ("Um, I guess I could try,", "but, uh,", "I'm not sure."),
    ("Well... maybe,", "I mean, it's hard,", "I don't know."),
    ("Hmm, I might,", "perhaps next month,", "I'm not sure yet."),
    ("Uh, kind of,", "I think I could,", "but I doubt it."),
    ("I suppose,", "um, probably not,", "hard to say."),
)
AUDIO_LEXICAL = (
    ("Um,", "uh, I guess I could try,", "maybe."),
    ("Hmm,", "I'm not sure, um,", "I don't know."),
    ("Uh, well,", "um, maybe,", "I might, I guess."),
    ("Er,", "I think, um, perhaps,", "not sure."),
)
# the hesitant delivery of a plain, committed sentence: said in three pieces
DELIVERY = (
    ("I, I will", "cut down", "on sugar this month."),
    ("We, we can", "cook at home", "four nights a week."),
    ("I will, I will", "go to bed", "before eleven."),
    ("My plan, my plan is", "to walk", "after lunch."),
    ("I am, I am going", "to stop buying", "cigarettes."),
)
STATED = (
    "I want to quit smoking, and I want to keep smoking too.",
    "Half of me is ready to run every day, the other half wants to stay on the couch.",
    "I love sweets and I hate what they do to me.",
    "Some days I want to stop drinking, other days I want one more glass.",
    "I feel like two people, one wants the gym and one wants to sleep in.",
    "Quitting matters to me, and smoking matters to me as well.",
)
YES_SHAKE = (
    "Yes, I will quit next month.",
    "Yes, I am ready to exercise.",
    "Sure, I will eat more fruit.",
    "Yes, definitely, I will call my sponsor.",
)
NO_NOD = (
    "No, I do not want to stop.",
    "No, I will not change my diet.",
    "No, I am not ready.",
)
SAD_WORDS = (
    "I feel terrible about my drinking, I hate it.",
    "I am sad and ashamed of how I eat.",
    "This is awful, I feel so disappointed in myself.",
)
NEGATED = (
    ("There is no doubt in my mind,", "I will quit next week."),
    ("My friends said maybe next year;", "I said this week."),
    ("Without a doubt,", "I am going to walk every day."),
    ("People told me I might fail.", "I am starting on Monday."),
    ("My doctor asked if I was unsure.", "I am certain, I will do it."),
)
FLUENT = (
    "I will definitely quit smoking next week.",
    "Yes, I am ready to walk every single morning.",
    "I know exactly what I want to change.",
    "I stopped drinking soda and I feel strong.",
    "My plan is clear and I will follow it.",
    "I have decided to cook dinner at home every night.",
)
READ = (
    ("The clinic opens at nine in the morning.", "It closes at five in the afternoon."),
    ("Take one tablet with water after each meal.", "Store the box in a dry place."),
    ("The train leaves the station at noon.", "It arrives in the city two hours later."),
    ("Preheat the oven to two hundred degrees.", "Bake the bread for thirty minutes."),
)
CASUAL = (
    ("Well, you know, we went to the beach on Sunday.", "The kids, you know, loved the water."),
    ("So, like, my sister visited last week.", "Well, we watched a movie and had pizza."),
    ("Well, the weather was, you know, really nice.", "So we walked to the park and back."),
    ("You know, my neighbour has a new dog.", "Well, it is a big, friendly dog, like a bear."),
)


@dataclass
class AhClip(BahClip):
    """A :class:`bahgen.BahClip` with its challenge ``category``."""

    category: str = ""


@dataclass
class AhSet(BahSet):
    """The clips written (:class:`AhClip`), by split and by category."""

    def by_category(self, category: str) -> list[AhClip]:
        return [c for c in self.clips if c.category == category]


class _Heads:
    """The participant's face, still and rotated (yaw for shakes, pitch for nods)."""

    ANGLES = (-14.0, -8.0, 0.0, 8.0, 14.0)

    def __init__(self, pid_index: int, landmarker: Path | None) -> None:
        photo = portrait()
        if pid_index % 2:
            photo = np.ascontiguousarray(photo[:, ::-1])
        light = 0.8 + 0.08 * (pid_index % 4)
        self.photo = np.clip(photo.astype(np.float32) * light, 0, 255).astype(np.uint8)
        self.centre = 0.4 + 0.04 * (pid_index % 5)
        self.background = 70 + 12 * (pid_index % 4)
        self.still = canvas(self.photo, SIZE, centre_x=self.centre, background=self.background)
        self.landmarker = landmarker
        self._turns: dict[tuple[str, float], np.ndarray] | None = None

    def turns(self) -> dict[tuple[str, float], np.ndarray]:
        if self._turns is None:
            from ahmer.preprocessing.faces import FaceAnalyzer

            if self.landmarker is None:
                raise ValueError("head gestures need the face landmarker (landmarker=...)")
            with FaceAnalyzer(self.landmarker, running_mode="image") as fa:
                (face,) = fa.process(self.still, 0.0)
            h, w = self.still.shape[:2]
            p = face.landmarks.astype(np.float64) * (w, h, w)
            self._turns = {}
            for axis in ("yaw", "pitch"):
                for a in self.ANGLES:
                    self._turns[(axis, a)] = _rotated(self.still, p, axis, a)
        return self._turns

    def frame(self, t: float, gestures: list[tuple[float, float, str]]) -> np.ndarray:
        for start, end, axis in gestures:
            if start <= t <= end:
                angle = 14.0 * math.sin(2 * math.pi * 2.0 * (t - start))
                nearest = min(self.ANGLES, key=lambda a: abs(a - angle))
                return self.turns()[(axis, nearest)]
        return self.still


def _rotated(image: np.ndarray, p: np.ndarray, axis: str, degrees: float) -> np.ndarray:
    """``image`` with the face mesh ``p`` (pixels, z in pixels) rotated by ``degrees`` about
    the vertical (yaw) or horizontal (pitch) axis: a real head turn of the face's geometry."""
    if degrees == 0:
        return image
    h, w = image.shape[:2]
    lo, hi = p[:, :2].min(0), p[:, :2].max(0)
    x0, y0 = np.maximum(0, np.floor(lo - 0.3 * (hi - lo))).astype(int)
    x1, y1 = np.minimum((w, h), np.ceil(hi + 0.3 * (hi - lo))).astype(int)
    centre, th, q = p.mean(0), math.radians(degrees), p[::3]
    moved = q[:, :2].copy()
    k = 0 if axis == "yaw" else 1
    moved[:, k] = (
        centre[k] + (q[:, k] - centre[k]) * math.cos(th) - (q[:, 2] - centre[2]) * (math.sin(th))
    )
    return warp_points(image, q[:, :2], moved, (x0, y0, x1, y1), grid=7)


class _Answer:
    """Audio pieces of one answer, with the times they start and end."""

    def __init__(self, folder: Path, voice: str, wpm: int, cache: dict) -> None:
        self.pieces: list[np.ndarray] = []
        self.words: list[str] = []
        self.folder, self.voice, self.wpm, self.cache = folder, voice, wpm, cache

    @property
    def now(self) -> float:
        return sum(len(p) for p in self.pieces) / RATE

    def pause(self, seconds: float) -> None:
        self.pieces.append(_silence(seconds))

    def say(self, text: str, speed: int | None = None) -> tuple[float, float]:
        start = self.now
        self.pieces.append(_pcm(text, self.folder, self.voice, speed or self.wpm, self.cache))
        self.words.append(text)
        return start, self.now


def _answer(
    category: str, rng: random.Random, a: _Answer
) -> tuple[list[tuple[float, float]], list[tuple[float, float, str]], bool]:
    """Speak one answer of ``category`` into ``a``: (A/H spans, head gestures, face shown)."""
    spans: list[tuple[float, float]] = []
    gestures: list[tuple[float, float, str]] = []
    if category in ("lexical", "audio_only"):
        a.pause(0.4)
        if rng.random() < 0.5:
            a.say(rng.choice(FLUENT[:3]) if category == "lexical" else "Let me think.")
            a.pause(0.4)
        start = a.now
        for i, part in enumerate(rng.choice(LEXICAL if category == "lexical" else AUDIO_LEXICAL)):
            if i:
                a.pause(rng.uniform(0.5, 0.9))
            a.say(part, a.wpm - 15)
        spans.append((start, a.now))
    elif category == "delivery":
        a.pause(rng.uniform(2.2, 3.2))  # a late answer
        start = a.now
        first, middle, last = rng.choice(DELIVERY)
        slow = int(a.wpm * 0.55)
        a.say(first, slow if rng.random() < 0.5 else a.wpm)
        a.pause(rng.uniform(1.3, 2.2))  # mid-sentence
        a.say(middle, slow)
        a.pause(rng.uniform(1.2, 2.0))
        a.say(last, a.wpm)
        spans.append((start - 1.0, a.now))
    elif category == "stated":
        a.pause(0.4)
        spans.append(a.say(rng.choice(STATED)))
    elif category == "crossmodal":
        a.pause(0.4)
        kind = rng.choice(("shake", "nod", "sad"))
        if kind == "sad":
            spans.append(a.say(rng.choice(SAD_WORDS)))
        else:
            span = a.say(rng.choice(YES_SHAKE if kind == "shake" else NO_NOD))
            spans.append(span)
            gestures.append((span[0], span[1], "yaw" if kind == "shake" else "pitch"))
    elif category == "negated":
        a.pause(0.4)
        first, second = rng.choice(NEGATED)
        a.say(first)
        a.pause(rng.uniform(0.3, 0.45))
        a.say(second)
    elif category in ("fluent", "audio_fluent"):
        a.pause(0.4)
        first, second = rng.sample(FLUENT, 2)
        a.say(first)
        a.pause(rng.uniform(0.3, 0.45))
        a.say(second)
    elif category == "read":
        a.pause(0.4)
        first, second = rng.choice(READ)
        a.say(first)
        a.pause(rng.uniform(0.35, 0.45))
        a.say(second)
    elif category == "casual":
        a.pause(0.4)
        first, second = rng.choice(CASUAL)
        a.say(first, a.wpm + 10)
        a.pause(rng.uniform(0.3, 0.45))
        a.say(second, a.wpm + 10)
    else:
        raise ValueError(f"unknown category {category!r}")
    a.pause(0.5)
    return spans, gestures, category not in AUDIO_ONLY


def make_ah_challenge(
    root: Path,
    participants: int = 6,
    per_category: int = 1,
    seed: int = 0,
    landmarker: Path | None = None,
    splits: tuple[int, int] = (1, 1),
    categories: tuple[str, ...] = tuple(CATEGORIES),
) -> AhSet:
    """Write the challenge set under ``root`` (see the module docstring) and describe it.

    Every participant answers ``per_category`` times in each of ``categories``.
    ``splits`` = (val, test) participants; the rest are train. ``landmarker`` is the store's
    ``face_landmarker`` (needed for the ``crossmodal`` head gestures)."""
    root = Path(root)
    rng = random.Random(seed)
    cache: dict = {}
    tmp = root / ".tts"
    tmp.mkdir(parents=True, exist_ok=True)
    out = AhSet(root)
    pids = [
        f"{80001 + 41 * i + rng.randrange(40) + 1000 * (seed % 7)}" for i in range(participants)
    ]
    for p, pid in enumerate(pids):
        voice = VOICES[(p + seed) % len(VOICES)]
        wpm = 150 + rng.randrange(-10, 20)
        heads = _Heads(p + seed, landmarker)
        jobs = [c for c in categories for _ in range(per_category)]
        rng.shuffle(jobs)
        for q, category in enumerate(jobs, 1):
            answer = _Answer(tmp, voice, wpm, cache)
            spans, gestures, video = _answer(category, rng, answer)
            audio = np.concatenate(answer.pieces)
            stamp = (
                f"2025-0{1 + p % 9}-{10 + q % 18:02d}_1{q % 10}-0{p % 10}-{rng.randrange(60):02d}"
            )
            rel = f"Videos/{pid}/Visite_1/{pid}_Question_{q}_{stamp}_Video.mp4"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            duration = len(audio) / RATE

            def frame(i: int, t: float, heads=heads, gestures=gestures) -> np.ndarray:
                return heads.frame(t, gestures)

            make_clip(path, frame if video else None, audio, RATE, duration=duration, fps=FPS)
            frames = int(round(duration * FPS))
            label = CATEGORIES[category]
            spans = [(max(0.0, s), e) for s, e in spans]
            clip = AhClip(pid, path, rel, label, " ".join(answer.words), spans, frames)
            clip.category = category
            out.clips.append(clip)
    for leftover in tmp.iterdir():
        leftover.unlink()
    tmp.rmdir()
    assign_splits(out.clips, pids, rng, *splits)
    write_layout(root, out.clips)
    with open(root / "categories.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "category", "label", "participant", "split"])
        for c in out.clips:
            writer.writerow([c.source, c.category, c.label, c.pid, c.split])
    return out


def read_categories(root: Path) -> dict[str, str]:
    """``categories.csv`` of a challenge set: the category of each clip by its video's stem."""
    with open(Path(root) / "categories.csv", encoding="utf-8") as f:
        return {Path(r["source"]).stem: r["category"] for r in csv.DictReader(f)}
