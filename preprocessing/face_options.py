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

The trade-off, measured by ``bench/landmark_rate.py`` (rendered brow and gaze events of
0.4-3 s on a real face, 5 fps analysis, against landmarks on every frame): at 1.0 fps,
events of 1 s or longer keep 0.91-0.94 of their blendshape excursion on average (1.7 fps:
0.89-1.03) but events shorter than 1 s keep only ~0.2 (1.7 fps: ~0.6-0.7); head shakes are
read from the keypoints at the full rate either way. The face+emotion stage costs ~1.9 ms
per frame at 1.0 fps against ~2.5 at 1.7 (2 cores): 11.8-13.2x faster than the ``fer``
package at 1.0 fps, ~9.5x at 1.7 (``bench/analyze.py``, round by round). Use 1.7, or 0,
when sub-second expressions matter.
See ``ahmer.preprocessing.faces`` (tiered mode)."""
