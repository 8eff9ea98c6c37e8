"""MediaPipe's face models on LiteRT (the default face engine) against MediaPipe Tasks itself,
on real face images made at test time."""

from __future__ import annotations

import math
import zipfile

import cv2
import numpy as np
import pytest
from media import canvas, face_photo, portrait

from ahmer.preprocessing.face_align import pose_from_matrix
from ahmer.preprocessing.face_models import (
    BLENDSHAPE_LANDMARKS,
    FOLLOW_INPUT,
    FaceDetectorModel,
    FaceModelError,
    LandmarkerBundle,
    Roi,
    load_detector,
    parse_geometry,
    square_crop,
)
from ahmer.preprocessing.faces import BLENDSHAPE_NAMES, FaceAnalyzer

HEAD = (slice(10, 330), slice(60, 380))


@pytest.fixture(scope="module")
def bundle(model_path) -> LandmarkerBundle:
    return LandmarkerBundle.load(model_path("face_landmarker"))


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    photo = face_photo()
    head = np.ascontiguousarray(photo[HEAD])
    frame = canvas(head, size=(640, 360), face_height=1.0)
    side = canvas(head, size=(640, 360), face_height=1.5, centre_x=0.3)
    rolled = cv2.warpAffine(
        frame,
        cv2.getRotationMatrix2D((320, 180), 20, 1.0),
        (640, 360),
        borderMode=cv2.BORDER_REPLICATE,
    )
    return {
        "photo": photo,
        "portrait": portrait(),
        "frame": frame,
        "side": side,
        "mirrored": np.ascontiguousarray(side[:, ::-1]),
        "rolled": rolled,
    }


def _tasks(model_path):
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    landmarker = vision.FaceLandmarker.create_from_options(
        vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("face_landmarker"))),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
    )
    detector = vision.FaceDetector.create_from_options(
        vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("face_detector_short_range")))
        )
    )
    return landmarker, detector


@pytest.fixture(scope="module")
def reference(model_path, images) -> dict:
    """What MediaPipe Tasks says about each image: detection, landmarks, blendshapes, pose."""
    from mediapipe import Image, ImageFormat

    landmarker, detector = _tasks(model_path)
    out = {}
    try:
        for name, image in images.items():
            h, w = image.shape[:2]
            mp_image = Image(ImageFormat.SRGB, np.ascontiguousarray(image))
            found = landmarker.detect(mp_image)
            d = detector.detect(mp_image).detections[0]
            b = d.bounding_box
            out[name] = {
                "box": np.array(
                    [b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height]
                )
                / (w, h, w, h),
                "keypoints": np.array([(k.x, k.y) for k in d.keypoints]),
                "score": d.categories[0].score,
                "landmarks": np.array([(p.x, p.y, p.z) for p in found.face_landmarks[0]]),
                "blendshapes": np.array([c.score for c in found.face_blendshapes[0]]),
                "pose": pose_from_matrix(np.array(found.facial_transformation_matrixes[0])),
            }
    finally:
        landmarker.close()
        detector.close()
    return out


def test_detector_matches_mediapipe(bundle, images, reference):
    for name, image in images.items():
        h, w = image.shape[:2]
        found = bundle.detector.detect(image)
        ref = reference[name]
        assert len(found) == 1, name
        d = found[0]
        assert abs(d.score - ref["score"]) < 0.02, name
        assert np.abs((np.array(d.box) - ref["box"]) * (w, h, w, h)).max() < 6, name
        assert np.abs((d.keypoints - ref["keypoints"]) * (w, h)).max() < 6, name


def test_face_mesh_matches_the_tasks_landmarker(bundle, images, reference):
    for name, image in images.items():
        h, w = image.shape[:2]
        roi = Roi.from_detection(bundle.detector.detect(image)[0], w, h)
        landmarks, presence = bundle.mesh.landmarks(image, roi)
        ref = reference[name]["landmarks"]
        assert landmarks.shape == (478, 3) and landmarks.dtype == np.float32
        assert presence > 0.99, name
        error = np.abs((landmarks[:, :2] - ref[:, :2]) * (w, h))
        assert error.mean() < 0.5 and error.max() < 3, (name, error.mean(), error.max())
        assert np.corrcoef(landmarks[:, 2], ref[:, 2])[0, 1] > 0.99, name
        assert 0.9 < landmarks[:, 2].std() / ref[:, 2].std() < 1.1, name
        # followed from its own landmarks, as in video, it stays on the face
        again, presence = bundle.mesh.landmarks(image, Roi.from_landmarks(landmarks, w, h))
        assert presence > 0.99
        assert np.abs((again[:, :2] - ref[:, :2]) * (w, h)).mean() < 1.0, name


