"""Synthetic features folders (the format ``ahmer features`` writes) for fast training tests.

Each video has random fusion inputs; an A/H video holds one labelled A/H segment in which
weakly-weighted prior cues (low energy, negation, lip press) rise and the face and voice
embeddings move along fixed directions, while in every video a decoy segment raises the
cues the prior weights most (uncertainty, hedge) without A/H. So the prior is fooled and a
trained fusion can learn better. ``cue_features`` come from running the store's prior graph
on the inputs, as ``ahmer features`` does. Everything follows from ``seed``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np

from ahmer.models.contract import EMBED_DIM, FACE_EMBED_DIM, FUSION_CONTRACT, VOICE_EMBED_DIM
from ahmer.models.fusion.cues import CUE_NAMES
from ahmer.models.training.featureset import FEATURES_SCHEMA, INDEX_COLUMNS, fusion_session

__all__ = ["write_features"]

FPS = 5.0
AH_CUES = ("low_energy", "negation", "lip_press")
DECOY_CUES = ("uncertainty", "hedge")


def _segment(rng, n: int) -> tuple[int, int]:
    length = int(rng.integers(8, 16))
    start = int(rng.integers(0, n - length))
    return start, start + length


def write_features(
    root: Path,
    prior_graph: Path,
    participants: int = 10,
    per_participant: int = 4,
    seed: int = 0,
    splits: bool = True,
    frames: tuple[int, int] = (40, 80),
) -> Path:
    """Write a features folder under ``root`` and return it. With ``splits``, participants
    0-5 (of 10) are train, 6-7 val, 8-9 test; without, index.csv's split column is empty.
    Videos have ``frames[0]`` to ``frames[1] - 1`` frames at 5 fps."""
    rng = np.random.default_rng(seed)
    direction = {
        "face": rng.normal(size=FACE_EMBED_DIM).astype(np.float32),
        "voice": rng.normal(size=VOICE_EMBED_DIM).astype(np.float32),
    }
    session = fusion_session(prior_graph)
    (root / "features").mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(participants):
        split = ""
        if splits:
            split = (
                "train" if p < participants * 0.6 else "val" if p < participants * 0.8 else "test"
            )
        for q in range(per_participant):
            vid = f"p{p:02d}_q{q}"
            n = int(rng.integers(*frames))
            label = int(rng.random() < 0.5)
            frame_labels = np.zeros(n, np.int8)
            cues = rng.uniform(0.0, 0.4, (n, len(CUE_NAMES))).astype(np.float32)
            face = rng.normal(0, 1, (n, FACE_EMBED_DIM)).astype(np.float32)
            voice = rng.normal(0, 1, (n, VOICE_EMBED_DIM)).astype(np.float32)
            d0, d1 = _segment(rng, n)
            for name in DECOY_CUES:
                cues[d0:d1, CUE_NAMES.index(name)] += 0.5
            if label:
                s0, s1 = _segment(rng, n)
                frame_labels[s0:s1] = 1
                for name in AH_CUES:
                    cues[s0:s1, CUE_NAMES.index(name)] += 0.25
                face[s0:s1] += 0.08 * direction["face"]
                voice[s0:s1] += 0.04 * direction["voice"]
            cues = np.clip(cues, 0, 1)
            masks = np.ones((n, 3), np.float32)
            masks[rng.random(n) < 0.1, 0] = 0.0  # no face on some frames
            face[masks[:, 0] == 0] = 0.0
            emotion = rng.dirichlet(np.ones(7), n).astype(np.float32)
            emotion[masks[:, 0] == 0] = 0.0
            text = rng.normal(size=(n, EMBED_DIM)).astype(np.float32)
            text /= np.linalg.norm(text, axis=1, keepdims=True)
            if q == per_participant - 1:
                frame_labels[: n // 4] = -1  # some unlabelled frames
            arrays = {
                "cues": cues,
                "masks": masks,
                "emotion": emotion,
                "text_emb": text,
                "face_emb": face,
                "voice_emb": voice,
                "valid": np.ones(n, np.float32),
                "fps": np.array([FPS], np.float32),
            }
            feed = {k: v[None] if k != "fps" else v for k, v in arrays.items()}
            (features,) = session.run(["cue_features"], feed)
            arrays["cue_features"] = features[0]
            arrays["times"] = (np.arange(n) / FPS).astype(np.float32)
            arrays["frame_labels"] = frame_labels
            arrays["label"] = np.asarray(label, np.int8)
            np.savez(root / "features" / f"{vid}.npz", **arrays)
            labelled = int((frame_labels >= 0).sum())
            rows.append([vid, split, f"P{p:02d}", label, n, labelled, n / FPS, f"{vid}.mp4"])
    with open(root / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(INDEX_COLUMNS)
        writer.writerows(rows)
    fingerprint = hashlib.sha256(f"synthetic:{seed}:{participants}:{splits}".encode()).hexdigest()
    info = {
        "schema": FEATURES_SCHEMA,
        "contract": FUSION_CONTRACT,
        "layout": "csv",
        "fingerprint": fingerprint,
        "fps": FPS,
        "models": {},
    }
    (root / "dataset.json").write_text(json.dumps(info, indent=1) + "\n")
    return root
