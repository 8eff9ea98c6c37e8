"""One exit-code rule for every ``ahmer`` command (issue 22, item 7; the rule is written in
``ahmer.service.cli.exits`` and docs/cli.md): 0 done, 1 the work failed, 2 a usage error
found before any work, 130 interrupted (held by test_cli_robustness's SIGINT test).

The table runs each case as a user would, in a subprocess, on paths made here (a FIFO, a
symlink loop, a folder that is not what the command reads); each must end with its code and
one ``error:`` line that says why, never a traceback. None of these cases needs the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_checks import one_error_line


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("exits")
    fifo = tmp / "pipe.mp4"
    os.mkfifo(fifo)  # reading it would block forever: nobody writes
    loop = tmp / "loop.mp4"
    loop.symlink_to(loop.name)  # a link to itself
    empty = tmp / "empty"
    empty.mkdir()
    manifest = tmp / "answers.csv"
    manifest.write_text("no,such,columns\n1,2,3\n")
    clip = tmp / "clip.mp4"
    clip.write_bytes(b"not a video, but a regular readable file")
    not_tar = tmp / "models.tar"
    not_tar.write_text("not an archive\n" * 100)
    return {
        "fifo": fifo,
        "loop": loop,
        "empty": empty,
        "manifest": manifest,
        "clip": clip,
        "not_tar": not_tar,
        "out": tmp / "out",
        "home": tmp / "home",
    }


# case -> (argv with {names} of the paths, exit code, words the error line holds)
TABLE = {
    "analyze: a FIFO": (["analyze", "{fifo}"], 2, "not a regular file"),
    "score: a FIFO": (["score", "{fifo}", "--out", "{out}"], 2, "not a regular file"),
    "preprocess: a FIFO": (["preprocess", "{fifo}", "--out", "{out}.json"], 2, "not a regular"),
    "client: a FIFO": (["client", "analyze", "{fifo}", "--server", "127.0.0.1:9"], 2, "regular"),
    "analyze: a symlink loop": (["analyze", "{loop}"], 2, "symlink loop"),
    "score: a symlink loop": (["score", "{loop}", "--out", "{out}"], 2, "symlink loop"),
    "train: not a features folder": (["train", "{empty}", "--out", "{out}"], 2, "dataset.json"),
    "evaluate: not a features folder": (["evaluate", "{empty}"], 2, "dataset.json"),
    "train: a file": (["train", "{clip}", "--out", "{out}"], 2, "not a folder"),
    "features: an unreadable manifest": (["features", "{manifest}", "--out", "{out}"], 2, "path"),
    "features: a folder of no layout": (["features", "{empty}", "--out", "{out}"], 2, "{empty}"),
    "sample: blank --text": (["sample", "{out}.mp4", "--text", "  "], 2, "--text is empty"),
    "analyze: two outputs on stdout": (
        ["analyze", "{clip}", "--json", "-", "--csv", "-"],
        2,
        "only one output can go to stdout",
    ),
    "analyze: an option value the parser rejects": (
        ["analyze", "{clip}", "--fps", "0"],
        2,
        "--fps",
    ),
    "score: contradicting options": (
        ["score", "{clip}", "--merge", "--out", "{out}"],
        2,
        "--merge",
    ),
    "models unpack: not an archive": (["models", "unpack", "{not_tar}"], 1, "refused"),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_exit_code_table(paths, case):
    argv, code, needle = TABLE[case]
    names = {k: str(v) for k, v in paths.items()}
    env = {k: v for k, v in os.environ.items() if k != "AHMER_DEBUG"}
    env["AHMER_HOME"] = names["home"]  # empty: any case that reached the work would fail on it
    proc = subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", *(a.format(**names) for a in argv)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    command = argv[0]
    line = one_error_line(proc, code, needle.format(**names))
    assert line.startswith(f"ahmer {command}: error:") or line.startswith("ahmer: error:"), line
    assert not paths["out"].exists() and not Path(f"{paths['out']}.mp4").exists()


def test_a_symlink_loop_reads_the_same_in_analyze_and_score(paths):
    """The same words for the same path, whichever command met it."""
    lines = []
    for argv in (["analyze", str(paths["loop"])], ["score", str(paths["loop"]), "--out", "o"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ahmer.service.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines.append(one_error_line(proc, 2).split("error: ", 1)[1])
    assert lines[0] == lines[1] == f"{paths['loop']}: symlink loop"
