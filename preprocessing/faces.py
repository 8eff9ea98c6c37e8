"""Faces in video frames with MediaPipe Tasks: landmarks, blendshapes, pose, tracks, crops.

:class:`FaceAnalyzer` takes RGB frames with their presentation time and returns the faces it
sees, primary face first, each as a :class:`Face`. The landmarker runs in VIDEO mode, so it
tracks faces between frames instead of detecting them in every frame.

The landmarker's own detector is short-range: in a 640x360 frame it finds faces taller than
about a quarter of the frame. When it finds nothing and a full-range detector model is given,
a fallback runs that detector on the frame, crops an enlarged square around each detection,
upscales it and runs a second (IMAGE mode) landmarker on the crop, mapping the landmarks back;
in the following frames such faces are followed by cropping around their last box, without
the detector. To keep an empty scene cheap, the detector runs at most every
``fallback_every`` frames while nothing is seen (and at once when a face was just lost).

Frames whose longer side exceeds ``max_side`` are reduced before MediaPipe; boxes and
landmarks are normalised, so they hold for the original frame, and crops are cut from it.
Geometry, pose conventions and the quality formula are in :mod:`.face_align`; tracking and the
primary choice in :mod:`.face_tracking`.

One analyzer serves one stream from one thread; use one per concurrent stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from .face_align import aligned_crop, face_quality, pose_from_matrix
from .face_tracking import FaceTracker, PrimarySelector, iou

__all__ = ["BLENDSHAPE_NAMES", "Face", "FaceError", "FaceAnalyzer"]

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

_CROP_INPUT = 256  # side of the upscaled crops the fallback landmarker sees
_DETECTION_EXPAND = 2.0  # crop side / detector box side
_TRACK_EXPAND = 1.7  # crop side / landmark box side, when following a fallback face


class FaceError(Exception):
    """A face model could not be loaded, the analyzer is closed, or a frame is unusable."""


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    - ``box``: ``(x0, y0, x1, y1)`` landmark extent, normalised to the frame and clipped.
    - ``score``: the full-range detector's confidence for faces the fallback found (carried
      while the face is followed); faces found by the landmarker itself get 1.0, as the Tasks
      API reports no confidence for them (they passed its 0.5 detection/presence checks).
    - ``landmarks``: ``(478, 3)`` float32 ``x, y`` normalised to the frame, ``z`` depth in
      units of the frame width (smaller is nearer).
    - ``blendshapes``: ``(52,)`` float32 scores named by :data:`BLENDSHAPE_NAMES`.
    - ``pose``: ``(yaw, pitch, roll)`` degrees (signs in :mod:`.face_align`: yaw > 0 when the
      subject turns to their own left, pitch > 0 looking up, roll > 0 counter-clockwise).
    - ``track_id``: stable across frames while the face is followed.
    - ``quality``: ``0..1``, see :func:`.face_align.face_quality`.
    - ``crop``: ``(S, S, 3)`` uint8 eye-levelled crop, forehead to chin with a margin.
    - ``source``: ``"landmarker"`` or ``"fallback"`` (found on an upscaled crop).
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


@dataclass
class _Raw:
    landmarks: np.ndarray
    blendshapes: np.ndarray
    matrix: np.ndarray
    score: float
    source: str

    @cached_property  # read only after the landmarks are final
    def box(self) -> tuple[float, float, float, float]:
        lo = np.clip(self.landmarks[:, :2].min(0), 0.0, 1.0)
        hi = np.clip(self.landmarks[:, :2].max(0), 0.0, 1.0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _load_vision():
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    return vision, BaseOptions


def _model_file(path: str | PathLike, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise FaceError(f"{what} model file not found: {p}")
    return str(p)


class FaceAnalyzer:
    """Finds, tracks and describes faces in a stream of RGB frames.

    ``landmarker_path``: a ``face_landmarker.task`` bundle. ``detector_path``: a MediaPipe
    face detector ``.tflite`` (full-range finds small faces) for the fallback; ``None``
    disables it. ``running_mode``: ``"video"`` (tracking; timestamps must increase) or
    ``"image"`` (independent frames). ``fallback_every``: frames between detector runs while
    nothing is seen. ``max_missed``: frames a track survives unseen. ``max_side``: longer
    side frames are reduced to before MediaPipe.
    """

    def __init__(
        self,
        landmarker_path: str | PathLike,
        detector_path: str | PathLike | None = None,
        max_faces: int = 4,
        crop_size: int = 112,
        running_mode: str = "video",
        min_detection_confidence: float = 0.5,
        fallback_every: int = 5,
        max_missed: int = 5,
        max_side: int = 1280,
    ) -> None:
        if running_mode not in ("video", "image"):
            raise FaceError(f"running_mode must be 'video' or 'image', got {running_mode!r}")
        if not 1 <= max_faces <= 16:
            raise FaceError(f"max_faces must be in 1..16, got {max_faces}")
        if not 16 <= crop_size <= 1024:
            raise FaceError(f"crop_size must be in 16..1024, got {crop_size}")
        if max_side < 64:
            raise FaceError(f"max_side must be at least 64, got {max_side}")
        self.max_faces = max_faces
        self.crop_size = crop_size
        self.running_mode = running_mode
        self.fallback_every = max(1, int(fallback_every))
        self.max_side = max_side
        self.blendshape_names: list[str] = list(BLENDSHAPE_NAMES)
        self._tracker = FaceTracker(max_missed=max_missed)
        self._selector = PrimarySelector()
        self._landmarker = self._crop_landmarker = self._detector = None
        self._closed = False
        self._frame = 0
        self._last_ts = -1
        self._last_search = -(10**9)
        self._had_faces = False
        self._followed: list[tuple[tuple[float, float, float, float], float]] = []
        # work done so far: frames processed, full-frame detector runs, crop landmarkings
        self.counters = {"frames": 0, "detector_runs": 0, "crop_runs": 0}

        vision, base_options = _load_vision()
        mode = vision.RunningMode.VIDEO if running_mode == "video" else vision.RunningMode.IMAGE
        landmarker_file = _model_file(landmarker_path, "face landmarker")

        def landmarker(running, num_faces):
            options = vision.FaceLandmarkerOptions(
                base_options=base_options(model_asset_path=landmarker_file),
                running_mode=running,
                num_faces=num_faces,
                min_face_detection_confidence=min_detection_confidence,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
            return vision.FaceLandmarker.create_from_options(options)

        try:
            self._landmarker = landmarker(mode, max_faces)
            if detector_path is not None:
                detector_file = _model_file(detector_path, "face detector")
                options = vision.FaceDetectorOptions(
                    base_options=base_options(model_asset_path=detector_file),
                    min_detection_confidence=min_detection_confidence,
                )
                self._detector = vision.FaceDetector.create_from_options(options)
                self._crop_landmarker = landmarker(vision.RunningMode.IMAGE, 2)
        except FaceError:
            self.close()
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            self.close()
            raise FaceError(f"cannot load the face models: {exc}") from exc

    # -- public --------------------------------------------------------------------------

    def process(self, image: np.ndarray, time: float) -> list[Face]:
        """Faces in ``image`` (``H x W x 3`` RGB uint8; greyscale and RGBA are converted)
        shown at ``time`` seconds, primary first.

        In VIDEO mode MediaPipe needs strictly increasing millisecond timestamps: a time that
        does not increase (duplicated or out of order) is moved to 1 ms after the previous
        one, and the frame is treated as the next one.
        """
        if self._closed:
            raise FaceError("the face analyzer is closed")
        rgb = _as_rgb(image)
        if not math.isfinite(float(time)):
            raise FaceError(f"frame time must be finite, got {time!r}")
        work = _limit_side(rgb, self.max_side)
        timestamp = max(int(round(float(time) * 1000)), self._last_ts + 1)
        self._last_ts = timestamp
        self._frame += 1
        self.counters["frames"] += 1
        mp_image = _mp_image(work)
        try:
            if self.running_mode == "video":
                result = self._landmarker.detect_for_video(mp_image, timestamp)
            else:
                result = self._landmarker.detect(mp_image)
        except (ValueError, RuntimeError) as exc:
            raise FaceError(f"face landmarker failed on this frame: {exc}") from exc
        raws = _dedupe(self._convert(result, "landmarker", 1.0))
        if raws:
            self._followed = []
        elif self._detector is not None:
            raws = self._fallback(work)
        self._had_faces = bool(raws)
        raws = raws[: self.max_faces]

        boxes = [r.box for r in raws]
        ids = self._tracker.update(boxes)
        order = self._selector.update(ids, boxes, self._tracker.ids)
        return [self._face(raws[i], ids[i], rgb) for i in order]

    @property
    def primary_track(self) -> int | None:
        """Track id of the current primary face (remembered while briefly unseen)."""
        return self._selector.primary

    def reset(self) -> None:
        """Forget tracks and the primary (e.g. before an unrelated clip). Timestamps keep
        increasing internally, so the next clip's times may start again at 0."""
        self._tracker.reset()
        self._selector.reset()
        self._followed = []
        self._had_faces = False
        self._last_search = -(10**9)

    def close(self) -> None:
        """Release the MediaPipe graphs (idempotent)."""
        self._closed = True
        for name in ("_landmarker", "_crop_landmarker", "_detector"):
            task = getattr(self, name, None)
            if task is not None:
                setattr(self, name, None)
                try:
                    task.close()
                except Exception:  # closing must never raise
                    pass

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _convert(self, result, source: str, score: float) -> list[_Raw]:
        raws = []
        for i, points in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y, p.z) for p in points], np.float32)
            blend = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
            if i < len(result.face_blendshapes):
                for c in result.face_blendshapes[i]:
                    if 0 <= c.index < len(blend):
                        blend[c.index] = c.score
            if i < len(result.facial_transformation_matrixes):
                matrix = np.asarray(result.facial_transformation_matrixes[i], np.float64)
            else:
                matrix = np.eye(4)
            raws.append(_Raw(landmarks, blend, matrix, score, source))
        return raws

    def _fallback(self, work: np.ndarray) -> list[_Raw]:
        """Faces too small for the landmarker's detector: follow the previous frame's
        fallback faces by cropping around them; search with the detector when there are
        none and the schedule allows (or a face was just lost)."""
        raws: list[_Raw] = []
        for box, score in self._followed:
            raw = self._landmark_crop(work, box, _TRACK_EXPAND, score)
            if raw is not None:
                raws.append(raw)
        raws = _dedupe(raws)
        if not raws and (self._had_faces or self._frame - self._last_search >= self.fallback_every):
            self._last_search = self._frame
            self.counters["detector_runs"] += 1
            try:
                detections = self._detector.detect(_mp_image(work)).detections
            except (ValueError, RuntimeError) as exc:
                raise FaceError(f"face detector failed on this frame: {exc}") from exc
            h, w = work.shape[:2]
            found = []
            for d in detections:
                b = d.bounding_box
                score = float(d.categories[0].score) if d.categories else 0.0
                box = (
                    b.origin_x / w,
                    b.origin_y / h,
                    (b.origin_x + b.width) / w,
                    (b.origin_y + b.height) / h,
                )
                found.append((score, box))
            found.sort(key=lambda sb: -sb[0])
            for score, box in found[: self.max_faces]:
                raw = self._landmark_crop(work, box, _DETECTION_EXPAND, score)
                if raw is not None:
                    raws.append(raw)
            raws = _dedupe(raws)
        self._followed = [(r.box, r.score) for r in raws]
        return raws

    def _landmark_crop(self, work: np.ndarray, box, expand: float, score: float) -> _Raw | None:
        """Run the IMAGE-mode landmarker on an upscaled square around ``box`` and map the
        face nearest the crop's centre back to frame coordinates."""
        h, w = work.shape[:2]
        cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
        side = expand * max((box[2] - box[0]) * w, (box[3] - box[1]) * h, 8.0)
        x0, y0 = cx - side / 2, cy - side / 2
        k = _CROP_INPUT / side
        matrix = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]])
        crop = cv2.warpAffine(
            work,
            matrix,
            (_CROP_INPUT, _CROP_INPUT),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        self.counters["crop_runs"] += 1
        try:
            result = self._crop_landmarker.detect(_mp_image(crop))
        except (ValueError, RuntimeError) as exc:
            raise FaceError(f"face landmarker failed on a face crop: {exc}") from exc
        candidates = self._convert(result, "fallback", score)
        if not candidates:
            return None
        raw = min(candidates, key=lambda r: float(np.abs(r.landmarks[:, :2].mean(0) - 0.5).sum()))
        lm = raw.landmarks
        lm[:, 0] = (x0 + lm[:, 0] * side) / w
        lm[:, 1] = (y0 + lm[:, 1] * side) / h
        lm[:, 2] = lm[:, 2] * side / w
        return raw

    def _face(self, raw: _Raw, track_id: int, rgb: np.ndarray) -> Face:
        yaw, pitch, roll = pose_from_matrix(raw.matrix)
        crop, _, face_px = aligned_crop(rgb, raw.landmarks, self.crop_size)
        return Face(
            box=raw.box,
            score=float(raw.score),
            landmarks=raw.landmarks,
            blendshapes=raw.blendshapes,
            pose=(float(yaw), float(pitch), float(roll)),
            track_id=track_id,
            quality=face_quality(face_px, crop, yaw, pitch),
            crop=crop,
            source=raw.source,
        )


def _dedupe(raws: list[_Raw], threshold: float = 0.5) -> list[_Raw]:
    """Drop faces overlapping an earlier one by more than ``threshold`` IoU."""
    kept: list[_Raw] = []
    for r in raws:
        if all(iou(r.box, k.box) <= threshold for k in kept):
            kept.append(r)
    return kept


def _as_rgb(image) -> np.ndarray:
    """Validate a frame and return it as a C-contiguous ``H x W x 3`` uint8 array."""
    if not isinstance(image, np.ndarray):
        raise FaceError(f"a frame must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise FaceError(f"a frame must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise FaceError(f"a frame must be H x W x 3 RGB, got shape {image.shape}")
    if min(image.shape[:2]) < 16:
        raise FaceError(f"a frame must be at least 16x16 pixels, got {image.shape[1::-1]}")
    return np.ascontiguousarray(image)


def _limit_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Reduce (area averaging) so that the longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _mp_image(array: np.ndarray):
    from mediapipe import Image, ImageFormat

    return Image(ImageFormat.SRGB, np.ascontiguousarray(array))
