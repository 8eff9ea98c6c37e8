"""Tiered mode's geometry: a face followed between landmark frames (its last landmark frame
and latest box), its landmarks moved onto the detector keypoints found now, and
:func:`interpolate_landmark_gaps`, the offline pass that replaces the values carried between
landmark frames by interpolated ones. The analyzer (:mod:`.faces`) decides when each runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .face_align import keypoint_pitch, keypoint_yaw, similarity
from .face_engine import Face, FaceError, RawFace

__all__ = ["Follow", "interpolate_landmark_gaps", "keypoint_pose_at", "moved"]

_SIMILARITY_POINTS = [0, 1, 3]  # keypoints the landmarks are moved by: eyes and mouth


@dataclass
class Follow:
    """A face followed between landmark frames: its last landmark frame and latest box."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    pose: tuple[float, float, float]
    keypoints: np.ndarray  # (6, 2) normalised, at the landmark frame
    keypoint_yaw: float
    keypoint_pitch: float
    box: tuple[float, float, float, float]
    source: str
    score: float


def interpolate_landmark_gaps(
    frames: Sequence[Sequence[Face]], times: Sequence[float] | None = None
) -> list[list[Face]]:
    """Offline counterpart of tiered mode: the faces of a whole clip (``frames[i]`` is what
    :meth:`.faces.FaceAnalyzer.process` returned for frame ``i``, shown at ``times[i]``; frame
    indices when ``times`` is None) with the values carried between landmark frames replaced
    by interpolated ones.

    For each track, every face with ``landmarks_fresh=False`` that lies between two fresh
    faces A and B of the same track (weight ``w`` by time from A to B) gets
    ``blendshapes = (1 - w) A + w B``; its yaw keeps the change measured from the keypoints
    and adds ``w`` times what the keypoints missed from A to B
    (``(yaw_B - yaw_A) - (keypoint_yaw_B - keypoint_yaw_A)``), so it meets B's landmarker yaw
    without losing the motion in between, and pitch likewise (so a nod between two landmark
    frames is kept); plain linear interpolation when keypoints are missing. Roll, landmarks,
    box, crop and quality are kept. Faces after a track's last fresh face keep their carried
    values. The input is not modified.
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
            for i, j in seq[a + 1 : b]:
                face = frames[i][j]
                w = float(np.clip((t[i] - t[ia]) / span, 0.0, 1.0)) if span > 0 else 0.0
                blend = ((1 - w) * first.blendshapes + w * last.blendshapes).astype(np.float32)
                yaw = _anchored(first, last, face, w, 0, "keypoint_yaw")
                pitch = _anchored(first, last, face, w, 1, "keypoint_pitch")
                out[i][j] = replace(
                    face, blendshapes=blend, pose=(float(yaw), float(pitch), face.pose[2])
                )
    return out


def _anchored(first: Face, last: Face, face: Face, w: float, axis: int, key: str) -> float:
    """Pose angle ``axis`` of ``face`` (between landmark frames ``first`` and ``last``, at
    weight ``w``): its keypoint-measured value plus ``w`` times what the keypoints missed
    from ``first`` to ``last`` (attribute ``key``); linear when keypoints are missing."""
    ka, kb, kf = getattr(first, key), getattr(last, key), getattr(face, key)
    if math.isfinite(ka) and math.isfinite(kb) and math.isfinite(kf):
        missed = (last.pose[axis] - first.pose[axis]) - (kb - ka)
        return face.pose[axis] + w * missed
    return (1 - w) * first.pose[axis] + w * last.pose[axis]


def keypoint_pose_at(keypoints: np.ndarray, shape) -> tuple[float, float]:
    """:func:`.face_align.keypoint_yaw` and :func:`.face_align.keypoint_pitch` of keypoints
    normalised to a frame of ``shape``."""
    pixels = keypoints * (shape[1], shape[0])
    return keypoint_yaw(pixels), keypoint_pitch(pixels)


def moved(follow: Follow, keypoints: np.ndarray, score: float, shape) -> RawFace:
    """The followed face's landmark-frame landmarks moved by the similarity that takes its
    keypoints then (eyes, mouth) to ``keypoints`` now; yaw, pitch and roll updated from
    them."""
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
    now, now_pitch = keypoint_pose_at(keypoints, shape)
    yaw, pitch, roll = follow.pose
    yaw = yaw + now - follow.keypoint_yaw
    pitch = pitch + now_pitch - follow.keypoint_pitch
    roll = roll - math.degrees(math.atan2(m[1, 0], m[0, 0]))  # image y points down
    return RawFace(
        landmarks,
        follow.blendshapes,
        None,
        score,
        "detector",
        pose=(float(yaw), float(pitch), float(roll)),
        fresh=False,
        keypoints=keypoints,
        keypoint_yaw=now,
        keypoint_pitch=now_pitch,
        followed=(follow.source, follow.score),
    )
