"""Face geometry from MediaPipe landmarks: head pose, aligned crops and a quality score.

Everything here is plain numpy/OpenCV on one face's 478 normalised landmarks (``x, y`` in
``[0, 1]`` of the image width/height, ``z`` in units of the image width) and the 4x4 facial
transformation matrix that MediaPipe's FaceLandmarker returns.

Conventions (degrees, image as the viewer sees it, camera not mirrored):

- **yaw** > 0: the nose points to the image's right, i.e. the subject turned to *their own*
  left. A horizontally flipped image gives the opposite sign.
- **pitch** > 0: the nose points up (the subject looks up).
- **roll** > 0: the face is rotated counter-clockwise in the image (the eye on the image's
  right is higher). A horizontally flipped image gives the opposite sign.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "RIGHT_EYE",
    "LEFT_EYE",
    "KEYPOINT_NAMES",
    "pose_from_matrix",
    "keypoint_yaw",
    "similarity",
    "alignment_matrix",
    "aligned_crop",
    "sharpness",
    "face_quality",
    "SIZE_REF_PX",
    "SHARPNESS_TAU",
]

# Eye-corner landmarks (outer, inner) of the subject's right eye (image left when the camera
# is not mirrored) and left eye. Corners, not irises: they stay put when the eyes close.
RIGHT_EYE = (33, 133)
LEFT_EYE = (263, 362)
_EYE_CORNERS = [*RIGHT_EYE, *LEFT_EYE]

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
"""The 6 keypoints of MediaPipe's BlazeFace detectors, in output order (the subject's right
eye is on the image's left when the camera is not mirrored; ears are the tragions)."""

# tan(yaw) per unit of each keypoint ratio of :func:`keypoint_yaw`, fitted to the
# FaceLandmarker's own yaw on rendered head turns of a real face (|yaw| <= 25 degrees; the
# residual was ~1.5 degrees for either ratio).
_TAN_PER_EAR_RATIO = 1.17
_TAN_PER_EYE_MOUTH_RATIO = 1.94
# keypoint_pitch's degrees of the face mesh's pitch per degree of atan(ratio - 0.5): fitted on
# generated nods (tests/ahgen.py, the mesh rotated up to ~15 degrees about the horizontal
# axis), landmark frames of 4 clips: correlation -0.84 to -0.995 with the mesh's pitch, least
# squares gain -2.8 to -3.4 per clip (2026-12-07)
_PITCH_GAIN = -3.0

SIZE_REF_PX = 100.0
"""Forehead-to-chin height (source pixels) from which a face counts as full size."""

SHARPNESS_TAU = 60.0
"""Scale of the variance of the Laplacian (on a 112 px crop) in the sharpness term."""

CROP_MARGIN = 1.2
"""Crop side over the larger side of the eye-levelled landmark extent (loose, FER2013-like)."""


def pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` in degrees from MediaPipe's facial transformation matrix.

    The matrix maps the canonical face (x to the subject's left, y up, z out of the face) into
    the camera frame (x right, y up, z towards the viewer); its rotation is decomposed as
    ``Ry(yaw) @ Rx(-pitch) @ Rz(roll)``. Signs are those of the module docstring.
    """
    r = np.asarray(matrix, np.float64)[:3, :3]
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, r[1, 2]))))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return yaw, pitch, roll


def keypoint_yaw(keypoints: np.ndarray) -> float:
    """Yaw (degrees, the sign of :func:`pose_from_matrix`) estimated from the 6 detector
    keypoints ``(6, 2)`` in pixels (any scale that is the same along x and y).

    Two ratios, both measured along the eye line (so they do not depend on roll): the nose
    tip's offset from the ears' midpoint over the ear-to-ear distance, and its offset from the
    midpoint of the eyes' centre and the mouth over the eye distance. Each is turned into
    degrees by ``atan(gain * ratio)`` and the two are averaged. Absolute values carry a few
    degrees of bias for a given face; *differences* between two frames of the same face are
    what :class:`~.faces.FaceAnalyzer` uses between landmark frames.
    """
    (rex, rey), (lex, ley), (nx, ny), (mx, my), (r_x, r_y), (l_x, l_y) = np.asarray(
        keypoints, np.float64
    )[:6].tolist()
    ax, ay = lex - rex, ley - rey
    eye_distance = math.hypot(ax, ay)
    if eye_distance < 1e-9:
        return 0.0
    ux, uy = ax / eye_distance, ay / eye_distance
    ear_distance = max(math.hypot(l_x - r_x, l_y - r_y), 1e-9)
    ear_ratio = ((nx - (r_x + l_x) / 2) * ux + (ny - (r_y + l_y) / 2) * uy) / ear_distance
    cx, cy = ((rex + lex) / 2 + mx) / 2, ((rey + ley) / 2 + my) / 2
    eye_mouth_ratio = ((nx - cx) * ux + (ny - cy) * uy) / eye_distance
    yaw_ear = math.atan(_TAN_PER_EAR_RATIO * ear_ratio)
    yaw_eye_mouth = math.atan(_TAN_PER_EYE_MOUTH_RATIO * eye_mouth_ratio)
    return math.degrees((yaw_ear + yaw_eye_mouth) / 2)


def keypoint_pitch(keypoints: np.ndarray) -> float:
    """Pitch (degrees, the sign of :func:`pose_from_matrix`) estimated from the 6 detector
    keypoints ``(6, 2)`` in pixels: where the nose tip lies between the eyes' centre (0) and
    the mouth (1), measured across the eye line (so roll does not move it), as
    ``atan(ratio - 0.5)`` times :data:`_PITCH_GAIN`. A nod moves the nose tip towards the
    mouth or the eyes in the image. Like :func:`keypoint_yaw`, only differences between
    frames of the same face are used (tiered mode, between landmark frames)."""
    (rex, rey), (lex, ley), (nx, ny), (mx, my) = np.asarray(keypoints, np.float64)[:4].tolist()
    ax, ay = lex - rex, ley - rey
    eye_distance = math.hypot(ax, ay)
    if eye_distance < 1e-9:
        return 0.0
    vx, vy = -ay / eye_distance, ax / eye_distance  # across the eye line, towards the mouth
    ex, ey = (rex + lex) / 2, (rey + ley) / 2
    height = (mx - ex) * vx + (my - ey) * vy
    if abs(height) < 1e-9:
        return 0.0
    ratio = ((nx - ex) * vx + (ny - ey) * vy) / height
    return _PITCH_GAIN * math.degrees(math.atan(ratio - 0.5))


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation; no reflection) that maps the
    points ``source`` ``(N, 2)`` onto ``target`` ``(N, 2)`` in the least-squares sense
    (Umeyama's closed form; ``N >= 2``)."""
    src = np.asarray(source, np.float64).tolist()
    dst = np.asarray(target, np.float64).tolist()
    n = len(src)
    sx, sy = sum(p[0] for p in src) / n, sum(p[1] for p in src) / n
    dx, dy = sum(p[0] for p in dst) / n, sum(p[1] for p in dst) / n
    var = dot = cross = 0.0
    for (x0, y0), (x1, y1) in zip(src, dst, strict=True):
        ax, ay, bx, by = x0 - sx, y0 - sy, x1 - dx, y1 - dy
        var += ax * ax + ay * ay
        dot += ax * bx + ay * by
        cross += ax * by - ay * bx
    if var < 1e-12:
        return np.array([[1.0, 0.0, dx - sx], [0.0, 1.0, dy - sy]])
    # for 2-D points the optimal rotation*scale is [[p, -q], [q, p]]
    p, q = dot / var, cross / var
    return np.array([[p, -q, dx - (p * sx - q * sy)], [q, p, dy - (q * sx + p * sy)]])


def alignment_matrix(
    landmarks: np.ndarray, width: int, height: int, size: int, margin: float = CROP_MARGIN
) -> tuple[np.ndarray, float]:
    """The 2x3 affine map from image pixels to an eye-levelled ``size`` x ``size`` crop.

    The face is rotated about its centre so that the line from the subject's right eye to
    their left eye is horizontal (which also turns an upside-down face upright), then scaled so
    that ``margin`` times the larger side of the rotated landmark extent (forehead to chin,
    ear to ear) fills the crop, and centred on that extent. Returns the matrix and the
    extent's height in source pixels (the face size used by :func:`face_quality`).
    """
    (r0x, r0y), (r1x, r1y), (l0x, l0y), (l1x, l1y) = (
        landmarks[_EYE_CORNERS, :2].astype(np.float64) * (width, height)
    ).tolist()
    angle = math.atan2((l0y + l1y) / 2 - (r0y + r1y) / 2, (l0x + l1x) / 2 - (r0x + r1x) / 2)
    c, s = math.cos(angle), math.sin(angle)
    # the landmarks in pixels, rotated by -angle (the eye line becomes horizontal), as two
    # rows: reducing a row is much faster than reducing an (N, 2) array along its first axis
    # (bench/README.md, "Measured by hand")
    levelled = np.array([[c * width, s * height], [-s * width, c * height]]) @ landmarks[
        :, :2
    ].T.astype(np.float64)
    (lox, loy), (hix, hiy) = levelled.min(1).tolist(), levelled.max(1).tolist()
    side = max(max(hix - lox, hiy - loy) * margin, 1.0)
    mx, my = (lox + hix) / 2, (loy + hiy) / 2
    centre_x, centre_y = c * mx - s * my, s * mx + c * my  # back in source pixels
    k = size / side
    a, b = k * c, k * s  # the linear part: k * [[c, s], [-s, c]]
    matrix = np.array(
        [
            [a, b, size / 2 - (a * centre_x + b * centre_y)],
            [-b, a, size / 2 - (-b * centre_x + a * centre_y)],
        ]
    )
    return matrix, float(hiy - loy)


def aligned_crop(
    image: np.ndarray, landmarks: np.ndarray, size: int = 112, margin: float = CROP_MARGIN
) -> tuple[np.ndarray, np.ndarray, float]:
    """Eye-levelled, centred ``size`` x ``size`` x 3 uint8 crop of the face in ``image``.

    ``landmarks`` are normalised to ``image``. Large faces are first reduced with area
    averaging (no aliasing, so the sharpness measure means the same at every resolution).
    Returns the crop, the 2x3 image-to-crop matrix and the face height in source pixels.
    """
    h, w = image.shape[:2]
    matrix, face_px = alignment_matrix(landmarks, w, h, size, margin)
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    source = image
    if scale < 0.5:  # reduce the face's neighbourhood first, then warp at ~1:1
        inv = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
        src = corners @ inv.T
        x0, y0 = np.floor(src.min(0)).astype(int) - 2
        x1, y1 = np.ceil(src.max(0)).astype(int) + 2
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = image[y0:y1, x0:x1]
            nw = max(1, round((x1 - x0) * scale))
            nh = max(1, round((y1 - y0) * scale))
            source = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / (x1 - x0), nh / (y1 - y0)
            # source pixel p = roi pixel q / f + origin: compose with the image-to-crop map
            linear = matrix[:, :2] / (fx, fy)
            offset = matrix[:, :2] @ (x0, y0) + matrix[:, 2]
            matrix_src = np.hstack([linear, offset[:, None]])
        else:
            matrix_src = matrix
    else:
        matrix_src = matrix
    crop = cv2.warpAffine(
        np.ascontiguousarray(source),
        matrix_src,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, matrix, face_px


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the crop's central half (eyes, nose, mouth), measured
    on a 112 px grey version so that values do not depend on the crop size."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    if gray.shape[0] != 112:
        gray = cv2.resize(gray, (112, 112), interpolation=cv2.INTER_AREA)
    centre = gray[28:84, 28:84]
    _, std = cv2.meanStdDev(cv2.Laplacian(centre, cv2.CV_64F))
    return float(std[0, 0]) ** 2


def face_quality(face_px: float, crop: np.ndarray, yaw: float, pitch: float) -> float:
    """Quality in ``[0, 1]``: ``size * sharp * pose`` where

    - ``size = min(1, face_px / SIZE_REF_PX)``, ``face_px`` the forehead-to-chin height in
      source pixels;
    - ``sharp = 1 - exp(-var(Laplacian(crop)) / SHARPNESS_TAU)`` (see :func:`sharpness`);
    - ``pose = max(0, cos(yaw)) * max(0, cos(pitch))``.
    """
    size = min(1.0, max(0.0, face_px / SIZE_REF_PX))
    sharp = 1.0 - math.exp(-sharpness(crop) / SHARPNESS_TAU)
    pose = max(0.0, math.cos(math.radians(yaw))) * max(0.0, math.cos(math.radians(pitch)))
    return float(min(1.0, max(0.0, size * sharp * pose)))
