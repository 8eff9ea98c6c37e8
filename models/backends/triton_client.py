"""Triton Inference Server as an :class:`~ahmer.models.backends.base.InferenceBackend`: the same
ONNX files, served by a Triton (one pool shared by many ahmer pods and streams, whose dynamic
batcher merges their requests) instead of ONNX Runtime in this process.

Loading a model does not send it anywhere: Triton serves it from a repository written by
``ahmer models triton-repo`` from the same store. ``load(name, path)`` waits (within the
timeout) until Triton's model ``name`` is ready, then checks that it *is* the local file: its
inputs and outputs (names, data types, dims, the batch axis when ``max_batch_size`` > 0) equal
the ONNX file's, and the repository's ``ahmer_sha256`` parameter equals the file's sha256.
Any difference is a :class:`~ahmer.models.backends.base.BackendError` saying what differs and how to
fix it. The signature returned is the local file's (its metadata too, which the encoders'
label checks read), so the input checks are exactly those of the in-process backend.

Why the synchronous ``tritonclient.grpc`` client, not the aio one: every caller of a backend
is a worker thread (the gRPC server runs clip analyses and live sessions in thread pools,
``ahmer analyze`` and ``ahmer score`` have no event loop), and the encoders call
:meth:`run` deep inside that synchronous pipeline. An aio client is bound to one event loop;
using it from those threads would mean a hop onto the server's loop for every tensor and a
loop of its own in the CLI. The sync client's channel is thread-safe and releases the GIL
while a call waits, so many threads share one connection with many calls in flight at once,
which is what lets Triton's dynamic batcher form batches from concurrent streams.

Failures: ``UNAVAILABLE`` (Triton down, restarting, a model not loaded yet) is retried with
bounded exponential backoff for at most ``timeout`` seconds in all; then, or when a call
outlives the timeout, :class:`~ahmer.models.backends.base.BackendUnavailable` names the URL.
Until this client has reached Triton once, a refused connection (nothing listens at the URL:
a wrong address, or no Triton started) is retried for :data:`CONNECT_TIMEOUT_S` only, so that
``ahmer analyze --backend triton`` against a dead URL fails in seconds, not after the whole
timeout; the gRPC server keeps waiting for Triton at start all the same (it retries its load). Other
errors are a plain ``BackendError``. :meth:`ready` (server live and ready, every loaded model
ready; cached for a second) is what the gRPC server's readiness follows; when Triton comes
back it re-checks each model's ``ahmer_sha256``, so a Triton restarted on another repository
is not trusted.

TLS (``tls=True``): gRPC's default roots, which in grpcio are the public roots it bundles
(``grpc/_cython/_credentials/roots.pem``), not the operating system's store. gRPC reads the
environment variable ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` before those: a PEM file of the CAs
to trust instead, which is how a Triton with a certificate from a private CA is trusted (the
tests do just that). A handshake that fails on the certificate, or a TLS client at a port
without TLS, is a configuration fault, not an outage: it fails at once, saying what to set,
rather than being retried for the whole timeout.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnx
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from ahmer.models.backends.base import BackendError, BackendUnavailable, InferenceBackend, Signature
from ahmer.models.store.model_store import _onnx_signature, sha256_file

__all__ = [
    "CONNECT_TIMEOUT_S",
    "REPO_HINT",
    "ROOTS_VARIABLE",
    "TritonBackend",
    "onnx_signature",
    "tls_problem",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

REPO_HINT = (
    "regenerate Triton's repository from this model store with `ahmer models triton-repo OUT` "
    "and restart (or reload) Triton on it"
)
_DEADLINE = "StatusCode.DEADLINE_EXCEEDED"
# Transient: Triton unreachable or stopping (UNAVAILABLE), a request it dropped while shutting
# down (CANCELLED: this client never cancels), seen in 3 stops under load (4 threads calling):
# ~2000 UNAVAILABLE, ~2000 NOT_FOUND "unknown model ... has no available versions" (models
# unload first), 2 CANCELLED. A model verified at load that Triton says is unknown or not
# ready is restarting or shutting down, not a wrong name: retried too.
_TRANSIENT = ("StatusCode.UNAVAILABLE", "StatusCode.CANCELLED")
_GONE_FOR_NOW = ("unknown model", "no available versions", "is not ready", "server exiting")
ROOTS_VARIABLE = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
_VERIFY_FAILED = re.compile(r"CERTIFICATE_VERIFY_FAILED(?:: ([^:]+))?")
_REFUSED = ("connection refused", "failed to connect to all addresses")
CONNECT_TIMEOUT_S = 3.0
"""How long a refused connection is retried before this client has ever reached Triton (a
Triton that is starting listens within that time, or the server's load loop waits on)."""
_READY_CACHE_S = 1.0
_PROBE_TIMEOUT_S = 2.0


def tls_problem(detail: str, tls: bool) -> str | None:
    """What a gRPC error ``detail`` says is wrong with TLS to Triton, when it is a fault of the
    configuration (one that retrying cannot cure), as a sentence with the fix; else None."""
    verify = _VERIFY_FAILED.search(detail)
    if verify:
        reason = (verify.group(1) or "").strip() or "verification failed"
        return (
            f"TLS handshake failed: Triton's certificate is not trusted ({reason}); to trust a "
            f"private CA, set {ROOTS_VARIABLE} to a PEM file holding it"
        )
    if "Hostname Verification Check failed" in detail or "is not in peer certificate" in detail:
        return (
            "TLS handshake failed: Triton's certificate does not name the host of its URL "
            "(host name check failed); use a host name or address the certificate lists"
        )
    if tls and "WRONG_VERSION_NUMBER" in detail:
        return "TLS handshake failed: Triton's gRPC port does not speak TLS (turn TLS off)"
    return None


def onnx_signature(path: Path) -> Signature:
    """The inputs, outputs and metadata of the ONNX file at ``path`` (read with ``onnx``, as
    the model store reads them; no session is made)."""
    try:
        inputs, outputs = _onnx_signature(path)
        props = onnx.load(str(path), load_external_data=False).metadata_props
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise BackendError(f"cannot read the ONNX file {path}: {exc}") from exc
    return Signature(inputs, outputs, tuple(sorted((p.key, p.value) for p in props)))


def _triton_type(numpy_dtype: str) -> str:
    return "BYTES" if numpy_dtype == "object" else np_to_triton_dtype(np.dtype(numpy_dtype))


def _dims(shape: tuple) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def _describe_tensor(datatype: str, dims: list[int]) -> str:
    return f"{datatype} {dims}"


@dataclass(frozen=True)
class _Served:
    """What Triton serves under one name, as checked at load."""

    max_batch_size: int
    datatypes: dict[str, str]  # input name -> Triton datatype
    sha256: str
    version: str


class TritonBackend(InferenceBackend):
    """Runs the models on a Triton Inference Server over gRPC.

    ``url``: Triton's gRPC endpoint ``HOST:PORT``. ``tls``: TLS with the system's trusted
    roots. ``timeout``: seconds one call may take, retries included (and how long ``load``
    waits for a model to become ready). ``retries``: at most this many retries of one call;
    ``backoff``: the first wait between tries, doubled each time up to ``max_backoff``.
    TLS trusts gRPC's default roots or the CAs in ``$GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``.
    """

    kind = "triton"

    def __init__(
        self,
        url: str = "localhost:8001",
        tls: bool = False,
        timeout: float = 30.0,
        retries: int = 20,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        super().__init__()
        if not isinstance(url, str) or not url.strip() or "://" in url:
            raise BackendError(f"triton url must be HOST:PORT (gRPC, no scheme), got {url!r}")
        for label, value in (
            ("timeout", timeout),
            ("backoff", backoff),
            ("max_backoff", max_backoff),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise BackendError(f"triton {label} must be a number of seconds > 0, got {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise BackendError(f"triton retries must be an integer >= 0, got {retries!r}")
        self.url, self.tls = url.strip(), bool(tls)
        self.timeout, self.retries = float(timeout), retries
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        # reconnect quickly once Triton is back (gRPC's default backoff grows to 120 s)
        channel_args = [
            ("grpc.max_send_message_length", tgrpc.MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", tgrpc.MAX_GRPC_MESSAGE_SIZE),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.keepalive_time_ms", 30000),
            ("grpc.keepalive_timeout_ms", 10000),
        ]
        try:
            self._client = tgrpc.InferenceServerClient(
                self.url, ssl=self.tls, channel_args=channel_args
            )
        except Exception as exc:  # a malformed target
            raise BackendError(f"cannot make a Triton client for {self.url!r}: {exc}") from exc
        self._served: dict[str, _Served] = {}
        self._server_version: str | None = None
        self._ready_lock = threading.Lock()
        self._ready_at = -1e9
        self._ready_value = False
        self._was_ready = True
        self.problem: str | None = None  # why ready() is false, when it is
        self._reached = False  # whether a call ever got an answer from Triton

    # -- calls with retries ----------------------------------------------------------------

    @property
    def where(self) -> str:
        """``Triton at HOST:PORT``, as messages name it."""
        return f"Triton at {self.url}"

    def _unavailable(self, what: str, detail: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"the inference server ({self.where}) is unavailable: {what}: {detail}"
        )

    def _call(self, what: str, fn: Callable[[float], T], timeout: float | None = None) -> T:
        """``fn(seconds_left)`` with UNAVAILABLE retried (backoff) until ``timeout``."""
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + limit
        delay, tries = self.backoff, 0
        while True:
            left = deadline - time.monotonic()
            try:
                answer = fn(max(left, 0.001))
                self._reached = True
                return answer
            except InferenceServerException as exc:
                status, detail = exc.status() or "", " ".join(str(exc.message()).split())
                problem = tls_problem(detail, self.tls)
                if problem:
                    raise self._unavailable(what, problem) from None
                if status == _DEADLINE:
                    raise self._unavailable(what, f"no answer within {limit:g} s") from None
                transient = status in _TRANSIENT or any(g in detail.lower() for g in _GONE_FOR_NOW)
                if not transient and self._server_ready():
                    raise BackendError(f"{what} failed on {self.where}: {detail}") from None
                tries += 1
                if not self.tls and "socket closed" in detail.lower():
                    detail += " (a client without TLS at a TLS port sees this: TLS needed?)"
                refused = not self._reached and any(r in detail.lower() for r in _REFUSED)
                if refused and time.monotonic() - start + delay > CONNECT_TIMEOUT_S:
                    spent = time.monotonic() - start
                    raise self._unavailable(
                        what,
                        f"nothing answers there ({detail}; {tries} tries in {spent:.1f} s): is "
                        "Triton running at that address?",
                    ) from None
                left = deadline - time.monotonic()
                if tries > self.retries or left <= delay:
                    raise self._unavailable(
                        what, f"{detail} ({tries} tries in {limit - max(left, 0):.1f} s)"
                    ) from None
                time.sleep(delay)
                delay = min(2 * delay, self.max_backoff)

    def _server_ready(self) -> bool:
        """Whether Triton says it is ready (one short call): an error from a Triton that is
        not is an outage, retried, rather than a fault of the request or the model."""
        try:
            return bool(self._client.is_server_ready(client_timeout=1.0))
        except InferenceServerException:
            return False

    # -- InferenceBackend ------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """No network call: the server version is the one read at the first load."""
        return {
            "kind": self.kind,
            "device": "triton",
            "url": self.url,
            "tls": self.tls,
            "timeout": self.timeout,
            "server_version": self._server_version or "unknown",
            "models": {
                name: {"version": s.version, "sha256": s.sha256, "max_batch_size": s.max_batch_size}
                for name, s in self._served.items()
            },
        }

    def _load(self, name: str, path: Path) -> Signature:
        start = time.perf_counter()
        signature = onnx_signature(path)
        sha = sha256_file(path)
        self._wait_model_ready(name)
        served = self._check_served(name, path, signature, sha)
        if self._server_version is None:
            meta = self._call("server metadata", lambda t: self._client.get_server_metadata(
                client_timeout=t))  # fmt: skip
            self._server_version = f"{meta.name} {meta.version}"
        self._served[name] = served
        log.info(
            "triton: model %r (%s, version %s) ready on %s, checked in %.0f ms",
            name,
            path.name,
            served.version or "?",
            self.url,
            (time.perf_counter() - start) * 1000,
        )
        return signature

    def _wait_model_ready(self, name: str) -> None:
        """Until Triton says model ``name`` is ready (within the timeout). A model Triton's
        repository lacks, or failed to load, is an error at once."""
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            ready = self._call(
                f"model {name!r} readiness",
                lambda t: self._client.is_model_ready(name, client_timeout=t),
                timeout=max(left, 0.001),
            )
            if ready:
                return
            index = self._call(
                "repository index",
                lambda t: self._client.get_model_repository_index(client_timeout=t),
                timeout=max(deadline - time.monotonic(), 0.001),
            )
            states = {m.name: (m.state, m.reason) for m in index.models}
            if name not in states:
                known = ", ".join(sorted(states)) or "none"
                raise BackendError(
                    f"model {name!r}: {self.where} has no such model (its repository holds: "
                    f"{known}); {REPO_HINT}"
                )
            state, reason = states[name]
            if state == "UNAVAILABLE" and reason:
                raise BackendError(
                    f"model {name!r}: {self.where} could not load it: {reason}; {REPO_HINT}"
                )
            if time.monotonic() + 0.2 >= deadline:
                raise self._unavailable(
                    f"model {name!r}", f"not ready after {self.timeout:g} s (state {state})"
                )
            time.sleep(0.2)

    def _check_served(self, name: str, path: Path, signature: Signature, sha: str) -> _Served:
        """What Triton serves as ``name`` equals the file at ``path``, or a BackendError."""
        config = self._call(
            f"model {name!r} config",
            lambda t: self._client.get_model_config(name, client_timeout=t),
        ).config
        meta = self._call(
            f"model {name!r} metadata",
            lambda t: self._client.get_model_metadata(name, client_timeout=t),
        )
        batch = int(config.max_batch_size)
        problems: list[str] = []
        for kind, specs, served in (
            ("input", signature.inputs, meta.inputs),
            ("output", signature.outputs, meta.outputs),
        ):
            there = {t.name: (t.datatype, list(t.shape)) for t in served}
            for spec in specs:
                want = (_triton_type(spec.dtype), _dims(spec.shape))
                if batch > 0 and (not spec.shape or want[1][0] != -1):
                    problems.append(
                        f"{kind} {spec.name!r} has no dynamic batch axis here ({spec}) but "
                        f"Triton batches it (max_batch_size {batch})"
                    )
                    continue
                got = there.pop(spec.name, None)
                if got is None:
                    problems.append(f"{kind} {spec.name!r} ({_describe_tensor(*want)}) is missing")
                elif got != want:
                    problems.append(
                        f"{kind} {spec.name!r} is {_describe_tensor(*got)} there, "
                        f"{_describe_tensor(*want)} here"
                    )
            problems += [f"{kind} {extra!r} is not in the local file" for extra in there]
        params = config.parameters
        served_sha = params["ahmer_sha256"].string_value if "ahmer_sha256" in params else ""
        if not served_sha:
            problems.append("it has no ahmer_sha256 parameter (not written by ahmer)")
        elif served_sha != sha:
            problems.append(f"its ahmer_sha256 is {served_sha[:12]}..., the file's {sha[:12]}...")
        if problems:
            raise BackendError(
                f"model {name!r} on {self.where} is not the local {path}: "
                + "; ".join(problems)
                + f"; {REPO_HINT}"
            )
        version = params["ahmer_version"].string_value if "ahmer_version" in params else ""
        datatypes = {s.name: _triton_type(s.dtype) for s in signature.inputs}
        return _Served(batch, datatypes, sha, version)

    def _run(
        self, name: str, feeds: dict[str, np.ndarray], outputs: list[str]
    ) -> dict[str, np.ndarray]:
        served = self._served.get(name)
        if served is None:
            raise BackendError(f"model {name!r} is not loaded")
        size = len(next(iter(feeds.values()))) if feeds else 0
        step = served.max_batch_size
        if step <= 0 or size <= step:
            return self._infer(name, served, feeds, outputs)
        parts = [  # Triton refuses a request larger than max_batch_size: split it
            self._infer(name, served, {k: v[i : i + step] for k, v in feeds.items()}, outputs)
            for i in range(0, size, step)
        ]
        return {n: np.concatenate([p[n] for p in parts]) for n in outputs}

    def _infer(
        self, name: str, served: _Served, feeds: dict[str, np.ndarray], outputs: list[str]
    ) -> dict[str, np.ndarray]:
        inputs = []
        for key, value in feeds.items():
            tensor = tgrpc.InferInput(key, list(value.shape), served.datatypes[key])
            tensor.set_data_from_numpy(np.ascontiguousarray(value))
            inputs.append(tensor)
        wanted = [tgrpc.InferRequestedOutput(n) for n in outputs]
        result = self._call(
            f"model {name!r}",
            lambda t: self._client.infer(name, inputs, outputs=wanted, client_timeout=t),
        )
        values = {}
        for n in outputs:
            value = result.as_numpy(n)
            if value is None:
                raise BackendError(f"model {name!r}: {self.where} returned no output {n!r}")
            values[n] = value
        return values

    def _unload(self, name: str) -> None:
        self._served.pop(name, None)  # Triton's models are Triton's: nothing to free there

    def close(self) -> None:
        super().close()
        self._client.close()

    # -- readiness -------------------------------------------------------------------------

    def ready(self) -> bool:
        """Triton is live and ready and serves every loaded model, still the same files.
        Probed at most once a second (concurrent callers share the answer); never raises."""
        with self._ready_lock:
            now = time.monotonic()
            if now - self._ready_at < _READY_CACHE_S:
                return self._ready_value
            before, self.problem = self.problem, self._probe()
            value = self.problem is None
            if value and not self._was_ready:
                log.warning("triton: %s is ready again", self.where)
            elif not value and self.problem != before:  # logged once per reason
                log.error("triton: %s is not ready: %s", self.where, self.problem)
            self._was_ready = self._ready_value = value
            self._ready_at = time.monotonic()
            return value

    def _probe(self) -> str | None:
        """None when ready, else why not."""
        t = min(_PROBE_TIMEOUT_S, self.timeout)
        client = self._client
        try:
            if not client.is_server_live(client_timeout=t):
                return "the server is not live"
            if not client.is_server_ready(client_timeout=t):
                return "the server is not ready"
            for name in list(self._served):
                if not client.is_model_ready(name, client_timeout=t):
                    return f"model {name!r} is not ready"
            if not self._was_ready:  # back after an outage: the same repository?
                for name, served in list(self._served.items()):
                    params = client.get_model_config(name, client_timeout=t).config.parameters
                    sha = params["ahmer_sha256"].string_value if "ahmer_sha256" in params else ""
                    if sha != served.sha256:
                        return (
                            f"model {name!r} changed while Triton was away (ahmer_sha256 "
                            f"{sha[:12] or 'missing'}, loaded {served.sha256[:12]}); restart "
                            "this service, or point Triton back at the repository it loaded"
                        )
        except InferenceServerException as exc:
            detail = " ".join(str(exc.message()).split())
            return tls_problem(detail, self.tls) or detail or str(exc.status())
        return None
