"""Checks of the ``ahmer`` command line's answers, shared by the CLI tests."""

from __future__ import annotations

import subprocess

__all__ = ["one_error_line"]


def one_error_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The command failed with ``code`` and said why in one ``error:`` line (which holds
    every one of ``needles``), without a traceback. Returns the line."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
