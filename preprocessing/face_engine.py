"""The face types and what the two face engines share: :class:`Face` (what the analyzer
returns), the raw face an engine returns (before tracking and cropping), the options both
are built from, and :class:`FaceEngine`, the base that keeps the full-range detector's
schedule and releases the models.

An engine runs the models for :class:`~.faces.FaceAnalyzer`: on a landmark frame it finds
the faces (:meth:`FaceEngine.landmark`), and between landmark frames (tiered mode) its
short-range detector finds them again in small squares (:meth:`FaceEngine.detect_square`).
The analyzer does the rest (tracking, primary face, crops, tiered following), the same for
both engines. The engines are :class:`.face_litert.LiteRTEngine` and
:class:`.face_tasks.TasksEngine`; the module docstring of :mod:`.faces` says how they
differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from os import PathLike

import numpy as np

from .errors import InvalidInput
from .face_align import pose_from_matrix
from .face_models import Detection
from .face_tracking import iou

__all__ = [
    "BLENDSHAPE_NAMES",
    "EngineOptions",
    "Face",
    "FaceEngine",
    "FaceError",
    "RawFace",
    "dedupe",
]

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    *"browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff "
    "cheekSquintLeft cheekSquintRight eyeBlinkLeft eyeBlinkRight eyeLookDownLeft "
    "eyeLookDownRight eyeLookInLeft eyeLookInRight eyeLookOutLeft eyeLookOutRight "
    "eyeLookUpLeft eyeLookUpRight eyeSquintLeft eyeSquintRight eyeWideLeft eyeWideRight "
    "jawForward jawLeft jawOpen jawRight mouthClose mouthDimpleLeft mouthDimpleRight "
    "mouthFrownLeft mouthFrownRight mouthFunnel mouthLeft mouthLowerDownLeft "
    "mouthLowerDownRight mouthPressLeft mouthPressRight mouthPucker mouthRight "
    "mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthSmileLeft "
    "mouthSmileRight mouthStretchLeft mouthStretchRight mouthUpperUpLeft mouthUpperUpRight "
    "noseSneerLeft noseSneerRight".split(),
)
"""MediaPipe's 52 blendshape names in output order (*Left/*Right are the subject's sides)."""


class FaceError(InvalidInput):
    """A face model could not be loaded, the analyzer is closed, or a frame is unusable."""

    what = "video frame"


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    - ``box``: ``(x0, y0, x1, y1)`` landmark extent, normalised to the frame and clipped.
    - ``score``: the full-range detector's confidence for faces the fallback found (carried
      while the face is followed); for faces found by the landmarker itself, the face mesh's
      presence score (LiteRT engine) or 1.0 (Tasks engine: the API reports no confidence;
      they passed its 0.5 detection/presence checks); between landmark frames (tiered mode),
      the short-range detector's confidence.
    - ``landmarks``: ``(478, 3)`` float32 ``x, y`` normalised to the frame, ``z`` depth in
      units of the frame width (smaller is nearer).
    - ``blendshapes``: ``(52,)`` float32 scores named by :data:`BLENDSHAPE_NAMES`.
    - ``pose``: ``(yaw, pitch, roll)`` degrees (signs in :mod:`.face_align`: yaw > 0 when the
      subject turns to their own left, pitch > 0 looking up, roll > 0 counter-clockwise).
    - ``track_id``: stable across frames while the face is followed.
    - ``quality``: ``0..1``, see :func:`.face_align.face_quality`.
    - ``crop``: ``(S, S, 3)`` uint8 eye-levelled crop, forehead to chin with a margin.
    - ``source``: ``"landmarker"``, ``"fallback"`` (found on an upscaled crop) or
      ``"detector"`` (tiered mode, between landmark frames).
    - ``landmarks_fresh``: True when the landmarker ran on this frame for this face. False in
      tiered mode between landmark frames: ``landmarks`` are the last landmark frame's moved
      by the detector keypoints' similarity, ``blendshapes`` are carried from that frame,
      yaw, pitch and roll are updated from the keypoints (see the module docstring).
    - ``keypoints``: ``(6, 2)`` float32 detector keypoints normalised to the frame (names in
      :data:`.face_align.KEYPOINT_NAMES`), in tiered mode; ``None`` otherwise.
    - ``keypoint_yaw``, ``keypoint_pitch``: :func:`.face_align.keypoint_yaw` and
      :func:`.face_align.keypoint_pitch` of those keypoints (NaN without them);
      :func:`interpolate_landmark_gaps` uses them to remove the drift of yaw and pitch.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(repr=False)
    blendshapes: np.ndarray = field(repr=False)
    pose: tuple[float, float, float]
    track_id: int
    quality: float
    crop: np.ndarray = field(repr=False)
    source: str = "landmarker"
    landmarks_fresh: bool = True
    keypoints: np.ndarray | None = field(default=None, repr=False)
    keypoint_yaw: float = math.nan
    keypoint_pitch: float = math.nan


@dataclass
class RawFace:
    """A face as an engine (or the tiered following) finds it, before it gets a track and a
    crop: landmarks normalised to the frame, blendshapes, and the pose as a transformation
    matrix (landmark frames) or as angles (``pose``, between landmark frames)."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    matrix: np.ndarray | None
    score: float
    source: str
    pose: tuple[float, float, float] | None = None  # set between landmark frames
    fresh: bool = True
    keypoints: np.ndarray | None = None  # (6, 2) normalised, tiered mode
    keypoint_yaw: float = math.nan
    keypoint_pitch: float = math.nan
    followed: tuple[str, float] | None = None  # between landmark frames: source, score then

    @cached_property  # read only after the landmarks are final
    def box(self) -> tuple[float, float, float, float]:
        xs, ys = self.landmarks[:, 0], self.landmarks[:, 1]  # columns: fast to reduce
        extent = (xs.min(), ys.min(), xs.max(), ys.max())
        x0, y0, x1, y1 = (max(0.0, min(1.0, float(v))) for v in extent)
        return x0, y0, x1, y1

    @cached_property
    def head_pose(self) -> tuple[float, float, float]:
        if self.pose is not None:
            return self.pose
        return pose_from_matrix(self.matrix)


