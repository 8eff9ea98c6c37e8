"""MediaPipe's face models run directly on LiteRT: detector, face mesh, blendshapes, head pose.

The MediaPipe Tasks graphs (:mod:`.faces`' ``engine="tasks"``) wrap three small TFLite models
with image conversion, scheduling and smoothing, which on a small CPU cost more than the models
themselves (``bench/README.md``, "Measured by hand"). This module runs the same models (from
the same pinned ``face_landmarker.task`` bundle and detector files) with LiteRT's interpreter
and does the geometry in NumPy/OpenCV:

- :class:`FaceDetectorModel`: BlazeFace (short range, 128 px input; full range, 192 px) with
  SSD anchors, sigmoid scores and weighted non-maximum suppression; boxes and the 6 keypoints
  (:data:`.face_align.KEYPOINT_NAMES`). The short-range model also runs at
  :data:`FOLLOW_INPUT` px on squares cut around a face being followed.
- :class:`Roi` and :class:`FaceMeshModel`: the 478-point face mesh on a square, eye-levelled
  region of interest (1.5 times the face, as MediaPipe's graph makes it from a detection or
  from the previous frame's landmarks), with the model's face-presence score.
- :class:`BlendshapeModel`: the 52 blendshape scores from 146 of those landmarks.
- :class:`HeadPose`: the head's rotation as a weighted orthogonal Procrustes fit of the
  canonical face mesh (from the bundle's geometry metadata) to the landmarks.

These are re-implementations from MediaPipe's published graph parameters (anchor layout,
1.5x region, tensor ranges, the blendshape landmark subset), not MediaPipe's own code: the
crop is resampled by OpenCV, not MediaPipe's image-to-tensor step, and no temporal smoothing
is applied, so values differ slightly from the Tasks API (``tests/test_face_models.py`` bounds
the differences; ``bench/README.md`` has them). Pose comes from an orthographic fit, not
MediaPipe's perspective geometry pipeline.
"""

from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from .errors import Internal

__all__ = [
    "BLENDSHAPE_LANDMARKS",
    "FaceModelError",
    "Detection",
    "Roi",
    "FaceDetectorModel",
    "FaceMeshModel",
    "BlendshapeModel",
    "HeadPose",
    "LandmarkerBundle",
    "FOLLOW_INPUT",
    "square_crop",
]

BLENDSHAPE_LANDMARKS: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63,
    65, 66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133,
    136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163,
    168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270,
    276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317,
    318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379,
    380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454,
    466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)  # fmt: skip
"""The 146 landmarks the blendshape model reads, in its input order (MediaPipe's published
face-blendshapes graph)."""

_ROI_SCALE = 1.5  # region side / face box side (MediaPipe's face landmarker graph)
_MESH_EYES = [33, 263]  # outer eye corners: the region's rotation from landmarks
_NMS_IOU = 0.3
_SCORE_CLIP = 100.0

FOLLOW_INPUT = 80
"""Input side the short-range detector runs at while it follows a face in a square cut
around it (tiered mode; its native input is 128). The model is fully convolutional, so it
runs at 80 px with its anchor grid scaled (350 anchors instead of 896, a cheaper call), and
the face fills the same share of the square either way. 80 is the smallest size tried at which
the moved landmarks and tracked shifts were as close to the face mesh as at 128 and emotions
read the same; at 64 the errors grew. Figures: ``bench/README.md``, "Latest: the face followed
by the detector at 80 px"."""

# SSD anchor layouts of the two BlazeFace models: (input side, strides, anchors per cell)
_DETECTORS = {
    128: ((8, 16), (2, 6)),  # short range: strides 8 and 3 x 16 merged, 2 anchors per layer
    192: ((4,), (1,)),  # full range: one layer of stride 4, one anchor per cell
}


class FaceModelError(Internal):
    """A face model could not be loaded or run."""


