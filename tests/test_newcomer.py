"""A newcomer's path through ahmer: an example clip to try (``ahmer sample``), a server that
does not start open to the network by accident, a client that waits for the server and says
where it looked, JSON on stdout for pipes, and help that shows examples and the values each
option takes. Real processes, a real server, the real model store.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_checks import one_error_line
from serving import ServerThread, free_port, shared_analyzer

from ahmer.service.cli import build_parser
from ahmer.service.grpc.settings import ConfigError, ServerConfig, is_loopback

CLI = [sys.executable, "-m", "ahmer.service.cli"]


def _env(**extra: str) -> dict[str, str]:
    """This environment without ahmer's settings (a developer's AHMER_TOKENS must not make
    a test pass), except where the model store is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AHMER_") or k == "AHMER_HOME"}
    return {**env, **extra}


def _run(*args, env=None, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env or _env()
    )


# -- help ----------------------------------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("ahmer",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_help_ends_with_examples_of_that_command():
    found = []
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "\nexamples:\n" in text, f"{' '.join(path)} --help has no examples"
        section = text.split("\nexamples:\n", 1)[1]
        lines = section.splitlines()
        assert lines and all(line.startswith("  ") for line in lines), section
        assert " ".join(path) in section, section  # e.g. `ahmer client models ...`
        found.append(" ".join(path[1:]))
    for command in ("analyze", "preprocess", "score", "serve", "client", "models", "sample"):
        assert command in found
    assert "client stream" in found and "models build" in found


def test_every_option_with_fixed_values_shows_them():
    checked = 0
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if action.choices is None:
                continue
            shown = "{" + ",".join(action.choices) + "}"
            assert shown in text, f"{' '.join(path)}: {action.dest} does not show {shown}"
            checked += 1
    assert checked >= 12
    helps = {" ".join(p[1:]): parser.format_help() for p, parser in _parsers(build_parser())}
    for command, shown in (
        ("serve", "--face-engine {litert,tasks}"),
        ("serve", "--device {cpu,cuda,tensorrt,auto}"),
        ("serve", "--backend {onnxruntime,triton}"),
        ("serve", "--log-format {json,text}"),
        ("serve", "--log-level {debug,info,warning,error}"),
        ("serve", "--insecure-no-auth [{true,false}]"),
        ("analyze", "--device {cpu,cuda,tensorrt,auto}"),
        ("preprocess", "--face-engine {litert,tasks}"),
        ("score", "--backend {onnxruntime,triton}"),
        ("client", "{analyze,upload,stream,models}"),
        ("models", "{build,list,pack,unpack,triton-repo,triton-local,add-fusion}"),
        ("", "{sample,models,preprocess,analyze,score,features,train,evaluate,serve,client,bench}"),
    ):
        assert shown in helps[command], (command, shown)


def test_fixed_values_from_the_environment_are_checked_too():
    for env, needle in (
        ({"AHMER_LOG_LEVEL": "loud"}, "AHMER_LOG_LEVEL: must be debug, info, warning or error"),
        ({"AHMER_LOG_FORMAT": "xml"}, "AHMER_LOG_FORMAT: must be json or text"),
        ({"AHMER_BACKEND": "tensorflow"}, "AHMER_BACKEND: must be onnxruntime or triton"),
    ):
        with pytest.raises(ConfigError, match=needle):
            ServerConfig.from_sources(None, env)
    assert ServerConfig.from_sources(None, {"AHMER_LOG_LEVEL": "WARNING"}).log_level == "warning"
    proc = _run("score", "clip.mp4", "--out", "scores", "--backend", "tensorflow", timeout=60)
    one_error_line(proc, 2, "argument --backend", "onnxruntime", "triton")


# -- ahmer serve without tokens ------------------------------------------------------------------


def test_which_addresses_are_loopback():
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "[::]", "10.1.2.3", "192.168.0.7", "example.com", ""):
        assert not is_loopback(host), host


def test_no_tokens_is_refused_outside_loopback_unless_meant():
    for host in ("0.0.0.0", "::", "10.1.2.3"):
        with pytest.raises(ConfigError) as refused:
            ServerConfig(host=host).auth_warning(has_tokens=False)
        message = str(refused.value)
        for way_out in ("--tokens", "AHMER_TOKENS", "--token-file", "--insecure-no-auth"):
            assert way_out in message, message
        assert "no bearer tokens" in ServerConfig(host=host, insecure_no_auth=True).auth_warning(
            has_tokens=False
        )
        assert ServerConfig(host=host).auth_warning(has_tokens=True) is None
    assert "every caller is allowed" in ServerConfig(host="127.0.0.1").auth_warning(False)
    args = build_parser().parse_args(["serve", "--insecure-no-auth"])
    assert ServerConfig.from_sources(args, {}).insecure_no_auth is True
    on = ServerConfig.from_sources(None, {"AHMER_INSECURE_NO_AUTH": "true"})
    assert on.insecure_no_auth is True and ServerConfig().insecure_no_auth is False


def test_serve_refuses_to_start_open_on_0_0_0_0():
    port = free_port()
    proc = _run("serve", "--host", "0.0.0.0", "--port", port, "--metrics-port", "off")
    line = one_error_line(proc, 2, "--insecure-no-auth", "AHMER_TOKENS", "0.0.0.0")
    assert line.startswith("ahmer serve: error:")


