"""Faces in video frames with MediaPipe's models: landmarks, blendshapes, pose, tracks, crops.

:class:`FaceAnalyzer` takes RGB frames with their presentation time and returns the faces it
sees, primary face first, each as a :class:`Face`; faces are followed between frames rather
than detected in each. One analyzer serves one stream from one thread. Geometry, pose and
quality are in :mod:`.face_align`, tracking and the primary face in :mod:`.face_tracking`,
the two engines that run the models in :mod:`.face_litert` and :mod:`.face_tasks` (their
shared base in :mod:`.face_engine`).

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
quality, yaw, pitch and roll follow at the full rate (head shakes and nods are not aliased
away) while blendshapes are carried (``Face.landmarks_fresh`` is False). A landmark frame comes
early when a followed face is not found, the scene cuts, or a face gets no keypoints; new faces
are found on landmark frames. :func:`interpolate_landmark_gaps` interpolates the carried values
offline. Frames longer than ``max_side`` are reduced first; crops are cut from the original.
Costs and accuracy: ``bench/README.md`` (``analyze.py``, ``landmark_rate.py``, "Measured by
hand").
"""

from __future__ import annotations

import logging
import math
import os
from os import PathLike

import cv2
import numpy as np

from .face_align import aligned_crop, face_quality
from .face_engine import (
    BLENDSHAPE_NAMES,
    EngineOptions,
    Face,
    FaceEngine,
    FaceError,
    RawFace,
    dedupe,
)
from .face_litert import LiteRTEngine
from .face_models import Detection, FaceModelError, square_crop
from .face_options import DEFAULT_ENGINE, ENGINES
from .face_tasks import TasksEngine
from .face_tiers import Follow, interpolate_landmark_gaps, keypoint_pose_at, moved
from .face_tracking import FaceTracker, PrimarySelector

log = logging.getLogger(__name__)

__all__ = [
    "BLENDSHAPE_NAMES",
    "Face",
    "FaceError",
    "FaceAnalyzer",
    "auto_face_threads",
    "interpolate_landmark_gaps",
]

_ENGINES: dict[str, type[FaceEngine]] = {"litert": LiteRTEngine, "tasks": TasksEngine}
_ROI_EXPAND = 1.8  # side of the square searched between landmark frames / landmark box side
_SCENE_CHANGE = 30.0  # mean absolute difference (0..255) of coarse thumbnails that is a cut


