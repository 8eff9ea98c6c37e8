"""The rate every audio signal of the pipeline is decoded to, in a light module (no numpy):
the model contract and the command line name it without importing numpy."""

from __future__ import annotations

__all__ = ["SAMPLE_RATE"]

SAMPLE_RATE = 16000  # Hz: the one rate audio is decoded to and analysed at (mono float32)
