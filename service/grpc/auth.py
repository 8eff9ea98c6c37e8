"""Bearer-token authentication and TLS credentials for the server.

Tokens come from a file (one per line, ``#`` comments) and/or a comma-separated string (the
``AHMER_TOKENS`` environment variable). A request must send ``authorization: Bearer <token>``;
the token is compared with every configured token in constant time (``hmac.compare_digest``
over SHA-256 digests, so neither the length nor the position of a mismatch leaks), and all
tokens are always compared. With no tokens configured, authentication is off.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc

from ahmer.preprocessing.errors import InvalidInput

__all__ = ["AuthError", "TokenAuth", "load_tokens", "server_credentials", "EXEMPT_PREFIXES"]

# Calls that never need a token: orchestrators probe health without credentials, and the
# reflection service only describes the (public) API; turn it off with --reflection off.
EXEMPT_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class AuthError(InvalidInput, ValueError):
    """A token source or certificate file is unusable."""


def load_tokens(token_file: Path | None = None, tokens: str = "") -> list[str]:
    """Tokens from ``token_file`` (one per line; blank lines and ``#`` comments skipped) and
    from the comma-separated ``tokens``."""
    found: list[str] = []
    if token_file is not None:
        try:
            text = Path(token_file).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read the token file {token_file}: {exc}") from exc
        found += [line.strip() for line in text.splitlines()]
    found += [t.strip() for t in tokens.split(",")]
    found = [t for t in found if t and not t.startswith("#")]
    for token in found:
        if len(token) < 16 or any(c.isspace() for c in token):
            raise AuthError("bearer tokens must be at least 16 characters, without spaces")
    return found


class TokenAuth:
    """Checks ``authorization`` metadata against a fixed set of tokens."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        """None when the call may proceed, else the reason it may not (for the status)."""
        if not self._digests:
            return None
        header = None
        for key, value in metadata or ():
            if key.lower() == "authorization":
                header = value.decode("latin-1") if isinstance(value, bytes) else value
                break
        if header is None:
            return "missing bearer token (send metadata 'authorization: Bearer <token>')"
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed authorization metadata (expected 'Bearer <token>')"
        digest = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).digest()
        ok = False
        for known in self._digests:  # no early exit: every token is compared
            ok |= hmac.compare_digest(digest, known)
        return None if ok else "invalid bearer token"


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AuthError(f"cannot read the {what} {path}: {exc}") from exc


def server_credentials(
    cert: Path, key: Path, client_ca: Path | None = None
) -> grpc.ServerCredentials:
    """TLS credentials; with ``client_ca`` clients must present a certificate it signed."""
    chain, private = _read(cert, "TLS certificate"), _read(key, "TLS key")
    if b"-----BEGIN" not in chain or b"-----BEGIN" not in private:
        raise AuthError("the TLS certificate and key must be PEM files")
    root = _read(client_ca, "client CA") if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(private, chain)], root_certificates=root, require_client_auth=root is not None
    )
