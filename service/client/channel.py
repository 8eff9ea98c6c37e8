"""Channels to the ahmer server: plaintext or TLS (optionally with a client certificate),
with generous message limits, the bearer token as call metadata, and a retry policy for the
calls that are safe to repeat."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["ClientOptions", "channel_options", "credentials", "metadata", "service_config"]

# The unary calls without side effects: repeating one gives the same answer. UploadClip and
# StreamSession are streams and are never retried: an upload is by design larger than any
# sensible retry buffer (the caller re-sends the file), and a live session's frames are
# captured in real time and its results already delivered as they came, so a replay would
# analyse stale frames and repeat results.
RETRIED = (
    ("ahmer.v1.AnalysisService", "AnalyzeClip"),
    ("ahmer.v1.AnalysisService", "GetModels"),
    ("grpc.health.v1.Health", "Check"),
)
MAX_RETRIES = 4  # gRPC caps maxAttempts at 5


@dataclass(frozen=True)
class ClientOptions:
    """How to reach the server.

    ``token``: bearer token sent as ``authorization`` metadata. ``tls``: use TLS (implied by
    any of the files). ``ca``: CA bundle that signed the server certificate (PEM; default:
    the system roots). ``cert``/``key``: client certificate and key for mTLS.
    ``server_name``: the name to check in the server certificate when it differs from the
    host in the target. ``max_message_mb``: largest message either way. ``retries``: how
    many times a call that failed with UNAVAILABLE (server unreachable, restarting, still
    loading its models) is repeated, with exponential backoff (0.2 s, 0.4 s, 0.8 s, ...,
    randomised), for the calls without side effects (``AnalyzeClip``, ``GetModels``, health
    checks; never uploads or live sessions); 0 disables retries, at most 4.
    """

    token: str | None = None
    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    max_message_mb: float = 256.0
    retries: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= MAX_RETRIES:
            raise ValueError(f"retries must be 0..{MAX_RETRIES}, got {self.retries}")

    @property
    def secure(self) -> bool:
        return self.tls or any(p is not None for p in (self.ca, self.cert, self.key))


def channel_options(opts: ClientOptions) -> list[tuple[str, object]]:
    size = int(opts.max_message_mb * 1024 * 1024)
    out: list[tuple[str, object]] = [
        ("grpc.max_send_message_length", size),
        ("grpc.max_receive_message_length", size),
    ]
    if opts.server_name:
        out.append(("grpc.ssl_target_name_override", opts.server_name))
    if opts.retries:
        out += [
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(opts.retries)),
            # a request larger than the retry buffer (256 KiB by default) is never retried:
            # let whole clips up to the message limit be retried too
            ("grpc.per_rpc_retry_buffer_size", size),
        ]
    return out


def service_config(retries: int) -> str:
    """The gRPC service config (JSON) retrying UNAVAILABLE ``retries`` times on the calls
    in ``RETRIED``."""
    policy = {
        "maxAttempts": retries + 1,
        "initialBackoff": "0.2s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    names = [{"service": service, "method": method} for service, method in RETRIED]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})


def credentials(opts: ClientOptions) -> grpc.ChannelCredentials:
    def read(path: Path | None) -> bytes | None:
        return Path(path).read_bytes() if path is not None else None

    if (opts.cert is None) != (opts.key is None):
        raise ValueError("a client certificate needs both cert and key")
    return grpc.ssl_channel_credentials(
        root_certificates=read(opts.ca),
        private_key=read(opts.key),
        certificate_chain=read(opts.cert),
    )


def metadata(opts: ClientOptions, request_id: str | None = None) -> tuple[tuple[str, str], ...]:
    out = []
    if opts.token:
        out.append(("authorization", f"Bearer {opts.token}"))
    if request_id:
        out.append(("x-request-id", request_id))
    return tuple(out)