@dataclass(frozen=True)
class Detection:
    """A detected face: ``box`` ``(x0, y0, x1, y1)`` and ``keypoints`` ``(6, 2)`` normalised
    to the image, detector ``score`` in 0..1."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float


@dataclass(frozen=True)
class Roi:
    """A square region of an image in pixels: centre, side, and ``angle`` (radians) of its x
    axis in image coordinates (y down); 0 is upright."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    @classmethod
    def from_detection(cls, detection: Detection, width: int, height: int) -> Roi:
        """The landmark region for a detection: its box 1.5 times, the longer side, turned so
        that the eye keypoints are level."""
        x0, y0, x1, y1 = detection.box
        k = detection.keypoints * (width, height)
        angle = math.atan2(k[1, 1] - k[0, 1], k[1, 0] - k[0, 0])
        side = _ROI_SCALE * max((x1 - x0) * width, (y1 - y0) * height)
        return cls((x0 + x1) / 2 * width, (y0 + y1) / 2 * height, max(side, 4.0), angle)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray, width: int, height: int) -> Roi:
        """The region that follows a face from its landmarks (normalised): their extent 1.5
        times, the longer side, turned so that the outer eye corners are level."""
        xs, ys = landmarks[:, 0], landmarks[:, 1]
        x0, x1 = float(xs.min()) * width, float(xs.max()) * width
        y0, y1 = float(ys.min()) * height, float(ys.max()) * height
        (ax, ay), (bx, by) = (landmarks[_MESH_EYES, :2] * (width, height)).tolist()
        angle = math.atan2(by - ay, bx - ax)
        side = _ROI_SCALE * max(x1 - x0, y1 - y0)
        return cls((x0 + x1) / 2, (y0 + y1) / 2, max(side, 4.0), angle)

    def to_image(self, size: int) -> np.ndarray:
        """2x3 affine from ``size`` x ``size`` crop pixels to image pixels."""
        k = self.side / size
        c, s = math.cos(self.angle) * k, math.sin(self.angle) * k
        h = size / 2
        return np.array(
            [[c, -s, self.cx - c * h + s * h], [s, c, self.cy - s * h - c * h]], np.float64
        )

    def crop(self, image: np.ndarray, size: int) -> np.ndarray:
        """The region resampled to ``size`` x ``size`` (edge pixels repeated outside)."""
        return cv2.warpAffine(
            image,
            self.to_image(size),
            (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )


def square_crop(image: np.ndarray, x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """The axis-aligned ``side`` x ``side`` square at ``(x0, y0)`` of ``image`` as ``size`` x
    ``size`` (black outside the image; large squares are reduced with area averaging first,
    so that the result is not aliased)."""
    h, w = image.shape[:2]
    k = size / side
    if k < 0.5:
        xa, ya = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
        xb, yb = min(w, int(math.ceil(x0 + side))), min(h, int(math.ceil(y0 + side)))
        if xb - xa >= 2 and yb - ya >= 2:
            # halve with area averaging (OpenCV's exact 2:1 path, much faster than one area
            # resize by an odd ratio: bench/README.md) until at most 2:1 is left for the warp
            source, f = image[ya:yb, xa:xb], 1.0
            while k / f < 0.5 and min(source.shape[:2]) >= 4:
                hh, ww = source.shape[0] // 2, source.shape[1] // 2
                source = cv2.resize(
                    source[: 2 * hh, : 2 * ww], (ww, hh), interpolation=cv2.INTER_AREA
                )
                f *= 0.5
            # reduced pixel u' = f (u - xa) + (f - 1) / 2 (pixel centres at integers)
            r = k / f
            ox, oy = (xa - x0) * k + r * (1 - f) / 2, (ya - y0) * k + r * (1 - f) / 2
            matrix = np.array([[r, 0, ox], [0, r, oy]])
            return cv2.warpAffine(
                np.ascontiguousarray(source),
                matrix,
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
            )
    matrix = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]])
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


class _Model:
    """One TFLite model on LiteRT's interpreter (XNNPACK on the CPU)."""

    def __init__(self, content: bytes, what: str, num_threads: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise FaceModelError(f"LiteRT is not installed ({exc}); reinstall ahmer") from exc
        try:
            self._it = Interpreter(model_content=content, num_threads=max(1, int(num_threads)))
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise FaceModelError(f"cannot load the {what} model: {exc}") from exc
        self.what = what
        self._input = self._it.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._it.get_output_details()]
        self._read_shapes()

    def _read_shapes(self) -> None:
        self.input_shape = tuple(int(d) for d in self._it.get_input_details()[0]["shape"])
        self.output_shapes = [
            tuple(int(d) for d in o["shape"]) for o in self._it.get_output_details()
        ]

    def resize_input(self, shape: tuple[int, ...]) -> None:
        """Give the input another shape (a fully convolutional model then runs at another
        resolution; its outputs follow)."""
        try:
            self._it.resize_tensor_input(self._input, list(shape))
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise FaceModelError(f"the {self.what} model cannot take input {shape}: {exc}") from exc
        self._read_shapes()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            self._it.set_tensor(self._input, x.reshape(self.input_shape))
            self._it.invoke()
            return [self._it.get_tensor(i) for i in self._outputs]
        except (ValueError, RuntimeError) as exc:
            raise FaceModelError(f"the {self.what} model failed: {exc}") from exc

    def scaled(self, image: np.ndarray, scale: float, offset: float) -> list[np.ndarray]:
        """Run on ``image * scale + offset`` (uint8 in, float32 arithmetic), written straight
        into the interpreter's input tensor: no temporary arrays, no extra copy. The same
        values as ``self(image.astype(np.float32) * scale + offset)``."""
        try:
            view = self._it.tensor(self._input)()
            if view.shape[1:] != image.shape:
                raise ValueError(f"input {image.shape} for tensor {view.shape}")
            view[0] = image
            view *= np.float32(scale)
            if offset:
                view += np.float32(offset)
            del view  # the interpreter refuses to run while a view of its memory is held
            self._it.invoke()
            return [self._it.get_tensor(i) for i in self._outputs]
        except (ValueError, RuntimeError) as exc:
            raise FaceModelError(f"the {self.what} model failed: {exc}") from exc


