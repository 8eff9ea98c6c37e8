"""Server configuration: one table of options, read from flags and ``AHMER_*`` environment
variables (a flag wins over the environment, the environment over the default).

The same table builds the ``ahmer serve`` parser; the configuration table in docs/grpc.md lists its
rows in order (``tests/test_deploy.py`` holds the two together).
The analysis options in it (``--fps`` ... ``--face-engine``) are the rows of
:data:`ahmer.models.config.ANALYSIS_OPTIONS`, read into ``ServerConfig.analysis``; their values
are checked by that table's rules, except ``--fps``, which the server caps lower
(:data:`MAX_CALL_FPS`).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from ahmer.models.config import ANALYSIS_OPTIONS, AnalyzerConfig
from ahmer.models.config import parse_bool as _bool
from ahmer.preprocessing.errors import InvalidInput
from ahmer.preprocessing.options import Rule

from ..live.config import LiveConfig

__all__ = [
    "CALL_FPS",
    "MAX_CALL_FPS",
    "OPTIONS",
    "Option",
    "ServerConfig",
    "ConfigError",
    "add_server_arguments",
    "is_loopback",
]

MAX_CALL_FPS = 30.0
"""The highest analysis rate one call may ask for (``options.fps``), below the pipeline's
120: a call's cost grows with its rate, and one call must not hold a worker for long. The
server's default rate (``--fps``) is what a call gets when it asks for none, so it obeys
the same cap."""

CALL_FPS = Rule(lambda v: 0 < v <= MAX_CALL_FPS, f"must be in (0, {MAX_CALL_FPS:g}]")
"""The server's analysis rates, a call's and the default: in place of the pipeline's rule."""


class ConfigError(InvalidInput, ValueError):
    """An option has a value the server cannot use (the message names the flag and env)."""


LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")


