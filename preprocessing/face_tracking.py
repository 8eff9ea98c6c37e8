"""Face tracks across frames and the choice of the primary face.

:class:`FaceTracker` gives each face box a track id that stays the same from frame to frame
(IoU or centre-distance association, tolerating a few missed frames). :class:`PrimarySelector`
keeps running statistics per track and picks the *primary* face, the person answering: seen
for long, large and central, with hysteresis so that it does not flip between two similar
faces. Boxes are ``(x0, y0, x1, y1)`` normalised to the image.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["iou", "FaceTracker", "TrackStats", "PrimarySelector"]

Box = Sequence[float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre_distance(a: Box, b: Box) -> float:
    """Centre distance in units of the boxes' mean width/height (aspect-independent)."""
    mw = max(1e-6, (a[2] - a[0] + b[2] - b[0]) / 2)
    mh = max(1e-6, (a[3] - a[1] + b[3] - b[1]) / 2)
    dx = (a[0] + a[2] - b[0] - b[2]) / 2 / mw
    dy = (a[1] + a[3] - b[1] - b[3]) / 2 / mh
    return math.hypot(dx, dy)


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


@dataclass
class _Track:
    id: int
    box: tuple[float, float, float, float]
    missed: int = 0


class FaceTracker:
    """Greedy frame-to-frame association of face boxes to tracks.

    A box may continue a track when their IoU is at least ``min_iou`` or their centres are
    within ``max_distance`` box sizes (scaled by ``1 + missed`` frames, since a face that was
    missed may have moved further), and their areas differ by less than ``max_area_ratio``.
    Candidate pairs are taken cheapest first (``distance - iou``). Unmatched boxes start new
    tracks; a track missed for more than ``max_missed`` consecutive frames ends.
    """

    def __init__(
        self,
        max_missed: int = 5,
        min_iou: float = 0.2,
        max_distance: float = 0.6,
        max_area_ratio: float = 2.5,
    ) -> None:
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.max_distance = max_distance
        self.max_area_ratio = max_area_ratio
        self._tracks: list[_Track] = []
        self._next_id = 0

    @property
    def ids(self) -> set[int]:
        """Ids of the live tracks (seen within the last ``max_missed`` frames)."""
        return {t.id for t in self._tracks}

    def reset(self) -> None:
        """Forget all tracks and number new ones from 0 again: a clip's track ids do not
        depend on what was analysed before it (batch results are reproducible)."""
        self._tracks = []
        self._next_id = 0

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Associate this frame's ``boxes`` with tracks; returns their track ids, in order."""
        pairs = []
        for ti, track in enumerate(self._tracks):
            for bi, box in enumerate(boxes):
                overlap = iou(track.box, box)
                distance = _centre_distance(track.box, box)
                a, b = _area(track.box), _area(box)
                ratio = max(a, b) / max(1e-12, min(a, b))
                near = overlap >= self.min_iou or distance <= self.max_distance * (1 + track.missed)
                if near and ratio <= self.max_area_ratio:
                    pairs.append((distance - overlap, ti, bi))
        pairs.sort()
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for _, ti, bi in pairs:
            if ti in used or ids[bi] is not None:
                continue
            used.add(ti)
            track = self._tracks[ti]
            track.box, track.missed = tuple(map(float, boxes[bi])), 0
            ids[bi] = track.id
        for ti, track in enumerate(self._tracks):
            if ti not in used:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for bi, box in enumerate(boxes):
            if ids[bi] is None:
                track = _Track(self._next_id, tuple(map(float, box)))
                self._next_id += 1
                self._tracks.append(track)
                ids[bi] = track.id
        return [int(i) for i in ids]  # type: ignore[arg-type]


@dataclass
class TrackStats:
    """Running statistics of one track: frames seen, mean area (fraction of the image) and
    mean centrality (1 at the image centre, 0 at a corner)."""

    age: int = 0
    mean_area: float = 0.0
    centrality: float = 0.0

    def add(self, box: Box) -> None:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        central = max(0.0, 1.0 - math.hypot(cx - 0.5, cy - 0.5) / math.hypot(0.5, 0.5))
        self.age += 1
        w = 1.0 / min(self.age, 25)  # running mean over the first 25 frames, then EMA
        self.mean_area += w * (_area(box) - self.mean_area)
        self.centrality += w * (central - self.centrality)

    def score(self, age_ref: int) -> float:
        """``sqrt(mean_area) * (0.5 + 0.5 centrality) * (0.5 + 0.5 min(1, age / age_ref))``:
        size dominates, centrality and stability break near-ties."""
        stable = min(1.0, self.age / max(1, age_ref))
        return math.sqrt(self.mean_area) * (0.5 + 0.5 * self.centrality) * (0.5 + 0.5 * stable)


class PrimarySelector:
    """Chooses the primary face each frame, with hysteresis.

    The primary keeps its place while it is visible unless another visible track's
    :meth:`TrackStats.score` beats it by more than ``margin`` (relative) on ``patience``
    consecutive frames. While the primary is briefly unseen, the best visible face is listed
    first but the primary is remembered; when its track ends, the best visible track takes
    over at once.
    """

    def __init__(self, margin: float = 0.25, patience: int = 3, age_ref: int = 10) -> None:
        self.margin = margin
        self.patience = patience
        self.age_ref = age_ref
        self.stats: dict[int, TrackStats] = {}
        self.primary: int | None = None
        self._challenger: int | None = None
        self._challenges = 0

    def reset(self) -> None:
        self.stats.clear()
        self.primary = None
        self._challenger, self._challenges = None, 0

    def update(self, ids: Sequence[int], boxes: Sequence[Box], alive: Iterable[int]) -> list[int]:
        """Update statistics with this frame's tracks; returns the indices into ``ids``
        ordered primary first, then by descending score. ``alive`` are the live track ids."""
        alive = set(alive)
        for tid in list(self.stats):
            if tid not in alive:
                del self.stats[tid]
        for tid, box in zip(ids, boxes, strict=True):
            self.stats.setdefault(tid, TrackStats()).add(box)
        if not ids:
            if self.primary is not None and self.primary not in alive:
                self.primary = None
            return []
        scores = [self.stats[t].score(self.age_ref) for t in ids]
        order = sorted(range(len(ids)), key=lambda i: -scores[i])  # stable: ties keep order
        best = ids[order[0]]
        if self.primary is None or self.primary not in alive:
            self.primary, self._challenger, self._challenges = best, None, 0
        elif self.primary in ids:
            current = self.stats[self.primary].score(self.age_ref)
            rival = next((ids[i] for i in order if ids[i] != self.primary), None)
            if rival is not None and self.stats[rival].score(self.age_ref) > current * (
                1 + self.margin
            ):
                self._challenges = self._challenges + 1 if rival == self._challenger else 1
                self._challenger = rival
                if self._challenges >= self.patience:
                    self.primary, self._challenger, self._challenges = rival, None, 0
            else:
                self._challenger, self._challenges = None, 0
        if self.primary in ids:
            first = list(ids).index(self.primary)
            order.remove(first)
            order.insert(0, first)
        return order
