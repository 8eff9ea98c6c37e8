"""Prometheus metrics of one server (own registry, so several servers can share a process).

The call metrics carry the names and labels of the gRPC ecosystem's server instrumentation
(go-grpc-prometheus, py-grpc-prometheus), so its dashboards and alerts apply as they are;
``grpc_type`` is ``unary``, ``client_stream``, ``server_stream`` or ``bidi_stream``.
No ``*_created`` series: prometheus_client's creation-time samples are turned off (they
doubled every counter and histogram on the page).

==========================================  =========  =====================================
``grpc_server_started_total``               counter    calls started, by ``grpc_type``,
                                                       ``grpc_service``, ``grpc_method``
``grpc_server_handled_total``               counter    calls finished, by the same and
                                                       ``grpc_code`` (OK, CANCELLED, ...)
``grpc_server_handling_seconds``            histogram  call duration, by ``grpc_type``,
                                                       ``grpc_service``, ``grpc_method``
``ahmer_stage_seconds``                     histogram  pipeline stage time by ``stage``
                                                       (decode, faces, vad, asr, emotion,
                                                       text, cues, fusion, ..., live_frame,
                                                       live_window, live_asr)
``ahmer_active_streams``                    gauge      live sessions open now
``ahmer_media_held_bytes``                  gauge      clip media held in memory by all calls
                                                       (the ``--max-buffered-mb`` budget)
``ahmer_live_skipped_frames_total``         counter    video frames not analysed, by
                                                       ``reason``
``ahmer_models_ready``                      gauge      1 once the models are loaded and warm
==========================================  =========  =====================================
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

__all__ = ["CALL_LABELS", "Metrics", "grpc_type"]

CALL_LABELS = ("grpc_type", "grpc_service", "grpc_method")


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    """The ``grpc_type`` label of a method: unary, client_stream, server_stream, bidi_stream."""
    return {
        (False, False): "unary",
        (True, False): "client_stream",
        (False, True): "server_stream",
        (True, True): "bidi_stream",
    }[request_streaming, response_streaming]


_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_CALL_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # process-wide in prometheus_client: no *_created series
        self.registry = CollectorRegistry()
        r = self.registry
        self.started = Counter(
            "grpc_server_started", "RPCs started on the server", CALL_LABELS, registry=r
        )
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure",
            [*CALL_LABELS, "grpc_code"],
            registry=r,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Response latency (seconds) of gRPC that had been application-level handled",
            CALL_LABELS,
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
        self.media_held = Gauge(
            "ahmer_media_held_bytes",
            "Clip media held in memory by all calls, against the server's budget",
            registry=r,
        )
        self.skipped = Counter(
            "ahmer_live_skipped_frames", "Video frames not analysed", ["reason"], registry=r
        )
        self.ready = Gauge("ahmer_models_ready", "1 when models are loaded", registry=r)
        self._http = None

    def start_call(self, kind: str, service: str, method: str) -> None:
        self.started.labels(kind, service, method).inc()

    def observe_call(self, kind: str, service: str, method: str, code: str, seconds: float):
        self.handled.labels(kind, service, method, code).inc()
        self.latency.labels(kind, service, method).observe(seconds)

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
