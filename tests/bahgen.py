"""A small synthetic dataset in the BAH release layout, generated at test time.

Per participant a few answers: a webcam-like video of a real face (scikit-image's astronaut,
placed, lit and mirrored per participant) with espeak-ng speech (a voice and rate per
participant). A/H clips hold hedged segments ("well... I mean, maybe, I don't know"), with
fillers, slower speech and pauses inside, a smiling face over them (face/words discord) and
the head swaying while they last; their frames are labelled 1 in ``video_annotation.yaml``
from the segment's first word to its last. Non-A/H clips are confident answers (all frames 0).

Layout written (the BAH release's, as docs/training.md describes it)::

    Videos/<pid>/Visite_1/<pid>_Question_<n>_<date>_Video.mp4
    splits/train.txt val.txt test.txt     video_path,label,transcript (participant-disjoint)
    video_annotation.yaml                 frame_annotation: [[frame-<i>.jpg, label], ...]
    class_id.yaml                         With A-H: 1 / No A-H: 0

Everything follows from ``seed``: the same seed gives the same texts, timings, labels,
splits and audio. :class:`BahSet` tells the tests what was generated (each clip's A/H
spans, label, split) without reading the files back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from media import canvas, make_clip, portrait, read_wav, speak

__all__ = [
    "BahClip",
    "BahSet",
    "make_bah_dataset",
    "CONFIDENT_LINES",
    "SHORT_LINES",
    "HEDGED_PARTS",
    "assign_splits",
    "write_layout",
]

RATE = 16000  # audio sample rate of the clips
FPS = 12  # source frame rate (not a multiple of the analysis 5 fps: labels are resampled)
SIZE = (480, 270)

CONFIDENT_LINES = (
    "I will definitely quit smoking next week.",
    "Yes, I am ready to walk every single morning.",
    "I know exactly what I want to change.",
    "I feel great about cooking more vegetables.",
    "My plan is clear and I am sure it works.",
    "I stopped drinking soda and I feel strong.",
)
SHORT_LINES = ("I will start today.", "That is my plan.", "Yes, I can do that.", "I want this.")
HEDGED_PARTS = (
    ("Well...", "I mean, maybe,", "I don't know."),
    ("Um, I guess I could try,", "but, uh,", "I'm not sure."),
    ("Part of me wants to,", "but, um, I don't know,", "maybe not."),
    ("Hmm, maybe,", "I mean, it's hard,", "I don't really know."),
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3", "en-029")


@dataclass
class BahClip:
    """One generated answer: where it is, its split line's path, label, transcript, and the
    A/H spans in seconds."""

    pid: str
    path: Path
    source: str  # the path written in the split file (relative to the root)
    label: int
    transcript: str
    spans: list[tuple[float, float]]
    frames: int  # source frames (at FPS)
    split: str = ""

    def frame_labels(self) -> np.ndarray:
        t = np.arange(self.frames) / FPS
        out = np.zeros(self.frames, np.int8)
        for start, end in self.spans:
            out[(t >= start) & (t <= end)] = 1
        return out


@dataclass
class BahSet:
    root: Path
    clips: list[BahClip] = field(default_factory=list)
    fps: int = FPS

    def by_split(self, split: str) -> list[BahClip]:
        return [c for c in self.clips if c.split == split]


def _pcm(text: str, folder: Path, voice: str, wpm: int, cache: dict) -> np.ndarray:
    """espeak-ng speaking ``text``, 16 kHz mono float32, leading/trailing silence cut."""
    from scipy.signal import resample_poly

    key = (text, voice, wpm)
    if key not in cache:
        wav = speak(text, folder / f"_tts{len(cache)}.wav", words_per_minute=wpm, voice=voice)
        audio, rate = read_wav(wav)
        wav.unlink()
        pcm = resample_poly(audio[:, 0], RATE, rate).astype(np.float32)
        loud = np.flatnonzero(np.abs(pcm) > 0.01)
        cache[key] = pcm[loud[0] : loud[-1] + 1] if loud.size else pcm
    return cache[key]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), np.float32)


def _answer(rng: random.Random, ah: bool, folder: Path, voice: str, wpm: int, cache: dict):
    """(audio, transcript, A/H spans) of one answer."""
    pieces: list[np.ndarray] = [_silence(0.4)]
    words: list[str] = []
    spans: list[tuple[float, float]] = []
    lines = rng.sample(CONFIDENT_LINES, 2)

    def said(text: str, speed: int) -> None:
        pieces.append(_pcm(text, folder, voice, speed, cache))
        words.append(text)

    def hedged() -> None:
        start = sum(len(p) for p in pieces) / RATE
        for i, part in enumerate(rng.choice(HEDGED_PARTS)):
            if i:
                pieces.append(_silence(rng.uniform(0.4, 0.6)))  # hesitation pauses
            said(part, wpm - 15)
        spans.append((start, sum(len(p) for p in pieces) / RATE))

    first = ah and rng.random() < 0.5  # the hedge opens the answer or follows a statement
    if first:
        hedged()
    else:
        said(rng.choice(SHORT_LINES) if ah else lines[0], wpm)
    pieces.append(_silence(rng.uniform(0.3, 0.5)))
    if ah and not first:
        hedged()
    else:
        said(rng.choice(SHORT_LINES) if ah else lines[1], wpm)
    pieces.append(_silence(0.5))
    return np.concatenate(pieces), " ".join(words), spans


def _frames(pid_index: int, spans: list[tuple[float, float]]):
    """``frame(i, t)``: the participant's look; the head sways inside the A/H spans."""
    photo = portrait()
    if pid_index % 2:
        photo = np.ascontiguousarray(photo[:, ::-1])
    light = 0.8 + 0.08 * (pid_index % 4)
    photo = np.clip(photo.astype(np.float32) * light, 0, 255).astype(np.uint8)
    centre = 0.4 + 0.04 * (pid_index % 5)
    background = 70 + 12 * (pid_index % 4)
    still = canvas(photo, SIZE, centre_x=centre, background=background)

    def frame(i: int, t: float) -> np.ndarray:
        if any(s <= t <= e for s, e in spans):
            dx = 0.06 * np.sin(2 * np.pi * 1.5 * t)
            return canvas(photo, SIZE, centre_x=centre + dx, background=background)
        return still

    return frame