def is_loopback(host: str) -> bool:
    """Whether ``host`` listens on this machine only: ``localhost``, 127.0.0.0/8 or ``::1``
    (the wildcards ``0.0.0.0`` and ``::`` listen everywhere; a host name is not trusted)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Option:
    name: str  # ServerConfig field, or AnalyzerConfig field (of ServerConfig.analysis)
    env: str
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None  # the values allowed, shown in the usage

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def _metrics_port(text: str) -> int | None:
    return None if text.strip().lower() in ("", "off", "none", "-1") else int(text)


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``ahmer serve`` can be told. Sizes in MiB, durations in seconds."""

    host: str = "0.0.0.0"
    port: int = 50051
    metrics_port: int | None = 9464
    metrics_host: str = "127.0.0.1"  # /metrics has no credentials: loopback unless told
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    token_file: Path | None = None
    tokens: str = ""
    insecure_no_auth: bool = False  # serve without tokens on a non-loopback address
    max_message_mb: float = 64.0
    max_upload_mb: float = 1024.0
    max_buffered_mb: float = 2048.0
    max_sessions: int = 8
    max_stream_seconds: float = 600.0
    max_concurrent_rpcs: int = 64
    workers: int = 0
    analysis: AnalyzerConfig = field(default_factory=AnalyzerConfig)  # --fps ... --face-engine
    shutdown_grace: float = 30.0
    live_window: float = LiveConfig.window
    live_queue_frames: int = 30
    reflection: bool = True
    log_format: str = "json"
    log_level: str = "info"

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.port <= 65535, "port", "must be 0..65535"),
            (
                self.metrics_port is None or 0 <= self.metrics_port <= 65535,
                "metrics_port",
                "must be 0..65535 or off",
            ),
            (bool(self.metrics_host.strip()), "metrics_host", "must not be empty"),
            ((self.tls_cert is None) == (self.tls_key is None), "tls_key", "needs tls_cert too"),
            (self.client_ca is None or self.tls_cert is not None, "client_ca", "needs TLS"),
            (0.001 <= self.max_message_mb <= 2047, "max_message_mb", "must be in 0.001..2047"),
            (self.max_upload_mb > 0, "max_upload_mb", "must be positive"),
            (self.max_buffered_mb > 0, "max_buffered_mb", "must be positive"),
            (1 <= self.max_sessions <= 10000, "max_sessions", "must be 1..10000"),
            (self.max_stream_seconds > 0, "max_stream_seconds", "must be positive"),
            (self.max_concurrent_rpcs >= 1, "max_concurrent_rpcs", "must be at least 1"),
            (0 <= self.workers <= 256, "workers", "must be 0 (auto) .. 256"),
            (not CALL_FPS.problem(self.analysis.fps), "fps", CALL_FPS.text),
            (self.shutdown_grace >= 0, "shutdown_grace", "must not be negative"),
            (2 <= self.live_window <= 60, "live_window", "must be 2..60 seconds"),
            (2 <= self.live_queue_frames <= 1000, "live_queue_frames", "must be 2..1000"),
            (self.log_format in LOG_FORMATS, "log_format", "must be json or text"),
            (self.log_level in LOG_LEVELS, "log_level", "must be debug, info, warning or error"),
        ]
        for ok, name, why in checks:
            if not ok:
                option = _BY_NAME[name]
                raise ConfigError(f"{option.flag} / {option.env}: {why}")
        for name in ("tls_cert", "tls_key", "client_ca", "token_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                option = _BY_NAME[name]
                raise ConfigError(f"{option.flag} / {option.env}: no such file: {path}")

    def auth_warning(self, has_tokens: bool) -> str | None:
        """Without bearer tokens or client certificates anyone who reaches the port may call
        the service: on a loopback address that is a warning (returned, for the log);
        elsewhere a :class:`ConfigError`, unless ``insecure_no_auth`` says it is meant (a
        warning again). ``None`` when callers must authenticate."""
        if has_tokens or self.client_ca is not None:
            return None
        if not self.insecure_no_auth and not is_loopback(self.host):
            raise ConfigError(
                f"no bearer tokens are configured and --host {self.host} is not a loopback "
                "address: anyone who can reach the port could use the service. Set tokens "
                "(--tokens / AHMER_TOKENS or --token-file / AHMER_TOKEN_FILE), or serve "
                "without authentication on purpose with --insecure-no-auth "
                "(AHMER_INSECURE_NO_AUTH=true), e.g. behind an authenticating proxy"
            )
        return (
            "no bearer tokens configured: every caller is allowed (set --tokens / "
            "AHMER_TOKENS or --token-file / AHMER_TOKEN_FILE)"
        )

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_buffered_bytes(self) -> int:
        return int(self.max_buffered_mb * 1024 * 1024)

    @property
    def worker_threads(self) -> int:
        return self.workers or max(2, os.cpu_count() or 2)

    @classmethod
    def from_sources(
        cls, args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
    ) -> ServerConfig:
        """Flags (attributes of ``args`` that are not None) over ``env`` over defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        analysis: dict[str, Any] = {}
        for option in OPTIONS:
            raw = getattr(args, option.name, None) if args is not None else None
            source = option.flag
            if raw is None and option.env in env:
                raw, source = env[option.env], option.env
            if raw is None:
                continue
            into = analysis if option.name in _ANALYSIS else values
            try:
                into[option.name] = option.type(raw) if isinstance(raw, str) else raw
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{source}: bad value {raw!r} ({exc})") from exc
        for name, value in analysis.items():  # checked here, to name the flag and variable
            rule = CALL_FPS if name == "fps" else _ANALYSIS[name].rule
            problem = rule.problem(value) if rule is not None else None
            if problem:
                option = _BY_NAME[name]
                raise ConfigError(f"{option.flag} / {option.env}: {problem}")
        return cls(analysis=AnalyzerConfig(**analysis), **values)


_ANALYSIS = {o.name: o for o in ANALYSIS_OPTIONS}
_DEFAULTS = {f.name: f.default for f in fields(ServerConfig) if f.default is not MISSING}
_DEFAULTS.update({o.name: getattr(AnalyzerConfig(), o.name) for o in ANALYSIS_OPTIONS})
_DEFAULTS["whisper_model"] = ""  # None there means the store's model: shown as "none"

OPTIONS: tuple[Option, ...] = (
    Option("host", "AHMER_HOST", str, "address to listen on"),
    Option("port", "AHMER_PORT", int, "gRPC port (0: a free port, logged)"),
    Option("metrics_port", "AHMER_METRICS_PORT", _metrics_port, "Prometheus port (off: none)"),
    Option(
        "metrics_host",
        "AHMER_METRICS_HOST",
        str,
        "address of the Prometheus port (it has no credentials; 0.0.0.0 to let a scraper in)",
    ),
    Option("tls_cert", "AHMER_TLS_CERT", _optional_path, "server certificate chain (PEM)"),
    Option("tls_key", "AHMER_TLS_KEY", _optional_path, "server private key (PEM)"),
    Option("client_ca", "AHMER_CLIENT_CA", _optional_path, "CA for client certificates (mTLS)"),
    Option("token_file", "AHMER_TOKEN_FILE", _optional_path, "bearer tokens, one per line"),
    Option("tokens", "AHMER_TOKENS", str, "bearer tokens, comma-separated"),
    Option(
        "insecure_no_auth",
        "AHMER_INSECURE_NO_AUTH",
        _bool,
        "allow serving without tokens on a non-loopback address",
    ),
    Option("max_message_mb", "AHMER_MAX_MESSAGE_MB", float, "largest gRPC message, MiB"),
    Option("max_upload_mb", "AHMER_MAX_UPLOAD_MB", float, "largest UploadClip media, MiB"),
    Option("max_buffered_mb", "AHMER_MAX_BUFFERED_MB", float, "media held by all clip calls, MiB"),
    Option("max_sessions", "AHMER_MAX_SESSIONS", int, "concurrent live sessions"),
    Option("max_stream_seconds", "AHMER_MAX_STREAM_SECONDS", float, "longest live session, s"),
    Option("max_concurrent_rpcs", "AHMER_MAX_CONCURRENT_RPCS", int, "concurrent calls"),
    Option("workers", "AHMER_WORKERS", int, "analysis threads (0: CPU count, at least 2)"),
    *(Option(o.name, o.env, o.parse, o.serve_help, o.choices) for o in ANALYSIS_OPTIONS),
    Option("shutdown_grace", "AHMER_SHUTDOWN_GRACE", float, "seconds in-flight calls may finish"),
    Option("live_window", "AHMER_LIVE_WINDOW", float, "live analysis window, seconds"),
    Option("live_queue_frames", "AHMER_LIVE_QUEUE_FRAMES", int, "analysis frames queued/session"),
    Option("reflection", "AHMER_REFLECTION", _bool, "serve gRPC server reflection"),
    Option("log_format", "AHMER_LOG_FORMAT", str.lower, "log line format", LOG_FORMATS),
    Option("log_level", "AHMER_LOG_LEVEL", str.lower, "least severe level logged", LOG_LEVELS),
)
_BY_NAME = {o.name: o for o in OPTIONS}


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option; defaults stay None so the environment can fill them. Options with
    a fixed set of values show it (``--log-level {debug,info,warning,error}``); a boolean
    flag alone means true (``--insecure-no-auth``)."""
    for option in OPTIONS:
        default = _DEFAULTS[option.name]
        shown = "off" if default is None else (default if default != "" else "none")
        if isinstance(default, bool):
            shown = str(default).lower()
        kwargs: dict[str, Any] = {"metavar": option.name.split("_")[-1].upper()}
        if option.choices:  # argparse checks them, and lists them in the usage
            kwargs = {"choices": option.choices, "type": option.type}
        elif option.type is _bool:
            kwargs = {"nargs": "?", "const": "true", "metavar": "{true,false}"}
        parser.add_argument(
            option.flag,
            dest=option.name,
            default=None,
            help=f"{option.help} [{option.env}, default {shown}]",
            **kwargs,
        )
