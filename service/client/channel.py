"""Channels to the ahmer server: plaintext or TLS (optionally with a client certificate),
with generous message limits and the bearer token as call metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["ClientOptions", "channel_options", "credentials", "metadata"]


@dataclass(frozen=True)
class ClientOptions:
    """How to reach the server.

    ``token``: bearer token sent as ``authorization`` metadata. ``tls``: use TLS (implied by
    any of the files). ``ca``: CA bundle that signed the server certificate (PEM; default:
    the system roots). ``cert``/``key``: client certificate and key for mTLS.
    ``server_name``: the name to check in the server certificate when it differs from the
    host in the target. ``max_message_mb``: largest message either way.
    """

    token: str | None = None
    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    max_message_mb: float = 256.0

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
    return out


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
