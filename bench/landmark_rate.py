"""What the tiered face stage's landmark rate costs in cue quality, and what it saves in time.

Run from the repository root with the project's venv::

    .venv/bin/python bench/landmark_rate.py                    # k = 1 (reference), 3, 5, 10
    .venv/bin/python bench/landmark_rate.py --every 2 3 4 5 --json out.json

Between landmark frames (``FaceAnalyzer(landmarks_every=k)``) blendshapes are carried,
then interpolated offline; yaw, pitch, roll, box and crop follow the face at the full
analysis rate (see ``ahmer.preprocessing.faces``). This script measures what that does to
the visual cues on a face that *moves*: a real face photo (``tests/media.py``'s portrait, as
``bench/analyze.py`` frames it) re-rendered frame by frame with its own face mesh deformed
(piecewise affine warps of the landmarks):

- brow raises and brow furrows, gaze turned aside and down (the irises moved inside the eye
  contours), lip presses, head shakes (the mesh turned about the vertical axis, 1-2 Hz),
  and talking (the jaw opening and closing at ~3-4 syllables per second), as events of
  0.4-3 s with smooth onsets and offsets, separated by 0.3-1.5 s, over ``--duration``
  seconds at ``--fps`` analysis frames per second, with a slow sway of the whole frame.

For every ``k`` the same frames run through a fresh analyzer (as the pipeline runs them:
tiered, then :func:`interpolate_landmark_gaps`), and the visual cues of
``ahmer.models.fusion.cues.compute_cues`` are compared with ``k = 1`` (landmarks on every frame):
mean absolute difference per cue over all frames; and *peak kept*: for each event, how much
of the excursion of what it moves (the mean of its blendshapes, :data:`SIGNAL_OF`, or yaw's
peak-to-peak for head shakes) above that signal's resting level (its median over frames
without events, at ``k = 1``) survives at ``k`` (the rendered events move the blendshapes
by 0.05-0.5, less than real expressions, so the thresholded cues see few of them; events
whose reference excursion is below 0.03, or 3 degrees, are left out).
Face-stage time per frame is printed next to them (medians of ``--repeat`` passes).

The rendering is synthetic: warps of one photo, not real facial motion. Its numbers say how
sampling and interpolation degrade what the face mesh sees, not how well the cues read real
people. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "make_events", "render_frames"]

ROOT = Path(__file__).resolve().parent.parent

# MediaPipe face-mesh landmark indices (canonical topology)
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283)
INNER_BROWS = ((107, 1), (66, 1), (55, 1), (65, 1), (336, -1), (296, -1), (285, -1), (295, -1))
IRISES = tuple(range(468, 478))
UPPER_INNER_LIP = (13, 82, 81, 80, 191, 312, 311, 310, 415)
LOWER_INNER_LIP = (14, 87, 178, 88, 95, 317, 402, 318, 324)
LOWER_OUTER_LIP = (17, 84, 181, 91, 146, 314, 405, 321, 375)
MOUTH_CORNERS = ((61, 1), (291, -1), (78, 1), (308, -1))
UPPER_LIDS = (159, 158, 157, 173, 160, 161, 246, 386, 385, 384, 398, 387, 388, 466)
CHIN = 152

KINDS = ("brow_raise", "brow_furrow", "gaze_aside", "gaze_down", "lip_press", "shake", "talk")
SIGNAL_OF = {  # what the face stage reports that each kind of event moves
    "brow_raise": ("browInnerUp",),
    "brow_furrow": ("browDownLeft", "browDownRight"),
    "gaze_aside": ("eyeLookOutLeft", "eyeLookInRight"),
    "gaze_down": ("eyeLookDownLeft", "eyeLookDownRight"),
    "lip_press": ("mouthPressLeft", "mouthPressRight", "mouthRollLower"),
    "talk": ("jawOpen",),
    "shake": ("yaw",),
}
VISUAL_CUES = ("gaze_aversion", "head_shake", "brow_tension", "lip_press")


def _test_media():
    spec = importlib.util.spec_from_file_location("_ahmer_test_media", ROOT / "tests/media.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_events(duration: float, seed: int = 0) -> list[dict]:
    """Events one after another: kind (cycling through :data:`KINDS` in a shuffled order),
    start and end (s), amplitude 0.6-1."""
    rng = np.random.default_rng(seed)
    events, t, order = [], 0.5, []
    while True:
        if not order:
            order = list(rng.permutation(KINDS))
        kind = order.pop()
        length = float(
            rng.uniform(1.5, 3.0) if kind in ("talk", "shake") else rng.uniform(0.4, 3.0)
        )
        if t + length > duration - 0.3:
            break
        events.append(
            {"kind": kind, "start": t, "end": t + length, "amplitude": float(rng.uniform(0.6, 1.0))}
        )
        t += length + float(rng.uniform(0.3, 1.5))
    return events


def _envelope(t: float, start: float, end: float, ramp: float = 0.15) -> float:
    """0 outside, 1 inside, raised-cosine ramps of ``ramp`` s at both ends."""
    if t <= start or t >= end:
        return 0.0
    r = min(ramp, (end - start) / 2)
    edge = min(t - start, end - t)
    return 1.0 if edge >= r else 0.5 - 0.5 * math.cos(math.pi * edge / r)


def _offsets(p: np.ndarray, kind: str, a: float, t: float, face_h: float) -> tuple:
    """Per-landmark pixel displacement ``(478, 2)`` of one event at strength ``a`` (0..1),
    and a head yaw in degrees."""
    d = np.zeros((len(p), 2))
    u = face_h / 100.0  # displacements in percent of the face height
    yaw = 0.0
    if kind == "brow_raise":
        d[list(BROWS), 1] -= 5 * u * a
    elif kind == "brow_furrow":
        d[list(BROWS), 1] += 2 * u * a
        for i, side in INNER_BROWS:
            d[i] += (2.5 * u * a * side, 3 * u * a)
    elif kind == "gaze_aside":
        d[list(IRISES), 0] += 5 * u * a
    elif kind == "gaze_down":
        d[list(IRISES), 1] += 3 * u * a
        d[list(UPPER_LIDS), 1] += 1.5 * u * a
    elif kind == "lip_press":
        d[list(UPPER_INNER_LIP), 1] += 1.2 * u * a
        d[list(LOWER_INNER_LIP), 1] -= 1.2 * u * a
        d[list(LOWER_OUTER_LIP), 1] -= 2 * u * a
        for i, side in MOUTH_CORNERS:
            d[i, 0] += 1.0 * u * a * side
    elif kind == "talk":  # the jaw opens and closes, ~3.5 syllables per second
        opening = a * (0.5 - 0.5 * math.cos(2 * math.pi * 3.5 * t))
        top = p[list(LOWER_INNER_LIP), 1].min()
        span = max(p[CHIN, 1] - top, 1.0)
        w = np.clip((p[:, 1] - top) / span * 1.5 + 0.4, 0, 1) * (p[:, 1] >= top - 0.5)
        d[:, 1] += 6 * u * opening * w
    elif kind == "shake":
        yaw = 12 * a * math.sin(2 * math.pi * 1.5 * t)
    return d, yaw


def render_frames(duration: float, fps: float, seed: int = 0):
    """The analysis frames (640x360 RGB), their times, and the events."""
    from ahmer.models.store.model_store import ModelStore
    from ahmer.preprocessing.faces import FaceAnalyzer

    media = _test_media()
    base = media.canvas(media.portrait())
    h, w = base.shape[:2]
    with FaceAnalyzer(ModelStore().path("face_landmarker")) as fa:
        found = fa.process(base, 0.0)
    if not found:
        raise SystemExit("the face analyzer found no face on the base frame")
    p = found[0].landmarks.astype(np.float64) * (w, h, w)
    lo, hi = p[:, :2].min(0), p[:, :2].max(0)
    face_h = float(hi[1] - lo[1])
    x0, y0 = np.maximum(0, np.floor(lo - 0.35 * (hi - lo))).astype(int)
    x1, y1 = np.minimum((w, h), np.ceil(hi + 0.35 * (hi - lo))).astype(int)
    centre = p.mean(0)
    events = make_events(duration, seed)
    n = int(round(duration * fps))
    times = np.arange(n) / fps
    frames = []
    for t in times:
        d = np.zeros((len(p), 2))
        yaw = 0.0
        for e in events:
            env = _envelope(t, e["start"], e["end"])
            if env > 0:
                dd, yy = _offsets(p, e["kind"], e["amplitude"] * env, t, face_h)
                d += dd
                yaw += yy
        moved = p[:, :2] + d
        if yaw:
            th = math.radians(yaw)
            moved[:, 0] = (
                centre[0]
                + (moved[:, 0] - centre[0]) * math.cos(th)
                - (p[:, 2] - centre[2]) * math.sin(th)
            )
        image = base
        if np.abs(d).max() > 0.05 or yaw:
            image = media.warp_points(base, p[:, :2], moved, (x0, y0, x1, y1), grid=8)
        dx = int(round(6 * math.sin(2 * math.pi * t / 3.1)))
        dy = int(round(3 * math.sin(2 * math.pi * t / 2.3)))
        frames.append(np.roll(image, (dy, dx), axis=(0, 1)))
    return frames, times, events


def _cues(faces, times, fps: float) -> dict[str, np.ndarray]:
    """The visual cues of ``compute_cues`` for the primary face of each frame."""
    from ahmer.models.fusion.cues import CUE_NAMES, compute_cues
    from ahmer.preprocessing.faces import BLENDSHAPE_NAMES
    from ahmer.preprocessing.timeline import MediaInfo, Timeline

    info = MediaInfo("synthetic", float(times[-1] + 1 / fps), True, False, 640, 360)
    tl = Timeline.empty(np.asarray(times, np.float64), fps, info, len(BLENDSHAPE_NAMES))
    tl.blendshape_names = list(BLENDSHAPE_NAMES)
    for i, found in enumerate(faces):
        if found:
            tl.masks["face"][i] = True
            tl.head_pose[i] = found[0].pose
            tl.blendshapes[i] = found[0].blendshapes
    cues = compute_cues(tl, None).cues
    return {c: cues[:, CUE_NAMES.index(c)] for c in VISUAL_CUES}


def _signals(faces) -> dict[str, np.ndarray]:
    """Per frame, the primary face's mean of each event kind's blendshapes, and its yaw."""
    from ahmer.preprocessing.faces import BLENDSHAPE_NAMES

    out = {}
    for kind, names in SIGNAL_OF.items():
        values = np.full(len(faces), np.nan)
        for i, found in enumerate(faces):
            if found:
                if names == ("yaw",):
                    values[i] = found[0].pose[0]
                else:
                    values[i] = np.mean(
                        [found[0].blendshapes[BLENDSHAPE_NAMES.index(n)] for n in names]
                    )
        out[kind] = values
    return out


def measure(frames, times, fps: float, k: int, repeat: int) -> dict:
    from ahmer.models.store.model_store import ModelStore
    from ahmer.preprocessing.faces import FaceAnalyzer, interpolate_landmark_gaps

    store = ModelStore()
    passes, faces, fresh = [], None, 0
    for _ in range(repeat):
        with FaceAnalyzer(
            store.path("face_landmarker"),
            detector_path=store.path("face_detector_full_range"),
            landmarks_every=k,
            face_search_every=5,
            threads=2,
        ) as fa:
            fa.process(np.array(frames[0]), -1.0)  # warm-up, untimed
            spent, out = 0.0, []
            for image, t in zip(frames, times, strict=True):
                image = np.array(image)
                start = time.perf_counter()
                out.append(fa.process(image, float(t)))
                spent += time.perf_counter() - start
            fresh = fa.counters["landmark_frames"] - 1
        passes.append(spent / len(frames))
        faces = out
    if k > 1:
        faces = interpolate_landmark_gaps(faces, times)
    return {
        "k": k,
        "landmark_fps": fps / k,
        "per_frame_s": statistics.median(passes),
        "landmark_frames": fresh,
        "frames_with_face": sum(1 for f in faces if f),
        "cues": _cues(faces, times, fps),
        "signals": _signals(faces),
    }


def compare(ref: dict, run: dict, events: list[dict], times: np.ndarray) -> dict:
    out = {"mad": {}, "peak_kept": {}, "events": []}
    for cue in VISUAL_CUES:
        out["mad"][cue] = float(np.abs(run["cues"][cue] - ref["cues"][cue]).mean())
    quiet = np.ones(len(times), bool)
    for e in events:
        quiet &= ~((times >= e["start"] - 0.2) & (times <= e["end"] + 0.2))
    for kind in SIGNAL_OF:
        ratios = []
        for e in events:
            sel = (times >= e["start"]) & (times <= e["end"])
            if e["kind"] != kind or not sel.any():
                continue
            a, b = ref["signals"][kind][sel], run["signals"][kind][sel]
            if kind == "shake":  # peak-to-peak yaw
                rest, floor = 0.0, 3.0
                excursion = float(np.nanmax(a) - np.nanmin(a))
                kept = float(np.nanmax(b) - np.nanmin(b))
            else:
                rest, floor = float(np.nanmedian(ref["signals"][kind][quiet])), 0.03
                excursion = float(np.nanmax(a)) - rest
                kept = float(np.nanmax(b)) - rest
            if excursion >= floor:
                ratios.append(kept / excursion)
                out["events"].append(
                    {"kind": kind, "length": e["end"] - e["start"], "kept": kept / excursion}
                )
        out["peak_kept"][kind] = {
            "events": len(ratios),
            "mean": float(np.mean(ratios)) if ratios else None,
            "min": float(np.min(ratios)) if ratios else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, nargs="+", default=[3, 5, 10], metavar="K")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of frames")
    parser.add_argument("--fps", type=float, default=5.0, help="analysis frame rate")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per k (median)")
    parser.add_argument("--seed", type=int, default=0, help="event schedule")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    args = parser.parse_args(argv)
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()
    if any(k < 2 or k > 100 for k in args.every):
        parser.error("--every values must be in 2..100 (1 is the reference, always run)")
    if args.repeat < 1 or not 2.0 <= args.duration <= 600 or not 0.5 <= args.fps <= 30:
        parser.error("--repeat >= 1, --duration in 2..600 s, --fps in 0.5..30")

    print(f"rendering {args.duration:g} s at {args.fps:g} fps ...", flush=True)
    t = time.perf_counter()
    frames, times, events = render_frames(args.duration, args.fps, args.seed)
    counts = {k: sum(1 for e in events if e["kind"] == k) for k in KINDS}
    print(
        f"  {len(frames)} frames, {len(events)} events {counts} in {time.perf_counter() - t:.0f} s"
    )

    ref = measure(frames, times, args.fps, 1, args.repeat)
    runs = [measure(frames, times, args.fps, k, args.repeat) for k in sorted(set(args.every))]
    rows = [(run, compare(ref, run, events, times)) for run in runs]

    print(
        f"\nface stage (2 LiteRT threads, nothing else running), ms per frame; "
        f"k = 1: {ref['per_frame_s'] * 1000:.2f} ms"
    )
    head = f"  {'k':>3} {'lm fps':>7} {'ms/frame':>9} {'speed-up':>9}"
    print(head + "".join(f" {c:>14}" for c in VISUAL_CUES))
    for run, cmp in rows:
        line = (
            f"  {run['k']:>3} {run['landmark_fps']:>7.2f} {run['per_frame_s'] * 1000:>9.2f} "
            f"{ref['per_frame_s'] / run['per_frame_s']:>8.1f}x"
        )
        print(line + "".join(f" {cmp['mad'][c]:>14.3f}" for c in VISUAL_CUES))
    print("  (cue columns: mean absolute difference from k = 1 over all frames, cues in 0..1)")
    print("\npeak kept (an event's excursion at k / at k = 1; mean, min (events))")
    print(f"  {'event':<12}" + "".join(f" {'k=' + str(r['k']):>14}" for r, _ in rows))
    for kind in SIGNAL_OF:
        cells = []
        for _, cmp in rows:
            pk = cmp["peak_kept"][kind]
            cells.append(
                f"{pk['mean']:.2f}, {pk['min']:.2f} ({pk['events']})" if pk["events"] else "-"
            )
        print(f"  {kind:<12}" + "".join(f" {c:>14}" for c in cells))

    print("\npeak kept by event length, expression events (brows, gaze): mean, min (events)")
    bins = ((0.0, 1.0), (1.0, 2.0), (2.0, 99.0))
    print(f"  {'length':<12}" + "".join(f" {'k=' + str(r['k']):>14}" for r, _ in rows))
    for lo, hi in bins:
        cells = []
        for _, cmp in rows:
            kept = [
                e["kept"]
                for e in cmp["events"]
                if e["kind"].startswith(("brow", "gaze")) and lo <= e["length"] < hi
            ]
            cells.append(f"{np.mean(kept):.2f}, {np.min(kept):.2f} ({len(kept)})" if kept else "-")
        label = f"{lo:g}-{hi:g} s" if hi < 99 else f">= {lo:g} s"
        print(f"  {label:<12}" + "".join(f" {c:>14}" for c in cells))

    host = machine.finish()
    if args.json:
        doc = {
            "machine": host,
            "duration": args.duration,
            "fps": args.fps,
            "events": events,
            "reference": {k: v for k, v in ref.items() if k not in ("cues", "signals")},
            "runs": [
                {**{k: v for k, v in run.items() if k not in ("cues", "signals")}, **cmp}
                for run, cmp in rows
            ],
        }
        args.json.write_text(json.dumps(doc, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
