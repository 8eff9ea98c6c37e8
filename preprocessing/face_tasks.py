"""The MediaPipe Tasks face engine (``engine="tasks"``): the Tasks face landmarker in VIDEO
mode (or IMAGE mode), with a full-range fallback on upscaled crops for faces too small for
its own detector.

It is the reference the LiteRT engine is tested against (``tests/test_face_models.py``),
slower as its graph wraps the same models in image conversion, scheduling and smoothing. Its
pose comes from a perspective camera (yaw off the image centre), and it reports no confidence
for the faces it finds (``score`` 1.0; they passed its 0.5 detection/presence checks).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from .face_engine import BLENDSHAPE_NAMES, EngineOptions, FaceEngine, FaceError, RawFace, dedupe
from .face_models import Detection

__all__ = ["TasksEngine"]

_CROP_INPUT = 256  # side of the upscaled crops the fallback landmarker sees
_DETECTION_EXPAND = 2.0  # crop side / detector box side
_TRACK_EXPAND = 1.7  # crop side / landmark box side, when following a fallback face
_ROI_INPUT = 128  # side of the square the Tasks short-range detector sees (its input size)


class TasksEngine(FaceEngine):
    """A landmarker for ``max_faces`` faces; with ``face_search_every > 1`` a second one for
    one face, which only follows it and so costs less (see :class:`~.faces.FaceAnalyzer`);
    with a full-range detector, an IMAGE-mode landmarker for its crops; with a short-range
    detector, the one that follows faces between landmark frames."""

    _MODELS = ("_landmarker", "_single", "_crop_landmarker", "_detector", "_short")

    def __init__(self, options: EngineOptions, counters: dict[str, int]) -> None:
        super().__init__(options, counters)
        self._landmarker = self._single = self._crop_landmarker = None
        self._detector = self._short = None
        self._followed: list[tuple[tuple[float, float, float, float], float]] = []
        self._one_face = False  # the last landmark frame saw exactly one face
        self._single_left = 0  # landmark frames the one-face landmarker may still run
        try:
            self._load(options)
        except FaceError:
            self.close()
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            self.close()
            raise FaceError(f"cannot load the face models: {exc}") from exc

    def _load(self, options: EngineOptions) -> None:
        vision, base_options = _load_vision()
        video = options.running_mode == "video"
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        landmarker_file = _model_file(options.landmarker_path, "face landmarker")

        def landmarker(running, num_faces):
            landmarker_options = vision.FaceLandmarkerOptions(
                base_options=base_options(model_asset_path=landmarker_file),
                running_mode=running,
                num_faces=num_faces,
                min_face_detection_confidence=options.min_detection_confidence,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
            return vision.FaceLandmarker.create_from_options(landmarker_options)

        def detector(path, what):
            detector_options = vision.FaceDetectorOptions(
                base_options=base_options(model_asset_path=_model_file(path, what)),
                min_detection_confidence=options.min_detection_confidence,
            )
            return vision.FaceDetector.create_from_options(detector_options)

        self._landmarker = landmarker(mode, options.max_faces)
        if options.face_search_every > 1 and options.max_faces > 1:
            self._single = landmarker(mode, 1)
        if options.detector_path is not None:
            self._detector = detector(options.detector_path, "face detector")
            self._crop_landmarker = landmarker(vision.RunningMode.IMAGE, 2)
        if options.short_range_detector_path is not None:  # tiered mode can be switched on later
            self._short = detector(options.short_range_detector_path, "short-range face detector")

    @property
    def follow_size(self) -> int:
        return _ROI_INPUT

    def detect_square(self, square: np.ndarray) -> list[Detection]:
        return _tasks_detections(self._short.detect(_mp_image(square)), square.shape)

    def forget(self, last_ts: int) -> int:
        """Besides the faces: MediaPipe's VIDEO mode keeps a face's region and smoothing
        filters between calls, and one empty frame (at ``last_ts + 1``) makes it lose the
        track."""
        if self.options.running_mode == "video" and last_ts >= 0:
            blank = _mp_image(np.zeros((64, 64, 3), np.uint8))
            last_ts += 1
            for task in (self._landmarker, self._single):
                if task is not None:
                    task.detect_for_video(blank, last_ts)
        self._followed = []
        self._one_face = False
        self._single_left = 0
        return super().forget(last_ts)

    def _find(self, work: np.ndarray, timestamp: int, frame: int) -> list[RawFace]:
        """The Tasks landmarker on the whole frame (one face only while one is followed and
        no search is due), then the fallback when it finds nothing."""
        mp_image = _mp_image(work)
        raws = []
        if self._single is not None and self._one_face and self._single_left > 0:
            self._single_left -= 1
            raws = self._landmark(self._single, mp_image, timestamp)
        if not raws:  # look for every face (also when the one followed face was lost)
            self.counters["face_searches"] += 1
            self._single_left = self.options.face_search_every - 1
            raws = self._landmark(self._landmarker, mp_image, timestamp)
        if raws:
            self._followed = []
        elif self._detector is not None:
            raws = self._fallback(work, frame)
        kept = raws[: self.options.max_faces]
        self._one_face = len(kept) == 1 and kept[0].source == "landmarker"
        return raws

    def _landmark(self, task, mp_image, timestamp: int) -> list[RawFace]:
        try:
            if self.options.running_mode == "video":
                result = task.detect_for_video(mp_image, timestamp)
            else:
                result = task.detect(mp_image)
        except (ValueError, RuntimeError) as exc:
            raise FaceError(f"face landmarker failed on this frame: {exc}") from exc
        return dedupe(_convert(result, "landmarker", 1.0))

    def _fallback(self, work: np.ndarray, frame: int) -> list[RawFace]:
        """Faces too small for the landmarker's detector: follow the previous frame's
        fallback faces by cropping around them; search with the detector when there are
        none and the schedule allows (or a face was just lost)."""
        raws: list[RawFace] = []
        for box, score in self._followed:
            raw = self._landmark_crop(work, box, _TRACK_EXPAND, score)
            if raw is not None:
                raws.append(raw)
        raws = dedupe(raws)
        if not raws and self._fallback_due(frame):
            try:
                found = _tasks_detections(self._detector.detect(_mp_image(work)), work.shape)
            except (ValueError, RuntimeError) as exc:
                raise FaceError(f"face detector failed on this frame: {exc}") from exc
            found.sort(key=lambda d: -d.score)
            for d in found[: self.options.max_faces]:
                raw = self._landmark_crop(work, d.box, _DETECTION_EXPAND, d.score)
                if raw is not None:
                    raws.append(raw)
            raws = dedupe(raws)
        self._followed = [(r.box, r.score) for r in raws]
        return raws

    def _landmark_crop(self, work: np.ndarray, box, expand: float, score: float) -> RawFace | None:
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
        candidates = _convert(result, "fallback", score)
        if not candidates:
            return None
        raw = min(candidates, key=lambda r: float(np.abs(r.landmarks[:, :2].mean(0) - 0.5).sum()))
        lm = raw.landmarks
        lm[:, 0] = (x0 + lm[:, 0] * side) / w
        lm[:, 1] = (y0 + lm[:, 1] * side) / h
        lm[:, 2] = lm[:, 2] * side / w
        return raw


def _convert(result, source: str, score: float) -> list[RawFace]:
    """A Tasks ``FaceLandmarkerResult`` as raw faces (identity pose matrix when missing)."""
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
        raws.append(RawFace(landmarks, blend, matrix, score, source))
    return raws


def _tasks_detections(result, shape) -> list[Detection]:
    """A Tasks ``FaceDetectorResult`` on an image of ``shape`` as a list of :class:`Detection`
    normalised to that image (boxes come in pixels, keypoints already normalised)."""
    h, w = shape[:2]
    out = []
    for d in result.detections:
        b = d.bounding_box
        box = (
            b.origin_x / w,
            b.origin_y / h,
            (b.origin_x + b.width) / w,
            (b.origin_y + b.height) / h,
        )
        points = np.array([(k.x, k.y) for k in d.keypoints], np.float32).reshape(-1, 2)
        out.append(Detection(box, points, float(d.categories[0].score) if d.categories else 0.0))
    return out


def _load_vision():
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    return vision, BaseOptions


def _model_file(path: str | PathLike, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise FaceError(f"{what} model file not found: {p}")
    return str(p)


def _mp_image(array: np.ndarray):
    from mediapipe import Image, ImageFormat

    return Image(ImageFormat.SRGB, np.ascontiguousarray(array))
