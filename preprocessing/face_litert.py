"""The LiteRT face engine (the default): the pinned bundle's models run directly on LiteRT
(:mod:`.face_models`), without MediaPipe's graph.

A followed face gets the face mesh on a region made from its last landmarks; the bundle's
short-range detector searches the whole frame when no face is followed, one was lost, or
every ``face_search_every`` landmark frames; the full-range detector (when given) is the
fallback for small faces. Nothing is smoothed over time, and a face's ``score`` is the
mesh's presence (or the full-range detector's confidence for a face it found).
"""

from __future__ import annotations

import numpy as np

from .face_engine import EngineOptions, FaceEngine, FaceError, RawFace, dedupe
from .face_models import (
    FOLLOW_INPUT,
    Detection,
    FaceModelError,
    LandmarkerBundle,
    Roi,
    load_detector,
)

__all__ = ["LiteRTEngine"]

_MIN_PRESENCE = 0.5  # face mesh presence below which a followed face is lost (litert)


class LiteRTEngine(FaceEngine):
    """The face mesh, blendshapes and pose models of ``face_landmarker.task`` and its
    short-range detector, on LiteRT interpreters of ``threads`` threads each."""

    _MODELS = ("_detector", "_short")

    def __init__(self, options: EngineOptions, counters: dict[str, int]) -> None:
        super().__init__(options, counters)
        self._bundle: LandmarkerBundle | None = None
        self._detector = self._short = None
        self._tracked: list[tuple[np.ndarray, str, float]] = []  # last frame's faces
        self._search_left = 0  # landmark frames until the next face search
        threads, confidence = options.threads, options.min_detection_confidence
        try:
            self._bundle = LandmarkerBundle.load(options.landmarker_path, threads, confidence)
            if options.detector_path is not None:
                self._detector = load_detector(
                    options.detector_path, "face detector", threads, confidence
                )
            # the detector that follows faces (tiered mode) runs at FOLLOW_INPUT px
            if options.short_range_detector_path is None:
                self._short = self._bundle.detector.at_size(FOLLOW_INPUT)
            else:
                self._short = load_detector(
                    options.short_range_detector_path,
                    "short-range face detector",
                    threads,
                    confidence,
                    FOLLOW_INPUT,
                )
        except FaceModelError as exc:
            self.close()
            raise FaceError(str(exc)) from exc

    @property
    def follow_size(self) -> int:
        return self._short.size

    def detect_square(self, square: np.ndarray) -> list[Detection]:
        return self._short.detect_square(square)

    def followed(self, raws: list[RawFace]) -> None:
        """In VIDEO mode the next landmark frame starts from these faces' landmarks."""
        if self.options.running_mode == "video":
            self._tracked = [(r.landmarks, *(r.followed or (r.source, r.score))) for r in raws]

    def forget(self, last_ts: int) -> int:
        self._tracked = []
        self._search_left = 0
        return super().forget(last_ts)

    def close(self) -> None:
        self._bundle = None  # LiteRT models are freed with their interpreters
        super().close()

    def _find(self, work: np.ndarray, timestamp: int, frame: int) -> list[RawFace]:
        """The face mesh on each face of the previous frame (region from its landmarks);
        a search with the short-range detector over the whole frame when none was followed,
        one was lost, or one is due (every ``face_search_every`` landmark frames); the
        full-range detector as the fallback when that finds nothing."""
        h, w = work.shape[:2]
        raws: list[RawFace] = []
        lost = False
        for landmarks, source, score in self._tracked:
            carried = score if source == "fallback" else None  # the detector's, when found
            raw = self._mesh(work, Roi.from_landmarks(landmarks, w, h), source, carried)
            if raw is None:
                lost = True
            else:
                raws.append(raw)
        raws = dedupe(raws)
        self._search_left -= 1
        max_faces = self.options.max_faces
        if len(raws) < max_faces and (not raws or lost or self._search_left <= 0):
            self.counters["face_searches"] += 1
            self._search_left = self.options.face_search_every
            raws = self._add_detected(work, raws, self._bundle.detector.detect(work), False)
        if raws:
            return raws
        if self._detector is not None and self._fallback_due(frame):
            raws = self._add_detected(work, raws, self._detector.detect(work), True)
        return raws

    def _add_detected(
        self, work: np.ndarray, raws: list[RawFace], detections: list[Detection], fallback: bool
    ) -> list[RawFace]:
        """``raws`` and the faces of new ``detections`` (best first; those whose centre
        lies in a face already found are skipped), up to ``max_faces``."""
        h, w = work.shape[:2]
        for d in detections:
            if len(raws) >= self.options.max_faces:
                break
            cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
            if any(r.box[0] <= cx <= r.box[2] and r.box[1] <= cy <= r.box[3] for r in raws):
                continue
            source, score = ("fallback", d.score) if fallback else ("landmarker", None)
            if fallback:
                self.counters["crop_runs"] += 1
            first = self._landmarks(work, Roi.from_detection(d, w, h))
            if first is None:
                continue
            # again from its own landmarks' region, as it will be followed
            raw = self._mesh(work, Roi.from_landmarks(first[0], w, h), source, score)
            if raw is not None:
                raws = dedupe([*raws, raw])
        return raws

    def _landmarks(self, work: np.ndarray, roi: Roi) -> tuple[np.ndarray, float] | None:
        """The face mesh's landmarks and presence in ``roi``; None when it holds no face."""
        try:
            landmarks, presence = self._bundle.mesh.landmarks(work, roi)
        except FaceModelError as exc:
            raise FaceError(str(exc)) from exc
        return None if presence < _MIN_PRESENCE else (landmarks, presence)

    def _mesh(self, work: np.ndarray, roi: Roi, source: str, score: float | None):
        """The face mesh, blendshapes and pose of the face in ``roi``; None when the mesh
        says it holds no face."""
        found = self._landmarks(work, roi)
        if found is None:
            return None
        landmarks, presence = found
        h, w = work.shape[:2]
        try:
            blend = self._bundle.blendshapes(landmarks, w, h)
        except FaceModelError as exc:
            raise FaceError(str(exc)) from exc
        matrix = self._bundle.pose.matrix(landmarks, w, h)
        return RawFace(landmarks, blend, matrix, presence if score is None else score, source)
