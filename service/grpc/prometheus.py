"""Prometheus metrics of one server (own registry, so several servers can share a process).

===================================  =========  ==============================================
``ahmer_requests_total``             counter    finished calls by ``method`` and ``code``
``ahmer_request_errors_total``       counter    calls that ended with a non-OK ``code``
``ahmer_request_seconds``            histogram  call duration by ``method``
``ahmer_stage_seconds``              histogram  pipeline stage time by ``stage`` (decode, faces,
                                                vad, asr, emotion, text, cues, fusion, ...,
                                                live_frame, live_window, live_asr)
``ahmer_active_streams``             gauge      live sessions open now
``ahmer_live_skipped_frames_total``  counter    video frames not analysed, by ``reason``
``ahmer_models_ready``               gauge      1 once the models are loaded and warm
===================================  =========  ==============================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]

_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_CALL_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ahmer_requests", "Finished gRPC calls", ["method", "code"], registry=r
        )
        self.errors = Counter(
            "ahmer_request_errors", "gRPC calls that failed", ["method", "code"], registry=r
        )
        self.latency = Histogram(
            "ahmer_request_seconds",
            "gRPC call duration",
            ["method"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "ahmer_stage_seconds",
            "Pipeline stage duration",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.active_streams = Gauge("ahmer_active_streams", "Open live sessions", registry=r)
        self.skipped = Counter(
            "ahmer_live_skipped_frames", "Video frames not analysed", ["reason"], registry=r
        )
        self.ready = Gauge("ahmer_models_ready", "1 when models are loaded", registry=r)
        self._http = None

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(method, code).inc()
        if code != "OK":
            self.errors.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)

    def observe_stages(self, timings: dict[str, float], prefix: str = "") -> None:
        for stage, seconds in timings.items():
            if seconds is not None and seconds >= 0:
                self.stages.labels(prefix + stage).observe(seconds)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` over HTTP on ``host``; returns the bound port (``port=0`` picks
        one). The page has no credentials, so the default is loopback."""
        server, _thread = start_http_server(port, addr=host.strip("[]"), registry=self.registry)
        self._http = server
        return int(server.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
