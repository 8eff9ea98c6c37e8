"""The ``ahmer`` command line: :func:`main` and one module per subcommand.

The top of the service: it imports the other rooms (grpc, batch, client, live) and nothing
imports it."""

from .main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser, main

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]