def test_blendshapes_match_the_tasks_landmarker(bundle, images, reference):
    for name, image in images.items():
        h, w = image.shape[:2]
        ref = reference[name]
        # the same model on MediaPipe's own landmarks gives MediaPipe's scores
        same = bundle.blendshapes(ref["landmarks"].astype(np.float32), w, h)
        assert same.shape == (52,) and np.abs(same - ref["blendshapes"]).max() < 1e-4, name
        roi = Roi.from_detection(bundle.detector.detect(image)[0], w, h)
        ours = bundle.blendshapes(bundle.mesh.landmarks(image, roi)[0], w, h)
        assert np.abs(ours - ref["blendshapes"]).mean() < 0.02, name
        assert np.abs(ours - ref["blendshapes"]).max() < 0.1, name
    assert len(BLENDSHAPE_LANDMARKS) == len(set(BLENDSHAPE_LANDMARKS)) == 146


def test_head_pose_is_close_to_mediapipe(bundle, images, reference):
    """An orthographic fit: roll agrees; yaw and pitch within a few degrees (MediaPipe's
    perspective camera adds yaw for faces off the image centre and some pitch)."""
    poses = {}
    for name, image in images.items():
        h, w = image.shape[:2]
        landmarks = reference[name]["landmarks"].astype(np.float32)
        poses[name] = pose_from_matrix(bundle.pose.matrix(landmarks, w, h))
        yaw, pitch, roll = poses[name]
        ref = reference[name]["pose"]
        assert abs(roll - ref[2]) < 3, (name, poses[name], ref)
        assert abs(yaw - ref[0]) < 7, (name, poses[name], ref)
        assert abs(pitch - ref[1]) < 7, (name, poses[name], ref)
    assert poses["rolled"][2] > poses["frame"][2] + 15  # turned 20 degrees anticlockwise
    assert abs(poses["side"][0] + poses["mirrored"][0]) < 1.5  # a mirror flips yaw


def test_no_face_has_low_presence_and_no_detection(bundle):
    rng = np.random.default_rng(0)
    for image in (np.full((360, 640, 3), 128, np.uint8), rng.integers(0, 255, (360, 640, 3))):
        image = image.astype(np.uint8)
        assert bundle.detector.detect(image) == []
        assert bundle.mesh.landmarks(image, Roi(320, 180, 200))[1] < 0.01


def test_full_range_detector_finds_a_small_face(model_path, images):
    head = np.ascontiguousarray(face_photo()[HEAD])
    small = canvas(head, size=(640, 360), face_height=0.4, centre_x=0.7)
    full = load_detector(model_path("face_detector_full_range"), "face detector")
    assert full.size == 192
    found = full.detect(small)
    assert len(found) == 1 and found[0].score > 0.5
    x0, y0, x1, y1 = found[0].box
    assert abs((x0 + x1) / 2 - 0.7) < 0.03 and 0.08 < y1 - y0 < 0.2


