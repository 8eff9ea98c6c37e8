"""The face stage's option values and defaults, in one light module (no OpenCV, no models),
so that command-line parsing and settings can name them without loading the face code."""

from __future__ import annotations

__all__ = ["ENGINES", "DEFAULT_ENGINE", "DEFAULT_LANDMARK_FPS"]

ENGINES: tuple[str, ...] = ("litert", "tasks")
"""Face engines: ``litert`` runs MediaPipe's face models directly on LiteRT (the default);
``tasks`` runs them through the MediaPipe Tasks API (the reference it is tested against)."""

DEFAULT_ENGINE = "litert"

DEFAULT_LANDMARK_FPS = 1.0
"""Whole clips and live sessions: full face landmarks (478 points, blendshapes, pitch) about
this many times per second; the short-range detector's keypoints follow the face on the
analysis frames between (box, crop, yaw, roll at the full analysis rate), and blendshapes and
pitch are interpolated between landmark frames (live: once the next landmark frame arrives,
before the frames between are final). 0: landmarks on every analysis frame.

The trade-off: fewer landmark frames make the face stage cheaper, and expressions of a second
or longer keep most of their blendshape excursion at 1.0 fps, but sub-second ones are mostly
lost (they survive far better at 1.7); head shakes are read from the keypoints at the full
rate either way. Use 1.7, or 0, when sub-second expressions matter. The figures are in
``bench/README.md``: ``landmark_rate.py`` (what each rate keeps) and ``analyze.py`` (its cost,
against the ``fer`` package). See ``ahmer.preprocessing.faces`` (tiered mode)."""
