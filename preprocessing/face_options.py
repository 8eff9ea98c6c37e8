"""The face stage's option values and defaults, in one light module (no OpenCV, no models),
so that command-line parsing and settings can name them without loading the face code."""

from __future__ import annotations

__all__ = ["ENGINES", "DEFAULT_ENGINE", "DEFAULT_LANDMARK_FPS"]

ENGINES: tuple[str, ...] = ("litert", "tasks")
"""Face engines: ``litert`` runs MediaPipe's face models directly on LiteRT (the default);
``tasks`` runs them through the MediaPipe Tasks API (the reference it is tested against)."""

DEFAULT_ENGINE = "litert"

DEFAULT_LANDMARK_FPS = 1.7
"""Whole clips: full face landmarks (478 points, blendshapes, pitch) about this many times
per second; the short-range detector's keypoints follow the face on the analysis frames
between (box, crop, yaw, roll at the full analysis rate). 0: landmarks on every analysis
frame. See ``ahmer.preprocessing.faces`` (tiered mode) and ``bench/landmark_rate.py``."""
