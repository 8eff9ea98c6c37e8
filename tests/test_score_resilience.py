"""``ahmer score`` when things go wrong around it: the command SIGKILLed while its workers are
busy (they used to live on with parent PID 1, ~570 MB each, with multiprocessing's resource
tracker), and a symlink loop among the inputs (it used to end the batch with an internal error
and no outputs). Real subprocesses, real models, clips made at test time; processes are
followed through ``/proc``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import HEDGING, canvas, face_photo, make_clip, read_wav, speak

CLI = [sys.executable, "-m", "ahmer.service.cli"]
FPS = "2"
CLIPS = 5
LIVENESS = 20.0  # seconds: a bound on "they exit", not a speed figure


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from the state field on (the name may hold spaces), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22, starttime: tells a reused pid apart


def _running(pid: int, start: str) -> bool:
    """The process that had ``start`` is still there and not a zombie (a zombie has exited
    and freed its memory; its new parent reaps it when it will)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[19] == start and fields[0] not in ("Z", "X")


def _descendants(pid: int) -> dict[int, str]:
    """Children, grandchildren, ... of ``pid``: pid -> start time."""
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue
            for kid in kids:
                start = _start_time(kid)
                if start and kid not in found:
                    found[kid] = start
                    todo.append(kid)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_gone(processes: dict[int, str], bound: float) -> dict[int, str]:
    """Those of ``processes`` still running after up to ``bound`` seconds."""
    deadline = time.monotonic() + bound
    alive = dict(processes)
    while alive and time.monotonic() < deadline:
        alive = {p: s for p, s in alive.items() if _running(p, s)}
        time.sleep(0.05)
    return alive


def _kill_left(processes: dict[int, str]) -> None:
    """Our own leftovers, so a failing test does not leave gigabytes behind."""
    for pid, start in processes.items():
        if _running(pid, start):
            os.kill(pid, signal.SIGKILL)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def answer(tmp_path_factory) -> Path:
    """A ~4 s answer: the real face and espeak-ng speech."""
    root = tmp_path_factory.mktemp("answer")
    audio, rate = read_wav(speak(HEDGING, root / "speech.wav", words_per_minute=190))
    face = canvas(face_photo(), size=(320, 240))
    return make_clip(root / "answer.mp4", face, audio[:, 0], rate, fps=10)


def test_workers_die_with_a_killed_parent_and_the_batch_resumes(answer, tmp_path, model_store):
    """SIGKILL ``ahmer score --workers 2`` once its workers are busy: every process it
    started (workers, resource tracker) exits within a liveness bound; the same command then
    finishes the batch, keeping the results written before the kill, and its clips.csv
    equals a clean run's, every field (no field legitimately differs: the path is the same
    input and nothing in a row is a time of day)."""
    data = tmp_path / "data"
    data.mkdir()
    for k in range(CLIPS):  # copies: each is its own clip (own id, own result)
        (data / f"clip{k}.mp4").write_bytes(answer.read_bytes())
    out = tmp_path / "out"
    cmd = [*CLI, "score", str(data), "--out", str(out), "--fps", FPS, "--workers", "2"]
    # output to a file, not a pipe: a surviving worker would hold a pipe open
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 300
        while not list((out / "results").glob("*.json")):  # the workers are at work
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no result within 300 s"
            time.sleep(0.05)
        started = _descendants(proc.pid)
        workers = [p for p in started if "multiprocessing.spawn" in _cmdline(p)]
        assert len(workers) == 2, {p: _cmdline(p) for p in started}
        proc.kill()
        proc.wait(timeout=30)
        left = _wait_gone(started, LIVENESS)
        assert not left, {p: _cmdline(p) for p in left}
    finally:
        proc.kill()
        _kill_left(started)

    done = {p.stem: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert 1 <= len(done) < CLIPS, done  # killed halfway
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(done)} already done, {CLIPS - len(done)} to score" in again.stderr
    assert {s: (out / "results" / f"{s}.json").stat().st_mtime_ns for s in done} == done
    assert [r["id"] for r in _rows(out / "clips.csv")] == [f"clip{k}" for k in range(CLIPS)]
    assert not list((out / "results").glob(".*.tmp"))  # what the killed workers were writing
    # a clean run of the same command elsewhere gives the same rows, every field
    clean = (
        cmd[: cmd.index("--out") + 1] + [str(tmp_path / "clean")] + cmd[cmd.index("--out") + 2 :]
    )
    fresh = subprocess.run(clean, capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert _rows(out / "clips.csv") == _rows(tmp_path / "clean" / "clips.csv")


WATCHED = """
import multiprocessing as mp, os, sys, time
from pathlib import Path


def worker(parent_pid, ready):
    from ahmer.service.batch.engine import _watch_parent

    _watch_parent(parent_pid)
    Path(ready).write_text(str(os.getpid()))
    while True:  # busy for good: only the watch can end it
        time.sleep(60)


if __name__ == "__main__":
    mp.get_context("spawn").Process(target=worker, args=(os.getpid(), sys.argv[1])).start()
    while True:
        time.sleep(60)
"""


def test_the_portable_parent_watch_alone_ends_a_worker(tmp_path):
    """Without Linux's parent-death signal (as on other systems), the worker's watch thread
    notices the parent's death and exits the worker."""
    script = tmp_path / "watched.py"
    script.write_text(WATCHED)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(script), str(ready)])
    worker: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() or not ready.read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        pid = int(ready.read_text())
        worker = {pid: _start_time(pid)}
        assert pid in _descendants(proc.pid)
        proc.kill()
        proc.wait(timeout=30)
        assert not _wait_gone(worker, LIVENESS), _cmdline(pid)
    finally:
        proc.kill()
        _kill_left(worker)


def test_symlink_loops_in_the_input_folder_fail_alone(answer, tmp_path, model_store):
    """A loop (a -> b -> a), a link to itself and a dangling link beside a good clip: four
    rows of failures.csv and one, the clip, scored (the loop used to abort the batch)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.mp4").write_bytes(answer.read_bytes())
    (data / "a.mp4").symlink_to("b.mp4")
    (data / "b.mp4").symlink_to("a.mp4")
    (data / "self.mp4").symlink_to("self.mp4")
    (data / "dangling.mp4").symlink_to("gone.mp4")
    out = tmp_path / "out"
    proc = subprocess.run(
        [*CLI, "score", str(data), "--out", str(out), "--fps", FPS, "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # some failed
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    failures = {r["id"]: (Path(r["path"]).name, r["error"]) for r in _rows(out / "failures.csv")}
    assert failures == {
        "a": ("a.mp4", "symlink loop"),
        "b": ("b.mp4", "symlink loop"),
        "self": ("self.mp4", "symlink loop"),
        "dangling": ("dangling.mp4", "no such file"),
    }
    assert [r["id"] for r in _rows(out / "clips.csv")] == ["good"]
    assert (out / "report.html").exists() and (out / "frames.parquet").exists()
