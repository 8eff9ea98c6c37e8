"""Faces in video frames with MediaPipe's models: landmarks, blendshapes, pose, tracks, crops.

:class:`FaceAnalyzer` takes RGB frames with their presentation time and returns the faces it
sees, primary face first, each as a :class:`Face`; faces are followed between frames rather
than detected in each. One analyzer serves one stream from one thread. Geometry, pose and
quality are in :mod:`.face_align`, tracking and the primary face in :mod:`.face_tracking`.

**Engines.** ``"litert"`` (the default) runs the pinned bundle's models directly on LiteRT
(:mod:`.face_models`): a followed face gets the face mesh on a region made from its last
landmarks; the short-range detector searches the whole frame when no face is followed, one
was lost, or every ``face_search_every`` landmark frames; the full-range detector is the
fallback for small faces. ``"tasks"`` runs the MediaPipe Tasks landmarker (VIDEO mode, with a
full-range fallback on upscaled crops): the reference LiteRT is tested against
(``tests/test_face_models.py``), slower as its graph wraps the same models in image conversion,
scheduling and smoothing. LiteRT's pose is an orthographic fit (Tasks' perspective camera adds
yaw off the image centre), nothing is smoothed over time, and ``score`` is the mesh's presence.

**Tiered mode** (``landmarks_every=k > 1``): the face mesh, the costly model, runs on every
k-th frame only (a *landmark frame*). Between, the short-range detector finds each followed
face in a small square around its last box (LiteRT: at :data:`.face_models.FOLLOW_INPUT` px);
its 6 keypoints move the last landmark frame's landmarks onto the face, so box, aligned crop,
quality, yaw and roll follow at the full rate (head shakes are not aliased away) while
blendshapes and pitch are carried (``Face.landmarks_fresh`` is False). A landmark frame comes
early when a followed face is not found, the scene cuts, or a face gets no keypoints; new faces
are found on landmark frames. :func:`interpolate_landmark_gaps` interpolates the carried values
offline. Frames longer than ``max_side`` are reduced first; crops are cut from the original.
Costs and accuracy: ``bench/README.md`` (``analyze.py``, ``landmark_rate.py``, "Measured by
hand").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from .face_align import (
    aligned_crop,
    face_quality,
    keypoint_yaw,
    pose_from_matrix,
    similarity,
)
from .face_models import (
    FOLLOW_INPUT,
    Detection,
    FaceModelError,
    LandmarkerBundle,
    Roi,
    load_detector,
    square_crop,
)
from .face_options import DEFAULT_ENGINE, ENGINES
from .face_tracking import FaceTracker, PrimarySelector, iou

__all__ = [
    "BLENDSHAPE_NAMES",
    "Face",
    "FaceError",
    "FaceAnalyzer",
    "interpolate_landmark_gaps",
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

_CROP_INPUT = 256  # side of the upscaled crops the fallback landmarker sees
_DETECTION_EXPAND = 2.0  # crop side / detector box side
_TRACK_EXPAND = 1.7  # crop side / landmark box side, when following a fallback face
_ROI_INPUT = 128  # side of the square the Tasks short-range detector sees (its input size)
_MIN_PRESENCE = 0.5  # face mesh presence below which a followed face is lost (litert)
_ROI_EXPAND = 1.8  # its side / landmark box side
_SIMILARITY_POINTS = [0, 1, 3]  # keypoints the landmarks are moved by: eyes and mouth
_SCENE_STEP = 16  # pixel step of the thumbnail compared for scene changes
_SCENE_CHANGE = 30.0  # mean absolute difference (0..255) of that thumbnail that is a cut


class FaceError(Exception):
    """A face model could not be loaded, the analyzer is closed, or a frame is unusable."""


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
      by the detector keypoints' similarity, ``blendshapes`` and pitch are carried from that
      frame, yaw and roll are updated from the keypoints (see the module docstring).
    - ``keypoints``: ``(6, 2)`` float32 detector keypoints normalised to the frame (names in
      :data:`.face_align.KEYPOINT_NAMES`), in tiered mode; ``None`` otherwise.
    - ``keypoint_yaw``: :func:`.face_align.keypoint_yaw` of those keypoints (NaN without
      them); :func:`interpolate_landmark_gaps` uses it to remove the drift of yaw.
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


@dataclass
class _Raw:
    landmarks: np.ndarray
    blendshapes: np.ndarray
    matrix: np.ndarray | None
    score: float
    source: str
    pose: tuple[float, float, float] | None = None  # set between landmark frames
    fresh: bool = True
    keypoints: np.ndarray | None = None  # (6, 2) normalised, tiered mode
    keypoint_yaw: float = math.nan
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


@dataclass
class _Follow:
    """A face followed between landmark frames: its last landmark frame and latest box."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    pose: tuple[float, float, float]
    keypoints: np.ndarray  # (6, 2) normalised, at the landmark frame
    keypoint_yaw: float
    box: tuple[float, float, float, float]
    source: str
    score: float


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

    ``engine``: ``"litert"`` (default) or ``"tasks"`` (see the module docstring);
    ``threads``: LiteRT interpreter threads per model (LiteRT engine).

    Tiered mode (see the module docstring): ``landmarks_every``: the landmarker runs on at
    least every ``landmarks_every``-th frame (1, the default: on every frame, as without
    tiers); above 1 the Tasks engine needs ``short_range_detector_path``, MediaPipe's
    short-range face detector ``.tflite`` (``face_detection_short_range.tflite``), which
    follows the faces on the frames between (the LiteRT engine uses the bundle's own
    short-range detector when none is given). With the pipeline's 5 fps analysis rate and
    default landmark rate, ``landmarks_every=5`` gives landmarks, blendshapes and pitch at
    1 fps and box, crop, yaw and roll at 5 fps.

    ``face_search_every``: how often a landmark frame looks for new faces while faces are
    followed. Tasks engine: while exactly one face is seen, only one landmark frame in
    ``face_search_every`` runs the landmarker set for ``max_faces`` faces (which runs its face
    detector on every call, looking for more faces); the others run a second landmarker set
    for one face, which only follows it and so costs less. LiteRT engine: the short-range
    detector searches the whole frame on one landmark frame in ``face_search_every`` (and
    whenever no face is followed or one was lost). Both costs are in ``bench/README.md``
    ("Measured by hand"). A second face is then found up to ``face_search_every - 1``
    landmark frames late. 1 (the default): every landmark frame looks for all faces.
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
        landmarks_every: int = 1,
        short_range_detector_path: str | PathLike | None = None,
        face_search_every: int = 1,
        engine: str = DEFAULT_ENGINE,
        threads: int = 2,
    ) -> None:
        if engine not in ENGINES:
            raise FaceError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 64:
            raise FaceError(f"threads must be an integer in 1..64, got {threads!r}")
        if running_mode not in ("video", "image"):
            raise FaceError(f"running_mode must be 'video' or 'image', got {running_mode!r}")
        if not 1 <= max_faces <= 16:
            raise FaceError(f"max_faces must be in 1..16, got {max_faces}")
        if not 16 <= crop_size <= 1024:
            raise FaceError(f"crop_size must be in 16..1024, got {crop_size}")
        if max_side < 64:
            raise FaceError(f"max_side must be at least 64, got {max_side}")
        for name, value in (
            ("landmarks_every", landmarks_every),
            ("face_search_every", face_search_every),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise FaceError(f"{name} must be an integer in 1..1000, got {value!r}")
        if landmarks_every > 1 and short_range_detector_path is None and engine == "tasks":
            raise FaceError("landmarks_every > 1 needs short_range_detector_path")
        self.engine = engine
        self.max_faces = max_faces
        self.crop_size = crop_size
        self.running_mode = running_mode
        self.fallback_every = max(1, int(fallback_every))
        self.max_side = max_side
        self.landmarks_every = landmarks_every
        self.face_search_every = face_search_every
        self.min_detection_confidence = min_detection_confidence
        self.blendshape_names: list[str] = list(BLENDSHAPE_NAMES)
        self._tracker = FaceTracker(max_missed=max_missed)
        self._selector = PrimarySelector()
        self._landmarker = self._single = self._crop_landmarker = None
        self._detector = self._short = None
        self._bundle: LandmarkerBundle | None = None
        self._tracked: list[tuple[np.ndarray, str, float]] = []  # litert: last frame's faces
        self._search_left = 0  # litert: landmark frames until the next face search
        self._closed = False
        self._frame = 0
        self._last_ts = -1
        self._ts_offset = 0  # MediaPipe's clock for this clip starts here (see reset)
        self._last_search = -(10**9)
        self._had_faces = False
        self._followed: list[tuple[tuple[float, float, float, float], float]] = []
        self._follows: list[_Follow] = []  # tiered mode: faces followed by the detector
        self._since_landmarks = 0  # frames since the last landmark frame
        self._thumb: np.ndarray | None = None
        self._one_face = False  # the last landmark frame saw exactly one face
        self._single_left = 0  # landmark frames the one-face landmarker may still run
        # work done so far: frames processed, full-frame detector runs, crop landmarkings,
        # landmarker runs on whole frames, short-range detector runs (tiered mode)
        self.counters = {
            "frames": 0,
            "detector_runs": 0,
            "crop_runs": 0,
            "landmark_frames": 0,
            "roi_detector_runs": 0,
            "face_searches": 0,
        }

        if engine == "litert":
            try:
                self._bundle = LandmarkerBundle.load(
                    landmarker_path, threads, min_detection_confidence
                )
                if detector_path is not None:
                    self._detector = load_detector(
                        detector_path, "face detector", threads, min_detection_confidence
                    )
                # the detector that follows faces (tiered mode) runs at FOLLOW_INPUT px
                if short_range_detector_path is None:
                    self._short = self._bundle.detector.at_size(FOLLOW_INPUT)
                else:
                    self._short = load_detector(
                        short_range_detector_path,
                        "short-range face detector",
                        threads,
                        min_detection_confidence,
                        FOLLOW_INPUT,
                    )
            except FaceModelError as exc:
                self.close()
                raise FaceError(str(exc)) from exc
            return

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

        def detector(path, what):
            options = vision.FaceDetectorOptions(
                base_options=base_options(model_asset_path=_model_file(path, what)),
                min_detection_confidence=min_detection_confidence,
            )
            return vision.FaceDetector.create_from_options(options)

        try:
            self._landmarker = landmarker(mode, max_faces)
            if face_search_every > 1 and max_faces > 1:
                self._single = landmarker(mode, 1)
            if detector_path is not None:
                self._detector = detector(detector_path, "face detector")
                self._crop_landmarker = landmarker(vision.RunningMode.IMAGE, 2)
            if short_range_detector_path is not None:  # tiered mode can be switched on later
                self._short = detector(short_range_detector_path, "short-range face detector")
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
        timestamp = max(self._ts_offset + int(round(float(time) * 1000)), self._last_ts + 1)
        self._last_ts = timestamp
        self._frame += 1
        self.counters["frames"] += 1
        raws = None
        if self.landmarks_every > 1:
            cut = self._scene_cut(work)
            if self._follows and not cut and self._since_landmarks + 1 < self.landmarks_every:
                raws = self._between(work)  # None when a followed face was not found
        if raws is None:
            raws = self._landmark_frame(work, timestamp)
        raws = raws[: self.max_faces]
        if self._bundle is not None and self.running_mode == "video":
            self._tracked = [(r.landmarks, *(r.followed or (r.source, r.score))) for r in raws]

        boxes = [r.box for r in raws]
        ids = self._tracker.update(boxes)
        order = self._selector.update(ids, boxes, self._tracker.ids)
        return [self._face(raws[i], ids[i], rgb) for i in order]

    @property
    def primary_track(self) -> int | None:
        """Track id of the current primary face (remembered while briefly unseen)."""
        return self._selector.primary

    def _forget_video_state(self) -> None:
        """Make the next clip independent of the last one. MediaPipe's VIDEO mode keeps a
        face's region and smoothing filters between calls: one empty frame makes it lose the
        track, and the next clip's clock restarts one second after the last timestamp (its
        times keep their real spacing instead of being pushed to 1 ms apart)."""
        if self._bundle is not None or self.running_mode != "video" or self._last_ts < 0:
            return  # LiteRT keeps no state but the faces followed (cleared by reset)
        blank = _mp_image(np.zeros((64, 64, 3), np.uint8))
        self._last_ts += 1
        for task in (self._landmarker, self._single):
            if task is not None:
                task.detect_for_video(blank, self._last_ts)
        self._ts_offset = self._last_ts + 1000

    def set_landmarks_every(self, landmarks_every: int) -> None:
        """Switch tiered mode between clips (e.g. after :meth:`reset`): the landmarker runs on
        every ``landmarks_every``-th frame; above 1 the analyzer needs its short-range
        detector (``short_range_detector_path``)."""
        if isinstance(landmarks_every, bool) or not isinstance(landmarks_every, int):
            raise FaceError(f"landmarks_every must be an integer, got {landmarks_every!r}")
        if not 1 <= landmarks_every <= 1000:
            raise FaceError(f"landmarks_every must be in 1..1000, got {landmarks_every}")
        if landmarks_every > 1 and self._short is None:
            raise FaceError("landmarks_every > 1 needs short_range_detector_path")
        self.landmarks_every = landmarks_every
        self._since_landmarks = 0

    def reset(self) -> None:
        """Forget tracks and the primary (e.g. before an unrelated clip). Timestamps keep
        increasing internally, so the next clip's times may start again at 0."""
        self._tracker.reset()
        self._selector.reset()
        self._forget_video_state()
        self._followed = []
        self._follows = []
        self._tracked = []
        self._search_left = 0
        self._since_landmarks = 0
        self._thumb = None
        self._one_face = False
        self._single_left = 0
        self._had_faces = False
        self._last_search = -(10**9)

    def close(self) -> None:
        """Release the MediaPipe graphs (idempotent)."""
        self._closed = True
        self._bundle = None  # LiteRT models are freed with their interpreters
        for name in ("_landmarker", "_single", "_crop_landmarker", "_detector", "_short"):
            task = getattr(self, name, None)
            if task is not None:
                setattr(self, name, None)
                try:
                    if hasattr(task, "close"):
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

    def _landmark_frame(self, work: np.ndarray, timestamp: int) -> list[_Raw]:
        """The landmarker on the whole frame (and the fallback when it finds nothing); in
        tiered mode, also the detector keypoints that the following frames start from."""
        self.counters["landmark_frames"] += 1
        if self._bundle is not None:
            raws = self._litert_faces(work)
        else:
            raws = self._tasks_faces(work, timestamp)
        self._had_faces = bool(raws)
        raws = raws[: self.max_faces]
        self._one_face = len(raws) == 1 and raws[0].source == "landmarker"
        if self.landmarks_every > 1:
            self._since_landmarks = 0
            self._follows = []
            for raw in raws:
                found = self._roi_detect(work, raw.box)
                if found is None:  # this face cannot be followed: landmark the next frame
                    self._since_landmarks = self.landmarks_every
                    continue
                raw.keypoints, _ = found
                raw.keypoint_yaw = _keypoint_yaw(raw.keypoints, work.shape)
                self._follows.append(
                    _Follow(
                        raw.landmarks,
                        raw.blendshapes,
                        raw.head_pose,
                        raw.keypoints,
                        raw.keypoint_yaw,
                        raw.box,
                        raw.source,
                        raw.score,
                    )
                )
        return raws

    def _tasks_faces(self, work: np.ndarray, timestamp: int) -> list[_Raw]:
        """The Tasks landmarker on the whole frame (one face only while one is followed and
        no search is due), then the fallback when it finds nothing."""
        mp_image = _mp_image(work)
        raws = []
        if self._single is not None and self._one_face and self._single_left > 0:
            self._single_left -= 1
            raws = self._landmark(self._single, mp_image, timestamp)
        if not raws:  # look for every face (also when the one followed face was lost)
            self.counters["face_searches"] += 1
            self._single_left = self.face_search_every - 1
            raws = self._landmark(self._landmarker, mp_image, timestamp)
        if raws:
            self._followed = []
        elif self._detector is not None:
            raws = self._fallback(work)
        return raws

    def _litert_faces(self, work: np.ndarray) -> list[_Raw]:
        """The face mesh on each face of the previous frame (region from its landmarks);
        a search with the short-range detector over the whole frame when none was followed,
        one was lost, or one is due (every ``face_search_every`` landmark frames); the
        full-range detector as the fallback when that finds nothing."""
        h, w = work.shape[:2]
        raws: list[_Raw] = []
        lost = False
        for landmarks, source, score in self._tracked:
            carried = score if source == "fallback" else None  # the detector's, when found
            raw = self._mesh(work, Roi.from_landmarks(landmarks, w, h), source, carried)
            if raw is None:
                lost = True
            else:
                raws.append(raw)
        raws = _dedupe(raws)
        self._search_left -= 1
        if len(raws) < self.max_faces and (not raws or lost or self._search_left <= 0):
            self.counters["face_searches"] += 1
            self._search_left = self.face_search_every
            raws = self._add_detected(work, raws, self._bundle.detector.detect(work), False)
        if raws:
            return raws
        if self._detector is not None and (
            self._had_faces or self._frame - self._last_search >= self.fallback_every
        ):
            self._last_search = self._frame
            self.counters["detector_runs"] += 1
            raws = self._add_detected(work, raws, self._detector.detect(work), True)
        return raws

    def _add_detected(
        self, work: np.ndarray, raws: list[_Raw], detections: list[Detection], fallback: bool
    ) -> list[_Raw]:
        """``raws`` and the faces of new ``detections`` (best first; those whose centre
        lies in a face already found are skipped), up to ``max_faces``."""
        h, w = work.shape[:2]
        for d in detections:
            if len(raws) >= self.max_faces:
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
                raws = _dedupe([*raws, raw])
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
        return _Raw(landmarks, blend, matrix, presence if score is None else score, source)

    def _landmark(self, task, mp_image, timestamp: int) -> list[_Raw]:
        try:
            if self.running_mode == "video":
                result = task.detect_for_video(mp_image, timestamp)
            else:
                result = task.detect(mp_image)
        except (ValueError, RuntimeError) as exc:
            raise FaceError(f"face landmarker failed on this frame: {exc}") from exc
        return _dedupe(self._convert(result, "landmarker", 1.0))

    def _between(self, work: np.ndarray) -> list[_Raw] | None:
        """Follow the faces of the last landmark frame with the short-range detector; None
        when one of them is not found (the caller then landmarks this frame)."""
        raws = []
        for follow in self._follows:
            found = self._roi_detect(work, follow.box)
            if found is None:
                return None
            keypoints, score = found
            raws.append(_moved(follow, keypoints, score, work.shape))
        kept = _dedupe(raws)
        if len(kept) < len(raws):  # two followed faces became one: look again
            return None
        self._since_landmarks += 1
        for follow, raw in zip(self._follows, raws, strict=True):
            follow.box = raw.box
        return raws

    def _roi_detect(self, work: np.ndarray, box) -> tuple[np.ndarray, float] | None:
        """The short-range detector on a square around ``box``: the 6 keypoints (normalised
        to the frame) and score of the face nearest its centre, of a plausible size."""
        h, w = work.shape[:2]
        cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
        face_side = max((box[2] - box[0]) * w, (box[3] - box[1]) * h, 8.0)
        side = _ROI_EXPAND * face_side
        x0, y0 = cx - side / 2, cy - side / 2
        size = self._short.size if self._bundle is not None else _ROI_INPUT
        roi = square_crop(work, x0, y0, side, size)
        self.counters["roi_detector_runs"] += 1
        best, best_distance = None, math.inf
        for d in self._square_detections(roi):
            box = d.box
            size = max(box[2] - box[0], box[3] - box[1]) * side
            if len(d.keypoints) < 6 or not 0.33 < size / face_side < 3.0:
                continue
            distance = math.hypot((box[0] + box[2]) / 2 - 0.5, (box[1] + box[3]) / 2 - 0.5)
            if distance < best_distance:
                best, best_distance = d, distance
        if best is None:
            return None
        points = np.asarray(best.keypoints[:6], np.float64)
        keypoints = ((points * side + (x0, y0)) / (w, h)).astype(np.float32)
        return keypoints, best.score

    def _square_detections(self, square: np.ndarray) -> list[Detection]:
        """The faces the short-range detector finds in a square, normalised to it."""
        try:
            if self._bundle is not None:
                return self._short.detect_square(square)
            return _tasks_detections(self._short.detect(_mp_image(square)), square.shape)
        except (FaceModelError, ValueError, RuntimeError) as exc:
            raise FaceError(f"face detector failed on a face crop: {exc}") from exc

    def _scene_cut(self, work: np.ndarray) -> bool:
        """Whether this frame differs from the previous one as a cut does (mean absolute
        difference of a coarse green-channel thumbnail)."""
        step = max(1, max(work.shape[:2]) // 40)
        thumb = work[::step, ::step, 1].astype(np.int16)
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape:
            return True
        return float(np.abs(thumb - previous).mean()) > _SCENE_CHANGE

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
                found = _tasks_detections(self._detector.detect(_mp_image(work)), work.shape)
            except (ValueError, RuntimeError) as exc:
                raise FaceError(f"face detector failed on this frame: {exc}") from exc
            found.sort(key=lambda d: -d.score)
            for d in found[: self.max_faces]:
                raw = self._landmark_crop(work, d.box, _DETECTION_EXPAND, d.score)
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
        yaw, pitch, roll = raw.head_pose
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
            landmarks_fresh=raw.fresh,
            keypoints=raw.keypoints,
            keypoint_yaw=float(raw.keypoint_yaw),
        )


def interpolate_landmark_gaps(
    frames: Sequence[Sequence[Face]], times: Sequence[float] | None = None
) -> list[list[Face]]:
    """Offline counterpart of tiered mode: the faces of a whole clip (``frames[i]`` is what
    :meth:`FaceAnalyzer.process` returned for frame ``i``, shown at ``times[i]``; frame
    indices when ``times`` is None) with the values carried between landmark frames replaced
    by interpolated ones.

    For each track, every face with ``landmarks_fresh=False`` that lies between two fresh
    faces A and B of the same track (weight ``w`` by time from A to B) gets
    ``blendshapes = (1 - w) A + w B`` and pitch likewise; its yaw keeps the change measured
    from the keypoints and adds ``w`` times what the keypoints missed from A to B
    (``(yaw_B - yaw_A) - (keypoint_yaw_B - keypoint_yaw_A)``), so it meets B's landmarker yaw
    without losing the motion in between (plain linear interpolation when keypoints are
    missing). Roll, landmarks, box, crop and quality are kept. Faces after a track's last
    fresh face keep their carried values. The input is not modified.
    """
    n = len(frames)
    if times is None:
        t = np.arange(n, dtype=np.float64)
    else:
        t = np.asarray(times, np.float64)
        if t.shape != (n,):
            raise FaceError(f"times must have one value per frame ({n}), got {t.shape}")
    out = [list(faces) for faces in frames]
    tracks: dict[int, list[tuple[int, int]]] = {}
    for i, faces in enumerate(frames):
        for j, face in enumerate(faces):
            tracks.setdefault(face.track_id, []).append((i, j))
    for seq in tracks.values():
        fresh = [k for k, (i, j) in enumerate(seq) if frames[i][j].landmarks_fresh]
        for a, b in zip(fresh, fresh[1:], strict=False):
            if b - a < 2:
                continue
            (ia, ja), (ib, jb) = seq[a], seq[b]
            first, last = frames[ia][ja], frames[ib][jb]
            span = t[ib] - t[ia]
            anchored = math.isfinite(first.keypoint_yaw) and math.isfinite(last.keypoint_yaw)
            missed = (last.pose[0] - first.pose[0]) - (last.keypoint_yaw - first.keypoint_yaw)
            for i, j in seq[a + 1 : b]:
                face = frames[i][j]
                w = float(np.clip((t[i] - t[ia]) / span, 0.0, 1.0)) if span > 0 else 0.0
                blend = ((1 - w) * first.blendshapes + w * last.blendshapes).astype(np.float32)
                if anchored and math.isfinite(face.keypoint_yaw):
                    yaw = face.pose[0] + w * missed
                else:
                    yaw = (1 - w) * first.pose[0] + w * last.pose[0]
                pitch = (1 - w) * first.pose[1] + w * last.pose[1]
                out[i][j] = replace(
                    face, blendshapes=blend, pose=(float(yaw), float(pitch), face.pose[2])
                )
    return out


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


def _keypoint_yaw(keypoints: np.ndarray, shape) -> float:
    return keypoint_yaw(keypoints * (shape[1], shape[0]))


def _moved(follow: _Follow, keypoints: np.ndarray, score: float, shape) -> _Raw:
    """The followed face's landmark-frame landmarks moved by the similarity that takes its
    keypoints then (eyes, mouth) to ``keypoints`` now; yaw and roll updated from them."""
    h, w = shape[:2]
    scale = np.array([w, h], np.float64)
    m = similarity(
        follow.keypoints[_SIMILARITY_POINTS] * scale, keypoints[_SIMILARITY_POINTS] * scale
    )
    landmarks = np.empty_like(follow.landmarks)
    # the pixel similarity as a map of normalised coordinates: x_n @ B + t / scale
    landmarks[:, :2] = follow.landmarks[:, :2] @ (m[:, :2].T * scale[:, None] / scale) + (
        m[:, 2] / scale
    )
    landmarks[:, 2] = follow.landmarks[:, 2] * math.hypot(m[0, 0], m[1, 0])
    now = keypoint_yaw(keypoints * scale)
    yaw, pitch, roll = follow.pose
    yaw = yaw + now - follow.keypoint_yaw
    roll = roll - math.degrees(math.atan2(m[1, 0], m[0, 0]))  # image y points down
    return _Raw(
        landmarks,
        follow.blendshapes,
        None,
        score,
        "detector",
        pose=(float(yaw), float(pitch), float(roll)),
        fresh=False,
        keypoints=keypoints,
        keypoint_yaw=now,
        followed=(follow.source, follow.score),
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
