"""``ahmer sample OUT.mp4``: the README's example clip, made on this machine, so a newcomer has
media to try ``ahmer analyze`` and the server on.

espeak-ng speaks a hesitant answer over a webcam-like frame of a real face photo: the model
store's ``sample_face`` (a pinned member of a PyPI wheel, like the models), never a
development package. The clip is H.264 + AAC in MP4, as tests/serving.py's ``speech_clip``
makes them: a 640x360 frame at 15 fps, 16 kHz mono audio, silence before and after the words.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from ahmer.models.contract import SAMPLE_RATE
from ahmer.preprocessing.errors import Internal

from ..files import UsageError, check_output_path, write_output_bytes
from .args import examples

__all__ = ["DEFAULT_TEXT", "SampleError", "add_sample_parser", "make_sample", "run_sample"]

DEFAULT_TEXT = "I guess maybe I could try, but I'm not sure, um, I don't know."
MAX_TEXT = 1000  # characters: an answer, not a book
FRAME_SIZE = (640, 360)  # width, height
FPS = 15
TAIL_SECONDS = 0.5
HEAD_AND_SHOULDERS = (slice(0, 300), slice(60, 420))  # of the pinned 512x512 photo
ESPEAK_HINT = "install espeak-ng (apt-get install espeak-ng)"


class SampleError(Internal, RuntimeError):
    """The clip cannot be made here (no espeak-ng, or it failed); the message says why."""


def add_sample_parser(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="write an example clip (a real face, espeak-ng speaking a hesitant answer)",
        description="Write the README's example clip to OUT: espeak-ng speaking TEXT over a "
        "webcam-like frame of a real face photo from the model store (H.264 + AAC in MP4, "
        "whatever OUT's suffix). Needs espeak-ng and `ahmer models build`.",
        **examples(
            "ahmer sample answer.mp4 && ahmer analyze answer.mp4",
            "ahmer sample sure.mp4 --text 'Yes. I will quit smoking next week.'",
            "ahmer sample late.mp4 --lead 2   # two seconds of silence first",
        ),
    )
    p.add_argument("out", type=Path, metavar="OUT", help="where to write the clip (.mp4)")
    p.add_argument("--text", default=DEFAULT_TEXT, help=f"what to say (default: {DEFAULT_TEXT!r})")
    p.add_argument(
        "--lead",
        type=_lead,
        default=0.3,
        metavar="SECONDS",
        help="silence before the words, 0..30 s (0.3)",
    )
    p.set_defaults(func=run_sample)


def _lead(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 30:
        raise argparse.ArgumentTypeError(f"must be 0..30 seconds, got {text}")
    return value


def run_sample(args: argparse.Namespace) -> int:
    text = args.text.strip()
    if not text:
        raise UsageError("--text is empty: give the words to speak")
    if len(text) > MAX_TEXT:
        raise UsageError(f"--text is {len(text)} characters, more than {MAX_TEXT}")
    check_output_path(args.out)  # before any work
    data, seconds = make_sample(text, args.lead)
    write_output_bytes(args.out, data)
    width, height = FRAME_SIZE
    print(
        f"{args.out}: {seconds:.1f} s, {width}x{height} at {FPS} fps with speech; "
        f"try: ahmer analyze {args.out}",
        file=sys.stderr,
    )
    return 0


def make_sample(text: str = DEFAULT_TEXT, lead: float = 0.3) -> tuple[bytes, float]:
    """The MP4 bytes of the example clip and its duration in seconds."""
    import numpy as np

    from ahmer.models.contract import SAMPLE_FACE
    from ahmer.models.store.model_store import ModelStore

    photo = ModelStore().path(SAMPLE_FACE)  # checked against its pinned sha256
    words = _speak(text)
    audio = np.concatenate(
        [
            np.zeros(int(lead * SAMPLE_RATE), np.float32),
            words,
            np.zeros(int(TAIL_SECONDS * SAMPLE_RATE), np.float32),
        ]
    )
    return _mux(_webcam_frame(photo), audio), len(audio) / SAMPLE_RATE


def _speak(text: str):
    """espeak-ng's speech of ``text`` as float32 mono at :data:`SAMPLE_RATE`."""
    import numpy as np
    from scipy.signal import resample_poly

    if shutil.which("espeak-ng") is None:
        raise SampleError(f"espeak-ng is not installed: {ESPEAK_HINT}")
    with tempfile.TemporaryDirectory(prefix="ahmer-sample-") as tmp:
        wav = Path(tmp) / "speech.wav"
        cmd = ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), "--stdin"]
        try:  # the text on stdin: never taken for an option
            proc = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SampleError(f"could not run espeak-ng ({exc}): {ESPEAK_HINT}") from exc
        if proc.returncode != 0 or not wav.is_file():
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise SampleError(f"espeak-ng failed (exit code {proc.returncode}): {last}")
        with wave.open(str(wav), "rb") as w:
            rate, channels = w.getframerate(), w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    if not len(pcm):
        raise SampleError("espeak-ng spoke nothing: give --text some words")
    mono = pcm.reshape(-1, channels)[:, 0].astype(np.float32) / 32768.0
    return resample_poly(mono, SAMPLE_RATE, rate).astype(np.float32)


def _webcam_frame(photo_path: Path):
    """Head and shoulders of the photo on a grey 640x360 frame, the face about a third of
    the frame's height, as in a webcam answer."""
    import numpy as np
    from PIL import Image

    with Image.open(photo_path) as img:
        photo = np.asarray(img.convert("RGB"))[HEAD_AND_SHOULDERS]
    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 90, np.uint8)
    target_h = int(round(height * 0.9))
    target_w = int(round(photo.shape[1] * target_h / photo.shape[0]))
    scaled = Image.fromarray(photo).resize((target_w, target_h), Image.BILINEAR)
    x0, y0 = (width - target_w) // 2, (height - target_h) // 2
    frame[y0 : y0 + target_h, x0 : x0 + target_w] = np.asarray(scaled)
    return frame


def _mux(frame, audio) -> bytes:
    """``frame`` held for the length of ``audio``, H.264 + AAC in MP4."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height = frame.shape[1], frame.shape[0]
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for i in range(int(round(len(audio) / SAMPLE_RATE * FPS))):
            image.pts = i
            out.mux(video.encode(image))
        out.mux(video.encode())
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            chunk = av.AudioFrame.from_ndarray(
                pcm[None, start : start + 1024], format="s16", layout="mono"
            )
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    return buffer.getvalue()