def dedupe(raws: list[RawFace], threshold: float = 0.5) -> list[RawFace]:
    """Drop faces overlapping an earlier one by more than ``threshold`` IoU."""
    kept: list[RawFace] = []
    for r in raws:
        if all(iou(r.box, k.box) <= threshold for k in kept):
            kept.append(r)
    return kept


@dataclass(frozen=True)
class EngineOptions:
    """The analyzer's options an engine is built from (see :class:`~.faces.FaceAnalyzer`)."""

    landmarker_path: str | PathLike
    detector_path: str | PathLike | None
    short_range_detector_path: str | PathLike | None
    max_faces: int
    running_mode: str
    min_detection_confidence: float
    fallback_every: int
    face_search_every: int
    threads: int


class FaceEngine:
    """The base of the two engines. ``counters`` is the analyzer's dict of work done; the
    engine adds its detector runs, crop landmarkings and face searches to it.

    A subclass finds the faces of a landmark frame (:meth:`_find`), names the attributes
    holding models in ``_MODELS`` (released by :meth:`close`) and gives the short-range
    detector's input size (``follow_size``) and :meth:`detect_square`.
    """

    _MODELS: tuple[str, ...] = ()

    def __init__(self, options: EngineOptions, counters: dict[str, int]) -> None:
        self.options = options
        self.counters = counters
        self._had_faces = False  # the last landmark frame saw a face
        self._last_search = -(10**9)  # frame of the last full-range detector run

    @property
    def follow_size(self) -> int:
        """Side of the square the short-range detector sees between landmark frames."""
        raise NotImplementedError

    @property
    def can_follow(self) -> bool:
        """Whether a short-range detector is loaded (tiered mode needs one)."""
        return getattr(self, "_short", None) is not None

    def landmark(self, work: np.ndarray, timestamp: int, frame: int) -> list[RawFace]:
        """The faces of a landmark frame: ``work`` is the (reduced) RGB frame, ``timestamp``
        its millisecond time on the engine's clock, ``frame`` its number (1, 2, ...)."""
        raws = self._find(work, timestamp, frame)
        self._had_faces = bool(raws)
        return raws

    def _find(self, work: np.ndarray, timestamp: int, frame: int) -> list[RawFace]:
        raise NotImplementedError

    def detect_square(self, square: np.ndarray) -> list[Detection]:
        """The faces the short-range detector finds in a square, normalised to it. Raises the
        model's own errors (the analyzer words them)."""
        raise NotImplementedError

    def followed(self, raws: list[RawFace]) -> None:
        """Told the faces the analyzer returned for a frame (landmark frame or not)."""

    def forget(self, last_ts: int) -> int:
        """Forget the faces seen (a new, unrelated clip starts); returns the last timestamp
        the engine has used (``last_ts`` when it sent the models no frame of its own)."""
        self._had_faces = False
        self._last_search = -(10**9)
        return last_ts

    def _fallback_due(self, frame: int) -> bool:
        """Whether the full-range detector runs on ``frame``: right after faces were seen (a
        face was just lost), else every ``fallback_every`` frames; counts the run."""
        if self._had_faces or frame - self._last_search >= self.options.fallback_every:
            self._last_search = frame
            self.counters["detector_runs"] += 1
            return True
        return False

    def close(self) -> None:
        """Release the models (idempotent; never raises)."""
        for name in self._MODELS:
            task = getattr(self, name, None)
            if task is not None:
                setattr(self, name, None)
                try:
                    if hasattr(task, "close"):
                        task.close()
                except Exception:  # closing must never raise
                    pass
