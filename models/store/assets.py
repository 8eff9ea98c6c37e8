"""Wire store artifacts into the stages that need them."""

from __future__ import annotations

from ahmer.models.contract import (
    FACE_DETECTOR_FULL,
    FACE_DETECTOR_SHORT,
    FACE_LANDMARKER,
    WHISPER_MODEL,
)
from ahmer.models.store.model_store import ModelStore
from ahmer.preprocessing.pipeline import PreprocessConfig

__all__ = ["preprocess_config"]


def preprocess_config(store: ModelStore | None = None, **overrides) -> PreprocessConfig:
    """A :class:`PreprocessConfig` whose model paths come from the verified store.

    ``whisper_model`` may be overridden by a CTranslate2 model name or folder."""
    store = store or ModelStore()
    whisper = overrides.pop("whisper_model", None) or store.path(WHISPER_MODEL)
    return PreprocessConfig(
        face_landmarker=store.path(FACE_LANDMARKER),
        face_detector=store.path(FACE_DETECTOR_FULL),
        short_range_detector=store.path(FACE_DETECTOR_SHORT),
        whisper_model=whisper,
        **overrides,
    )