def _serve_until(args: list[str], wanted, env=None) -> list[str]:
    """Start ``ahmer serve ARGS``, read its log lines until ``wanted(line)``, then stop it."""
    proc = subprocess.Popen(
        [*CLI, "serve", *args],
        env=env or _env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if wanted(lines[-1]) or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return lines


def test_serve_insecure_no_auth_on_0_0_0_0_starts_with_a_warning():
    port = free_port()
    args = ["--host", "0.0.0.0", "--port", str(port), "--metrics-port", "off"]
    lines = _serve_until([*args, "--insecure-no-auth"], lambda line: "listening" in line)
    events = [json.loads(line) for line in lines if line.startswith("{")]
    warnings = [e for e in events if e["level"] == "warning"]
    assert [w["msg"] for w in warnings] == [
        "no bearer tokens configured: every caller is allowed (set --tokens / AHMER_TOKENS or "
        "--token-file / AHMER_TOKEN_FILE)"
    ], lines
    assert warnings[0]["auth"] is False and warnings[0]["host"] == "0.0.0.0"
    listening = next(e for e in events if e["msg"] == "server listening")
    assert listening["port"] == port and listening["auth"] is False


def test_serve_on_loopback_without_tokens_warns_in_text_logs():
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--metrics-port", "off"]
    env = _env(AHMER_LOG_FORMAT="text")
    lines = _serve_until(args, lambda line: "listening" in line, env=env)
    warnings = [line for line in lines if " WARNING " in line]
    assert len(warnings) == 1, lines
    assert warnings[0].endswith(
        "WARNING ahmer.service: no bearer tokens configured: every caller is allowed "
        "(set --tokens / AHMER_TOKENS or --token-file / AHMER_TOKEN_FILE)"
    )
    assert not any(line.startswith("{") for line in lines)


# -- ahmer sample --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_clip(tmp_path_factory, model_store):
    out = tmp_path_factory.mktemp("sample") / "answer.mp4"
    proc = _run("sample", out)
    assert proc.returncode == 0, proc.stderr
    assert f"try: ahmer analyze {out}" in proc.stderr
    return out


def test_sample_clip_is_the_readme_example(sample_clip):
    """`ahmer analyze` reads the clip: a face in it, the words heard, A/H as README shows; and
    `--json -` puts only the JSON on stdout, the summary on stderr."""
    proc = _run("analyze", sample_clip, "--json", "-", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # stdout is the JSON alone
    media = result["media"]
    assert (media["video_codec"], media["audio_codec"]) == ("h264", "aac")
    assert (media["width"], media["height"]) == (640, 360)
    faces = [f["face"] is not None for f in result["frames"]]
    assert faces and sum(faces) >= 0.9 * len(faces)
    words = {w["text"].strip(".,").lower() for w in result["transcript"]}
    assert words & {"sure", "know"}, words
    assert result["clip"]["ah_label"] == 1
    assert result["clip"]["dominant_emotion"] == "happy"
    assert "answer.mp4: A/H (p=" in proc.stderr  # the summary, on stderr


def test_sample_options_and_errors(sample_clip, tmp_path):
    late, odd = tmp_path / "late.mp4", tmp_path / "odd.mp4"
    assert _run("sample", late, "--lead", "2").returncode == 0
    proc = _run("sample", odd, "--text=-v no, I will.")  # spoken, not taken for a flag
    assert proc.returncode == 0, proc.stderr
    import av

    with av.open(str(late)) as c, av.open(str(sample_clip)) as default:
        lead = (c.duration - default.duration) / 1e6  # 2 s of silence instead of 0.3
        assert abs(lead - 1.7) < 0.15, lead
    with av.open(str(odd)) as c:
        assert 1.0 < c.duration / 1e6 < 4.0

    no_espeak = tmp_path / "nothing-on-path"
    no_espeak.mkdir()
    out = tmp_path / "a.mp4"
    proc = _run("sample", out, env=_env(PATH=str(no_espeak)))
    one_error_line(
        proc, 1, "espeak-ng is not installed", "install espeak-ng (apt-get install espeak-ng)"
    )
    assert not out.exists()
    one_error_line(_run("sample", tmp_path), 2, str(tmp_path), "is a directory")
    one_error_line(_run("sample", sample_clip / "x.mp4"), 2, "cannot be created")
    one_error_line(_run("sample", out, "--text", "  "), 2, "--text is empty")
    one_error_line(_run("sample", out, "--lead", "-1"), 2, "argument --lead")
    assert not out.exists()


def test_only_one_output_can_take_stdout(sample_clip):
    proc = _run("analyze", sample_clip, "--json", "-", "--csv", "-", timeout=60)
    one_error_line(proc, 2, "only one output can go to stdout (-), not --json and --csv")
    assert proc.stdout == ""


# -- ahmer client --------------------------------------------------------------------------------


def test_client_on_a_closed_port_asks_whether_the_server_runs():
    target = f"127.0.0.1:{free_port()}"
    hint = f"(is `ahmer serve` running at {target}?)"
    one_error_line(_run("client", "models", "--server", target), 1, "UNAVAILABLE", hint)
    waited = _run("client", "models", "--server", target, "--wait", "--wait-timeout", "1")
    one_error_line(waited, 1, "was not ready within 1 s", hint)


def test_client_waits_for_a_server_that_starts_later(sample_clip, model_store):
    analyzer = shared_analyzer()  # loaded before: the server is ready as soon as it listens
    port = free_port()
    target = f"127.0.0.1:{port}"
    waiting = subprocess.Popen(
        [*CLI, "client", "models", "--server", target, "--wait", "--wait-timeout", "120"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = None
    try:
        time.sleep(2.0)
        assert waiting.poll() is None, waiting.communicate()  # still waiting, not failed
        server = ServerThread(analyzer=analyzer, port=port)
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert out.startswith("backend onnxruntime on cpu"), out

        proc = _run("client", "analyze", sample_clip, "--server", target, "--json", "-")
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)  # the JSON alone on stdout
        assert result["clip"]["ah_label"] == 1
        assert "answer.mp4: A/H (p=" in proc.stderr
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(10)
        if server is not None:
            server.stop()
