"""``ahmer client analyze|upload|stream|models``: call a running server."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..files import fail_if_unreadable
from .args import check_outputs, examples, write_output

__all__ = ["add_client_parser"]

_EXAMPLES = {
    "analyze": (
        "ahmer client analyze answer.mp4 --server 127.0.0.1:50051 --wait",
        "AHMER_TOKEN=... ahmer client analyze answer.mp4 --server HOST:PORT --json -",
    ),
    "upload": ("ahmer client upload long.mkv --server HOST:PORT --transcript answer.vtt",),
    "stream": ("ahmer client stream answer.mp4 --server HOST:PORT --realtime --frames",),
    "models": ("ahmer client models --server HOST:PORT --wait --wait-timeout 300",),
}


def add_client_parser(sub) -> None:
    p = sub.add_parser(
        "client",
        help="call a running ahmer server",
        description="Send media to an ahmer gRPC server and print the results. The token is "
        "read from $AHMER_TOKEN (--token-env names another variable).",
        **examples(*(line for lines in _EXAMPLES.values() for line in lines)),
    )
    actions = p.add_subparsers(dest="action")  # the usage lists the actions
    actions.required = True
    for name, help_text in (
        ("analyze", "analyse a clip sent in one message (AnalyzeClip)"),
        ("upload", "analyse a clip sent in chunks (UploadClip)"),
        ("stream", "replay a clip as a live session and print rolling results"),
        ("models", "list the server's models"),
    ):
        a = actions.add_parser(
            name, help=help_text, description=help_text, **examples(*_EXAMPLES[name])
        )
        if name != "models":
            a.add_argument("media", type=Path, help="video or audio file")
            a.add_argument("--fps", type=float, default=0.0, help="analysis fps (server's)")
            a.add_argument(
                "--json",
                type=Path,
                dest="json_out",
                help="write the result JSON here (-: stdout, the summary then on stderr)",
            )
            a.add_argument(
                "--strict",
                action="store_true",
                help="ask the server to refuse partial media (a cut or damaged file; a "
                "session whose audio and video end apart) instead of warning",
            )
        if name in ("analyze", "upload"):
            a.add_argument("--transcript", type=Path, help="transcript file instead of ASR")
        if name == "stream":
            a.add_argument("--realtime", action="store_true", help="send at real speed")
            a.add_argument("--speed", type=float, default=1.0, help="with --realtime: x speed")
            a.add_argument("--frames", action="store_true", help="print every final frame")
            a.add_argument(
                "--turns",
                type=float,
                nargs="?",
                const=2.0,
                default=0.0,
                metavar="SECONDS",
                help="split the answer into turns at each silence this long after speech "
                "(default 2 s) and print each turn's own result",
            )
        _connection(a)
        a.set_defaults(func=run_client)


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default=os.environ.get("AHMER_SERVER", "localhost:50051"),
        help="HOST:PORT [AHMER_SERVER, default localhost:50051]",
    )
    p.add_argument(
        "--token-env",
        default="AHMER_TOKEN",
        help="environment variable holding the bearer token (AHMER_TOKEN)",
    )
    p.add_argument("--tls", action="store_true", help="use TLS with the system roots")
    p.add_argument("--ca", type=Path, help="CA certificate of the server (PEM)")
    p.add_argument("--cert", type=Path, help="client certificate for mTLS (PEM)")
    p.add_argument("--key", type=Path, help="client key for mTLS (PEM)")
    p.add_argument("--timeout", type=float, default=None, help="call deadline, seconds")
    p.add_argument(
        "--wait",
        action="store_true",
        help="first wait until the server is ready (health SERVING: models loaded)",
    )
    p.add_argument(
        "--wait-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="with --wait: give up after this long (120)",
    )


def run_client(args: argparse.Namespace) -> int:
    to_stdout = False
    if getattr(args, "media", None) is not None:  # the paths first: before any import
        fail_if_unreadable(args.media)
        to_stdout = check_outputs({"--json": args.json_out}, (args.media,))  # before any work
    import grpc

    from ahmer.client import AhmerClient, AhmerError, ClientOptions, result_to_dict

    options = ClientOptions(
        token=os.environ.get(args.token_env) or None,
        tls=args.tls,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
    )
    out = sys.stderr if to_stdout else sys.stdout  # stdout: the JSON alone
    hint = f" (is `ahmer serve` running at {args.server}?)"
    try:
        with AhmerClient(args.server, options) as client:
            if args.wait:
                try:
                    client.wait_ready(args.wait_timeout)
                except TimeoutError:
                    print(
                        f"ahmer client: error: the server at {args.server} was not ready "
                        f"within {args.wait_timeout:g} s{hint}",
                        file=sys.stderr,
                    )
                    return 1
            if args.action == "models":
                return _print_models(client.get_models(timeout=args.timeout))
            if args.action == "stream":
                result = _stream(client, args, out)
            else:
                call = client.analyze_file if args.action == "analyze" else client.upload_file
                kwargs = {"fps": args.fps, "strict": True if args.strict else None}
                if args.transcript is not None:
                    fail_if_unreadable(args.transcript)
                    kwargs["transcript"] = Path(args.transcript)  # a Path: the file, not text
                result = call(args.media, timeout=args.timeout, **kwargs)
    except AhmerError as exc:
        unreachable = exc.code() == grpc.StatusCode.UNAVAILABLE
        print(
            f"ahmer client: error: {exc.code().name}: {exc.details()}{hint if unreachable else ''}",
            file=sys.stderr,
        )
        return 1
    if result is None:
        return 1
    data = result_to_dict(result)
    if args.json_out:
        write_output(args.json_out, json.dumps(data, indent=1))
    from ..convert import from_proto
    from .analyze import human_summary

    print(human_summary(from_proto(result), args.media.name), file=out)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _stream(client, args, out):
    result = None
    for msg in client.stream_file(
        args.media,
        realtime=args.realtime,
        speed=args.speed,
        fps=args.fps,
        strict=True if args.strict else None,
        timeout=args.timeout,
        turn_silence=args.turns,
    ):
        kind = msg.WhichOneof("message")
        if kind == "started":
            s = msg.started
            print(
                f"session {s.session_id}: {s.fps:g} fps, results {s.final_lag:g} s behind",
                file=out,
            )
        elif kind == "frame" and args.frames and msg.frame.final:
            f = msg.frame.frame
            print(
                f"  frame {f.time:7.2f}s  A/H {f.ah_probability:.2f}  "
                f"{f.emotion_label or '-':8s} valence {f.valence:+.2f}",
                file=out,
            )
        elif kind == "update":
            u = msg.update
            cues = "; ".join(c.text for c in u.cues) or "no strong cue"
            print(
                f"[{u.window_start:6.1f}-{u.time:6.1f}s] A/H {u.ah_probability:.2f} "
                f"({'A/H' if u.ah_label else 'no A/H'}) {cues}",
                file=out,
            )
        elif kind == "turn":
            t, clip = msg.turn, msg.turn.result.clip
            print(
                f"turn {t.index} [{t.start:6.1f}-{t.end:6.1f}s] A/H {clip.ah_probability:.2f} "
                f"({'A/H' if clip.ah_label else 'no A/H'}) {t.result.explanation.summary}",
                file=out,
            )
        elif kind == "notice":
            print(f"notice: {msg.notice.code}: {msg.notice.message}", file=sys.stderr)
        elif kind == "result":
            result = msg.result
    return result


def _print_models(info) -> int:
    print(
        f"backend {info.backend} on {info.device}; default {info.fps:g} fps, "
        f"threshold {info.threshold:g}; schema {info.result_schema}"
    )
    for m in info.models:
        labels = f" [{', '.join(m.labels)}]" if m.labels else ""
        print(f"  {m.name:22s} {m.version:28s} {m.role}{labels}")
    if info.settings:
        print("settings: " + ", ".join(f"{k}={v}" for k, v in sorted(info.settings.items())))
    return 0
