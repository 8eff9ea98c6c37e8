"""The command line's front door (issue 19, item 1): start-up that stays short, and a parser
that says exactly what was wrong.

Start-up is held by what it imports, not by a stopwatch (wall times depend on the machine and
its load; bench/README.md has the measured figures): building the whole parser, every
command's ``--help`` and a missing input in every command that reads one run in one fresh
interpreter, and none may import a heavy library (numpy, scipy, PyAV, OpenCV, ONNX Runtime,
gRPC, ...), which is where the seconds went. ``import ahmer.client`` stays free of the media
and model libraries too. The parser: no abbreviated options, an unknown option reported by
its own command's parser with that command's usage, and "did you mean" for a close name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = (
    "numpy",
    "scipy",
    "av",
    "cv2",
    "onnxruntime",
    "onnx",
    "mediapipe",
    "faster_whisper",
    "ctranslate2",
    "tokenizers",
    "pyarrow",
    "torch",
    "transformers",
    "h5py",
    "grpc",
    "PIL",
    "ai_edge_litert",
    "tritonclient",
    "yaml",
)

# Runs each argv through main() in this one interpreter and prints, per argv, its exit code
# and the heavy modules loaded after it (in sys.modules; once loaded, a module stays).
PROBE = """
import contextlib, io, json, sys
from ahmer.service.cli.main import build_parser, main
heavy = json.loads(sys.argv[1])
out = []
build_parser()
out.append({"argv": ["(build_parser)"], "code": 0, "stderr": "",
            "heavy": sorted(m for m in heavy if m in sys.modules)})
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out.append({"argv": argv, "code": code, "stderr": err.getvalue(),
                "heavy": sorted(m for m in heavy if m in sys.modules)})
print(json.dumps(out))
"""


def _probe(*argvs: list[str], env: dict | None = None) -> list[dict]:
    full = {k: v for k, v in os.environ.items() if k != "AHMER_DEBUG"}
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), json.dumps([list(a) for a in argvs])],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _commands() -> list[list[str]]:
    """Every command and action of the parser, as argv prefixes (``["models", "build"]``)."""
    from ahmer.service.cli.main import build_parser

    found = []

    def walk(parser, prefix):
        for action in parser._actions:
            for name, sub in (getattr(action, "_name_parser_map", None) or {}).items():
                found.append([*prefix, name])
                walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return found


def test_parser_and_every_help_import_no_heavy_library():
    commands = _commands()
    assert ["analyze"] in commands and ["models", "unpack"] in commands
    runs = _probe(["--help"], *([*c, "--help"] for c in commands))
    for run in runs:
        assert run["code"] == 0, run
        assert run["heavy"] == [], (run["argv"], run["heavy"])


def test_a_missing_input_is_told_before_any_heavy_import(tmp_path):
    missing = str(tmp_path / "missing.mp4")
    out = str(tmp_path / "out")
    cases = [
        ["analyze", missing],
        ["preprocess", missing, "--out", out + ".json"],
        ["score", missing, "--out", out],
        ["features", missing, "--out", out],
        ["train", missing, "--out", out],
        ["evaluate", missing],
        ["client", "analyze", missing, "--server", "127.0.0.1:9"],
        ["models", "unpack", missing],
        ["models", "add-fusion", missing],
    ]
    runs = _probe(*cases, env={"AHMER_HOME": str(tmp_path / "home")})[1:]
    for case, run in zip(cases, runs, strict=True):
        assert run["code"] == 2, run
        assert f"{missing}: no such file" in run["stderr"], run
        assert run["heavy"] == [], (case, run["heavy"])
    assert not os.path.exists(out) and not os.path.exists(tmp_path / "home")


def test_import_ahmer_client_is_free_of_media_and_model_libraries():
    code = (
        "import json, sys, ahmer.client; "
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def _ahmer(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AHMER_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize(
    "args,usage,error",
    [
        # a prefix of --threshold used to run as --threshold
        (
            ("analyze", "x.mp4", "--thresh", "0.3"),
            "usage: ahmer analyze",
            "did you mean --threshold?",
        ),
        (("score", "in/", "--out", "o", "--worker", "2"), "usage: ahmer score", "--workers?"),
        (("models", "build", "--onlyy", "minilm"), "usage: ahmer models build", "--only?"),
        (("client", "models", "--wait-time", "5"), "usage: ahmer client models", "--wait-timeout?"),
        (("analyse", "x.mp4"), "usage: ahmer [-h]", "did you mean 'analyze'?"),
        (("models", "unpak", "a.tar"), "usage: ahmer models", "did you mean 'unpack'?"),
        (("analyze", "x.mp4", "--device", "cude"), "usage: ahmer analyze", "did you mean 'cuda'?"),
        (("analyze", "x.mp4", "--no-such-flag"), "usage: ahmer analyze", "unrecognized arguments"),
    ],
)
def test_mistakes_are_told_by_their_own_command(args, usage, error):
    proc = _ahmer(*args)
    assert proc.returncode == 2, proc.stderr
    assert usage in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and error in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_parser_accepts_abbreviations():
    from ahmer.service.cli.main import build_parser

    seen = []

    def walk(parser):
        seen.append(parser)
        assert parser.allow_abbrev is False, parser.prog
        for action in parser._actions:
            for sub in (getattr(action, "_name_parser_map", None) or {}).values():
                walk(sub)

    walk(build_parser())
    assert len(seen) > 10


def test_an_unknown_option_without_a_close_name_gets_no_guess():
    proc = _ahmer("analyze", "x.mp4", "--zzzzzz")
    assert proc.returncode == 2
    assert "did you mean" not in proc.stderr and "--zzzzzz" in proc.stderr
