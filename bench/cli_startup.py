"""How long the ``ahmer`` command takes to start, side by side with a baseline commit.

For each command line (``ahmer --help``, ``analyze --help``, ``score --help``, ``serve
--help``, a missing input), the median of ``--repeat`` runs of this checkout and of the
baseline, interleaved so both meet the same load: wall seconds and CPU seconds (user + sys
of the child, what a quiet machine mostly waits for). The baseline is ``git archive``d into a
temporary folder and imported through ``PYTHONPATH`` (a folder laid out as the installed
``ahmer`` package), so nothing of this checkout changes.

    .venv/bin/python bench/cli_startup.py --baseline f82b1c4~1

Prints one line per command and the load average before and after; the figures are in
bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    ("--help",),
    ("analyze", "--help"),
    ("score", "--help"),
    ("serve", "--help"),
    ("analyze", "/nonexistent/answer.mp4"),
)


def baseline_path(ref: str, work: Path) -> Path:
    """A folder to put first on PYTHONPATH that imports ``ahmer`` from commit ``ref``."""
    tree = work / "tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    package = work / "path" / "ahmer"
    package.mkdir(parents=True)
    # the packages as that commit's pyproject.toml maps them (package-dir)
    setup = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name, folder in setup["package-dir"].items():
        (package / name.removeprefix("ahmer.")).symlink_to(tree / folder)
    return work / "path"


def once(args: tuple[str, ...], pythonpath: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ``python -m ahmer.service.cli ARGS``."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    env.pop("AHMER_DEBUG", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a git ref to compare with")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (3: a median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ahmer-startup-") as tmp:
        old_path = str(baseline_path(args.baseline, Path(tmp)))
        print(f"load before: {' '.join(open('/proc/loadavg').read().split()[:3])}")
        for command in COMMANDS:
            runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
            for _ in range(args.repeat):
                runs["old"].append(once(command, old_path))
                runs["new"].append(once(command, ""))
            old, new = (
                tuple(statistics.median(r[i] for r in runs[k]) for i in (0, 1))
                for k in ("old", "new")
            )
            print(
                f"ahmer {' '.join(command):32s} wall {old[0]:5.2f} -> {new[0]:5.2f} s "
                f"(x{old[0] / new[0]:.1f}), cpu {old[1]:5.2f} -> {new[1]:5.2f} s"
            )
        print(f"load after: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
