"""The gRPC transport: server, servicer, the live stream handler, interceptors (auth, limits,
logs, Prometheus metrics), warm-up and the status of errors.

It adapts :mod:`ahmer.service.live` and :mod:`ahmer.models` to gRPC; nothing below it
imports gRPC."""