class FaceAnalyzer:
    """Finds, tracks and describes faces in a stream of RGB frames.

    ``landmarker_path``: a ``face_landmarker.task`` bundle. ``detector_path``: a MediaPipe
    face detector ``.tflite`` (full-range finds small faces) for the fallback; ``None``
    disables it. ``running_mode``: ``"video"`` (tracking; timestamps must increase) or
    ``"image"`` (independent frames). ``fallback_every``: frames between detector runs while
    nothing is seen. ``max_missed``: frames a track survives unseen. ``max_side``: longer
    side frames are reduced to before MediaPipe.

    ``engine``: ``"litert"`` (default) or ``"tasks"`` (see the module docstring);
    ``threads``: LiteRT interpreter threads per model (LiteRT engine); ``None`` (the
    default): :func:`auto_face_threads` chooses by what the machine offers, and logs it.

    Tiered mode (see the module docstring): ``landmarks_every``: the landmarker runs on at
    least every ``landmarks_every``-th frame (1, the default: on every frame, as without
    tiers); above 1 the Tasks engine needs ``short_range_detector_path``, MediaPipe's
    short-range face detector ``.tflite`` (``face_detection_short_range.tflite``), which
    follows the faces on the frames between (the LiteRT engine uses the bundle's own
    short-range detector when none is given). With the pipeline's 5 fps analysis rate and
    default landmark rate, ``landmarks_every=5`` gives landmarks and blendshapes at 1 fps
    and box, crop, yaw, pitch and roll at 5 fps.

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
        threads: int | None = None,
    ) -> None:
        self._closed = False
        if threads is None:
            threads = auto_face_threads() if engine == "litert" else 1
        _check_options(
            engine,
            threads,
            running_mode,
            max_faces,
            crop_size,
            max_side,
            landmarks_every,
            face_search_every,
            short_range_detector_path,
        )
        self.engine = engine
        self.threads = threads
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
        self._frame = 0
        self._last_ts = -1
        self._ts_offset = 0  # MediaPipe's clock for this clip starts here (see reset)
        self._follows: list[Follow] = []  # tiered mode: faces followed by the detector
        self._since_landmarks = 0  # frames since the last landmark frame
        self._thumb: np.ndarray | None = None
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
        options = EngineOptions(
            landmarker_path,
            detector_path,
            short_range_detector_path,
            max_faces,
            running_mode,
            min_detection_confidence,
            self.fallback_every,
            face_search_every,
            threads,
        )
        self._engine: FaceEngine = _ENGINES[engine](options, self.counters)

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
        self._engine.followed(raws)

        boxes = [r.box for r in raws]
        ids = self._tracker.update(boxes)
        order = self._selector.update(ids, boxes, self._tracker.ids)
        return [self._face(raws[i], ids[i], rgb) for i in order]

    @property
    def primary_track(self) -> int | None:
        """Track id of the current primary face (remembered while briefly unseen)."""
        return self._selector.primary

    def set_landmarks_every(self, landmarks_every: int) -> None:
        """Switch tiered mode between clips (e.g. after :meth:`reset`): the landmarker runs on
        every ``landmarks_every``-th frame; above 1 the analyzer needs its short-range
        detector (``short_range_detector_path``)."""
        if isinstance(landmarks_every, bool) or not isinstance(landmarks_every, int):
            raise FaceError(f"landmarks_every must be an integer, got {landmarks_every!r}")
        _check_range("landmarks_every", landmarks_every, 1, 1000)
        if landmarks_every > 1 and not self._engine.can_follow:
            raise FaceError("landmarks_every > 1 needs short_range_detector_path")
        self.landmarks_every = landmarks_every
        self._since_landmarks = 0

    def reset(self) -> None:
        """Forget tracks and the primary (e.g. before an unrelated clip). Timestamps keep
        increasing internally, so the next clip's times may start again at 0.

        MediaPipe's VIDEO mode (Tasks engine) is made to lose its track, and the next clip's
        clock restarts one second after the last timestamp (its times keep their real
        spacing instead of being pushed to 1 ms apart)."""
        self._tracker.reset()
        self._selector.reset()
        last_ts = self._engine.forget(self._last_ts)
        if last_ts != self._last_ts:
            self._last_ts = last_ts
            self._ts_offset = last_ts + 1000
        self._follows = []
        self._since_landmarks = 0
        self._thumb = None

    def close(self) -> None:
        """Release the face models (idempotent)."""
        self._closed = True
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.close()

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _landmark_frame(self, work: np.ndarray, timestamp: int) -> list[RawFace]:
        """The engine's faces on the whole frame (the fallback included); in tiered mode,
        also the detector keypoints that the following frames start from."""
        self.counters["landmark_frames"] += 1
        raws = self._engine.landmark(work, timestamp, self._frame)[: self.max_faces]
        if self.landmarks_every > 1:
            self._since_landmarks = 0
            self._follows = []
            for raw in raws:
                found = self._roi_detect(work, raw.box)
                if found is None:  # this face cannot be followed: landmark the next frame
                    self._since_landmarks = self.landmarks_every
                    continue
                raw.keypoints, _ = found
                raw.keypoint_yaw, raw.keypoint_pitch = keypoint_pose_at(raw.keypoints, work.shape)
                self._follows.append(
                    Follow(
                        raw.landmarks,
                        raw.blendshapes,
                        raw.head_pose,
                        raw.keypoints,
                        raw.keypoint_yaw,
                        raw.keypoint_pitch,
                        raw.box,
                        raw.source,
                        raw.score,
                    )
                )
        return raws

    def _between(self, work: np.ndarray) -> list[RawFace] | None:
        """Follow the faces of the last landmark frame with the short-range detector; None
        when one of them is not found (the caller then landmarks this frame)."""
        raws = []
        for follow in self._follows:
            found = self._roi_detect(work, follow.box)
            if found is None:
                return None
            keypoints, score = found
            raws.append(moved(follow, keypoints, score, work.shape))
        kept = dedupe(raws)
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
        roi = square_crop(work, x0, y0, side, self._engine.follow_size)
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
            return self._engine.detect_square(square)
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

    def _face(self, raw: RawFace, track_id: int, rgb: np.ndarray) -> Face:
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
            keypoint_pitch=float(raw.keypoint_pitch),
        )


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


def auto_face_threads() -> int:
    """LiteRT threads per face model when the caller leaves it to us: 2 where the process
    may use two cores or more, else 1. Measured against 1 thread in alternating rounds on a
    2-core host shared with other jobs (1-min load 12-16), face + emotion alone: 2 threads
    were 1.7x faster per frame (its rounds spread more: 1.9x against 1.4x), see
    ``bench/README.md``. The pipeline sets its own count (ASR runs beside the faces there).
    The choice is logged once per process, with the cores, load and SIMD flags."""
    from .host import host_info, simd_summary

    host = host_info()
    threads = 2 if host.cores >= 2 else 1
    if _THREADS_LOGGED.get(threads) is None:
        _THREADS_LOGGED[threads] = True
        try:
            load = f"{os.getloadavg()[0]:.1f}"
        except (AttributeError, OSError):
            load = "n/a"
        log.info(
            "faces: %d LiteRT thread(s) per model (%d cores, 1-min load %s; %s)",
            threads,
            host.cores,
            load,
            simd_summary(host.flags),
        )
    return threads


_THREADS_LOGGED: dict[int, bool] = {}


def _check_options(
    engine: str,
    threads: int,
    running_mode: str,
    max_faces: int,
    crop_size: int,
    max_side: int,
    landmarks_every: int,
    face_search_every: int,
    short_range_detector_path: str | PathLike | None,
) -> None:
    """Raise :class:`FaceError` for the first option out of range (in the order listed)."""
    if engine not in ENGINES:
        raise FaceError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    _check_integer("threads", threads, 1, 64)
    if running_mode not in ("video", "image"):
        raise FaceError(f"running_mode must be 'video' or 'image', got {running_mode!r}")
    _check_range("max_faces", max_faces, 1, 16)
    _check_range("crop_size", crop_size, 16, 1024)
    if max_side < 64:
        raise FaceError(f"max_side must be at least 64, got {max_side}")
    _check_integer("landmarks_every", landmarks_every, 1, 1000)
    _check_integer("face_search_every", face_search_every, 1, 1000)
    if landmarks_every > 1 and short_range_detector_path is None and engine == "tasks":
        raise FaceError("landmarks_every > 1 needs short_range_detector_path")


def _check_integer(name: str, value, lo: int, hi: int) -> None:
    """``value`` must be an int (not a bool) in ``lo..hi``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FaceError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")


def _check_range(name: str, value, lo: int, hi: int) -> None:
    """``value`` must be in ``lo..hi``."""
    if not lo <= value <= hi:
        raise FaceError(f"{name} must be in {lo}..{hi}, got {value}")
