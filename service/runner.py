"""Whole-clip analysis as the service runs it: in a worker thread, cancellable, with the
request's language and transcript format.

Cancellation is cooperative: the pipeline calls ``progress`` between frames, and the callback
raises :class:`Cancelled` once the call's event is set, so a client that goes away stops the
work within a few frames instead of holding a worker until the clip is done.
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass

from ahmer.models.analyzer import Analyzer
from ahmer.models.results import AnalysisResult

__all__ = ["Cancelled", "ClipJob", "run_clip"]


class Cancelled(Exception):
    """The call that asked for this analysis is gone."""


@dataclass
class ClipJob:
    media: bytes
    transcript: bytes | None = None
    transcript_format: str | None = None
    fps: float | None = None
    language: str | None = None
    cancel: threading.Event | None = None


def _accepts(func, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def run_clip(analyzer: Analyzer, job: ClipJob) -> AnalysisResult:
    """Analyse ``job.media``; raises the pipeline's errors, or :class:`Cancelled`."""
    cancel = job.cancel or threading.Event()

    def progress(stage: str, fraction: float) -> None:
        if cancel.is_set():
            raise Cancelled("the call was cancelled")

    t = time.perf_counter()
    kwargs = {}
    if job.language and _accepts(analyzer.preprocess, "language"):
        kwargs["language"] = job.language
    if job.transcript_format and _accepts(analyzer.preprocess, "transcript_format"):
        kwargs["transcript_format"] = job.transcript_format
    needs_own = (job.language and "language" not in kwargs) or (
        job.transcript_format and "transcript_format" not in kwargs
    )
    if needs_own:
        tl = _preprocess(analyzer, job, progress)
    else:
        tl = analyzer.preprocess(
            job.media, transcript=job.transcript, fps=job.fps, progress=progress, **kwargs
        )
    if cancel.is_set():
        raise Cancelled("the call was cancelled")
    result = analyzer.postprocess(tl, analyzer.predict(tl))
    result.timings["total"] = round(time.perf_counter() - t, 4)
    return result


def _preprocess(analyzer: Analyzer, job: ClipJob, progress):
    """The pipeline's ``preprocess`` with the request's language and transcript format (for
    analyzers whose ``preprocess`` does not take them)."""
    from ahmer.preprocessing.pipeline import PreprocessConfig, preprocess

    base = analyzer._preprocess_config  # noqa: SLF001 - same config the analyzer would use
    fields = {**base.__dict__}
    if job.fps:
        fields["fps"] = job.fps
    if job.language:
        fields["language"] = job.language
    return preprocess(
        job.media,
        PreprocessConfig(**fields),
        transcript=job.transcript,
        transcript_format=job.transcript_format,
        progress=progress,
        transcriber=analyzer.transcriber,
    )
