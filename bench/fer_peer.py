"""The peer side of ``bench/analyze.py``: the ``fer`` package's own per-frame pipeline.

Runs inside the peer's own virtual environment (``fer==25.10.3``, ``tensorflow-cpu``,
``opencv-python-headless<5``; ``bench/analyze.py`` makes it), never inside ahmer's: it must
not import anything from ahmer. It reads the exact analysis frames ahmer analysed (an RGB
``uint8 [T, H, W, 3]`` ``.npy`` written by ``analyze.py``, memory-mapped), and times
``FER(mtcnn=False).detect_emotions(frame)`` per frame: fer's default OpenCV Haar-cascade
detector, then its mini-Xception on every face found (by default the int8 TFLite model that
fer 25.x runs through ``tf.lite.Interpreter``; ``--variant keras`` runs the Keras ``.hdf5``).

Decoding is excluded: frames are already decoded. fer reads OpenCV's BGR order, so each
frame is turned to BGR (and made contiguous) before its timer starts. One warm-up frame is
run first, untimed. Writes one JSON document with per-frame times and labels and the peak RSS
of this process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import time
import warnings

__all__ = ["main"]

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _largest(faces: list[dict]) -> dict | None:
    """fer returns faces in detector order; the bench compares the largest one (ahmer's
    primary face is the main, usually the largest, face too)."""
    if not faces:
        return None
    return max(faces, key=lambda f: int(f["box"][2]) * int(f["box"][3]))


def run(frames_path: str, repeat: int, variant: str) -> dict:
    t0 = time.perf_counter()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import cv2
    import numpy as np

    try:
        from fer import FER
    except ImportError:  # fer 25.10.3's __init__ does not re-export FER
        from fer.fer import FER
    import fer as fer_pkg
    import tensorflow as tf

    detector = FER(mtcnn=False, use_tflite=(variant == "tflite"))
    load_s = time.perf_counter() - t0

    frames = np.load(frames_path, mmap_mode="r")
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise SystemExit(f"expected uint8 [T, H, W, 3] frames, got {frames.dtype} {frames.shape}")
    n = len(frames)

    def bgr(i: int) -> np.ndarray:
        return np.ascontiguousarray(frames[i][..., ::-1])

    detector.detect_emotions(bgr(0))  # warm-up, untimed

    passes: list[list[float]] = []
    found: list[dict | None] = []
    counts: list[int] = []
    for r in range(repeat):
        times = []
        for i in range(n):
            image = bgr(i)
            t = time.perf_counter()
            faces = detector.detect_emotions(image)
            times.append(time.perf_counter() - t)
            if r == 0:
                counts.append(len(faces))
                found.append(_largest(faces))
        passes.append(times)

    labels, probs, boxes = [], [], []
    for face in found:
        if face is None:
            labels.append(None)
            probs.append(None)
            boxes.append(None)
            continue
        scores = face["emotions"]
        labels.append(max(scores, key=lambda k: scores[k]))  # as fer's top_emotion
        probs.append([float(scores[e]) for e in EMOTIONS])
        boxes.append([int(v) for v in face["box"]])

    pass_means = [sum(p) / len(p) for p in passes]
    return {
        "system": f"fer {fer_pkg.__version__} Haar + mini-Xception {variant}",
        "variant": variant,
        "versions": {
            "fer": fer_pkg.__version__,
            "tensorflow": tf.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "frames": n,
        "frame_size": [int(frames.shape[2]), int(frames.shape[1])],
        "repeat": repeat,
        "load_s": load_s,
        "per_frame_s": statistics.median(pass_means),
        "per_frame_s_passes": pass_means,
        "per_frame_s_median_frame": statistics.median(passes[0]),
        "per_frame_s_max_frame": max(max(p) for p in passes),
        "faces_per_frame": counts,
        "frames_with_face": sum(1 for c in counts if c > 0),
        "labels": labels,
        "probs": probs,
        "boxes": boxes,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cpu_s": _cpu_s(),
        "pid": os.getpid(),
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", required=True, help="RGB uint8 [T, H, W, 3] .npy file")
    parser.add_argument("--out", required=True, help="JSON result file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variant", choices=("tflite", "keras"), default="tflite")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    result = run(args.frames, args.repeat, args.variant)
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
