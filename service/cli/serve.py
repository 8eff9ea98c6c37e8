"""``ahmer serve``: the gRPC server (health, reflection, metrics, TLS, tokens)."""

from __future__ import annotations

import argparse

from ..grpc.settings import ConfigError, ServerConfig, add_server_arguments
from .args import examples

__all__ = ["add_serve_parser", "run_serve"]


def add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gRPC service",
        description="Serve ahmer.v1.AnalysisService over gRPC with standard health checks, "
        "server reflection and Prometheus metrics. Every option can also be set by the "
        "environment variable shown; flags win over the environment. Without bearer tokens "
        "(or client certificates) it serves on a loopback address only, unless "
        "--insecure-no-auth.",
        **examples(
            "ahmer serve --host 127.0.0.1                 # local trial: no tokens needed",
            'AHMER_TOKENS="$(openssl rand -hex 24)" ahmer serve --port 50051',
            "ahmer serve --token-file tokens.txt --tls-cert server.pem --tls-key server.key",
            "ahmer serve --insecure-no-auth --log-format text   # behind an auth proxy",
        ),
    )
    add_server_arguments(p)
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from ..grpc.auth import AuthError
    from ..grpc.server import AhmerServer
    from ..logs import configure_logging, native_stderr_logged

    try:
        config = ServerConfig.from_sources(args)
        level = "debug" if args.verbose else config.log_level
        # JSON logs: what native libraries print to stderr becomes JSON records too
        with native_stderr_logged(config.log_format == "json") as stream:
            configure_logging(config.log_format, level, stream)
            asyncio.run(AhmerServer(config).serve_forever())
    except (ConfigError, AuthError) as exc:
        print(f"ahmer serve: error: {exc}", file=sys.stderr)
        return 2
    return 0
