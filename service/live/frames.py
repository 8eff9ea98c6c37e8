"""Live video: decoding client frames and keeping per-analysis-frame features.

:class:`FrameStore` holds, per analysis frame, what the timeline needs (face box, track,
pose, blendshapes, emotion, audio features) in growable arrays: a few hundred bytes per
frame, never the image or the face crop, so a long session stays small. A session whose
fusion reads embeddings keeps the face and voice embedding too (2 KB more per frame).
"""

from __future__ import annotations

import io
import math

import numpy as np

from ahmer.models.contract import FACE_EMBED_DIM, VOICE_EMBED_DIM
from ahmer.preprocessing.errors import InvalidInput
from ahmer.preprocessing.timeline import MediaInfo, Timeline

__all__ = ["FrameError", "FrameGrid", "decode_image", "FrameStore", "MAX_PIXELS"]

MAX_PIXELS = 4096 * 4096


class FrameError(InvalidInput, ValueError):
    """A client frame cannot be decoded (bad encoding, wrong size, too large)."""

    what = "video frame"


def decode_image(data: bytes, encoding: str, width: int = 0, height: int = 0) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` from a JPEG/PNG image or packed RGB24 bytes."""
    if not data:
        raise FrameError("empty video frame")
    if encoding == "rgb24":
        if len(data) != width * height * 3:
            raise FrameError(
                f"RGB24 frame has {len(data)} bytes, expected {width}x{height}x3 = "
                f"{width * height * 3}"
            )
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("JPEG", "PNG"):
                raise FrameError(f"expected a {encoding.upper()} image, got {img.format}")
            w, h = img.size
            if w * h > MAX_PIXELS or w < 16 or h < 16:
                raise FrameError(f"frame size {w}x{h} is out of range (16x16 .. 4096x4096)")
            return np.asarray(img.convert("RGB"))
    except FrameError:
        raise
    except Image.DecompressionBombError:  # a header claiming over 2x PIL's pixel limit
        raise FrameError("frame size is out of range (16x16 .. 4096x4096)") from None
    except UnidentifiedImageError:  # PIL's message names the BytesIO object and its address
        raise FrameError(
            f"cannot decode the {encoding.upper()} frame: not a JPEG or PNG image"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise FrameError(f"cannot decode the {encoding.upper()} frame: {exc}") from exc


class FrameGrid:
    """A session's analysis frame grid, its one owner: slots of ``1 / fps`` seconds from 0.

    Video sessions analyse the first camera frame in each slot (:meth:`take`; frames
    faster than the analysis rate are skipped); audio-only sessions get one frame at the
    start of each slot the audio reaches (:meth:`fill`)."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.next = 0.0  # the earliest time of the next analysis frame
        self.count = 0  # analysis frames so far

    def take(self, pts: float) -> bool:
        """Whether a camera frame at ``pts`` (never decreasing) is an analysis frame."""
        if pts < self.next - 1e-3:
            return False
        self.next = (math.floor(pts * self.fps + 1e-3) + 1) / self.fps
        self.count += 1
        return True

    def fill(self, until: float) -> list[float]:
        """The grid times before ``until`` not given yet (audio-only sessions)."""
        times = []
        while self.next < until:
            times.append(self.next)
            self.count += 1
            self.next = self.count / self.fps
        return times


_FIELDS = {  # name: (trailing shape, dtype, fill)
    "face_box": ((4,), np.float32, np.nan),
    "face_track": ((), np.int32, -1),
    "face_count": ((), np.int32, 0),
    "face_score": ((), np.float32, 0.0),
    "face_quality": ((), np.float32, 0.0),
    "head_pose": ((3,), np.float32, np.nan),
    "blendshapes": ((52,), np.float32, np.nan),
    "emotion": ((7,), np.float32, np.nan),
    "face": ((), bool, False),
    "video": ((), bool, False),
    "vad": ((), np.float32, 0.0),
    "energy_db": ((), np.float32, np.nan),
    "f0_hz": ((), np.float32, np.nan),
    "voiced": ((), bool, False),
    "speech_rate": ((), np.float32, np.nan),
    "pause_s": ((), np.float32, 0.0),
    "audio": ((), bool, False),
}
_EMBEDDING_FIELDS = {  # zero rows: none (the fusion's convention)
    "face_emb": ((FACE_EMBED_DIM,), np.float32, 0.0),
    "voice_emb": ((VOICE_EMBED_DIM,), np.float32, 0.0),
}
_TIMELINE_FIELDS = (
    "face_box", "face_track", "face_count", "face_score", "face_quality", "head_pose",
    "blendshapes", "vad", "energy_db", "f0_hz", "voiced", "speech_rate", "pause_s",
)  # fmt: skip


class FrameStore:
    """Per-analysis-frame features, appended in time order; with ``embeddings``, the face
    and voice embeddings as well (``face_emb``, ``voice_emb``: see :meth:`embeddings`)."""

    def __init__(self, capacity: int = 256, embeddings: bool = False) -> None:
        self.n = 0
        self.times = np.zeros(capacity, np.float64)
        self.fields = {**_FIELDS, **(_EMBEDDING_FIELDS if embeddings else {})}
        self.arrays = {
            key: np.full((capacity, *shape), fill, dtype)
            for key, (shape, dtype, fill) in self.fields.items()
        }

    def __len__(self) -> int:
        return self.n

    def _grow(self) -> None:
        cap = 2 * len(self.times)
        self.times = np.resize(self.times, cap)
        for key, (shape, dtype, fill) in self.fields.items():
            old = self.arrays[key]
            new = np.full((cap, *shape), fill, dtype)
            new[: self.n] = old[: self.n]
            self.arrays[key] = new

    def append(
        self,
        time: float,
        face=None,
        emotion: np.ndarray | None = None,
        face_count: int = 0,
        video: bool = True,
        face_emb: np.ndarray | None = None,
    ) -> int:
        """Add a frame at ``time`` with its primary ``face`` (a ``preprocessing.faces.Face``
        or None), its emotion and (kept when the store has embeddings) face embedding;
        returns its index."""
        if self.n == len(self.times):
            self._grow()
        i, a = self.n, self.arrays
        self.times[i] = time
        a["video"][i] = video
        a["face_count"][i] = face_count
        if face is not None:
            a["face"][i] = True
            a["face_box"][i] = face.box
            a["face_track"][i] = face.track_id
            a["face_score"][i] = face.score
            a["face_quality"][i] = face.quality
            self.set_face_values(i, face)
            if emotion is not None:
                a["emotion"][i] = emotion
            if face_emb is not None and "face_emb" in a:
                a["face_emb"][i] = face_emb
        self.n += 1
        return i

    def set_face_values(self, i: int, face) -> None:
        """Overwrite frame ``i``'s blendshapes and head pose with ``face``'s (tiered faces:
        values interpolated once the next landmark frame is known)."""
        self.arrays["head_pose"][i] = face.pose
        if len(face.blendshapes) == 52:
            self.arrays["blendshapes"][i] = face.blendshapes

    def set_audio(self, start: int, values: dict[str, np.ndarray]) -> None:
        """Overwrite audio features of frames ``start .. start + len``."""
        for key, array in values.items():
            self.arrays[key][start : start + len(array)] = array

    def index_at(self, time: float) -> int:
        """Index of the first frame at or after ``time``."""
        return int(np.searchsorted(self.times[: self.n], time - 1e-9))

    def timeline(self, start: int, end: int, info: MediaInfo, names: list[str]) -> Timeline:
        """A :class:`Timeline` over frames ``[start, end)`` (copies; words set by caller)."""
        times = self.times[start:end].copy()
        tl = Timeline.empty(times, 0.0, info, n_blendshapes=52)
        a = self.arrays
        for key in _TIMELINE_FIELDS:
            setattr(tl, key, a[key][start:end].copy())
        tl.masks["video"] = a["video"][start:end].copy()
        tl.masks["face"] = a["face"][start:end].copy()
        tl.masks["audio"] = a["audio"][start:end].copy()
        tl.masks["speech"] = tl.vad > 0.5
        tl.blendshape_names = list(names)
        return tl

    def emotion(self, start: int, end: int) -> np.ndarray:
        return self.arrays["emotion"][start:end].copy()

    def embeddings(self, start: int, end: int) -> dict[str, np.ndarray]:
        """``face_emb`` and ``voice_emb`` of frames ``[start, end)`` (copies), as
        :meth:`~ahmer.models.analyzer.Analyzer.predict` takes them; empty without them."""
        return {k: self.arrays[k][start:end].copy() for k in _EMBEDDING_FIELDS if k in self.arrays}
