"""The contract facts: names and numbers that the models, the result JSON, the CSV and Parquet
tables, the gRPC API and the model store all rely on, each written here once.

Everything else imports them from here and never re-types them. The audio sample rate is a
fact of preprocessing (which cannot import ``models``), so it is defined in
:mod:`ahmer.preprocessing.timeline` and re-exported here for ``models`` and ``service``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ahmer.preprocessing.options import DEFAULT_FPS
from ahmer.preprocessing.rates import SAMPLE_RATE

__all__ = [
    "DEFAULT_FPS",
    "FACE_DETECTOR_FULL",
    "FACE_DETECTOR_SHORT",
    "FACE_LANDMARKER",
    "FER_MODEL",
    "SAMPLE_FACE",
    "SEGMENT_GAP",
    "TEXT_MODEL",
    "WHISPER_MODEL",
    "AH_LABELS",
    "ATTRIBUTION_NAMES",
    "EMBED_DIM",
    "EMOTIONS",
    "FACE_EMBED_DIM",
    "FUSION_CONTRACT",
    "FUSION_CONTRACT_V1",
    "FUSION_MODEL",
    "MASK_NAMES",
    "RESULT_SCHEMA",
    "SAMPLE_RATE",
    "TensorSpec",
    "VOICE_EMBED_DIM",
]

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013's classes in the order of fer's mini-Xception outputs: the ``fer_emotion`` model's
output columns, the fusion graph's ``emotion`` input, the keys of a frame's ``emotion``."""

MASK_NAMES: tuple[str, ...] = ("visual", "vocal", "verbal")
"""The modalities, in the order of the fusion graph's ``masks`` columns; the keys of a frame's
``modalities``."""

ATTRIBUTION_NAMES: tuple[str, ...] = (*MASK_NAMES, "cross_modal")
"""The fusion graph's ``attribution`` columns; the keys of a frame's ``attribution``."""

AH_LABELS: tuple[str, ...] = ("no_ah", "ah")
"""The A/H classes: ``ah_label`` 0 and 1."""

EMBED_DIM = 384
"""Width of a text embedding: the ``minilm`` output, the fusion graph's ``text_emb`` input."""

FACE_EMBED_DIM = 128
"""Width of a face embedding: the ``fer_emotion`` model's ``embedding`` output (its last
residual block, global-average-pooled), the fusion graph's ``face_emb`` input."""

VOICE_EMBED_DIM = 384
"""Width of a voice embedding: Whisper tiny's encoder states (d_model 384) pooled to the
analysis frames, the fusion graph's ``voice_emb`` input."""

FUSION_CONTRACT = "ahmer.fusion/3"
"""The fusion graph's inputs and outputs (:mod:`ahmer.models.fusion.graph`), stored in its metadata
and named by every result (``models["fusion_contract"]``). Contract 3 added the delivery and
head/word conflict cues (18 cue columns), the stated-ambivalence feature from a prototype
bank, the presence scaling of contributions and the ``prototype_match`` output."""

FUSION_CONTRACT_V1 = "ahmer.fusion/1"
"""The contract before the face and voice embeddings and the learned terms: results that do
not name a contract were made by it."""

FUSION_MODEL = "ah_fusion_zeroshot"
"""The model store's fusion artifact (the zero-shot cue prior weights)."""

# The model store's other artifact names (``<store>/<name>/``, the manifest's keys, the Triton
# repository's model names and ``GetModels``' entries).
FACE_LANDMARKER = "face_landmarker"
"""MediaPipe's face landmarker bundle: 478 landmarks, 52 blendshapes, head pose."""
FACE_DETECTOR_FULL = "face_detector_full_range"
"""MediaPipe's full-range face detector (small, distant faces)."""
FACE_DETECTOR_SHORT = "face_detector_short_range"
"""MediaPipe's short-range face detector (webcam distance)."""
FER_MODEL = "fer_emotion"
"""The FER2013 mini-Xception facial emotion model (ONNX)."""
TEXT_MODEL = "minilm"
"""all-MiniLM-L6-v2 sentence embeddings, pooled and normalised in the graph (ONNX)."""
WHISPER_MODEL = "whisper_tiny_en"
"""Whisper tiny.en in CTranslate2 format (speech recognition and the voice embedding)."""
SAMPLE_FACE = "sample_face"
"""The face photo of ``ahmer sample``'s example clip: media, kept in the store like a model so
it comes from a pinned wheel too, not from a development package at run time."""

SEGMENT_GAP = 0.4
"""Seconds: A/H segments are the spans where the frame probability is over the threshold,
with gaps shorter than this bridged (the explanation and the report both use it)."""

RESULT_SCHEMA = "ahmer.result/1"
"""The ``schema`` of the result JSON (:class:`ahmer.models.results.AnalysisResult`)."""


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor of a model's signature.

    ``dtype`` is a numpy dtype name (``"float32"``, ``"int64"``, ...). ``shape`` holds an
    ``int`` for a fixed axis, a ``str`` for a named dynamic axis (axes with the same name must
    agree across the inputs of one call) and ``None`` for an unnamed dynamic axis.
    """

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype} [{dims}]"
