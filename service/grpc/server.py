"""The gRPC server on ``grpc.aio``: AnalysisService, standard health, reflection, metrics.

Life cycle: :meth:`AhmerServer.start` binds the port and answers health checks at once with
NOT_SERVING; the models load and warm up in a worker thread, then health turns SERVING.
While serving, :meth:`AhmerServer.check_store` hashes the loaded models' store files again
(and a trained fusion's graph) every :data:`STORE_CHECK_SECONDS` (``AHMER_STORE_CHECK_SECONDS``;
0: never): a file changed
or gone under a running server (a bad deploy, a failing disk) turns health NOT_SERVING for
good, with a critical log line naming the model and the fix, so that an orchestrator stops
routing to it and restarts it, instead of the server answering from a store no restart
could load.
Readiness also follows the inference backend's: every :data:`BACKEND_CHECK_SECONDS`
(``AHMER_BACKEND_CHECK_SECONDS``) :meth:`AhmerServer.check_backend` asks the backend whether it
can run the models (Triton live and ready with every model; in-process: always). While it
cannot, health is NOT_SERVING and new calls get UNAVAILABLE "the inference server (Triton at
URL) is unavailable; retry shortly"; when it can again, health turns SERVING on its own. A
server that starts while Triton is down waits for it the same way instead of failing its load.
:meth:`AhmerServer.stop` turns health NOT_SERVING, refuses new calls (UNAVAILABLE) and gives
in-flight calls up to ``shutdown_grace`` seconds to finish before cancelling them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ahmer.models.telemetry import onnx_telemetry_off
from ahmer.v1 import service_pb2, service_pb2_grpc

from ..logs import log_event
from .auth import TokenAuth, load_tokens, server_credentials
from .errors import backend_unavailable
from .interceptors import CallInterceptor
from .prometheus import Metrics
from .reflection import enable_reflection
from .servicer import AnalysisServicer, ServerState
from .settings import ServerConfig

__all__ = [
    "AhmerServer",
    "BACKEND_CHECK_SECONDS",
    "SERVICE_NAME",
    "STORE_CHECK_SECONDS",
    "build_analyzer",
]

log = logging.getLogger("ahmer.service")

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["AnalysisService"].full_name
STORE_CHECK_SECONDS = 600.0  # hashing the whole store costs well under a second of one core
BACKEND_CHECK_SECONDS = 2.0  # a Triton probe is a few small gRPC calls


def _down_message(backend) -> str:
    where = getattr(backend, "where", f"the {getattr(backend, 'kind', 'inference')} backend")
    return f"the inference server ({where}) is unavailable; retry shortly"


def build_analyzer(config: ServerConfig):
    """An unloaded analyzer configured from the server options."""
    from ahmer.models.analyzer import Analyzer

    return Analyzer(config.analysis)


class AhmerServer:
    """One server. ``analyzer``: an analyzer to use (loaded or not); ``None`` builds one."""

    def __init__(self, config: ServerConfig, analyzer=None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.state = ServerState(config=config, metrics=self.metrics, analyzer=analyzer)
        self.health = health.aio.HealthServicer()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._load_task: asyncio.Task | None = None
        self._check_task: asyncio.Task | None = None
        self._backend_task: asyncio.Task | None = None
        self._stopped = asyncio.Event()

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> int:
        cfg = self.config
        telemetry_off = onnx_telemetry_off()  # before the models load ONNX Runtime
        auth = TokenAuth(load_tokens(cfg.token_file, cfg.tokens))
        warning = cfg.auth_warning(auth.enabled)  # ConfigError: no tokens, open address
        if warning:
            log_event(log, warning, logging.WARNING, host=cfg.host, auth=False)
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10000),
        ]
        server = grpc.aio.server(
            interceptors=[CallInterceptor(auth, self.metrics)],
            options=options,
            maximum_concurrent_rpcs=cfg.max_concurrent_rpcs,
        )
        service_pb2_grpc.add_AnalysisServiceServicer_to_server(AnalysisServicer(self.state), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if cfg.reflection:  # grpc.reflection.v1 and v1alpha
            enable_reflection((SERVICE_NAME, health.SERVICE_NAME), server)
        address = f"{cfg.host}:{cfg.port}"
        if ":" in cfg.host and not cfg.host.startswith("["):
            address = f"[{cfg.host}]:{cfg.port}"
        if cfg.tls_cert is not None:
            creds = server_credentials(cfg.tls_cert, cfg.tls_key, cfg.client_ca)
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.state.clip_pool = ThreadPoolExecutor(cfg.worker_threads, "ahmer-clip")
        self.state.live_pool = ThreadPoolExecutor(min(64, 2 * cfg.max_sessions + 1), "ahmer-live")
        await server.start()
        self._server = server
        if cfg.metrics_port is not None:
            # never --host: /metrics answers without credentials (--metrics-host says where)
            self.metrics_port = self.metrics.serve(cfg.metrics_port, cfg.metrics_host)
        log_event(
            log,
            "server listening",
            port=self.port,
            metrics_port=self.metrics_port,
            metrics_host=cfg.metrics_host if self.metrics_port else None,
            tls=cfg.tls_cert is not None,
            mtls=cfg.client_ca is not None,
            auth=auth.enabled,
            workers=cfg.worker_threads,
            onnx_telemetry=not telemetry_off,
        )
        self._load_task = asyncio.create_task(self._load())
        return self.port

    async def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def _load(self) -> None:
        from .warmup import warm_up

        t = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            if self.state.analyzer is None:
                self.state.analyzer = build_analyzer(self.config)
            analyzer = self.state.analyzer
            while True:
                try:
                    if not analyzer.ready:
                        await loop.run_in_executor(self.state.clip_pool, analyzer.load)
                    await loop.run_in_executor(self.state.clip_pool, warm_up, analyzer)
                    break
                except Exception as exc:
                    if not backend_unavailable(exc) or self.state.stopping:
                        raise
                    # Triton is not up yet (or restarting): wait for it, do not give up
                    self.state.backend_down = _down_message(analyzer.backend)
                    log.warning("waiting for the inference server: %s", exc)
                    await asyncio.sleep(self._backend_interval())
            self.state.backend_down = None
        except Exception as exc:
            log.critical(
                "the models could not be loaded; the server stays NOT_SERVING", exc_info=exc
            )
            self.state.broken = "the server could not load its models; see its log"
            return
        if self.state.stopping:
            return
        self.state.ready = True
        self.metrics.ready.set(1)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log_event(
            log,
            "models ready",
            seconds=round(time.perf_counter() - t, 2),
            versions=dict(self.state.analyzer.versions),
        )
        interval = float(os.environ.get("AHMER_STORE_CHECK_SECONDS", STORE_CHECK_SECONDS))
        if interval > 0:
            self._check_task = asyncio.create_task(self._check_store_every(interval))
        if self._backend_interval() > 0:
            self._backend_task = asyncio.create_task(self._check_backend_every())

    @staticmethod
    def _backend_interval() -> float:
        return float(os.environ.get("AHMER_BACKEND_CHECK_SECONDS", BACKEND_CHECK_SECONDS))

    async def _check_backend_every(self) -> None:
        while not self.state.stopping and not self.state.broken:
            await asyncio.sleep(self._backend_interval())
            await self.check_backend()

    async def check_backend(self) -> bool:
        """Ask the backend (in a worker thread) whether it can run the models; follow its
        answer: health NOT_SERVING, ``ahmer_models_ready`` 0 and new calls UNAVAILABLE while
        it cannot, SERVING again once it can. Returns its answer."""
        backend = getattr(self.state.analyzer, "backend", None)
        if backend is None or not self.state.ready:
            return self.state.ready
        try:
            ok = bool(await asyncio.get_running_loop().run_in_executor(None, backend.ready))
        except Exception as exc:  # a probe that fails is a backend that is not ready
            log.error("inference backend readiness check failed", exc_info=exc)
            ok = False
        if self.state.stopping or self.state.broken or ok == (self.state.backend_down is None):
            return ok
        if ok:
            self.state.backend_down = None
            self.metrics.ready.set(1)
            await self._set_health(health_pb2.HealthCheckResponse.SERVING)
            log_event(log, "inference server available again: serving")
        else:
            self.state.backend_down = _down_message(backend)
            self.metrics.ready.set(0)
            await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
            log_event(
                log,
                "inference server unavailable: not serving until it is back",
                logging.ERROR,
                reason=getattr(backend, "problem", None),
            )
        return ok

    async def _check_store_every(self, interval: float) -> None:
        await asyncio.sleep(interval)  # the load has just verified it
        while await self.check_store():
            await asyncio.sleep(interval)

    async def check_store(self) -> bool:
        """Hash the store files of the loaded models again (in a worker thread); when one no
        longer matches its manifest: health NOT_SERVING, ``ahmer_models_ready`` 0, new calls
        UNAVAILABLE, and a critical log line. True while the store is sound."""
        analyzer = self.state.analyzer
        store = getattr(analyzer, "store", None)
        if not self.state.ready or store is None:
            return self.state.ready
        from ahmer.models.store.sources import ARTIFACTS

        names = [  # the models it loaded from the store (a user's Whisper folder is not)
            name
            for name, version in analyzer.versions.items()
            if name in ARTIFACTS and not str(version).startswith("user:")
        ]

        def problems() -> list[str]:
            found = [m for m in map(store.recheck, names) if m]
            fusion = getattr(analyzer, "fusion", None)  # a trained fusion is not in ARTIFACTS
            if fusion is not None and fusion.trained:
                from ahmer.models.fusion.registry import recheck_fusion

                found += [m for m in (recheck_fusion(fusion),) if m]
            return found

        found = await asyncio.get_running_loop().run_in_executor(None, problems)
        if not found or self.state.stopping:
            return True
        self.state.ready = False
        self.state.broken = (
            "the server's model store changed under it (a model file no longer matches its "
            "manifest); it stopped serving until restarted on a sound store"
        )
        self.metrics.ready.set(0)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        log.critical(
            "model store check failed: %s; the server stops serving (health NOT_SERVING) "
            "until it is restarted on a sound store",
            "; ".join(found),
        )
        return False

    async def wait_ready(self, timeout: float = 300.0) -> None:
        """Wait until the models are loaded (raises on a failed load or timeout)."""
        await asyncio.wait_for(asyncio.shield(self._load_task), timeout)
        if not self.state.ready:
            raise RuntimeError("the models could not be loaded (see the log)")

    # -- stop ----------------------------------------------------------------------------

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING, refuse new calls, let in-flight calls finish."""
        if self._server is None or self.state.stopping:
            await self._stopped.wait()
            return
        grace = self.config.shutdown_grace if grace is None else grace
        self.state.stopping = True
        self.metrics.ready.set(0)
        await self.health.enter_graceful_shutdown()
        log_event(
            log,
            "server stopping",
            grace_s=grace,
            active_streams=self.state.active_streams,
        )
        await self._server.stop(grace)
        for task in (self._load_task, self._check_task, self._backend_task):
            if task is not None and not task.done():
                task.cancel()
        for pool in (self.state.clip_pool, self.state.live_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self.metrics.close()
        log_event(log, "server stopped")
        self._stopped.set()

    async def serve_forever(self) -> None:
        """Start, then run until SIGTERM/SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log_event(log, "signal received: shutting down")
        await self.stop()
