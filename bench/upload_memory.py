"""Server memory after failed uploads: rounds of parallel ``UploadClip`` calls of random bytes.

Starts ``ahmer serve`` (unless ``--server``/``--pid`` name a running one), waits until it serves,
then runs ``--rounds`` rounds of ``--parallel`` concurrent uploads of ``--mb`` MiB of random
bytes each (1 MiB chunks). Random bytes are not media, so every call should end
INVALID_ARGUMENT (or RESOURCE_EXHAUSTED where the server's buffer bound refuses it). After
each round the server is left idle for ``--idle`` seconds and its resident memory (VmRSS of
/proc/<pid>/status) is read: a server that releases its upload buffers comes back to about
the same RSS after every round.

``--token-less N`` measures callers without a token instead: the server is started with a
bearer token, and ``N`` unary ``AnalyzeClip`` calls of ``--mb`` MiB each, ``--parallel`` at a
time, are sent without one (each should end UNAUTHENTICATED); RSS is read ``--idle`` seconds
after the burst.

    python bench/upload_memory.py                           # 4 x 200 MiB, 3 rounds
    python bench/upload_memory.py --mb 100 --rounds 5 --json out.json
    python bench/upload_memory.py --token-less 24 --mb 48 --idle 15   # issue 22's burst
    python bench/upload_memory.py -- --max-buffered-mb 300  # extra ahmer serve flags
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving import serve_process  # noqa: E402 (tests/serving.py)
from stream import rss_mb  # noqa: E402 (bench/stream.py)

__all__ = ["analyze_burst", "rss_mb", "upload", "run_round"]

CHUNK = 1024 * 1024


def upload(target: str, payload: bytes, metadata=()) -> str:
    """One UploadClip of ``payload`` in 1 MiB chunks; the status code's name."""
    from ahmer.v1 import service_pb2, service_pb2_grpc

    def messages():
        yield service_pb2.UploadRequest(header=service_pb2.UploadHeader(total_size=len(payload)))
        view = memoryview(payload)
        for start in range(0, len(payload), CHUNK):
            yield service_pb2.UploadRequest(
                chunk=service_pb2.UploadChunk(data=bytes(view[start : start + CHUNK]))
            )

    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.AnalysisServiceStub(channel)
        try:
            stub.UploadClip(messages(), timeout=600, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code().name
    return "OK"


def run_round(target: str, parallel: int, size: int, metadata=()) -> list[str]:
    """``parallel`` concurrent uploads of distinct random payloads; their status codes."""
    payloads = [os.urandom(size) for _ in range(parallel)]
    codes: list[str] = [""] * parallel

    def one(i: int) -> None:
        codes[i] = upload(target, payloads[i], metadata)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def analyze_burst(target: str, calls: int, parallel: int, size: int, metadata=()) -> list[str]:
    """``calls`` unary AnalyzeClip calls of ``size`` random bytes, ``parallel`` at a time
    (one payload shared: the client's memory is not what is measured); their status codes."""
    from concurrent.futures import ThreadPoolExecutor

    from ahmer.v1 import service_pb2, service_pb2_grpc

    request = service_pb2.AnalyzeClipRequest(media=os.urandom(size))
    options = [("grpc.max_send_message_length", size + CHUNK)]

    def one(_: int) -> str:
        with grpc.insecure_channel(target, options=options) as channel:
            stub = service_pb2_grpc.AnalysisServiceStub(channel)
            try:
                stub.AnalyzeClip(request, timeout=600, metadata=metadata)
            except grpc.RpcError as exc:
                return exc.code().name
        return "OK"

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(calls)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=200, help="MiB per upload (default 200)")
    p.add_argument("--parallel", type=int, default=4, help="concurrent uploads per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--idle", type=float, default=3.0, help="idle seconds before reading RSS")
    p.add_argument(
        "--token-less",
        type=int,
        default=0,
        metavar="N",
        help="N token-less AnalyzeClip calls of --mb MiB against a server with a token",
    )
    p.add_argument("--server", help="target of a running server (needs --pid)")
    p.add_argument("--pid", type=int, help="pid of that server, to read its RSS")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("serve_args", nargs="*", help="extra ahmer serve flags (after --)")
    args = p.parse_args(argv)
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()
    size = int(args.mb * 1024 * 1024)
    if args.server and args.pid is None:
        p.error("--server needs --pid")
    with contextlib.ExitStack() as stack:
        if args.server:
            target, pid = args.server, args.pid
        else:
            log = Path(tempfile.mkdtemp(prefix="ahmer-upload-mem-")) / "serve.log"
            env = {"AHMER_TOKENS": "bench-token-0123456789abcdef"} if args.token_less else {}
            proc, target = stack.enter_context(
                serve_process(env, stderr=log, args=tuple(args.serve_args), timeout=300)
            )
            pid = proc.pid
        time.sleep(args.idle)
        doc = {
            "mb": args.mb,
            "parallel": args.parallel,
            "rounds": [],
            "serve_args": args.serve_args,
        }
        doc["rss_ready_mb"] = round(rss_mb(pid))
        print(f"ready: RSS {doc['rss_ready_mb']} MB")
        if args.token_less:
            t = time.perf_counter()
            codes = analyze_burst(target, args.token_less, args.parallel, size)
            seconds = time.perf_counter() - t
            time.sleep(args.idle)
            doc["token_less"] = {
                "calls": args.token_less,
                "codes": sorted(set(codes)),
                "seconds": round(seconds, 1),
                "rss_after_mb": round(rss_mb(pid)),
            }
            print(
                f"{args.token_less} token-less AnalyzeClip calls: {', '.join(sorted(set(codes)))}"
                f" in {seconds:.1f} s; RSS {doc['token_less']['rss_after_mb']} MB"
                f" {args.idle:g} s later"
            )
            args.rounds = 0
        for r in range(args.rounds):
            t = time.perf_counter()
            codes = run_round(target, args.parallel, size)
            seconds = time.perf_counter() - t
            time.sleep(args.idle)
            rss = round(rss_mb(pid))
            doc["rounds"].append({"codes": codes, "rss_idle_mb": rss, "seconds": round(seconds, 1)})
            print(f"round {r + 1}: {', '.join(codes)} in {seconds:.1f} s; idle RSS {rss} MB")
        doc["machine"] = machine.finish()
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