def test_follower_detector_runs_at_its_smaller_input(bundle, images, model_path):
    """The short-range detector resized to FOLLOW_INPUT (as tiered mode follows a face with
    it) finds the face the native 128 px model finds, with keypoints within ~2 % of the
    square; its anchor grid follows the input size."""
    follower = bundle.detector.at_size(FOLLOW_INPUT)
    assert bundle.detector.size == 128 and follower.size == FOLLOW_INPUT < 128
    assert follower.min_score == bundle.detector.min_score
    assert len(follower._anchors) == 2 * (FOLLOW_INPUT // 8) ** 2 + 6 * (FOLLOW_INPUT // 16) ** 2
    frame = images["frame"]
    (native,) = bundle.detector.detect(frame)
    x0, y0, x1, y1 = native.box
    side = 1.8 * max((x1 - x0) * 640, (y1 - y0) * 360)
    cx, cy = (x0 + x1) / 2 * 640, (y0 + y1) / 2 * 360
    found = {}
    for model in (bundle.detector, follower):
        square = square_crop(frame, cx - side / 2, cy - side / 2, side, model.size)
        detections = model.detect_square(square)
        assert len(detections) == 1 and detections[0].score > 0.7
        found[model.size] = detections[0]
    a, b = found[128], found[FOLLOW_INPUT]
    assert np.abs(np.subtract(a.box, b.box)).max() < 0.03
    assert np.abs(a.keypoints - b.keypoints).max() < 0.02
    with zipfile.ZipFile(model_path("face_landmarker")) as z:
        content = z.read("face_detector.tflite")
    for bad in (72, 16, 0, 2048, 80.0, True):
        with pytest.raises(FaceModelError, match="multiple of 16"):
            FaceDetectorModel(content, input_size=bad)


def test_roi_maps_crop_pixels_to_image_pixels():
    roi = Roi(100.0, 80.0, 64.0, math.radians(30))
    m = roi.to_image(256)
    centre = m[:, :2] @ (128, 128) + m[:, 2]
    assert np.allclose(centre, (100, 80))
    right = m[:, :2] @ (256, 128) + m[:, 2]  # the crop's right edge, along the 30° axis
    assert np.allclose(right - centre, (32 * math.cos(math.radians(30)), 32 * 0.5))
    image = np.zeros((200, 200, 3), np.uint8)
    image[78:83, 98:103] = 255
    crop = roi.crop(image, 256)
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    assert abs(xs.mean() - 128) < 2 and abs(ys.mean() - 128) < 2


def test_bad_models_are_clear_errors(model_path, tmp_path):
    bundle_path = model_path("face_landmarker")
    with zipfile.ZipFile(bundle_path) as z:
        blend = z.read("face_blendshapes.tflite")
        geometry = z.read("geometry_pipeline_metadata_landmarks.binarypb")
    with pytest.raises(FaceModelError, match="not a BlazeFace"):
        FaceDetectorModel(blend)
    with pytest.raises(FaceModelError, match="cannot load"):
        FaceDetectorModel(b"not a model")
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"PK not really")
    with pytest.raises(FaceModelError, match="not a face landmarker bundle"):
        LandmarkerBundle.load(broken)
    with pytest.raises(FaceModelError, match="not found"):
        LandmarkerBundle.load(tmp_path / "missing.task")
    with pytest.raises(FaceModelError):
        parse_geometry(geometry[:100])
    pose = parse_geometry(geometry)
    assert pose.matrix(np.zeros((478, 3), np.float32), 10, 10).shape == (4, 4)


def test_the_two_engines_agree_on_a_clip(model_path, images):
    """The analyzer on LiteRT and on MediaPipe Tasks: the same faces, boxes, expression and
    head turn frame by frame."""
    head = np.ascontiguousarray(face_photo()[HEAD])
    frames = [
        canvas(head, size=(640, 360), face_height=1.0, centre_x=0.45 + 0.01 * i) for i in range(10)
    ]
    frames += [images["mirrored"], images["rolled"]]
    results = {}
    for engine in ("litert", "tasks"):
        with FaceAnalyzer(
            model_path("face_landmarker"), model_path("face_detector_full_range"), engine=engine
        ) as fa:
            results[engine] = [fa.process(f, i / 5) for i, f in enumerate(frames)]
    smile = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]
    for ours, theirs in zip(results["litert"], results["tasks"], strict=True):
        assert len(ours) == len(theirs) == 1
        a, b = ours[0], theirs[0]
        assert np.abs(np.array(a.box) - b.box).max() < 0.02
        assert np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).mean() < 0.004
        assert np.abs(a.blendshapes[smile] - b.blendshapes[smile]).max() < 0.1
        assert abs(a.pose[0] - b.pose[0]) < 7 and abs(a.pose[2] - b.pose[2]) < 3
        assert a.crop.shape == b.crop.shape
        assert np.abs(a.crop.astype(int) - b.crop).mean() < 25  # the tiered tests' bound
