"""Batch scoring engine: take the inputs (found, named and sharded by
:mod:`ahmer.service.batch.inputs`), skip what is done, and analyse the rest in a pool of
worker processes that each load one Analyzer.

Every result is written by the process that computed it, atomically, to
``<out>/results/<id>.json``, with a ``batch`` block recording what it was computed from:
the media's sha256 (plus its size and mtime, so a re-run need not hash unchanged files), the
transcript's sha256, the options that change results (fps, threshold, Whisper model, landmark
rate, face engine), the model store's artifacts (version and sha256) and the ahmer version.
Their hash is the ``key``; a result whose key matches is not computed again.

Interruption: workers ignore SIGINT (a terminal sends it to the whole process group); the
main process catches it (and SIGTERM), terminates the workers and returns what finished.
A worker that dies (a native crash on a hostile file) fails only its item and is replaced.

Circuit breaker: a clip that fails because the inference server is unavailable
(:class:`~ahmer.models.backends.base.BackendUnavailable`: Triton gone, its retries within the
timeout spent) opens it. The clips not yet started are then not tried: each finishes at once
as a failure saying so (``BatchOutcome.stopped`` holds the reason, for the command to say
once), instead of each waiting out the whole timeout against a server that is gone. They
have no result, so running the command again resumes them.
A main process that dies without stopping them (SIGKILL, a crash, the OOM killer) takes its
workers with it: each asks Linux for SIGKILL on its parent's death and also watches the
parent itself (see :func:`_die_with_parent`), so no worker outlives it holding its models'
memory; multiprocessing's resource tracker then sees its pipe close and exits too.

What is done per item is a :class:`BatchJob`: :class:`AnalyzeJob` (``ahmer score``: result
JSON) by default; ``ahmer features`` passes its own (:mod:`ahmer.service.batch.features`).
The engine keeps the rest: workers, their loading, interruption, dead workers, progress
events and the removal of partial files.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ahmer.models.config import AnalyzerConfig, CallOptions, result_options
from ahmer.models.contract import WHISPER_MODEL
from ahmer.preprocessing.errors import Internal

from ..files import atomic_write_text, read_input_bytes
from ..logs import native_stderr_silenced
from .inputs import (
    MEDIA_EXTENSIONS,
    BatchError,
    BatchItem,
    discover,
    parse_shard,
    read_manifest,
    select_shard,
)

__all__ = [
    "MEDIA_EXTENSIONS",
    "BatchError",
    "BatchAbort",
    "BatchItem",
    "BatchJob",
    "AnalyzeJob",
    "BatchOutcome",
    "discover",
    "failed",
    "read_manifest",
    "parse_shard",
    "select_shard",
    "file_sha256",
    "model_fingerprint",
    "batch_key",
    "plan",
    "run_batch",
]

RESULTS = "results"
BATCH_SCHEMA = "ahmer.batch/1"


class BatchAbort(Internal, RuntimeError):
    """The batch cannot go on (the workers cannot load their models)."""


# -- what a result was computed from -----------------------------------------------------------


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(store=None, whisper_model: str | None = None) -> dict[str, str]:
    """``{artifact: "version@sha256[:12]"}`` of every artifact in the model store (a user
    Whisper model is named by its path)."""
    from ahmer.models.store.model_store import ModelStore

    store = store or ModelStore()
    out = {n: f"{e.version}@{e.sha256[:12]}" for n, e in sorted(store.manifest().entries.items())}
    if whisper_model:
        out[WHISPER_MODEL] = f"user:{whisper_model}"
    return out


def _ahmer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ahmer")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def batch_key(
    media_sha256: str, transcript_sha256: str | None, options: AnalyzerConfig, models: dict
) -> str:
    """The sha256 of everything a result depends on, as canonical JSON: of ``options``, the
    fields that change results (``changes_results`` in ``ANALYSIS_OPTIONS``: ``fps``,
    ``threshold``, ``whisper_model``, ``landmark_fps``, ``face_engine``; not ``backend`` or
    ``device``). The body must not change: the results
    of earlier runs are found by it (``tests/test_score.py`` pins two keys)."""
    chosen = result_options(options)  # numbers as floats: 5 and 5.0 are one key
    chosen = {k: float(v) if isinstance(v, int | float) else v for k, v in chosen.items()}
    body = {
        "media": media_sha256,
        "transcript": transcript_sha256,
        **chosen,
        "models": models,
        "ahmer": _ahmer_version(),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def result_path(out: Path, item_id: str) -> Path:
    return Path(out) / RESULTS / f"{item_id}.json"


def _existing_key(path: Path, strict: bool = False) -> dict | None:
    """The ``batch`` block of the result at ``path``; None when there is none, or when
    ``strict`` and the result was made of partial media (a strict run must fail it, not
    keep it: ``strict`` is not part of the key, so switching it re-runs only those)."""
    from ahmer.preprocessing.truncation import is_incomplete

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        batch = data.get("batch")
        partial = any(is_incomplete(str(w)) for w in data.get("warnings") or ())
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    if strict and partial:
        return None
    return batch if isinstance(batch, dict) else None


def plan(
    items: Sequence[BatchItem], out: Path, options: AnalyzerConfig, models: dict
) -> tuple[list[BatchItem], list[BatchItem]]:
    """(to do, already done). A result is done when its recorded key equals the key of the
    current file, transcript, options and models; the media is re-hashed only when its size
    or mtime changed since the result was written."""
    todo, done = [], []
    for item in items:
        path = result_path(out, item.id)
        recorded = _existing_key(path, options.strict) if item.error is None else None
        if not recorded:
            todo.append(item)
            continue
        try:
            stat = _stat(item.path)
            sha = recorded.get("sha256")
            if stat != recorded.get("stat") or not sha:
                sha = file_sha256(item.path)
            tsha = file_sha256(item.transcript) if item.transcript else None
        except OSError:
            todo.append(item)
            continue
        fresh = batch_key(sha, tsha, options, models) == recorded.get("key")
        (done if fresh else todo).append(item)
    return todo, done


# -- one item ----------------------------------------------------------------------------------


@dataclass
class _Context:
    out: Path
    options: AnalyzerConfig
    models: dict[str, str]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    known = (
        "MediaError",
        "TranscriptError",
        "FileNotFoundError",
        "PathError",
        "ValueError",
        "BackendUnavailable",  # names Triton and its URL itself
    )
    ours = any(cls.__name__ in known for cls in type(exc).__mro__)  # TruncatedMedia too
    prefix = "" if ours else f"{type(exc).__name__}: "
    return (prefix + text)[:300]


def failed(summary: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """``summary`` with ``error`` set from ``exc``, and ``unavailable`` too when the inference
    server is what failed (that opens the batch's circuit breaker)."""
    from ahmer.models.backends.base import BackendUnavailable

    summary["error"] = _one_line(exc)
    if isinstance(exc, BackendUnavailable):
        summary["unavailable"] = summary["error"]
    return summary


def _not_tried(item: BatchItem, why: str) -> dict[str, Any]:
    """The summary of an item the open circuit breaker kept from being tried."""
    error = f"not tried: {why} (the batch stopped trying clips; run it again to resume)"
    return {"id": item.id, "duration": 0.0, "error": error[:500]}


def process_item(analyzer, item: BatchItem, ctx: _Context, progress=None) -> dict[str, Any]:
    """Analyse one item and write its result JSON; return a small summary (never raises for
    a bad item: the error is in ``summary["error"]``). ``progress(stage, fraction)`` is passed
    to the analyzer."""
    t = time.perf_counter()
    from ahmer.preprocessing.transcript import MAX_BYTES as MAX_TRANSCRIPT_BYTES

    summary: dict[str, Any] = {"id": item.id, "duration": 0.0, "error": item.error}
    if item.error:
        return summary
    try:
        stat = _stat(item.path)
        sha = file_sha256(item.path)
        transcript = tsha = None
        if item.transcript is not None:
            transcript = read_input_bytes(item.transcript, MAX_TRANSCRIPT_BYTES, "transcript")
            tsha = hashlib.sha256(transcript).hexdigest()
        result = analyzer.analyze(
            item.path,
            transcript=transcript,
            options=CallOptions(fps=ctx.options.fps),
            progress=progress,
        )
        data = result.to_dict()
        data["id"] = item.id
        data["batch"] = {
            "schema": BATCH_SCHEMA,
            "key": batch_key(sha, tsha, ctx.options, ctx.models),
            "path": str(item.path),
            "transcript_path": str(item.transcript) if item.transcript else None,
            "sha256": sha,
            "stat": stat,
            "transcript_sha256": tsha,
            **result_options(ctx.options),
            "models": ctx.models,
        }
        atomic_write_text(result_path(ctx.out, item.id), json.dumps(data, allow_nan=False))
        summary["duration"] = float(result.media.get("duration") or 0.0)
    except Exception as exc:  # a bad item fails alone
        from ahmer.preprocessing.media import TruncatedMedia

        failed(summary, exc)
        if isinstance(exc, TruncatedMedia):  # strict: an earlier run's result of it is void
            result_path(ctx.out, item.id).unlink(missing_ok=True)
    summary["wall"] = time.perf_counter() - t
    return summary


class BatchJob:
    """What the engine does with each item; pickled to every worker process.

    :meth:`load` makes a worker's state (a loaded analyzer) once, :meth:`process` handles
    one item with it and returns a summary (``id``, ``duration`` in media seconds,
    ``error``: never raises for a bad item), :meth:`remove_partial` deletes what an
    interrupted write of an item left behind, :meth:`close` frees the state."""

    name = "batch"
    options: AnalyzerConfig
    out: Path

    def prepare(self) -> None:
        """Before any item, in the main process: make the output folders."""

    def load(self, threads: int):
        return _make_analyzer(self.options, threads)

    def process(self, worker, item: BatchItem, progress=None) -> dict[str, Any]:
        raise NotImplementedError

    def remove_partial(self, item_id: str) -> None:
        """Temporary files an interrupted atomic write of this item left behind."""

    def close(self, worker) -> None:
        with native_stderr_silenced():  # LiteRT's shutdown chatter
            worker.close()


class AnalyzeJob(BatchJob):
    """``ahmer score``'s job: analyse the clip, write ``<out>/results/<id>.json``."""

    name = "score"

    def __init__(self, ctx: _Context) -> None:
        self.ctx, self.options, self.out = ctx, ctx.options, ctx.out

    def prepare(self) -> None:
        (self.out / RESULTS).mkdir(parents=True, exist_ok=True)

    def process(self, worker, item: BatchItem, progress=None) -> dict[str, Any]:
        return process_item(worker, item, self.ctx, progress)

    def remove_partial(self, item_id: str) -> None:
        _remove_partial(self.out, item_id)


def _make_analyzer(options: AnalyzerConfig, threads: int):
    from ahmer.models.analyzer import Analyzer

    backend_options = dict(options.backend_options)
    if options.backend == "onnxruntime" and threads:
        backend_options["intra_op_threads"] = threads
    config = replace(options, backend_options=backend_options)
    with native_stderr_silenced():
        return Analyzer(config).load()


# -- running -----------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """What a run did: summaries of finished items (with ``error`` for failures), whether
    it was interrupted, and why it stopped trying items (the circuit breaker's reason: the
    inference server's failure), if it did."""

    finished: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    stopped: str | None = None

    def record(self, summary: dict[str, Any]) -> None:
        """Add a finished item; one that failed for want of the inference server opens the
        circuit breaker."""
        self.finished.append(summary)
        if summary.get("unavailable") and self.stopped is None:
            self.stopped = summary["unavailable"]

    @property
    def not_tried(self) -> int:
        """How many items the circuit breaker kept from being tried."""
        return sum(1 for s in self.finished if str(s.get("error", "")).startswith("not tried:"))

    def stop_notice(self) -> str | None:
        """The one line a command prints when the circuit breaker opened, else None."""
        if self.stopped is None:
            return None
        return (
            f"stopped trying clips: {self.stopped}; {self.not_tried} clip(s) not tried, listed "
            "as failures; run the same command again once the inference server is back to "
            "resume them"
        )

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [s for s in self.finished if s.get("error")]

    def failure_rows(self, items: Iterable[Any]) -> list[dict[str, str]]:
        """The rows of ``failures.csv`` (``id``, ``path``, ``error``) of the failed items,
        their paths taken from ``items`` (anything with ``id`` and ``path``)."""
        paths = {item.id: str(item.path) for item in items}
        return [{"id": s["id"], "path": paths[s["id"]], "error": s["error"]} for s in self.failures]


Event = Callable[[str, dict[str, Any]], None]
"""``on_event(kind, info)``: kind is ``"ready"`` (a worker loaded its models), ``"start"``
(an item began: info has ``id``), ``"done"`` (an item finished: its summary) or ``"tick"``
(time passed: a chance to refresh a display)."""


def _raise_interrupt(signum, frame):  # SIGTERM -> the same clean stop as Ctrl-C
    raise KeyboardInterrupt


def run_batch(
    items: Sequence[BatchItem],
    out: Path,
    options: AnalyzerConfig,
    models: dict[str, str],
    workers: int = 1,
    on_event: Event | None = None,
    job: BatchJob | None = None,
) -> BatchOutcome:
    """Run ``job`` (default: :class:`AnalyzeJob` writing into ``out``) on ``items`` (1
    worker: in this process; more: spawned processes)."""
    job = job or AnalyzeJob(_Context(Path(out), options, models))
    job.prepare()
    for item in items:  # what a killed run was writing when it died
        job.remove_partial(item.id)
    emit = on_event or (lambda kind, info: None)
    outcome = BatchOutcome()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        if workers <= 1:
            _run_here(items, job, emit, outcome)
        else:
            _Pool(job, workers, emit, outcome).run(list(items))
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return outcome


def _run_here(items, job: BatchJob, emit: Event, outcome: BatchOutcome) -> None:
    analyzer = None
    try:
        for item in items:
            if analyzer is None and item.error is None:
                analyzer = job.load(0)
                emit("ready", {"worker": 0})
            if outcome.stopped is not None and item.error is None:
                summary = _not_tried(item, outcome.stopped)
            else:
                emit("start", {"id": item.id, "worker": 0})
                summary = job.process(analyzer, item, lambda stage, fraction: emit("tick", {}))
            outcome.record(summary)
            emit("done", summary)
    finally:
        if analyzer is not None:
            job.close(analyzer)


def _thread_lock_for_tqdm() -> None:
    """tqdm (used inside faster-whisper) makes a multiprocessing lock on first use; in a worker
    that is later terminated, that semaphore is never unregistered and the resource tracker
    warns about a leak. A thread lock serves a single-process worker just as well."""
    try:
        import threading

        import tqdm
    except ImportError:  # pragma: no cover
        return
    tqdm.tqdm.set_lock(threading.RLock())


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the process that started it (``parent_pid``) dies, whatever
    killed it: a worker only ever serves the parent that feeds it, and what it was writing
    is a temporary file. Linux kills it at once (:func:`_parent_death_signal`); everywhere,
    :func:`_watch_parent` also notices. A parent that died before either was set up is
    caught by the ``os.getppid()`` check in between."""
    _parent_death_signal()
    if os.getppid() != parent_pid:
        os._exit(1)
    _watch_parent(parent_pid)


def _parent_death_signal() -> None:
    """On Linux, ask the kernel for SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``,
    through libc). Elsewhere, or without prctl, nothing: :func:`_watch_parent` remains."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        pass


def _watch_parent(parent_pid: int, interval: float = 1.0) -> threading.Thread:
    """A daemon thread that exits this process (``os._exit``) when the parent is gone: it
    waits on multiprocessing's parent sentinel (a pipe whose other end only the parent holds,
    so it reads EOF the moment the parent dies) and checks every ``interval`` seconds that
    ``os.getppid()`` is still ``parent_pid`` (a process not started by multiprocessing has no
    sentinel)."""
    parent = mp.parent_process()

    def watch() -> None:
        while True:
            if parent is not None:
                parent.join(timeout=interval)  # returns at once when the parent's pipe closes
            else:
                time.sleep(interval)
            if os.getppid() != parent_pid or (parent is not None and not parent.is_alive()):
                os._exit(1)

    thread = threading.Thread(target=watch, name="ahmer-parent-watch", daemon=True)
    thread.start()
    return thread


def _worker_main(wid: int, threads: int, job: BatchJob, tasks, results, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _thread_lock_for_tqdm()
    try:
        analyzer = job.load(threads)
    except Exception as exc:
        results.put(("init-failed", wid, _one_line(exc)))
        return
    results.put(("ready", wid, None))
    while True:
        item = tasks.get()
        if item is None:
            break
        results.put(("done", wid, job.process(analyzer, item)))
    job.close(analyzer)


@dataclass
class _Worker:
    wid: int
    process: Any
    tasks: Any
    item: BatchItem | None = None
    ready: bool = False


class _Pool:
    """Worker processes fed one item at a time, so a dead worker's item is known."""

    def __init__(self, job: BatchJob, size: int, emit: Event, outcome: BatchOutcome):
        self.job, self.size, self.emit, self.outcome = job, size, emit, outcome
        self.mp = mp.get_context("spawn")
        self.results = self.mp.Queue()
        self.threads = max(1, (os.cpu_count() or 1) // size)
        self.workers: dict[int, _Worker] = {}
        self.next_id = 0

    def _start(self) -> _Worker:
        wid, self.next_id = self.next_id, self.next_id + 1
        tasks = self.mp.Queue()
        proc = self.mp.Process(
            target=_worker_main,
            args=(wid, self.threads, self.job, tasks, self.results, os.getpid()),
            name=f"ahmer-{self.job.name}-{wid}",
            daemon=True,
        )
        # Children start with SIGINT ignored (kept across exec), so a Ctrl-C on the terminal
        # reaches only this process, which stops them in order.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            proc.start()
        finally:
            signal.signal(signal.SIGINT, old)
        worker = _Worker(wid, proc, tasks)
        self.workers[wid] = worker
        return worker

    def _feed(self, worker: _Worker, pending: list[BatchItem]) -> None:
        while pending and worker.item is None:
            item = pending.pop(0)
            if item.error:  # known bad: no need for a worker
                self._finish({"id": item.id, "duration": 0.0, "error": item.error})
                continue
            if self.outcome.stopped is not None:  # the circuit breaker is open
                self._finish(_not_tried(item, self.outcome.stopped))
                continue
            worker.item = item
            worker.tasks.put(item)
            self.emit("start", {"id": item.id, "worker": worker.wid})

    def _finish(self, summary: dict[str, Any]) -> None:
        self.outcome.record(summary)
        self.emit("done", summary)

    def run(self, pending: list[BatchItem]) -> None:
        try:
            for _ in range(min(self.size, max(1, len(pending)))):
                self._feed(self._start(), pending)
            while any(w.item is not None for w in self.workers.values()):
                try:
                    kind, wid, info = self.results.get(timeout=0.5)
                except queue.Empty:
                    self._reap(pending)
                    self.emit("tick", {})
                    continue
                worker = self.workers.get(wid)
                if worker is None:
                    continue
                if kind == "init-failed":
                    raise BatchAbort(f"a worker could not load the models: {info}")
                if kind == "ready":
                    worker.ready = True
                    self.emit("ready", {"worker": wid})
                elif kind == "done":
                    worker.item = None
                    self._finish(info)
                    self._feed(worker, pending)
            for worker in self.workers.values():
                worker.tasks.put(None)
            for worker in self.workers.values():
                worker.process.join(timeout=10)
        finally:
            self._stop()

    def _reap(self, pending: list[BatchItem]) -> None:
        """Replace workers that died; their item fails with the exit code."""
        for wid, worker in list(self.workers.items()):
            if worker.process.is_alive():
                continue
            del self.workers[wid]
            code = worker.process.exitcode
            if not worker.ready:
                raise BatchAbort(f"a worker exited while loading the models (exit code {code})")
            if worker.item is not None:
                error = f"worker process died (exit code {code})"
                self._finish({"id": worker.item.id, "duration": 0.0, "error": error})
                self.job.remove_partial(worker.item.id)
            if pending:
                self._feed(self._start(), pending)

    def _stop(self) -> None:
        for worker in self.workers.values():
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self.workers.values():
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            if worker.item is not None:
                self.job.remove_partial(worker.item.id)
            worker.tasks.close()
            worker.tasks.cancel_join_thread()
        self.results.close()
        self.results.cancel_join_thread()


def _remove_partial(out: Path, item_id: str) -> None:
    """Temporary files an interrupted atomic write of this item left behind."""
    for tmp in (Path(out) / RESULTS).glob(f".{item_id}.json.*.tmp"):
        tmp.unlink(missing_ok=True)