def _split_line(clip: BahClip) -> str:
    return f"{clip.source},{clip.label},{clip.transcript}\n"


def assign_splits(
    clips: list[BahClip], pids: list[str], rng: random.Random, n_val: int, n_test: int
) -> None:
    """Split by participant, as BAH does: ``pids`` shuffled with ``rng``, the first ``n_val``
    go to val, the next ``n_test`` to test, the rest to train; each clip takes its
    participant's split."""
    order = pids[:]
    rng.shuffle(order)
    split_of = {pid: "train" for pid in order}
    for pid in order[:n_val]:
        split_of[pid] = "val"
    for pid in order[n_val : n_val + n_test]:
        split_of[pid] = "test"
    for clip in clips:
        clip.split = split_of[clip.pid]


def write_layout(root: Path, clips: list[BahClip]) -> None:
    """The BAH release's files for ``clips`` (their ``split`` set): the split files,
    ``video_annotation.yaml`` with each clip's frame labels and ``class_id.yaml``."""
    import yaml

    (root / "splits").mkdir(exist_ok=True)
    for split in ("train", "val", "test"):
        lines = [_split_line(c) for c in clips if c.split == split]
        if lines:
            (root / "splits" / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    annotations = {
        c.source: {
            "global_ah": c.label,
            "frame_annotation": [
                [f"frame-{i}.jpg", int(v)] for i, v in enumerate(c.frame_labels())
            ],
        }
        for c in clips
    }
    loader_dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with open(root / "video_annotation.yaml", "w", encoding="utf-8") as f:
        yaml.dump(annotations, f, Dumper=loader_dumper, default_flow_style=None)
    (root / "class_id.yaml").write_text("With A-H: 1\nNo A-H: 0\n", encoding="utf-8")


def make_bah_dataset(
    root: Path, participants: int = 6, clips_per_participant: int = 4, seed: int = 0
) -> BahSet:
    """Write the dataset under ``root`` (see the module docstring) and describe it.

    Half of each participant's clips (rounded up) are A/H. Participants are split
    train/val/test about 4:1:1 (at least one each when there are 3 or more)."""
    root = Path(root)
    rng = random.Random(seed)
    cache: dict = {}
    tmp = root / ".tts"
    tmp.mkdir(parents=True, exist_ok=True)
    out = BahSet(root)
    pids = [f"{70001 + 37 * i + rng.randrange(30)}" for i in range(participants)]
    for p, pid in enumerate(pids):
        voice, wpm = VOICES[p % len(VOICES)], 150 + rng.randrange(-10, 20)
        flags = [q < (clips_per_participant + 1) // 2 for q in range(clips_per_participant)]
        rng.shuffle(flags)
        for q, ah in enumerate(flags, 1):
            audio, transcript, spans = _answer(rng, ah, tmp, voice, wpm, cache)
            stamp = f"2025-0{1 + p % 9}-{10 + q:02d}_1{q}-0{p % 10}-{rng.randrange(60):02d}"
            rel = f"Videos/{pid}/Visite_1/{pid}_Question_{q}_{stamp}_Video.mp4"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            duration = len(audio) / RATE
            make_clip(path, _frames(p, spans), audio, RATE, duration=duration, fps=FPS)
            frames = int(round(duration * FPS))
            out.clips.append(BahClip(pid, path, rel, int(ah), transcript, spans, frames))
    tmp.rmdir()
    n = len(pids)
    n_val = n_test = max(1, n // 6) if n >= 3 else 0
    assign_splits(out.clips, pids, rng, n_val, n_test)
    write_layout(root, out.clips)
    return out
