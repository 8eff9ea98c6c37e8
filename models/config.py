"""The analysis configuration, once: :class:`AnalyzerConfig` and the table of the options a
user sets on it (:data:`ANALYSIS_OPTIONS`: name, parser, allowed values, help), from which
``ahmer analyze`` and ``ahmer score`` build their flags and ``ahmer serve`` its flags and
``AHMER_*`` variables. A light module (no numpy, no models), so command lines and settings
can be built without loading the pipeline.

Values are checked here, by the table's rules, whoever builds the config: a bad one raises
ValueError naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ahmer.preprocessing.face_options import DEFAULT_ENGINE, DEFAULT_LANDMARK_FPS, ENGINES
from ahmer.preprocessing.options import DEFAULT_FPS, RULES, Rule

__all__ = [
    "ANALYSIS_OPTIONS",
    "CallOptions",
    "result_options",
    "AnalysisOption",
    "AnalyzerConfig",
    "BACKENDS",
    "DEVICES",
    "parse_bool",
]

DEVICES: tuple[str, ...] = ("cpu", "cuda", "tensorrt", "auto")
"""Where the models run (see :mod:`ahmer.models.backends.ort`)."""

BACKENDS: tuple[str, ...] = ("onnxruntime", "triton")
"""What runs the models (see :func:`ahmer.models.backends.base.make_backend`)."""


def _one_of(values: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in values, "must be " + ", ".join(values[:-1]) + " or " + values[-1])


@dataclass
class AnalyzerConfig:
    """How an :class:`~ahmer.models.analyzer.Analyzer` analyses clips. The fields a user sets
    are those of :data:`ANALYSIS_OPTIONS` (checked on construction); the rest are set by
    code (threads, backend options)."""

    fps: float = DEFAULT_FPS
    backend: str = "onnxruntime"
    device: str = "cpu"
    threshold: float = 0.5
    whisper_model: str | Path | None = None  # default: the store's whisper_tiny_en
    asr_threads: int = 0  # CTranslate2 threads; 0: asr.auto_threads (by the cores)
    # tiered faces: full landmarks about this often; 0 = on every analysis frame
    landmark_fps: float = DEFAULT_LANDMARK_FPS
    face_engine: str = DEFAULT_ENGINE  # or "tasks" (MediaPipe Tasks, the reference; slower)
    max_cues: int = 8
    # partial media (a stream decoded short of its declared duration) is an error instead
    # of a warning (ahmer.preprocessing.truncation)
    strict: bool = False
    # the A/H fusion: "" = the store's zero-shot prior; else an installed fusion's name
    # (ahmer models add-fusion) or a path to a fusion .onnx or a training run folder
    fusion: str = ""
    # backend "triton": where Triton's gRPC endpoint is, TLS to it, seconds per call
    triton_url: str = "localhost:8001"
    triton_tls: bool = False
    triton_timeout: float = 30.0
    backend_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for option in ANALYSIS_OPTIONS:
            if option.rule is not None:
                option.rule.check(option.name, getattr(self, option.name))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (and empty: false), any case."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class CallOptions:
    """What one call of :meth:`~ahmer.models.analyzer.Analyzer.analyze` (or ``preprocess``)
    sets differently from the analyzer's :class:`AnalyzerConfig`: one object per call, so a
    caller (the CLI, the batch, a gRPC request) states its overrides in one place. ``None``
    keeps the configuration's value.

    ``fps``: analysis frames per second; ``language``: the ASR language (None: detected, or
    the model's only one); ``transcript_format``: the transcript's format when known (skips
    sniffing); ``strict``: refuse partial media (see ``AnalyzerConfig.strict``)."""

    fps: float | None = None
    language: str | None = None
    transcript_format: str | None = None
    strict: bool | None = None

    def config_changes(self, config: Any) -> dict[str, Any]:
        """The fields of ``config`` (a preprocessing configuration with ``fps``,
        ``language`` and ``strict``) these options change, as ``{field: value}``."""
        changes: dict[str, Any] = {}
        if self.fps is not None and self.fps != config.fps:
            changes["fps"] = self.fps
        if self.language and self.language != config.language:
            changes["language"] = self.language
        if self.strict is not None and self.strict != config.strict:
            changes["strict"] = self.strict
        return changes


@dataclass(frozen=True)
class AnalysisOption:
    """One field of :class:`AnalyzerConfig` as users set it: the flag ``--landmark-fps`` on
    every command line, the variable ``AHMER_LANDMARK_FPS`` for the server. A boolean
    option (parsed by :func:`parse_bool`) is a flag alone on the command lines
    (``--strict``)."""

    name: str  # the AnalyzerConfig field
    parse: Callable[[str], Any]  # text -> value; ValueError when the text is not one
    rule: Rule | None  # the values allowed (None: any here; the backend checks it on load)
    help: str  # on the command lines of one run (analyze, score)
    serve_help: str  # for the server, where the value is the default of every call
    choices: tuple[str, ...] | None = None  # offered as argparse choices
    changes_results: bool = False  # part of what a batch result is keyed on (batch_key)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "AHMER_" + self.name.upper()


ANALYSIS_OPTIONS: tuple[AnalysisOption, ...] = (
    AnalysisOption(
        "fps",
        _number,
        RULES["fps"],
        "analysis frames per second (5)",
        "default analysis frames per second",
        changes_results=True,
    ),
    AnalysisOption(
        "threshold",
        _number,
        Rule(lambda v: 0 < v < 1, "must be between 0 and 1"),
        "A/H decision threshold (0.5)",
        "A/H decision threshold",
        changes_results=True,
    ),
    AnalysisOption(
        "backend",
        str,
        _one_of(BACKENDS),
        "what runs the models (onnxruntime: in this process, the default)",
        "inference backend",
        choices=BACKENDS,
    ),
    AnalysisOption(
        "device",
        str,
        _one_of(DEVICES),
        "where the models run (cpu, the default; auto: the best available)",
        "where the models run",
        choices=DEVICES,
    ),
    AnalysisOption(
        "whisper_model",
        str,
        None,
        "CTranslate2 Whisper model folder or name",
        "CTranslate2 Whisper folder or name",
        changes_results=True,
    ),
    AnalysisOption(
        "landmark_fps",
        _number,
        RULES["landmark_fps"],
        "full face landmarks at about this rate, keypoint tracking between "
        f"({DEFAULT_LANDMARK_FPS:g}; 0 = on every analysis frame)",
        "full face landmarks per second",
        changes_results=True,
    ),
    AnalysisOption(
        "face_engine",
        str,
        RULES["face_engine"],
        "how MediaPipe's face models run: litert (directly, the default) or tasks "
        "(MediaPipe Tasks, the reference; slower)",
        "how MediaPipe's face models run",
        choices=ENGINES,
        changes_results=True,
    ),
    AnalysisOption(
        "strict",
        parse_bool,
        None,
        "refuse partial media: a clip whose video or audio decodes short of its declared "
        "duration (cut or damaged) is an error instead of a result with a warning",
        "refuse partial media (each call's options.strict overrides)",
    ),
    AnalysisOption(
        "fusion",
        str,
        None,
        "the A/H fusion: an installed fusion's name (ahmer models list), a fusion .onnx or a "
        "training run folder (default: the zero-shot prior)",
        "A/H fusion: installed name or path (default: the zero-shot prior)",
    ),
    AnalysisOption(
        "triton_url",
        str,
        Rule(lambda v: bool(str(v).strip()), "must be HOST:PORT"),
        "Triton's gRPC endpoint HOST:PORT, with --backend triton (localhost:8001)",
        "Triton's gRPC endpoint HOST:PORT (backend triton)",
    ),
    AnalysisOption(
        "triton_tls",
        parse_bool,
        None,
        "TLS to Triton (gRPC's default roots, or the CAs in $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH), "
        "with --backend triton",
        "TLS to Triton (backend triton)",
    ),
    AnalysisOption(
        "triton_timeout",
        _number,
        Rule(lambda v: 0 < v <= 3600, "must be between 0 and 3600 seconds"),
        "seconds a Triton call may take, retries of UNAVAILABLE included (30)",
        "seconds a Triton call may take, retries included",
    ),
)


def result_options(config: AnalyzerConfig) -> dict[str, Any]:
    """``{name: value}`` of the options that change results (``changes_results``), in the
    table's order: what a batch result records and is keyed on; where it runs (backend,
    device, threads) is not among them."""
    return {o.name: getattr(config, o.name) for o in ANALYSIS_OPTIONS if o.changes_results}
