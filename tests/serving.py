"""Helpers for the gRPC tests: a real server in a background thread (its own event loop),
one loaded analyzer shared by every test server of the session, free ports, test clips."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np

__all__ = [
    "ServerThread",
    "serve_process",
    "shared_analyzer",
    "free_port",
    "speech_clip",
    "metric_value",
    "settled_metric",
    "TOKEN",
]

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.lru_cache(maxsize=1)
def shared_analyzer():
    """One loaded analyzer (5 fps) for all test servers: the model load happens once."""
    from ahmer.models.analyzer import Analyzer, AnalyzerConfig

    return Analyzer(AnalyzerConfig(fps=5.0)).load()


class ServerThread:
    """An :class:`~ahmer.service.grpc.server.AhmerServer` on 127.0.0.1 in a thread."""

    def __init__(self, analyzer=None, **options) -> None:
        from ahmer.service.grpc.server import AhmerServer
        from ahmer.service.grpc.settings import ServerConfig

        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        options.setdefault("metrics_port", 0)
        options.setdefault("shutdown_grace", 2.0)
        self.config = ServerConfig(**options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = AhmerServer(self.config, analyzer=analyzer)
        self.port = self.call(self.server.start())
        self.target = f"127.0.0.1:{self.port}"

    def call(self, coro, timeout: float = 300.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_ready(self) -> ServerThread:
        self.call(self.server.wait_ready())
        return self

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.server.metrics_port}/metrics"

    def stop(self, grace: float | None = None) -> None:
        try:
            self.call(self.server.stop(grace), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@contextmanager
def serve_process(
    env: dict[str, str | None] | None = None,
    stderr: Path | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 240,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """``ahmer serve [args]`` in its own process on 127.0.0.1 (metrics off), ``env`` added
    to the environment (None: removed), stderr to the file ``stderr`` (else discarded):
    ``(process, target)`` once health says SERVING; SIGTERM at the end (then SIGKILL)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = free_port()
    env = {**os.environ, "AHMER_HOST": "127.0.0.1", "AHMER_PORT": str(port),
           "AHMER_METRICS_PORT": "off", **(env or {})}  # fmt: skip
    env = {key: value for key, value in env.items() if value is not None}
    with open(stderr or os.devnull, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ahmer.service.cli", "serve", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                assert proc.poll() is None, f"ahmer serve exited with {proc.returncode}"
                assert time.monotonic() < deadline, "ahmer serve did not become SERVING"
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        yield proc, target
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def metric_value(url: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample on a Prometheus text page (0.0 when absent)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    want = labels or {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        found = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        found = {k: v.strip('"') for k, v in found.items()}
        if all(found.get(k) == v for k, v in want.items()):
            return float(value)
    return 0.0


def settled_metric(
    url: str, name: str, labels: dict[str, str] | None, expected: float, timeout: float = 5.0
) -> float:
    """:func:`metric_value` once it equals ``expected`` (its last value after ``timeout`` s):
    the server records a call's metrics as it finishes the call, which can be just after
    the client already has the call's status."""
    deadline = time.monotonic() + timeout
    while (value := metric_value(url, name, labels)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def speech_clip(folder: Path, text: str, name: str, face: bool = True, lead: float = 0.3) -> Path:
    """A real clip: espeak-ng speaking ``text`` over a webcam-like frame of a real face."""
    from media import canvas, make_clip, portrait, read_wav, speak
    from scipy.signal import resample_poly

    audio, rate = read_wav(speak(text, folder / f"{name}.wav"))
    audio = resample_poly(audio[:, 0], 16000, rate).astype(np.float32)
    pad = np.zeros(int(lead * 16000), np.float32)
    audio = np.concatenate([pad, audio, np.zeros(8000, np.float32)])
    frame = canvas(portrait() if face else None)
    return make_clip(folder / f"{name}.mp4", frame, audio, 16000, fps=15)
