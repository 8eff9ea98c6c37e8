"""Faces with MediaPipe Tasks on real face images made at test time (no mocks)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from media import canvas, face_photo, warp_points

from ahmer.preprocessing.face_align import (
    LEFT_EYE,
    RIGHT_EYE,
    keypoint_pitch,
    keypoint_yaw,
    pose_from_matrix,
    similarity,
)
from ahmer.preprocessing.face_tracking import FaceTracker, PrimarySelector
from ahmer.preprocessing.faces import (
    BLENDSHAPE_NAMES,
    Face,
    FaceAnalyzer,
    FaceError,
    interpolate_landmark_gaps,
)

SIZE = (640, 360)
# Head-and-shoulders crop of the astronaut (a webcam framing): its face (forehead to chin)
# is about a third of the crop's height.
HEAD_SLICE = (slice(10, 330), slice(60, 380))
HEAD_FACE = 0.33


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return face_photo()


@pytest.fixture(scope="module")
def head(photo) -> np.ndarray:
    return np.ascontiguousarray(photo[HEAD_SLICE])


@pytest.fixture(scope="module")
def models(model_path) -> dict:
    return {
        "landmarker": model_path("face_landmarker"),
        "detector": model_path("face_detector_full_range"),
        "short": model_path("face_detector_short_range"),
    }


def face_frame(head, face: float, centre_x: float = 0.5, size=SIZE) -> np.ndarray:
    """A grey frame with the astronaut's face ``face`` of the frame height tall."""
    return canvas(head, size=size, face_height=face / HEAD_FACE, centre_x=centre_x)


def analyzer(models, **kw) -> FaceAnalyzer:
    return FaceAnalyzer(models["landmarker"], models["detector"], **kw)


def smile(face: Face) -> tuple[float, float]:
    names = list(BLENDSHAPE_NAMES)
    b = face.blendshapes
    return float(b[names.index("mouthSmileLeft")]), float(b[names.index("mouthSmileRight")])


def run(fa: FaceAnalyzer, frames, fps: float = 25.0) -> list[list[Face]]:
    return [fa.process(f, i / fps) for i, f in enumerate(frames)]


