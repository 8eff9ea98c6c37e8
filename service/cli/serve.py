"""``ahmer serve``: the gRPC server (health, reflection, metrics, TLS, tokens)."""

from __future__ import annotations

import argparse
import asyncio

from ..grpc.settings import ConfigError, ServerConfig, add_server_arguments

__all__ = ["add_serve_parser", "run_serve"]


def add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gRPC service",
        description="Serve ahmer.v1.AnalysisService over gRPC with standard health checks, "
        "server reflection and Prometheus metrics. Every option can also be set by the "
        "environment variable shown; flags win over the environment.",
    )
    add_server_arguments(p)
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import sys

    from ..grpc.auth import AuthError
    from ..grpc.server import AhmerServer
    from ..logs import configure_logging

    try:
        config = ServerConfig.from_sources(args)
        configure_logging(config.log_format, "debug" if args.verbose else config.log_level)
        asyncio.run(AhmerServer(config).serve_forever())
    except (ConfigError, AuthError) as exc:
        print(f"ahmer serve: error: {exc}", file=sys.stderr)
        return 2
    return 0
