"""``ahmer models triton-repo`` and ``ahmer models triton-local``: a Triton model repository
from the model store, and a real local Triton serving one (the developer's one command)."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from ahmer.models.store.model_store import ModelStore, ModelStoreError
from ahmer.models.triton.repository import (
    DEFAULT_MAX_QUEUE_DELAY_US,
    KINDS,
    TritonRepoError,
    write_repository,
)

from .args import examples

__all__ = ["add_triton_parsers", "cmd_triton_local", "cmd_triton_repo"]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {port}")
    return port


def _delay(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of microseconds: {text!r}") from None
    if not 0 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError(f"must be 0..10000000 microseconds, got {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fusion",
        default="",
        metavar="SPEC",
        help="the fusion to serve (default: the store's zero-shot prior)",
    )
    parser.add_argument(
        "--max-queue-delay-us",
        type=_delay,
        default=DEFAULT_MAX_QUEUE_DELAY_US,
        metavar="N",
        help="how long Triton's dynamic batcher waits for a request to gather others "
        f"(default {DEFAULT_MAX_QUEUE_DELAY_US})",
    )


def add_triton_parsers(actions: Any) -> None:
    """Add ``triton-repo`` and ``triton-local`` to the ``ahmer models`` actions."""
    repo = actions.add_parser(
        "triton-repo",
        help="write a Triton model repository from the model store",
        description="Write a Triton Inference Server model repository: a folder per ONNX model "
        "the analyzer runs (fer_emotion, minilm, the fusion) with 1/model.onnx copied from the "
        "verified store and a config.pbtxt (signature, dynamic batching, instance group, sha256 "
        "and version), plus ahmer_repo.json. OUT is replaced when it holds an earlier repository "
        "and refused when it holds anything else.",
        **examples(
            "ahmer models triton-repo /srv/triton-models --kind gpu",
            "ahmer models triton-repo repo --kind gpu --tensorrt-fp16",
            "ahmer models triton-repo repo --python-backend   # for the local tritonserver",
        ),
    )
    repo.add_argument("out", type=Path, metavar="OUT", help="the repository folder to write")
    repo.add_argument(
        "--kind", choices=KINDS, default="cpu", help="instance groups on CPU or GPU (default cpu)"
    )
    repo.add_argument(
        "--python-backend",
        action="store_true",
        help="wrap the ONNX files in python-backend models (for a Triton without the "
        "onnxruntime backend, e.g. the nvidia-pytriton wheel's)",
    )
    repo.add_argument(
        "--tensorrt-fp16",
        action="store_true",
        help="add the TensorRT execution accelerator in fp16 (needs --kind gpu)",
    )
    _common(repo)
    repo.set_defaults(func=cmd_triton_repo)

    local = actions.add_parser(
        "triton-local",
        help="run a local Triton (python backend) serving the store's models",
        description="Write a python-backend repository of the store's models and run the "
        "tritonserver of the .venv-triton environment (made by .ci/install) on 127.0.0.1 in the "
        "foreground until Ctrl-C. Point ahmer at it with --backend triton --triton-url.",
        **examples(
            "ahmer models triton-local",
            "ahmer models triton-local --grpc-port 9001 --repo /tmp/triton-repo",
        ),
    )
    local.add_argument(
        "--repo", type=Path, metavar="DIR", help="where to write the repository (default: temp)"
    )
    local.add_argument("--grpc-port", type=_port, default=8001, help="gRPC port (default 8001)")
    local.add_argument("--http-port", type=_port, default=8000, help="HTTP port (default 8000)")
    local.add_argument(
        "--metrics-port", type=_port, default=8002, help="metrics port (default 8002)"
    )
    local.add_argument(
        "--tls-cert",
        type=Path,
        metavar="PEM",
        help="serve gRPC over TLS with this certificate chain (with --tls-key; clients trust "
        "its CA through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)",
    )
    local.add_argument("--tls-key", type=Path, metavar="PEM", help="the TLS private key")
    _common(local)
    local.set_defaults(func=cmd_triton_local)


def _err(msg: str) -> None:
    print(f"ahmer models: error: {msg}", file=sys.stderr)


def _fusion(store: ModelStore, spec: str) -> Any:
    """The fusion ``spec`` names (None: the store's zero-shot prior)."""
    if not spec:
        return None
    try:
        from ahmer.models.fusion.registry import resolve_fusion  # type: ignore[attr-defined]
    except ImportError:
        raise TritonRepoError(f"--fusion {spec!r}: this ahmer has no trained fusions") from None
    return resolve_fusion(store, spec)


def _write(args: argparse.Namespace, out: Path, python_backend: bool) -> int:
    store = ModelStore()
    print(f"model store: {store.root}", file=sys.stderr)
    try:
        report = write_repository(
            store,
            out,
            kind=getattr(args, "kind", "cpu"),
            python_backend=python_backend,
            tensorrt_fp16=bool(getattr(args, "tensorrt_fp16", False)),
            fusion=_fusion(store, args.fusion),
            max_queue_delay_us=args.max_queue_delay_us,
            progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True),
        )
    except (TritonRepoError, ModelStoreError) as exc:
        _err(str(exc))
        return 1
    kind = "python backend" if report.python_backend else "onnxruntime_onnx"
    print(
        f"wrote {len(report.models)} models ({kind}, {report.kind}) to {report.out}",
        file=sys.stderr,
    )
    return 0


def cmd_triton_repo(args: argparse.Namespace) -> int:
    return _write(args, args.out, bool(args.python_backend))


def cmd_triton_local(args: argparse.Namespace) -> int:
    from ahmer.models.triton.local import LocalTriton, TritonLocalError

    with tempfile.TemporaryDirectory(prefix="ahmer-triton-repo-") as tmp:
        repo = args.repo if args.repo is not None else Path(tmp) / "repo"
        try:
            triton = LocalTriton(
                repo,
                grpc_port=args.grpc_port,
                http_port=args.http_port,
                metrics_port=args.metrics_port,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
            )
        except TritonLocalError as exc:
            _err(str(exc))
            return 2
        code = _write(args, repo, python_backend=True)
        if code:
            return code
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            print("starting tritonserver ...", file=sys.stderr, flush=True)
            triton.start()
            print(
                f"Triton ready: gRPC {triton.url}, HTTP {triton.http_url}, metrics "
                f"{triton.metrics_url} (log {triton.log_path})\n"
                f"use: ahmer analyze CLIP --backend triton --triton-url {triton.url}"
                f"{' --triton-tls' if triton.tls else ''}\n"
                "Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            code = triton.wait()
            _err(f"tritonserver exited with code {code}; its log ends:\n{triton.log_tail()}")
            return 1
        except TritonLocalError as exc:
            _err(str(exc))
            return 1
        except KeyboardInterrupt:
            print("stopping tritonserver", file=sys.stderr, flush=True)
            return 130
        finally:
            triton.close()
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