def turned(image: np.ndarray, landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """Re-render ``image`` with the face mesh rotated about the vertical axis (a real head
    turn of the face's geometry; the nose moves to the image's right for ``degrees > 0``)."""
    h, w = image.shape[:2]
    p = landmarks.astype(np.float64) * (w, h, w)
    centre = p.mean(0)
    x, z = p[:, 0] - centre[0], p[:, 2] - centre[2]
    th = math.radians(degrees)
    moved = p[:, :2].copy()
    moved[:, 0] = centre[0] + x * math.cos(th) - z * math.sin(th)  # z < 0 is nearer
    return warp_points(image, p[:, :2], moved, grid=9)


def eye_angle(landmarks: np.ndarray, width: int, height: int) -> float:
    """Angle (degrees) of the line from the subject's right to left eye, image axes."""
    pts = landmarks[:, :2] * (width, height)
    r, left = pts[list(RIGHT_EYE)].mean(0), pts[list(LEFT_EYE)].mean(0)
    return math.degrees(math.atan2(left[1] - r[1], left[0] - r[0]))


# -- a frontal sequence --------------------------------------------------------------------


def test_frontal_sequence_one_stable_track(models, head):
    centres = [0.5 + 0.006 * ((i % 10) - 5) for i in range(25)]
    frames = [face_frame(head, 0.3, c) for c in centres]
    with analyzer(models) as fa:
        assert fa.blendshape_names == list(BLENDSHAPE_NAMES) and len(fa.blendshape_names) == 52
        results = run(fa, frames)
    found = [r for r in results if r]
    assert len(found) >= 0.95 * len(frames)
    assert {r[0].track_id for r in found} == {found[0][0].track_id}
    assert all(len(r) == 1 for r in found)
    for r, c in zip(results, centres, strict=True):
        if not r:
            continue
        face = r[0]
        x0, y0, x1, y1 = face.box
        assert abs((x0 + x1) / 2 - c) < 0.05  # the box is around the face ...
        assert 0.2 < y1 - y0 < 0.4 and 0.3 < (y0 + y1) / 2 < 0.6  # ... and face-sized
        assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
        assert face.blendshapes.shape == (52,) and face.blendshapes.dtype == np.float32
        assert min(smile(face)) > 0.5  # she smiles
        assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
        assert face.source == "landmarker" and 0.9 < face.score <= 1.0
        assert all(abs(a) < 25 for a in face.pose)
        assert 0.5 < face.quality <= 1.0


def test_default_canvas_face_found_by_fallback(models, photo):
    # canvas()'s default framing puts a face ~0.2 of the frame height: too small for the
    # landmarker's short-range detector, found and then followed by the fallback.
    frames = [canvas(photo, centre_x=0.5 + 0.005 * (i % 4)) for i in range(15)]
    with analyzer(models) as fa:
        results = run(fa, frames)
    found = [r for r in results if r]
    assert len(found) >= 0.95 * len(frames)
    assert {r[0].track_id for r in found} == {found[0][0].track_id}
    assert all(r[0].source == "fallback" and 0.5 <= r[0].score <= 1 for r in found)
    assert min(smile(found[-1][0])) > 0.5


@pytest.mark.parametrize("face_height", [0.15, 0.125])
def test_small_face_found_by_fallback(models, head, face_height):
    frames = [face_frame(head, face_height, 0.5 + 0.004 * i) for i in range(6)]
    with FaceAnalyzer(models["landmarker"]) as plain:
        assert run(plain, frames[:3]) == [[], [], []]  # the landmarker alone misses it
    with analyzer(models) as fa:
        results = run(fa, frames)
    assert all(len(r) == 1 for r in results)
    face = results[-1][0]
    assert face.source == "fallback"
    x0, y0, x1, y1 = face.box
    assert abs((x0 + x1) / 2 - (0.5 + 0.004 * 5)) < 0.04
    assert 0.6 * face_height < y1 - y0 < 1.4 * face_height
    assert face.landmarks.shape == (478, 3) and min(smile(face)) > 0.4
    assert len({r[0].track_id for r in results}) == 1


# -- pose ----------------------------------------------------------------------------------


def test_yaw_sign_flips_with_mirrored_image(models, head):
    frame = face_frame(head, 0.35)
    with FaceAnalyzer(models["landmarker"], running_mode="image") as fa:
        (face,) = fa.process(frame, 0.0)
        turned_left = turned(frame, face.landmarks, 25)  # nose to the image's right
        (left,) = fa.process(turned_left, 0.1)
        (mirrored,) = fa.process(np.ascontiguousarray(turned_left[:, ::-1]), 0.2)
        (base_mirrored,) = fa.process(np.ascontiguousarray(frame[:, ::-1]), 0.3)
    assert abs(face.pose[0]) < 8
    assert left.pose[0] > 10  # subject turned to their own left: yaw > 0
    assert mirrored.pose[0] < -10
    assert abs(left.pose[0] + mirrored.pose[0]) < 6
    # roll flips too; pitch does not
    assert face.pose[2] * base_mirrored.pose[2] < 0 or abs(face.pose[2]) < 1
    assert abs(face.pose[1] - base_mirrored.pose[1]) < 5


def test_roll_follows_in_plane_rotation_and_crop_levels_the_eyes(models, head):
    frame = face_frame(head, 0.35)
    h, w = frame.shape[:2]
    cx, cy = w / 2, h * 0.35
    rotation = cv2.getRotationMatrix2D((cx, cy), 25, 1.0)  # counter-clockwise in the image
    rotated = cv2.warpAffine(frame, rotation, (w, h), borderMode=cv2.BORDER_REPLICATE)
    with FaceAnalyzer(models["landmarker"], running_mode="image") as fa:
        (upright,) = fa.process(frame, 0.0)
        (tilted,) = fa.process(rotated, 0.1)
        assert abs(eye_angle(tilted.landmarks, w, h) + 25) < 4  # the eyes are tilted
        assert 18 < tilted.pose[2] - upright.pose[2] < 32  # roll > 0 counter-clockwise
        # landmarks found again on the (upscaled) crop: the eye line is level and the face,
        # forehead to chin, fills most of the crop
        for face in (upright, tilted):
            assert face.crop.shape == (112, 112, 3)
            big = cv2.resize(face.crop, (224, 224), interpolation=cv2.INTER_CUBIC)
            (again,) = fa.process(big, 1.0 + face.pose[2])
            assert abs(eye_angle(again.landmarks, 224, 224)) < 3
            x0, y0, x1, y1 = again.box
            assert 0.7 < y1 - y0 < 0.95 and y0 > 0.01 and y1 < 0.99
            assert abs((y0 + y1) / 2 - 0.5) < 0.08 and abs((x0 + x1) / 2 - 0.5) < 0.08


def test_pose_from_matrix_conventions():
    def ry(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]])

    def rz(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    yaw, pitch, roll = pose_from_matrix(ry(math.radians(30)) @ rz(math.radians(-10)))
    assert yaw == pytest.approx(30) and pitch == pytest.approx(0, abs=1e-9)
    assert roll == pytest.approx(-10)
    mirror = np.diag([-1.0, 1, 1, 1])
    m = ry(math.radians(20)) @ rz(math.radians(15))
    y2, p2, r2 = pose_from_matrix(mirror @ m @ mirror)
    assert y2 == pytest.approx(-20) and r2 == pytest.approx(-15)


# -- several faces, none, huge frames ------------------------------------------------------


def test_two_faces_primary_is_larger_and_stable(models, head):
    frames = []
    for i in range(12):
        d = 0.01 * (i % 3)
        left = face_frame(head, 0.42, 0.5 + d, size=(320, 360))
        right = face_frame(head, 0.32, 0.5 - d, size=(320, 360))
        frames.append(np.ascontiguousarray(np.hstack([left, right])))
    with analyzer(models) as fa:
        results = run(fa, frames)
        assert fa.primary_track == results[-1][0].track_id
    assert sum(len(r) == 2 for r in results) >= 11
    primaries = {r[0].track_id for r in results if r}
    assert len(primaries) == 1
    ids = {f.track_id for r in results for f in r}
    assert len(ids) == 2
    for r in results:
        if len(r) == 2:
            first, second = r
            assert (first.box[0] + first.box[2]) / 2 < 0.5 < (second.box[0] + second.box[2]) / 2
            assert first.box[3] - first.box[1] > second.box[3] - second.box[1]


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_no_face_gives_empty_list_and_empty_scene_is_cheap(models, kind):
    rng = np.random.default_rng(0)
    frames = [
        canvas(None) if kind == "grey" else rng.integers(0, 256, (360, 640, 3), np.uint8)
        for _ in range(20)
    ]
    with analyzer(models, fallback_every=5) as fa:
        assert run(fa, frames) == [[]] * 20
        assert fa.counters["detector_runs"] == 4  # frames 1, 6, 11, 16
        assert fa.counters["frames"] == 20


def test_4k_frame(models, head):
    frame = face_frame(head, 0.3, size=(3840, 2160))
    with analyzer(models) as fa:
        (face,) = fa.process(frame, 0.0)
    x0, y0, x1, y1 = face.box
    assert abs((x0 + x1) / 2 - 0.5) < 0.05 and 0.2 < y1 - y0 < 0.4
    assert face.crop.shape == (112, 112, 3)
    assert face.quality > 0.8


def test_blurred_face_has_lower_quality(models, head):
    frame = face_frame(head, 0.3)
    blurred = cv2.GaussianBlur(frame, (0, 0), 2.5)
    with FaceAnalyzer(models["landmarker"], running_mode="image") as fa:
        (sharp,) = fa.process(frame, 0.0)
        (soft,) = fa.process(blurred, 0.1)
    assert 0 <= soft.quality < 0.6 * sharp.quality <= 1


def test_missed_frames_keep_the_track(models, head):
    face = face_frame(head, 0.3)
    frames = [face] * 4 + [canvas(None)] * 2 + [face] * 4
    with FaceAnalyzer(models["landmarker"], max_missed=5) as fa:
        results = run(fa, frames)
    assert [len(r) for r in results] == [1] * 4 + [0] * 2 + [1] * 4
    assert len({r[0].track_id for r in results if r}) == 1


def test_timestamps_duplicated_or_backwards_are_accepted(models, head):
    frame = face_frame(head, 0.3)
    with FaceAnalyzer(models["landmarker"]) as fa:
        found = [fa.process(frame, t) for t in (0.0, 0.04, 0.04, 0.02, -1.0, 0.08)]
    assert all(len(f) == 1 for f in found[1:])


# -- bad input -----------------------------------------------------------------------------


def test_bad_input_raises_face_error(models, tmp_path):
    with FaceAnalyzer(models["landmarker"]) as fa:
        for bad in (
            np.zeros((360, 640, 3), np.float32),
            np.zeros((360, 640, 5), np.uint8),
            np.zeros((8, 8, 3), np.uint8),
            np.zeros((2, 360, 640, 3), np.uint8),
            "not an image",
        ):
            with pytest.raises(FaceError):
                fa.process(bad, 0.0)
        with pytest.raises(FaceError):
            fa.process(np.zeros((360, 640, 3), np.uint8), float("nan"))
        assert fa.process(np.zeros((360, 640), np.uint8), 0.1) == []  # greyscale is fine
        assert fa.process(np.zeros((360, 640, 4), np.uint8), 0.2) == []  # so is RGBA
    with pytest.raises(FaceError, match="closed"):
        fa.process(np.zeros((360, 640, 3), np.uint8), 1.0)
    with pytest.raises(FaceError, match="not found"):
        FaceAnalyzer(tmp_path / "missing.task")
    garbage = tmp_path / "garbage.task"
    garbage.write_bytes(b"not a model" * 100)
    with pytest.raises(FaceError):
        FaceAnalyzer(garbage)
    with pytest.raises(FaceError):
        FaceAnalyzer(models["landmarker"], running_mode="live")


# -- tracking and primary choice (pure logic) ----------------------------------------------


def test_tracker_follows_moving_boxes_and_forgets_after_max_missed():
    tracker = FaceTracker(max_missed=2)
    a = [(0.10 + 0.02 * i, 0.2, 0.30 + 0.02 * i, 0.5) for i in range(5)]
    ids = [tracker.update([box])[0] for box in a]
    assert len(set(ids)) == 1
    tracker.update([])
    tracker.update([])
    assert tracker.update([a[-1]]) == ids[:1]  # two missed frames: still the same track
    for _ in range(3):
        tracker.update([])
    assert tracker.update([a[-1]]) != ids[:1]  # three: a new track
    b = (0.6, 0.2, 0.8, 0.5)
    first = tracker.update([a[-1], b])
    assert tracker.update([b, a[-1]]) == first[::-1]  # order of boxes does not matter


def test_primary_selector_hysteresis():
    sel = PrimarySelector(margin=0.25, patience=3)
    left = (0.10, 0.30, 0.40, 0.70)
    right = (0.60, 0.30, 0.89, 0.69)  # nearly the same size and centrality
    alive = {1, 2}
    firsts = []
    for i in range(30):  # the two swap being slightly larger every frame
        grow = 0.01 if i % 2 else -0.01
        boxes = [(left[0], left[1], left[2] + grow, left[3]), right]
        order = sel.update([1, 2], boxes, alive)
        firsts.append([1, 2][order[0]])
    assert len(set(firsts[1:])) == 1  # no flipping
    # a much larger face that stays takes over, but only after `patience` frames
    p = sel.primary
    other = 3 - p
    big = (0.55, 0.1, 0.95, 0.9)
    boxes = {p: left, other: big}
    firsts = [[1, 2][sel.update([1, 2], [boxes[1], boxes[2]], alive)[0]] for _ in range(30)]
    assert firsts[0] == firsts[1] == p and firsts[-1] == other and sel.primary == other
    # the primary briefly unseen: the other is listed first, the primary is remembered
    assert sel.update([p], [boxes[p]], alive) == [0] and sel.primary == other
    order = sel.update([p, other], [boxes[p], boxes[other]], alive)
    assert [p, other][order[0]] == other


# -- tiered mode: the landmarker on every k-th frame, the short-range detector between ------


def tiered(models, k: int = 3, **kw) -> FaceAnalyzer:
    return FaceAnalyzer(
        models["landmarker"],
        models["detector"],
        landmarks_every=k,
        short_range_detector_path=models["short"],
        **kw,
    )


def swaying(head, n: int, face: float = 0.33) -> list[np.ndarray]:
    """The face moving sideways by up to 13 px per frame, as a seated person sways."""
    return [face_frame(head, face, 0.5 + 0.02 * math.sin(0.9 * i)) for i in range(n)]


def head_turn(image: np.ndarray, landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """A fast :func:`turned`: the mesh (every 3rd landmark) rotated about the vertical axis,
    warped only in a margin around the face, so that a test can render several angles."""
    h, w = image.shape[:2]
    p = landmarks.astype(np.float64) * (w, h, w)
    lo, hi = p[:, :2].min(0), p[:, :2].max(0)
    x0, y0 = np.maximum(0, np.floor(lo - 0.3 * (hi - lo))).astype(int)
    x1, y1 = np.minimum((w, h), np.ceil(hi + 0.3 * (hi - lo))).astype(int)
    centre, th, q = p.mean(0), math.radians(degrees), p[::3]
    moved = q[:, :2].copy()
    moved[:, 0] = (
        centre[0] + (q[:, 0] - centre[0]) * math.cos(th) - (q[:, 2] - centre[2]) * (math.sin(th))
    )
    return warp_points(image, q[:, :2], moved, (x0, y0, x1, y1), grid=7)


def reversals(yaw, threshold: float = 3.0) -> int:
    """Direction reversals of a yaw sequence, counting only steps above ``threshold``
    degrees (the head-shake cue's rule)."""
    d = np.diff(np.asarray(yaw, np.float64))
    d = d[np.abs(d) > threshold]
    return int(np.sum(np.sign(d[1:]) != np.sign(d[:-1])))


def test_tiered_follows_the_face_between_landmark_frames(models, head):
    frames = swaying(head, 13)
    with analyzer(models) as fa:
        every = [fa.process(f, i / 5)[0] for i, f in enumerate(frames)]
    with tiered(models, 3) as fa:
        results = run(fa, frames, fps=5)
        assert fa.counters["landmark_frames"] == 5  # frames 0, 3, 6, 9, 12
        assert fa.counters["roi_detector_runs"] == 13  # keypoints on every frame
    assert all(len(r) == 1 for r in results)
    faces = [r[0] for r in results]
    assert len({f.track_id for f in faces}) == 1
    assert [f.landmarks_fresh for f in faces] == [i % 3 == 0 for i in range(13)]
    last_fresh = None
    for face, ref in zip(faces, every, strict=True):
        assert face.keypoints.shape == (6, 2) and math.isfinite(face.keypoint_yaw)
        assert math.isfinite(face.keypoint_pitch)
        assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
        if face.landmarks_fresh:
            assert face.source == "landmarker"
            last_fresh = face
            # the same face mesh, its region from slightly different landmarks (< 0.5 px)
            assert np.abs(face.landmarks[:, :2] - ref.landmarks[:, :2]).mean() < 0.0015
            continue
        assert face.source == "detector" and 0.5 <= face.score <= 1
        # carried from the last landmark frame ...
        assert np.array_equal(face.blendshapes, last_fresh.blendshapes)
        # ... while the geometry follows the face, close to the landmarker on this frame
        assert face.landmarks.shape == (478, 3)
        assert np.abs(face.landmarks[:, :2] - ref.landmarks[:, :2]).mean() < 0.006
        assert abs((face.box[0] + face.box[2]) - (ref.box[0] + ref.box[2])) / 2 < 0.01
        assert abs((face.box[3] - face.box[1]) / (ref.box[3] - ref.box[1]) - 1) < 0.05
        assert abs(face.pose[0] - ref.pose[0]) < 4 and abs(face.pose[2] - ref.pose[2]) < 6
        assert abs(face.pose[1] - ref.pose[1]) < 4  # pitch follows too (nods)
        assert np.abs(face.crop.astype(int) - ref.crop).mean() < 25
        assert 0.5 < face.quality <= 1.0


def test_tiered_crops_read_the_same_emotion(models, model_path, head):
    from ahmer.models.backends.factory import make_backend
    from ahmer.models.fusion.encoders import FaceEmotionEncoder

    frames = swaying(head, 9)
    with analyzer(models) as fa:
        every = np.stack([fa.process(f, i / 5)[0].crop for i, f in enumerate(frames)])
    with tiered(models, 3) as fa:
        faces = [fa.process(f, i / 5)[0] for i, f in enumerate(frames)]
    assert sum(not f.landmarks_fresh for f in faces) == 6
    encoder = FaceEmotionEncoder(
        make_backend("onnxruntime", device="cpu"), model_path("fer_emotion")
    )
    ref = encoder.encode(every)
    got = encoder.encode(np.stack([f.crop for f in faces]))
    assert list(np.argmax(got, 1)) == list(np.argmax(ref, 1))
    assert encoder.LABELS[int(np.argmax(ref[0]))] == "happy"
    assert np.abs(got - ref).sum(1).max() < 0.1


def test_tiered_sees_a_2hz_head_shake_at_the_analysis_rate(models, head):
    base = face_frame(head, 0.45, size=(320, 180))
    with FaceAnalyzer(models["landmarker"], running_mode="image") as fa:
        (face,) = fa.process(base, 0.0)
    renders = {a: head_turn(base, face.landmarks, a) for a in (-14, -9, 0, 9, 14)}
    # a 2 Hz shake of +-15 degrees sampled at 5 fps, to the nearest rendered angle
    angles = [
        min(renders, key=lambda a: abs(a - 15 * math.sin(0.8 * math.pi * i))) for i in range(20)
    ]
    frames = [renders[a] for a in angles]
    with analyzer(models) as fa:
        every = [fa.process(f, i / 5)[0].pose[0] for i, f in enumerate(frames)]
    with tiered(models, 3) as fa:
        results = run(fa, frames, fps=5)
    assert all(len(r) == 1 for r in results)
    yaw = [r[0].pose[0] for r in results]
    fresh = [r[0].landmarks_fresh for r in results]
    assert sum(fresh) == 7
    assert np.abs(np.subtract(yaw, every)).mean() < 3 and np.abs(np.subtract(yaw, every)).max() < 7
    assert reversals(every) >= 12  # the shake, seen by the landmarker on every frame
    assert reversals(yaw) >= 0.8 * reversals(every)  # ... and by the tiered mode
    # the landmark frames alone (yaw held between them) alias it into a slow drift
    held = [yaw[max(j for j in range(i + 1) if fresh[j])] for i in range(len(yaw))]
    assert reversals(held) <= 0.5 * reversals(every)


def test_tiered_landmarks_at_once_on_a_cut_or_a_lost_face(models, head):
    dark = face_frame(head, 0.33)
    light = canvas(head, face_height=0.33 / HEAD_FACE, background=200)
    with tiered(models, 10) as fa:
        results = run(fa, [dark] * 4 + [light] * 3 + [dark] * 2, fps=5)
        assert fa.counters["landmark_frames"] == 3
        # the face covered, the rest of the frame as it was: too small a change for a cut
        h, w = dark.shape[:2]
        x0, y0, x1, y1 = results[-1][0].box
        covered = dark.copy()
        covered[int(y0 * h) - 5 : int(y1 * h) + 5, int(x0 * w) - 5 : int(x1 * w) + 5] = 90
        results += [fa.process(f, 2.0 + i / 5) for i, f in enumerate([covered] * 2 + [dark] * 2)]
        assert fa.counters["landmark_frames"] == 6
    assert [len(r) for r in results] == [1] * 9 + [0] * 2 + [1] * 2
    fresh = [r[0].landmarks_fresh for r in results if r]
    # 0: first; 4: the cut to a light background; 7: back to dark; 11: found again
    assert fresh == [True, False, False, False, True, False, False, True, False, True, False]
    # 9: the followed face was not found by the detector, the landmarker looked at once;
    # 10: nothing to follow, so the landmarker looks again
    assert len({r[0].track_id for r in results[:9]}) == 1


def test_tiered_small_face_and_4k_frames(models, head):
    small = [face_frame(head, 0.125, 0.5 + 0.004 * i) for i in range(6)]
    with tiered(models, 3) as fa:
        results = run(fa, small, fps=5)
    assert all(len(r) == 1 for r in results)
    assert [r[0].source for r in results] == ["fallback", "detector", "detector"] * 2
    x0, y0, x1, y1 = results[-1][0].box
    assert abs((x0 + x1) / 2 - 0.52) < 0.04 and 0.08 < y1 - y0 < 0.18
    big = [face_frame(head, 0.3, 0.5 + 0.01 * i, size=(3840, 2160)) for i in range(3)]
    with tiered(models, 3) as fa:
        results = run(fa, big, fps=5)
    assert [r[0].source for r in results] == ["landmarker", "detector", "detector"]
    for i, r in enumerate(results):
        x0, y0, x1, y1 = r[0].box
        assert abs((x0 + x1) / 2 - (0.5 + 0.01 * i)) < 0.02 and 0.2 < y1 - y0 < 0.4
        assert r[0].quality > 0.8


def test_face_search_every_follows_one_face_cheaply_and_finds_a_second_late(models, head):
    def pair(second: bool, i: int) -> np.ndarray:
        d = 0.01 * (i % 3)
        left = face_frame(head, 0.42, 0.5 + d, size=(320, 360))
        right = (
            face_frame(head, 0.32, 0.5 - d, size=(320, 360)) if second else canvas(None, (320, 360))
        )
        return np.ascontiguousarray(np.hstack([left, right]))

    frames = [pair(i >= 6, i) for i in range(12)]
    with analyzer(models) as fa:
        counts = [len(r) for r in run(fa, frames)]
        assert fa.counters["face_searches"] == 12
    assert counts == [1] * 6 + [2] * 6
    with analyzer(models, face_search_every=3) as fa:
        results = run(fa, frames)
        searches = fa.counters["face_searches"]
    counts = [len(r) for r in results]
    assert counts[:6] == [1] * 6 and counts[8:] == [2] * 4  # found within 2 frames
    assert searches <= 8
    assert len({r[0].track_id for r in results}) == 1  # the larger face stays primary


def test_tiered_options_are_checked(models, tmp_path):
    for kw in (
        {"landmarks_every": 0},
        {"landmarks_every": 2.5},
        {"landmarks_every": True},
        {"face_search_every": 0},
        {"landmarks_every": 3, "short_range_detector_path": tmp_path / "missing.tflite"},
    ):
        with pytest.raises(FaceError):
            FaceAnalyzer(models["landmarker"], **kw)
    with pytest.raises(FaceError, match="short_range_detector_path"):  # Tasks has no own
        FaceAnalyzer(models["landmarker"], landmarks_every=3, engine="tasks")
    with FaceAnalyzer(models["landmarker"], landmarks_every=3) as fa:  # the bundle's detector
        assert fa.engine == "litert" and fa.landmarks_every == 3
    for kw in ({"engine": "mediapipe"}, {"threads": 0}, {"threads": 1.5}):
        with pytest.raises(FaceError):
            FaceAnalyzer(models["landmarker"], **kw)


# -- interpolation between landmark frames (pure logic) ------------------------------------


def _face(
    track: int,
    fresh: bool,
    blend: float,
    yaw: float,
    pitch: float,
    kyaw: float,
    kpitch: float = math.nan,
) -> Face:
    return Face(
        box=(0.4, 0.3, 0.6, 0.6),
        score=1.0,
        landmarks=np.zeros((478, 3), np.float32),
        blendshapes=np.full(52, blend, np.float32),
        pose=(yaw, pitch, 2.0),
        track_id=track,
        quality=0.9,
        crop=np.zeros((112, 112, 3), np.uint8),
        source="landmarker" if fresh else "detector",
        landmarks_fresh=fresh,
        keypoint_yaw=kyaw,
        keypoint_pitch=kpitch,
    )


def test_interpolate_landmark_gaps():
    # track 7: fresh at t=0 and t=4; keypoint yaw moved 4 degrees while the landmarker's moved
    # 8; keypoint pitch 2 while the landmarker's moved 4
    seven = [
        _face(7, True, 0.0, 0.0, 0.0, 10.0, 20.0),
        _face(7, False, 0.0, 1.0, 0.5, 11.0, 20.5),
        _face(7, False, 0.0, 2.0, 1.0, 12.0, 21.0),
        _face(7, False, 0.0, 3.0, 1.5, 13.0, 21.5),
        _face(7, True, 1.0, 8.0, 4.0, 14.0, 22.0),
        _face(7, False, 1.0, 9.0, 4.0, 15.0, 22.5),  # after the last fresh face: kept
    ]
    # track 9: no keypoints (NaN keypoint yaw): plain linear interpolation of yaw
    nine = [
        _face(9, True, 0.5, -10.0, 0.0, math.nan),
        None,
        _face(9, False, 0.5, -10.0, 0.0, math.nan),
        _face(9, True, 0.1, 0.0, 0.0, math.nan),
        None,
        None,
    ]
    frames = [[f for f in (a, b) if f is not None] for a, b in zip(seven, nine, strict=True)]
    times = [0.0, 0.1, 0.4, 0.6, 0.8, 1.0]
    out = interpolate_landmark_gaps(frames, times)
    by = {(i, f.track_id): f for i, faces in enumerate(out) for f in faces}
    for i, w in ((1, 0.125), (2, 0.5), (3, 0.75)):
        f = by[(i, 7)]
        np.testing.assert_allclose(f.blendshapes, w, atol=1e-6)
        assert f.blendshapes.dtype == np.float32
        # yaw and pitch: the keypoints' value plus the share of what they missed
        assert f.pose == pytest.approx((i + 4 * w, 0.5 * i + 2 * w, 2.0))
        assert not f.landmarks_fresh
    assert by[(5, 7)] is frames[5][0]  # unchanged
    for i in (0, 4):
        assert by[(i, 7)] is frames[i][0]
    f = by[(2, 9)]
    np.testing.assert_allclose(f.blendshapes, 0.5 + (0.1 - 0.5) * 2 / 3, atol=1e-6)
    assert f.pose[0] == pytest.approx(-10 + 10 * 2 / 3)
    # the input is left as it was
    assert frames[2][0].pose == (2.0, 1.0, 2.0) and float(frames[2][0].blendshapes[0]) == 0.0
    # frame indices stand in for times; times must match the frames
    assert interpolate_landmark_gaps(frames)[1][0].pose == pytest.approx((2.0, 1.0, 2.0))
    with pytest.raises(FaceError):
        interpolate_landmark_gaps(frames, times[:-1])


def test_similarity_and_keypoint_yaw():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    a = math.radians(20)
    linear = 1.5 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    dst = src @ linear.T + (7, -3)
    np.testing.assert_allclose(similarity(src, dst), np.hstack([linear, [[7], [-3]]]), atol=1e-9)
    # a frontal face: nose on the symmetry axis; nose to the image's right: yaw > 0
    kp = np.array([[40, 50], [60, 50], [50, 60], [50, 70], [30, 55], [70, 55]], np.float64)
    assert keypoint_yaw(kp) == pytest.approx(0.0, abs=1e-9)
    right = kp.copy()
    right[2, 0] += 5
    assert keypoint_yaw(right) > 10
    flipped = right.copy()
    flipped[:, 0] = 100 - flipped[:, 0]
    flipped = flipped[[1, 0, 2, 3, 5, 4]]  # mirrored: the subject's eyes and ears swap
    assert keypoint_yaw(flipped) == pytest.approx(-keypoint_yaw(right))
    rotated = right @ np.array([[0.8, -0.6], [0.6, 0.8]]).T  # roll does not change yaw
    assert keypoint_yaw(rotated) == pytest.approx(keypoint_yaw(right))


def test_keypoint_pitch_reads_nods_and_ignores_roll_and_scale():
    kp = np.array([[40, 50], [60, 50], [50, 60], [50, 70], [30, 55], [70, 55]], np.float64)
    assert keypoint_pitch(kp) == pytest.approx(0.0, abs=1e-9)  # nose halfway: the reference
    down, up = kp.copy(), kp.copy()
    down[2, 1] += 3  # the nose tip towards the mouth: the head pitched down
    up[2, 1] -= 3
    assert keypoint_pitch(down) < -10 and keypoint_pitch(up) > 10  # pose_from_matrix's sign
    assert keypoint_pitch(up) == pytest.approx(-keypoint_pitch(down))
    rolled = down @ np.array([[0.8, -0.6], [0.6, 0.8]]).T
    assert keypoint_pitch(rolled) == pytest.approx(keypoint_pitch(down))
    assert keypoint_pitch(2.5 * down + 7) == pytest.approx(keypoint_pitch(down))
    assert keypoint_yaw(down) == pytest.approx(0.0, abs=1e-9)  # a nod is no turn


def test_tiered_two_faces_keep_their_tracks(models, head):
    frames = []
    for i in range(9):
        d = 0.01 * (i % 3)
        left = face_frame(head, 0.42, 0.5 + d, size=(320, 360))
        right = face_frame(head, 0.32, 0.5 - d, size=(320, 360))
        frames.append(np.ascontiguousarray(np.hstack([left, right])))
    with tiered(models, 3, face_search_every=5) as fa:
        results = run(fa, frames, fps=5)
        assert fa.counters["landmark_frames"] == 3
        assert fa.counters["roi_detector_runs"] == 18  # each face on each frame
    assert all(len(r) == 2 for r in results)
    assert len({r[0].track_id for r in results}) == 1 and len({r[1].track_id for r in results}) == 1
    for r in results:
        first, second = r
        assert (first.box[0] + first.box[2]) / 2 < 0.5 < (second.box[0] + second.box[2]) / 2
        assert first.box[3] - first.box[1] > second.box[3] - second.box[1]
        assert first.landmarks_fresh == second.landmarks_fresh