def _anchors(size: int, layout: int | None = None) -> np.ndarray:
    """Anchor centres of a BlazeFace model with a ``size`` px input, laid out as the native
    model of input side ``layout`` (``size`` itself by default)."""
    strides, per_cell = _DETECTORS[layout or size]
    out = []
    for stride, n in zip(strides, per_cell, strict=True):
        cells = math.ceil(size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, n, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


class FaceDetectorModel:
    """A BlazeFace face detector (``.tflite``; short range 128 px or full range 192 px).

    :meth:`detect` finds faces in a whole image (letterboxed into the model's square input);
    :meth:`detect_square` in a square already cut to the input size (e.g. around a face
    being followed). ``input_size`` runs the model at another input side (it is fully
    convolutional; the anchor grid follows), e.g. :data:`FOLLOW_INPUT`; :attr:`size` is the
    side it runs at. :meth:`at_size` loads another copy of the same model at another side.
    """

    def __init__(
        self,
        content: bytes,
        min_score: float = 0.5,
        num_threads: int = 2,
        what: str = "",
        input_size: int | None = None,
    ) -> None:
        if input_size is not None and (
            isinstance(input_size, bool)
            or not isinstance(input_size, int)
            or not 32 <= input_size <= 1024
            or input_size % 16
        ):
            raise FaceModelError(
                f"detector input_size must be a multiple of 16 in 32..1024, got {input_size!r}"
            )
        self._model = _Model(content, what or "face detector", num_threads)
        self._loaded_from = (content, min_score, num_threads, what)
        shape = self._model.input_shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[1] not in _DETECTORS:
            raise FaceModelError(f"not a BlazeFace face detector: input shape {shape}")
        layout = shape[1]
        if input_size is not None and input_size != layout:
            self._model.resize_input((1, input_size, input_size, shape[3]))
        self.size = self._model.input_shape[1]
        self._anchors = _anchors(self.size, layout)
        if self._model.output_shapes[0][1] != len(self._anchors):
            raise FaceModelError(
                f"not a BlazeFace face detector: {self._model.output_shapes[0][1]} boxes, "
                f"expected {len(self._anchors)}"
            )
        self.min_score = float(min_score)

    def at_size(self, input_size: int) -> FaceDetectorModel:
        """The same model, score threshold and threads, loaded anew to run at
        ``input_size`` px."""
        content, min_score, num_threads, what = self._loaded_from
        return FaceDetectorModel(content, min_score, num_threads, what, input_size)

    def detect_square(self, square: np.ndarray) -> list[Detection]:
        """Faces in an RGB ``size`` x ``size`` uint8 square, coordinates normalised to it,
        best first."""
        regressors, scores = self._model.scaled(square, 2.0 / 255.0, -1.0)
        logits = np.clip(scores.reshape(-1), -_SCORE_CLIP, _SCORE_CLIP)
        keep = np.nonzero(logits >= math.log(self.min_score / (1.0 - self.min_score)))[0]
        if keep.size == 0:
            return []
        r = regressors.reshape(-1, 16)[keep] / self.size
        anchors = self._anchors[keep]
        centre = anchors + r[:, :2]
        half = r[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], 1)
        keypoints = anchors[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
        probs = 1.0 / (1.0 + np.exp(-logits[keep]))
        return _weighted_nms(boxes, keypoints, probs)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a whole RGB uint8 image, normalised to it, best first."""
        h, w = image.shape[:2]
        side = float(max(h, w))
        x0, y0 = (w - side) / 2, (h - side) / 2
        found = self.detect_square(square_crop(image, x0, y0, side, self.size))
        return [_rescale(d, x0, y0, side, w, h) for d in found]


def _rescale(d: Detection, x0: float, y0: float, side: float, w: int, h: int) -> Detection:
    """A detection normalised to a square at ``(x0, y0)`` of ``side`` pixels, normalised to
    the ``w`` x ``h`` image instead."""
    scale = np.array([side / w, side / h])
    offset = np.array([x0 / w, y0 / h])
    box = np.array(d.box).reshape(2, 2) * scale + offset
    keypoints = (d.keypoints * scale + offset).astype(np.float32)
    return Detection(tuple(float(v) for v in box.reshape(-1)), keypoints, d.score)


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray):
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the
    best remaining one by more than 0.3 IoU becomes one detection, the score-weighted mean
    of their boxes and keypoints, with the best score."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    points = keypoints[order].reshape(len(order), -1)
    x0, y0, x1, y1 = boxes.T  # rows: fast to compute with
    areas = (x1 - x0) * (y1 - y0)
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        w = np.clip(np.minimum(x1[i], x1) - np.maximum(x0[i], x0), 0, None)
        h = np.clip(np.minimum(y1[i], y1) - np.maximum(y0[i], y0), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas - inter, 1e-12)
        cluster = alive & (iou > _NMS_IOU)
        cluster[i] = True
        alive &= ~cluster
        weights = scores[cluster]
        total = float(weights.sum())
        box = (weights @ boxes[cluster]) / total
        mean_points = ((weights @ points[cluster]) / total).reshape(-1, 2)
        out.append(Detection(tuple(box.tolist()), mean_points.astype(np.float32), float(scores[i])))
    return out


class FaceMeshModel:
    """MediaPipe's 478-point face mesh (with irises) on a :class:`Roi`."""

    def __init__(self, content: bytes, num_threads: int = 2) -> None:
        self._model = _Model(content, "face mesh", num_threads)
        shape = self._model.input_shape
        if len(shape) != 4 or shape[1] != shape[2]:
            raise FaceModelError(f"not a face mesh model: input shape {shape}")
        self.size = shape[1]
        sizes = [math.prod(s) for s in self._model.output_shapes]
        if 478 * 3 not in sizes:
            raise FaceModelError(f"not a 478-point face mesh model: outputs {sizes}")
        self._points = sizes.index(478 * 3)
        self._presence = [i for i, n in enumerate(sizes) if n == 1][0]

    def landmarks(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """``(landmarks, presence)``: ``(478, 3)`` float32 ``x, y`` normalised to ``image``,
        ``z`` in units of the image width (smaller is nearer), and the model's 0..1 score
        that the region holds a face."""
        crop = roi.crop(image, self.size)
        outputs = self._model.scaled(crop, 1.0 / 255.0, 0.0)
        points = outputs[self._points].reshape(478, 3).astype(np.float64)
        logit = float(outputs[self._presence].reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-min(80.0, max(-80.0, logit))))
        m = roi.to_image(self.size)
        h, w = image.shape[:2]
        out = np.empty((478, 3), np.float32)
        xy = points[:, :2] @ m[:, :2].T + m[:, 2]
        out[:, 0] = xy[:, 0] / w
        out[:, 1] = xy[:, 1] / h
        out[:, 2] = points[:, 2] * (roi.side / self.size) / w
        return out, presence


class BlendshapeModel:
    """MediaPipe's blendshape model: 52 scores from 146 landmarks in image pixels."""

    def __init__(self, content: bytes, num_threads: int = 1) -> None:
        self._model = _Model(content, "face blendshapes", num_threads)
        if self._model.input_shape[-2:] != (len(BLENDSHAPE_LANDMARKS), 2):
            raise FaceModelError(f"not a blendshape model: input {self._model.input_shape}")

    def __call__(self, landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
        points = landmarks[list(BLENDSHAPE_LANDMARKS), :2] * (width, height)
        return self._model(points.astype(np.float32))[0].reshape(-1).astype(np.float32)


class HeadPose:
    """Head rotation from landmarks: the canonical face mesh (468 vertices; x to the
    subject's left, y up, z out of the face) fitted by weighted orthogonal Procrustes to the
    landmarks seen orthographically (pixels, y up, z towards the camera), with the weights of
    MediaPipe's geometry metadata. :meth:`matrix` returns a 4x4 whose rotation follows the
    conventions of :func:`.face_align.pose_from_matrix`."""

    def __init__(self, canonical: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> None:
        self._ids = ids
        w = weights / weights.sum()
        c = canonical[ids]
        # the weighted, centred canonical points, times the weights: the cross-covariance
        # with the landmarks is then one product (centring the landmarks too changes nothing,
        # since these sum to zero)
        self._wc = w[:, None] * (c - w @ c)

    def matrix(self, landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
        p = landmarks[self._ids].astype(np.float64) * (width, -height, -width)
        u, s, vt = np.linalg.svd(p.T @ self._wc)
        d = np.sign(np.linalg.det(u @ vt)) or 1.0
        r = u @ np.diag([1.0, 1.0, d]) @ vt
        out = np.eye(4)
        out[:3, :3] = r
        return out


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(data: bytes):
    """``(field number, wire type, value)`` of a protobuf message (varint, fixed32, bytes)."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 2:
            n, i = _read_varint(data, i)
            value, i = data[i : i + n], i + n
        else:
            raise FaceModelError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _floats(wire: int, value) -> list[float]:
    if wire == 5:
        return [struct.unpack("<f", value)[0]]
    return list(struct.unpack(f"<{len(value) // 4}f", value))  # packed


def parse_geometry(data: bytes) -> HeadPose:
    """:class:`HeadPose` from MediaPipe's ``geometry_pipeline_metadata_landmarks.binarypb``:
    the canonical mesh (field 1: a mesh whose field 3 is the vertex buffer, 5 floats per
    vertex: x, y, z, u, v) and the Procrustes landmark basis (field 2: landmark id, weight)."""
    try:
        return _parse_geometry(data)
    except (IndexError, struct.error) as exc:
        raise FaceModelError(f"the face geometry metadata is unreadable: {exc}") from exc


def _parse_geometry(data: bytes) -> HeadPose:
    vertices: list[float] = []
    ids, weights = [], []
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            for n, w, v in _fields(value):
                if n == 3:
                    vertices.extend(_floats(w, v))
        elif number == 2 and wire == 2:
            landmark, weight = 0, 0.0
            for n, w, v in _fields(value):
                if n == 1 and w == 0:
                    landmark = v
                elif n == 2 and w == 5:
                    weight = struct.unpack("<f", v)[0]
            ids.append(landmark)
            weights.append(weight)
    if len(vertices) % 5 or len(vertices) // 5 < 468 or not ids:
        raise FaceModelError("the face geometry metadata is not in the expected format")
    mesh = np.array(vertices, np.float64).reshape(-1, 5)[:, :3]
    keep = np.array(weights) > 0
    return HeadPose(mesh, np.array(ids)[keep], np.array(weights, np.float64)[keep])


@dataclass
class LandmarkerBundle:
    """The models of a ``face_landmarker.task`` bundle, loaded for LiteRT."""

    detector: FaceDetectorModel
    mesh: FaceMeshModel
    blendshapes: BlendshapeModel
    pose: HeadPose

    @classmethod
    def load(
        cls, path: str | PathLike, num_threads: int = 2, min_score: float = 0.5
    ) -> LandmarkerBundle:
        p = Path(path)
        if not p.is_file():
            raise FaceModelError(f"face landmarker model file not found: {p}")
        try:
            with zipfile.ZipFile(p) as z:
                members = {
                    name: z.read(name)
                    for name in (
                        "face_detector.tflite",
                        "face_landmarks_detector.tflite",
                        "face_blendshapes.tflite",
                        "geometry_pipeline_metadata_landmarks.binarypb",
                    )
                }
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise FaceModelError(f"not a face landmarker bundle: {p} ({exc})") from exc
        return cls(
            FaceDetectorModel(
                members["face_detector.tflite"], min_score, num_threads, "face detector"
            ),
            FaceMeshModel(members["face_landmarks_detector.tflite"], num_threads),
            BlendshapeModel(members["face_blendshapes.tflite"], num_threads),
            parse_geometry(members["geometry_pipeline_metadata_landmarks.binarypb"]),
        )


def load_detector(
    path: str | PathLike,
    what: str,
    num_threads: int = 2,
    min_score=0.5,
    input_size: int | None = None,
):
    """A :class:`FaceDetectorModel` from a ``.tflite`` file (see its ``input_size``)."""
    p = Path(path)
    if not p.is_file():
        raise FaceModelError(f"{what} model file not found: {p}")
    return FaceDetectorModel(p.read_bytes(), min_score, num_threads, what, input_size)
