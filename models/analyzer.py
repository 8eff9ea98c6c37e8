"""The analysis pipeline, KServe-style: ``load`` / ``preprocess`` / ``predict`` /
``postprocess`` (which includes ``explain``). Readiness is set by ``load``.

One :class:`Analyzer` holds the loaded models and serves many clips; it is thread-safe for
concurrent ``analyze`` calls (ONNX Runtime sessions and CTranslate2 models are).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ahmer.models.backends.base import InferenceBackend
from ahmer.models.backends.factory import backend_options, make_backend
from ahmer.models.config import AnalyzerConfig, CallOptions
from ahmer.models.contract import (
    ATTRIBUTION_NAMES,
    EMBED_DIM,
    EMOTIONS,
    FACE_DETECTOR_FULL,
    FACE_DETECTOR_SHORT,
    FACE_EMBED_DIM,
    FACE_LANDMARKER,
    FER_MODEL,
    FUSION_CONTRACT_V1,
    MASK_NAMES,
    TEXT_MODEL,
    VOICE_EMBED_DIM,
    WHISPER_MODEL,
)
from ahmer.models.contract import FUSION_MODEL as FUSION
from ahmer.models.fusion.cues import CUE_REVISION, CueFrames, compute_cues
from ahmer.models.fusion.encoders import FaceEmotionEncoder, TextEncoder, words_window_texts
from ahmer.models.fusion.explain import explain, segments_from
from ahmer.models.fusion.registry import fusion_notice, resolve_fusion
from ahmer.models.results import (
    PRIOR_NOTICE,
    AnalysisResult,
    ClipResult,
    FaceRef,
    FrameResult,
    TranscriptWord,
)
from ahmer.models.store.model_store import ModelStore
from ahmer.preprocessing.media import MediaSource
from ahmer.preprocessing.pipeline import (
    Cancelled,
    PreprocessConfig,
    Progress,
    preprocess,
    raise_if_cancelled,
)
from ahmer.preprocessing.timeline import Timeline
from ahmer.preprocessing.voice import voice_embedding

__all__ = ["AnalyzerConfig", "Analyzer", "Cancelled", "LiveParts", "Prediction", "frame_results"]

log = logging.getLogger(__name__)

EMOTION_SUPPORT = 0.3  # a frame has an emotion label when this much face evidence backs it


@dataclass
class Prediction:
    """The raw outputs of the encoders and the fusion graph for one clip."""

    cues: CueFrames
    emotion: np.ndarray | None  # [T,7] face-emotion probabilities, NaN rows without a face
    outputs: dict[str, np.ndarray]  # fusion outputs, batch axis removed
    timings: dict[str, float]
    feed: dict[str, np.ndarray] = field(default_factory=dict)
    """The fusion inputs (``cues``, ``masks``, ``emotion``, ``text_emb``, ``face_emb``,
    ``voice_emb``, ``valid``, ``fps``), batch axis removed: what features files store."""


@dataclass(frozen=True)
class LiveParts:
    """What a live session uses of a loaded :class:`Analyzer`, public and complete (the
    session reaches for nothing else): the encoders it runs frame by frame, the Whisper
    model its streaming ASR decodes with, how to make its face tracker, the fusion's
    ``predict``/``postprocess`` and the facts it needs (threshold, embeddings)."""

    face_encoder: FaceEmotionEncoder
    text_encoder: TextEncoder
    transcriber: object  # ahmer.preprocessing.asr.Transcriber (imported lazily)
    face_analyzer: Callable[..., object]  # Analyzer.face_analyzer(fps=, threads=)
    predict: Callable[..., Prediction]
    postprocess: Callable[[Timeline, Prediction], AnalysisResult]
    threshold: float
    uses_embeddings: bool


class Analyzer:
    fusion_name: str = FUSION
    """The loaded fusion graph's model name in the backend (``load`` sets it)."""
    notice: str = PRIOR_NOTICE
    """The results' notice: the prior's, or a trained fusion's card metrics (``load``)."""

    def __init__(
        self,
        config: AnalyzerConfig | None = None,
        store: ModelStore | None = None,
        backend: InferenceBackend | None = None,
    ) -> None:
        self.config = config or AnalyzerConfig()
        self.store = store or ModelStore()
        self.backend = backend
        self.ready = False
        self.versions: dict[str, str] = {}

    # -- load ---------------------------------------------------------------------------------

    def load(self) -> Analyzer:
        """Load every model into the backend, warm them up and mark the analyzer ready;
        :attr:`parts` then gives the :class:`LiveParts` live sessions run on."""
        from ahmer.preprocessing.asr import Transcriber

        t = time.perf_counter()
        cfg, store = self.config, self.store
        if self.backend is None:
            self.backend = make_backend(cfg.backend, **backend_options(cfg))
        self.face_encoder = FaceEmotionEncoder(self.backend, store.path(FER_MODEL))
        # no cache across requests: embeddings of health conversations are not kept
        self.text_encoder = TextEncoder(self.backend, store.path(TEXT_MODEL), cache_size=0)
        # the fusion config.fusion names (default: the store's prior), under its own name
        self.fusion = resolve_fusion(store, cfg.fusion)
        self.fusion_name = self.fusion.name
        self.backend.load(self.fusion_name, self.fusion.path)
        self.notice = fusion_notice(self.fusion) or PRIOR_NOTICE
        whisper = cfg.whisper_model or store.path(WHISPER_MODEL)
        self.transcriber = Transcriber(whisper, cpu_threads=cfg.asr_threads)
        self.transcriber.load()
        manifest = store.manifest()
        self.versions = {
            name: manifest.entries[name].version
            for name in (FACE_LANDMARKER, FER_MODEL, TEXT_MODEL, WHISPER_MODEL)
            if name in manifest.entries
        }
        self.versions[self.fusion.name] = self.fusion.version
        self.versions["fusion"] = self.fusion.name  # which entry is the A/H fusion
        self.versions["face_engine"] = cfg.face_engine
        self.versions["face_landmark_fps"] = f"{cfg.landmark_fps:g}"
        fusion_meta = self.backend.signature(self.fusion_name)
        self.versions["fusion_contract"] = fusion_meta.meta("contract") or FUSION_CONTRACT_V1
        self.versions["cues"] = CUE_REVISION
        if cfg.whisper_model:
            self.versions[WHISPER_MODEL] = f"user:{Path(str(cfg.whisper_model)).name}"
        self._preprocess_config = PreprocessConfig(
            fps=cfg.fps,
            face_landmarker=store.path(FACE_LANDMARKER),
            face_detector=store.path(FACE_DETECTOR_FULL),
            short_range_detector=store.path(FACE_DETECTOR_SHORT),
            landmark_fps=cfg.landmark_fps,
            face_engine=cfg.face_engine,
            whisper_model=whisper,
            asr_threads=cfg.asr_threads,
            strict=cfg.strict,
        )
        self._faces: queue.SimpleQueue = queue.SimpleQueue()
        # warm: the first one pays the model load
        self._faces.put(self._preprocess_config.face_analyzer())
        self.ready = True
        log.info("analyzer ready in %.1fs (%s)", time.perf_counter() - t, self.backend.describe())
        return self

    @property
    def parts(self) -> LiveParts:
        """The :class:`LiveParts` of this loaded analyzer (and fusion): what live sessions
        run on."""
        self._require_ready()
        return LiveParts(
            face_encoder=self.face_encoder,
            text_encoder=self.text_encoder,
            transcriber=self.transcriber,
            face_analyzer=self.face_analyzer,
            predict=self.predict,
            postprocess=self.postprocess,
            threshold=self.config.threshold,
            uses_embeddings=self.uses_embeddings(),
        )

    def face_analyzer(self, fps: float | None = None, threads: int | None = None):
        """A new :class:`~ahmer.preprocessing.faces.FaceAnalyzer` made as this analyzer's clips
        get theirs (:meth:`PreprocessConfig.face_analyzer`): the same models, engine, landmark
        tier and face search. ``fps``: the rate of the frames it will see when not the
        analyzer's (the landmarker runs about ``landmark_fps`` times a second of them);
        ``threads``: LiteRT threads per face model in place of the config's ``face_threads``
        (1 for clips, as ASR runs beside the face stage). The caller closes it."""
        self._require_ready()
        changes = {}
        if fps is not None:
            changes["fps"] = fps
        if threads is not None:
            changes["face_threads"] = threads
        return replace(self._preprocess_config, **changes).face_analyzer()

    @contextmanager
    def _face_analyzer(self):
        """A face analyzer for one clip: taken from the pool, or made, and put back after."""
        try:
            fa = self._faces.get_nowait()
        except queue.Empty:
            fa = self.face_analyzer()
        try:
            yield fa
        finally:
            self._faces.put(fa)

    def _require_ready(self) -> None:
        if not self.ready:
            raise RuntimeError("the analyzer is not loaded: call load() first")

    def uses_embeddings(self) -> bool:
        """Whether the loaded fusion reads face and voice embeddings (its metadata
        ``uses_embeddings`` is ``"1"``): :meth:`predict` then computes them by default, and a
        caller that encodes frame by frame (live) must keep them."""
        self._require_ready()
        return self.backend.signature(self.fusion_name).meta("uses_embeddings") == "1"

    # -- stages ---------------------------------------------------------------------------------

    def preprocess(
        self,
        media: MediaSource,
        transcript: str | bytes | None = None,
        options: CallOptions | None = None,
        progress: Progress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Timeline:
        """Decode ``media`` into a timeline, with this call's ``options`` over the
        configuration; ``progress``, ``cancel``: see :meth:`analyze`."""
        self._require_ready()
        options = options or CallOptions()
        config = self._preprocess_config
        changes = options.config_changes(config)
        if changes:
            config = replace(config, **changes)
        with self._face_analyzer() as fa:
            return preprocess(
                media,
                config,
                transcript=transcript,
                transcript_format=options.transcript_format,
                progress=progress,
                transcriber=self.transcriber,
                face_analyzer=fa,
                cancel=cancel,
            )

    def predict(
        self,
        tl: Timeline,
        emotion: np.ndarray | None = None,
        embed: Callable[[list[str]], np.ndarray] | None = None,
        cancel: Callable[[], bool] | None = None,
        embeddings: bool | None = None,
        face_emb: np.ndarray | None = None,
        voice_emb: np.ndarray | None = None,
    ) -> Prediction:
        """Encoders and the fusion graph over ``tl``. ``emotion`` ([T, 7], NaN rows without a
        face) replaces the face-emotion encoder when the caller ran it already (live
        sessions, frame by frame), and ``face_emb`` ([T, 128], NaN or zero rows without a
        face) its embedding output; ``voice_emb`` ([T, 384], zero rows without speech)
        replaces the voice embedding; ``embed`` replaces the text encoder (e.g. a session's
        cache). ``embeddings``: True computes the face and voice embeddings (features
        extraction), False leaves them zero, None (default) computes them only when the
        loaded fusion uses them (metadata ``uses_embeddings`` ``"1"``). ``cancel`` is asked
        before each stage (face, text, voice, cues, fusion); once it returns true,
        :class:`Cancelled` is raised. ``Prediction.feed`` holds the fusion inputs."""
        self._require_ready()
        fusion = self.fusion_name
        if embeddings is None:
            embeddings = self.uses_embeddings()
        timings: dict[str, float] = {}
        n = len(tl)
        raise_if_cancelled(cancel)
        t = time.perf_counter()
        has_crops = tl.crops is not None and bool(tl.masks["face"].any())
        if embeddings and face_emb is None and has_crops:
            face_valid = tl.masks["face"]
            emotion, face_emb = self.face_encoder.encode(tl.crops, face_valid, with_embedding=True)
        elif emotion is None and has_crops:
            emotion = self.face_encoder.encode(tl.crops, valid=tl.masks["face"])
        if emotion is not None and not np.isfinite(emotion).all(axis=1).any():
            emotion = None  # no frame has a face
        timings["emotion"] = time.perf_counter() - t

        raise_if_cancelled(cancel)
        t = time.perf_counter()
        text_emb = np.zeros((n, EMBED_DIM), np.float32)
        if tl.words:
            texts = words_window_texts(tl.words, tl.times, sentences=True)
            present = [i for i, s in enumerate(texts) if s.strip()]
            if present:
                encode = embed or self.text_encoder.encode
                text_emb[present] = encode([texts[i] for i in present])
        timings["text"] = time.perf_counter() - t

        voice = np.zeros((n, VOICE_EMBED_DIM), np.float32)
        if voice_emb is not None:
            voice = np.nan_to_num(np.asarray(voice_emb, np.float32), nan=0.0)
        elif embeddings and tl.audio is not None:
            raise_if_cancelled(cancel)
            t = time.perf_counter()
            got = voice_embedding(
                self.transcriber,
                tl.audio,
                tl.times,
                tl.fps,
                tl.speech,
                VOICE_EMBED_DIM,
                check=lambda: raise_if_cancelled(cancel),
            )
            voice = got.values
            if got.warning and got.warning not in tl.warnings:
                log.warning("%s", got.warning)
                tl.warnings.append(got.warning)
            timings["voice"] = time.perf_counter() - t

        raise_if_cancelled(cancel)
        t = time.perf_counter()
        cues = compute_cues(tl, emotion)
        timings["cues"] = time.perf_counter() - t

        raise_if_cancelled(cancel)
        t = time.perf_counter()
        emo_in = np.zeros((n, len(EMOTIONS)), np.float32)
        if emotion is not None:
            emo_in = np.nan_to_num(emotion).astype(np.float32)
        face_in = np.zeros((n, FACE_EMBED_DIM), np.float32)
        if face_emb is not None:
            face_in = np.nan_to_num(np.asarray(face_emb, np.float32), nan=0.0)
        feed = {
            "cues": cues.cues,
            "masks": cues.masks,
            "emotion": emo_in,
            "text_emb": text_emb,
            "face_emb": face_in,
            "voice_emb": voice,
            "valid": np.ones(n, np.float32),
            "fps": np.array([tl.fps], np.float32),
        }
        wanted = self.backend.signature(fusion).input_names
        batch = {k: (v if k == "fps" else v[None]) for k, v in feed.items() if k in wanted}
        outputs = {k: v[0] for k, v in self.backend.run(fusion, batch).items()}
        timings["fusion"] = time.perf_counter() - t
        return Prediction(cues=cues, emotion=emotion, outputs=outputs, timings=timings, feed=feed)

    def prototypes(self) -> tuple[str, ...]:
        """The loaded fusion's ambivalent prototype sentences (its metadata), which its
        ``prototype_match`` output indexes; empty for a fusion without a bank."""
        text = self.backend.signature(self.fusion_name).meta("prototypes_ambivalent") or ""
        return tuple(text.split("\n")) if text else ()

    def postprocess(self, tl: Timeline, pred: Prediction) -> AnalysisResult:
        t = time.perf_counter()
        cfg, out = self.config, pred.outputs
        prob = 1.0 / (1.0 + np.exp(-out["frame_ah_logit"]))
        clip_p = float(1.0 / (1.0 + np.exp(-out["clip_ah_logit"])))
        emo_probs, has_emotion = _emotion_of_frames(pred)
        frames = frame_results(tl, pred, cfg.threshold)
        distribution = dominant = None
        if has_emotion.any():
            mean = emo_probs[has_emotion].mean(axis=0)
            mean = mean / mean.sum()
            distribution = {e: float(p) for e, p in zip(EMOTIONS, mean, strict=True)}
            dominant = EMOTIONS[int(np.argmax(mean))]
        clip = ClipResult(
            ah_probability=clip_p,
            ah_label=int(clip_p >= cfg.threshold),
            threshold=cfg.threshold,
            segments=tuple(
                segments_from(
                    prob, tl.times, tl.fps, cfg.threshold, getattr(tl.info, "duration", None)
                )
            ),
            emotion_distribution=distribution,
            dominant_emotion=dominant,
            mean_valence=float(np.mean(out["frame_valence"])) if len(tl) else 0.0,
        )
        explanation = explain(
            tl,
            pred.cues,
            out["cue_contrib"],
            pred.emotion,
            out["frame_valence"],
            clip_p,
            threshold=cfg.threshold,
            max_cues=cfg.max_cues,
            prototype_match=out.get("prototype_match"),
            prototypes=self.prototypes(),
        )
        timings = {**tl.timings, **pred.timings, "postprocess": time.perf_counter() - t}
        return AnalysisResult(
            clip=clip,
            frames=frames,
            explanation=explanation,
            transcript=[TranscriptWord(w.start, w.end, w.text.strip()) for w in tl.words],
            transcript_source=tl.transcript_source,
            media={**tl.info.__dict__},
            models=dict(self.versions),
            timings={k: round(v, 4) for k, v in timings.items()},
            warnings=list(tl.warnings),
            fps=tl.fps,
            notice=self.notice,
        )

    def analyze(
        self,
        media: MediaSource,
        transcript: str | bytes | None = None,
        options: CallOptions | None = None,
        progress: Progress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> AnalysisResult:
        """The whole pipeline on one clip, with this call's ``options`` (a
        :class:`~ahmer.models.config.CallOptions`: rate, language, transcript format, strict)
        over the configuration.

        Partial media (a stream decoded short of its declared duration) gives a ``truncated
        media: ...`` warning in the result; strict (``options.strict``, None:
        ``config.strict``) makes it an error instead:
        :class:`~ahmer.preprocessing.media.TruncatedMedia`, a ``MediaError`` (see
        :func:`ahmer.preprocessing.pipeline.check_complete`).

        ``cancel`` (e.g. a :class:`threading.Event`'s ``is_set``) is asked before every
        analysis frame, between the stages and inside the long audio ones (see
        :mod:`ahmer.preprocessing.pipeline`), before each stage of :meth:`predict` and before
        :meth:`postprocess`; once it returns True the analysis raises :class:`Cancelled`, so
        a caller that has gone away stops the work, audio branch included, instead of
        holding a worker until the clip is done."""
        t = time.perf_counter()
        tl = self.preprocess(
            media, transcript=transcript, options=options, progress=progress, cancel=cancel
        )
        prediction = self.predict(tl, cancel=cancel)
        raise_if_cancelled(cancel)
        result = self.postprocess(tl, prediction)
        result.timings["total"] = round(time.perf_counter() - t, 4)
        return result

    def close(self) -> None:
        faces = getattr(self, "_faces", None)
        while faces is not None and not faces.empty():
            faces.get_nowait().close()
        if self.backend is not None:
            self.backend.close()
        self.ready = False


def _emotion_of_frames(pred: Prediction) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed emotion probabilities [T, 7] and where a face backs them."""
    out = pred.outputs
    has = (out["emotion_support"] > EMOTION_SUPPORT) & (pred.emotion is not None)
    return np.exp(out["frame_emotion_logits"]), has


def frame_results(
    tl: Timeline, pred: Prediction, threshold: float, indices: Iterable[int] | None = None
) -> list[FrameResult]:
    """The :class:`FrameResult` of frames ``indices`` (default: all) of ``tl``."""
    out = pred.outputs
    prob = 1.0 / (1.0 + np.exp(-out["frame_ah_logit"]))
    emo_probs, has_emotion = _emotion_of_frames(pred)
    frames = []
    for i in range(len(tl)) if indices is None else indices:
        face = None
        if tl.masks["face"][i]:
            box = tuple(float(v) for v in tl.face_box[i])
            yaw, pitch, roll = (float(v) for v in tl.head_pose[i])  # the timeline's order
            landmarks = bool(np.isfinite(tl.head_pose[i]).all())  # NaN between landmark frames
            shapes = dict(zip(tl.blendshape_names, map(float, tl.blendshapes[i]), strict=True))
            face = FaceRef(
                box,
                int(tl.face_track[i]),
                float(tl.face_quality[i]),
                pose=(pitch, yaw, roll) if landmarks else None,
                blendshapes=(shapes or None) if landmarks else None,
            )
        emotion = label = None
        if has_emotion[i]:
            emotion = {e: float(p) for e, p in zip(EMOTIONS, emo_probs[i], strict=True)}
            label = EMOTIONS[int(np.argmax(emo_probs[i]))]
        frames.append(
            FrameResult(
                time=float(tl.times[i]),
                face=face,
                emotion=emotion,
                emotion_label=label,
                valence=float(out["frame_valence"][i]),
                ah_probability=float(prob[i]),
                ah_label=int(prob[i] >= threshold),
                attribution={
                    k: float(v)
                    for k, v in zip(ATTRIBUTION_NAMES, out["attribution"][i], strict=True)
                },
                modalities={name: bool(pred.cues.masks[i, j]) for j, name in enumerate(MASK_NAMES)},
            )
        )
    return frames
