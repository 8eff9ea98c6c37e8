"""Test media made at test time: real speech from espeak-ng, real face photographs from PyPI
wheels (scikit-image's ``astronaut.png``), muxed into real containers with PyAV.

Nothing here is mocked: the files are ordinary media that FFmpeg (and any player) reads.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "HEDGING",
    "CONFIDENT",
    "have_espeak",
    "speak",
    "read_wav",
    "face_photo",
    "canvas",
    "make_clip",
    "word_error_rate",
    "portrait",
    "warp_points",
]

HEDGING = "I guess maybe I could try, but I'm not sure, um, I don't know."
CONFIDENT = "I will definitely quit smoking next week."


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, path: Path, words_per_minute: int = 150, voice: str = "en-us") -> Path:
    """Speak ``text`` with espeak-ng into a 22.05 kHz mono WAV at ``path``."""
    if not have_espeak():
        raise RuntimeError("espeak-ng is not installed: run the install command from README.md")
    cmd = ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a PCM16 WAV as float32 in [-1, 1], shape ``(samples, channels)``."""
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    return (data.reshape(-1, channels).astype(np.float32) / 32768.0), rate


def face_photo() -> np.ndarray:
    """A real, frontal, smiling face: scikit-image's astronaut (512x512 RGB uint8)."""
    from skimage import data

    return data.astronaut()


def canvas(
    photo: np.ndarray | None,
    size: tuple[int, int] = (640, 360),
    face_height: float = 0.9,
    centre_x: float = 0.5,
    background: int = 90,
) -> np.ndarray:
    """Place ``photo`` (scaled so its height is ``face_height`` of the frame) on a grey
    ``(width, height)`` frame, centred at ``centre_x`` of the width. ``None`` gives an empty
    frame (no face)."""
    from PIL import Image

    width, height = size
    frame = np.full((height, width, 3), background, np.uint8)
    if photo is None:
        return frame
    target_h = max(8, int(round(height * face_height)))
    target_w = max(8, int(round(photo.shape[1] * target_h / photo.shape[0])))
    img = np.asarray(Image.fromarray(photo).resize((target_w, target_h), Image.BILINEAR))
    x0 = int(round(centre_x * width - target_w / 2))
    y0 = (height - target_h) // 2
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(width, x0 + target_w), min(height, y0 + target_h)
    frame[ys:ye, xs:xe] = img[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return frame


def make_clip(
    path: Path,
    frame: np.ndarray | Callable[[int, float], np.ndarray] | None,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    duration: float | None = None,
    fps: int = 25,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    rotation: int = 0,
    frame_times: Sequence[float] | None = None,
) -> Path:
    """Mux a clip with PyAV.

    ``frame`` is an RGB image used for every frame, or ``f(index, time) -> image``, or
    ``None`` for audio only. ``audio`` is float32 ``(samples,)`` or ``(samples, channels)``
    at ``sample_rate``, or ``None`` for video only. ``duration`` defaults to the audio's.
    ``frame_times`` gives explicit presentation times (variable frame rate).
    ``rotation`` writes display-matrix rotation metadata (degrees clockwise that a player
    turns the stored frames to show them upright, e.g. 90 for a phone held upright).
    """
    if audio is not None and audio.ndim == 1:
        audio = audio[:, None]
    if duration is None:
        if audio is None:
            raise ValueError("duration is needed without audio")
        duration = len(audio) / sample_rate
    with av.open(str(path), "w") as out:
        vstream = astream = None
        if frame is not None:
            first = frame(0, 0.0) if callable(frame) else frame
            vstream = out.add_stream(video_codec, rate=fps)
            vstream.width, vstream.height = first.shape[1], first.shape[0]
            vstream.pix_fmt = "yuv420p"
            tb = Fraction(1, 1000) if frame_times is not None else Fraction(1, fps)
            vstream.time_base = tb
            vstream.codec_context.time_base = tb
            if rotation:
                # A real display matrix (modern FFmpeg ignores a ``rotate`` tag on write).
                # ``rotation`` is clockwise, as players apply it (the legacy tag's sense);
                # FFmpeg's matrix angle is counter-clockwise.
                vstream.set_display_rotation(-rotation)
        if audio is not None:
            layout = "mono" if audio.shape[1] == 1 else "stereo"
            astream = out.add_stream(audio_codec, rate=sample_rate, layout=layout)
        if vstream is not None:
            times = (
                list(frame_times)
                if frame_times is not None
                else [i / fps for i in range(int(round(duration * fps)))]
            )
            for i, t in enumerate(times):
                img = frame(i, t) if callable(frame) else frame
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                vf.pts = int(round(t * 1000)) if frame_times is not None else i
                for packet in vstream.encode(vf):
                    out.mux(packet)
            for packet in vstream.encode():
                out.mux(packet)
        if astream is not None:
            pcm = np.clip(audio, -1, 1)
            pcm = (pcm * 32767).astype(np.int16)
            step = 1024
            for start in range(0, len(pcm), step):
                chunk = np.ascontiguousarray(pcm[start : start + step].reshape(1, -1))
                af = av.AudioFrame.from_ndarray(chunk, format="s16", layout=astream.layout.name)
                af.sample_rate = sample_rate
                af.pts = start
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate (substitutions + deletions + insertions over reference words),
    case- and punctuation-insensitive."""

    def norm(text: str) -> list[str]:
        keep = "".join(c.lower() if c.isalnum() or c in " '" else " " for c in text)
        return keep.split()

    ref, hyp = norm(reference), norm(hypothesis)
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return float(d[len(hyp)]) / max(1, len(ref))


def portrait() -> np.ndarray:
    """Head and shoulders of :func:`face_photo`: with ``canvas(portrait())`` the face is about
    a third of the frame height, as in a webcam answer."""
    return np.ascontiguousarray(face_photo()[0:300, 60:420])


def warp_points(
    image: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    box: tuple[int, int, int, int] | None = None,
    grid: int = 8,
) -> np.ndarray:
    """``image`` (uint8) re-rendered so that what was at the pixel points ``src`` (N, 2) is
    at ``dst`` (N, 2): a piecewise affine warp (scikit-image) inside ``box`` (``x0, y0, x1,
    y1``; the whole image by default), whose edges stay put (``grid`` points per side).
    A new image; outside ``box`` it is ``image``."""
    from skimage.transform import PiecewiseAffineTransform, warp

    h, w = image.shape[:2]
    x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
    xs, ys = np.linspace(x0, x1 - 1, grid), np.linspace(y0, y1 - 1, grid)
    border = np.array(
        [(x, y) for x in xs for y in (y0, y1 - 1)] + [(x, y) for y in ys for x in (x0, x1 - 1)]
    )
    source = np.vstack([np.asarray(src, np.float64), border]) - (x0, y0)
    target = np.vstack([np.asarray(dst, np.float64), border]) - (x0, y0)
    if hasattr(PiecewiseAffineTransform, "from_estimate"):
        transform = PiecewiseAffineTransform.from_estimate(target, source)
    else:  # scikit-image < 0.26
        transform = PiecewiseAffineTransform()
        transform.estimate(target, source)
    region = warp(
        image[y0:y1, x0:x1], transform, output_shape=(y1 - y0, x1 - x0), preserve_range=True
    )
    out = image.copy()
    out[y0:y1, x0:x1] = region.astype(np.uint8)
    return out
