"""Whole-clip analysis as the service runs it: in a worker thread, cancellable, with the
request's language and transcript format.

Cancellation is cooperative: the pipeline calls ``progress`` between frames, and the callback
raises :class:`Cancelled` once the call's event is set, so a client that goes away stops the
work within a few frames instead of holding a worker until the clip is done.
"""

from __future__ import annotations

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


def run_clip(analyzer: Analyzer, job: ClipJob) -> AnalysisResult:
    """Analyse ``job.media``; raises the pipeline's errors, or :class:`Cancelled`."""
    cancel = job.cancel or threading.Event()

    def progress(stage: str, fraction: float) -> None:
        if cancel.is_set():
            raise Cancelled("the call was cancelled")

    t = time.perf_counter()
    tl = analyzer.preprocess(
        job.media,
        transcript=job.transcript,
        fps=job.fps,
        progress=progress,
        language=job.language,
        transcript_format=job.transcript_format,
    )
    if cancel.is_set():
        raise Cancelled("the call was cancelled")
    result = analyzer.postprocess(tl, analyzer.predict(tl))
    result.timings["total"] = round(time.perf_counter() - t, 4)
    return result
