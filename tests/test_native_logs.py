"""The server's stderr carries JSON lines only: what native libraries (LiteRT, MediaPipe,
ONNX Runtime) print from C++ to file descriptor 2 comes out as JSON records of
``ahmer.native`` (``service.logs.native_stderr_logged``), at the level the line gives, and
``ahmer serve`` turns ONNX Runtime's telemetry off."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest
from media import have_espeak
from serving import serve_process

# A process that logs through native_stderr_logged while "native code" writes to fd 2 from
# the main thread and from another thread, and Python writes to sys.stderr.
_WRITER = """
import logging, os, sys, threading
from ahmer.service.logs import configure_logging, log_event, native_stderr_logged

with native_stderr_logged() as stream:
    configure_logging("json", sys.argv[1], stream)
    log_event(logging.getLogger("ahmer.service"), "python record", transcript="secret words")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    worker = threading.Thread(target=os.write, args=(2, b"W0000 00:00:1 123 gl.cc:1] careful\\n"))
    worker.start(); worker.join()
    print("a plain line from Python", file=sys.stderr, flush=True)
    os.write(2, b"2026-01-01 [E:onnxruntime:, session.cc:1] broken\\npartial line")
print("after the block", file=sys.stderr)
"""


def _records(level: str) -> tuple[list[dict], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, level], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == "after the block"  # fd 2 is itself again after the block
    return [json.loads(line) for line in lines[:-1]], lines


def test_native_lines_become_json_records_at_their_level():
    from ahmer.service.logs import native_level

    records, _ = _records("debug")
    native = {r["msg"]: r["level"] for r in records if r["logger"] == "ahmer.native"}
    assert native == {
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.": "debug",
        "W0000 00:00:1 123 gl.cc:1] careful": "warning",
        "2026-01-01 [E:onnxruntime:, session.cc:1] broken": "error",
        "partial line": "info",  # a line without a mark, ended by the end of the block
        "a plain line from Python": "info",
    }
    python = [r for r in records if r["logger"] == "ahmer.service"]
    assert python == [{**python[0], "msg": "python record"}] and "transcript" not in python[0]
    assert native_level("F0000 00:00:1 check failed") == logging.CRITICAL
    # at info, the libraries' info chatter is dropped; warnings and errors stay
    kept = {r["msg"] for r in _records("info")[0] if r["logger"] == "ahmer.native"}
    assert "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." not in kept
    assert "W0000 00:00:1 123 gl.cc:1] careful" in kept


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_serve_writes_only_json_and_no_onnx_telemetry(clips, model_store, tmp_path):
    """A real ``ahmer serve`` (JSON logs, debug level) loads its face models, analyses a clip
    and runs a live session (face models made per session, in threads): every stderr line
    is one JSON object, the LiteRT line that used to come out raw is a record, no
    transcript word is logged, and ONNX Runtime wrote no telemetry under the cache dir."""
    from ahmer.client import AhmerClient

    assert model_store.root.name == "models"  # AHMER_HOME/models, with a fresh home below
    home = tmp_path / "home"
    env = {"AHMER_LOG_LEVEL": "debug", "AHMER_HOME": str(model_store.root.parent),
           "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "ORT_DISABLE_TELEMETRY": None, "CI": None}  # fmt: skip (ORT skips CI runs)
    log = tmp_path / "serve.err"
    secret = "zucchini trampoline"
    with serve_process(env, stderr=log) as (_, target), AhmerClient(target) as client:
        client.analyze_file(clips["confident"], transcript=f"I {secret} maybe", frames=False)
        list(client.stream_file(clips["hedging"], fps=2.0))
        deadline = time.monotonic() + 10  # the session is closed after its last message
        while "session closed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    text = log.read_text()
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line of the server's stderr is not JSON: {line[:200]!r}")
    messages = {r["msg"] for r in records}
    assert {"models ready", "clip analysed", "session closed", "server stopped"} <= messages
    native = [r for r in records if r["logger"] == "ahmer.native"]
    assert any("XNNPACK" in r["msg"] for r in native), native
    listening = next(r for r in records if r["msg"] == "server listening")
    assert listening["onnx_telemetry"] is False
    for word in ("zucchini", "trampoline"):
        assert word not in text.lower()
    assert not (home / ".cache" / "Microsoft").exists()  # no device id, no event queue


def test_cli_commands_leave_onnx_telemetry_off(clips, model_store, tmp_path):
    """``ahmer analyze`` (any command: ``main`` sets the switch before ONNX Runtime loads)
    writes no ONNX Runtime telemetry in a fresh home; ``ORT_DISABLE_TELEMETRY=0`` is the only
    way to keep it, and then the folder appears (the check can fail)."""
    import os

    for keep, expect in (("", False), ("0", True)):
        home = tmp_path / f"home{keep}"
        env = {**os.environ, "AHMER_HOME": str(model_store.root.parent), "HOME": str(home),
               "XDG_CACHE_HOME": str(home / ".cache")}  # fmt: skip
        env.pop("ORT_DISABLE_TELEMETRY", None)
        env.pop("CI", None)  # ONNX Runtime itself records nothing where CI is set
        if keep:
            env["ORT_DISABLE_TELEMETRY"] = keep
        done = subprocess.run(
            [sys.executable, "-m", "ahmer.service.cli", "analyze", str(clips["confident"]),
             "--quiet"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert (home / ".cache" / "Microsoft").exists() is expect
