"""The CLI as its users meet it, with bad input: every case ends with one clear line on stderr
and a non-zero exit (2 for usage: a bad option, or a path on the command line that cannot be
used, the same code in every command; 1 for errors), never a traceback, never a hang, and
nothing of the user's lost. Subprocesses on media made at test time; cases that fail before
the models load come first (they cost a fraction of a second each).

Regressions from trying to break ahmer: a FIFO or ``/dev/zero`` as transcript (a hang, an
endless read), an output path that is the input media (overwritten) or cannot be written
(found only after the analysis), ``--device gpu9`` (an "internal error"), a manifest header
without a ``path`` column (scored as a clip), a manifest.json of the wrong shape, a WAV without
samples (a made-up result), transcript times past the media (dropped without a word), spans
past the end of the clip at a low analysis rate, Ctrl-C during ASR of a long file (a minute and
a half to exit, and no progress while it ran), LiteRT chatter on the batch's stderr, a missing
input exiting with 1 in ``analyze`` but 2 in ``score``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest
from cli_checks import one_error_line as _one_error_line
from media import HEDGING, canvas, make_clip, portrait, read_wav, speak

CLI = [sys.executable, "-m", "ahmer.service.cli"]


def _run(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    full.pop("AHMER_DEBUG", None)
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=full
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A 1-second clip with a face and speech, a silent 1-second face clip, an empty WAV."""
    tmp = tmp_path_factory.mktemp("robust")
    audio, rate = read_wav(speak(HEDGING, tmp / "speech.wav"))
    frame = canvas(portrait())
    clip = make_clip(tmp / "clip.mp4", frame, audio[:rate, 0], sample_rate=rate)
    with wave.open(str(tmp / "empty.wav"), "wb") as w:  # a valid header, no samples
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    return {"tmp": tmp, "clip": clip, "empty_wav": tmp / "empty.wav"}


# -- before any model loads ----------------------------------------------------------------------


def test_special_files_as_input_fail_at_once(media, tmp_path):
    fifo = tmp_path / "pipe.vtt"
    os.mkfifo(fifo)  # reading it would block forever: nobody writes
    no_models = {"AHMER_HOME": str(tmp_path / "empty-home")}  # any work would fail on these
    for args in (
        ("analyze", media["clip"], "--transcript", fifo),
        ("analyze", media["clip"], "--transcript", "/dev/zero"),  # would be read forever
        ("preprocess", fifo, "--out", tmp_path / "t.json"),
        ("analyze", tmp_path, "--quiet"),
    ):
        proc = _run(*args, env=no_models, timeout=60)
        line = _one_error_line(proc, 2)  # a path that cannot be used: a usage error
        assert "not a regular file" in line or "is a directory" in line
    assert not (tmp_path / "t.json").exists()


def test_a_missing_path_is_the_same_usage_error_in_every_command(tmp_path):
    """A missing input named on the command line: exit code 2 and one ``error:`` line naming
    it, whichever command reads it (analyze used to say 1 where score said 2)."""
    missing = tmp_path / "missing.mp4"
    server = "127.0.0.1:9"  # never reached: the path is checked first
    for args in (
        ("analyze", missing),
        ("analyze", missing, "--json", tmp_path / "r.json"),
        ("preprocess", missing, "--out", tmp_path / "t.json"),
        ("score", missing, "--out", tmp_path / "out"),
        ("client", "analyze", missing, "--server", server),
        ("client", "upload", missing, "--server", server),
        ("client", "stream", missing, "--server", server),
    ):
        proc = _run(*args, *(() if args[0] == "client" else ("--quiet",)), timeout=60)
        line = _one_error_line(proc, 2, str(missing))
        assert line.startswith(f"ahmer {args[0]}: error:"), (args, line)
        assert "no such file" in line and "usage:" not in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, no --out made


@pytest.mark.parametrize(
    "option,value",
    [
        ("--device", "gpu9"),
        ("--fps", "0"),
        ("--fps", "-1"),
        ("--fps", "1000"),
        ("--fps", "nan"),
        ("--threshold", "1.5"),
        ("--landmark-fps", "nan"),
        ("--face-engine", "mediapipe"),
    ],
)
def test_bad_option_values_are_usage_errors(media, option, value):
    proc = _run("analyze", media["clip"], option, value, timeout=60)
    _one_error_line(proc, 2, f"argument {option}")


def test_unwritable_outputs_are_refused_before_any_work(media, tmp_path):
    clip = media["clip"]
    before = clip.read_bytes()
    cases = [
        ("preprocess", clip, "--out", clip),  # the input itself: it used to be overwritten
        ("analyze", clip, "--json", tmp_path),  # a folder
        ("analyze", clip, "--csv", clip / "frames.csv"),  # under a file
    ]
    no_models = {"AHMER_HOME": str(tmp_path / "empty-home")}  # an analysis would fail on it
    for args in cases:
        proc = _run(*args, "--quiet", env=no_models, timeout=60)
        _one_error_line(proc, 2, str(args[-1]))  # the path, not the missing models
    assert clip.read_bytes() == before


def test_manifest_header_without_path_column(media, tmp_path):
    for text in ("transcript,id\r\nx.vtt,a\r\n", "path;id\nclip.mp4;a\n"):
        manifest = tmp_path / "m.csv"
        manifest.write_text(text)
        proc = _run("score", manifest, "--out", tmp_path / "out", "--quiet", timeout=60)
        _one_error_line(proc, 2, "no 'path' column")
        assert not (tmp_path / "out").exists()


def test_score_out_that_cannot_be_a_folder(media, tmp_path):
    proc = _run("score", media["clip"], "--out", media["clip"] / "out", "--quiet", timeout=60)
    _one_error_line(proc, 2, "--out", "not a folder")


def test_store_manifest_of_the_wrong_shape(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "manifest.json").write_text("[]\n")
    proc = _run("models", "list", env={"AHMER_HOME": str(tmp_path)}, timeout=60)
    _one_error_line(proc, 1, "manifest.json is unreadable", "ahmer models build")


def test_empty_store_says_how_to_build_it(media, tmp_path):
    proc = _run("analyze", media["clip"], "--quiet", env={"AHMER_HOME": str(tmp_path)})
    _one_error_line(proc, 1, "ahmer models build")


# -- with the models -----------------------------------------------------------------------------


def test_unknown_whisper_model_name_fails_quickly(media, tmp_path, model_store):
    t = time.monotonic()
    proc = _run(
        "preprocess", media["clip"], "--out", tmp_path / "t.json", "--whisper-model", "no-such"
    )
    _one_error_line(proc, 1, "'no-such' is neither a model folder nor a known model name")
    assert time.monotonic() - t < 60
    assert not (tmp_path / "t.json").exists()


def test_media_without_samples_is_an_error(media, model_store):
    proc = _run("analyze", media["empty_wav"], "--quiet")
    _one_error_line(proc, 1, "nothing to analyse")


def test_transcript_past_the_end_and_spans_inside_the_clip(media, tmp_path, model_store):
    vtt = tmp_path / "answer.vtt"
    vtt.write_text(
        "WEBVTT\n\n00:00:00.100 --> 00:00:00.900\nI guess maybe\n\n"
        "00:00:05.000 --> 00:00:09.000\nnot sure\n\n01:00:00.000 --> 01:00:02.000\num\n"
    )
    out = tmp_path / "r.json"
    proc = _run(
        "analyze", media["clip"], "--transcript", vtt, "--fps", "0.5", "--json", out, "--quiet"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert "2 of 3 transcript cues start after the media ends" in " ".join(data["warnings"])
    assert "2 of 3 transcript cues" in proc.stderr and "not sure" not in proc.stderr
    assert [w["text"] for w in data["transcript"]] == ["I", "guess", "maybe"]
    duration = data["media"]["duration"]
    assert duration < 1.2
    ends = [s["end"] for s in data["clip"]["segments"]] + [
        c["end"] for c in data["explanation"]["cues"]
    ]
    assert ends and max(ends) <= duration + 1e-6  # one frame step is 2 s, the clip 1 s


def test_sigint_during_asr_of_a_long_file(tmp_path, model_store):
    """An audio-only answer of a minute: progress shows while ASR runs, and Ctrl-C ends the
    command within seconds (exit 130, no traceback), not when ASR is done."""
    text = " ".join([HEDGING, "Well, it depends on how I feel about it on the day."] * 7)
    wav = speak(text, tmp_path / "long.wav")
    proc = subprocess.Popen(
        [*CLI, "analyze", str(wav)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    killer = threading.Timer(120, proc.kill)
    killer.start()
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.split(":")[-1].strip().startswith("speech"):
                break
        assert any("speech" in line for line in seen), seen
        time.sleep(1.0)  # ASR is decoding now
        proc.send_signal(signal.SIGINT)
        t = time.monotonic()
        rest = proc.stderr.read()
        proc.wait()
        stopped_in = time.monotonic() - t
    finally:
        killer.cancel()
    assert proc.returncode == 130, "".join(seen) + rest
    assert "Traceback" not in rest and "interrupted" in rest
    assert stopped_in < 15


def test_score_manifest_bom_crlf_quoted_commas_and_special_files(media, tmp_path, model_store):
    """Excel-style manifest (BOM, CRLF, a quoted path with a comma) next to rows naming a
    folder and a device as transcript: the good row is scored, the others fail alone, and
    the batch's stderr carries no native library chatter."""
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    for name in ("a, b.mp4", "c.mp4"):
        (folder / name).write_bytes(media["clip"].read_bytes())
    manifest = folder / "list.csv"
    manifest.write_bytes(
        b'\xef\xbb\xbfpath,transcript,id\r\n"a, b.mp4",,comma\r\nsub,,folder\r\n'
        b"c.mp4,/dev/zero,device\r\n"
    )
    out = tmp_path / "out"
    proc = _run("score", manifest, "--out", out, "--quiet")
    assert proc.returncode == 1, proc.stderr[-2000:]  # some failed
    assert "Traceback" not in proc.stderr and "INFO: [" not in proc.stderr
    clips = list(csv.DictReader((out / "clips.csv").open(encoding="utf-8")))
    assert [(c["id"], Path(c["path"]).name) for c in clips] == [("comma", "a, b.mp4")]
    failures = {f["id"]: f["error"] for f in csv.DictReader((out / "failures.csv").open())}
    assert failures == {
        "folder": "not a regular file: a folder",
        "device": "transcript zero: not a regular file",
    }


@pytest.mark.parametrize(
    "argv, verbose",
    [
        (["-v", "models", "list"], True),
        (["models", "list", "-v"], True),
        (["models", "list", "--verbose"], True),
        (["analyze", "clip.mp4", "-v"], True),
        (["client", "models", "-v"], True),
        (["models", "list"], False),
    ],
)
def test_verbose_is_accepted_before_and_after_the_subcommand(argv, verbose):
    from ahmer.service.cli import build_parser

    assert build_parser().parse_args(argv).verbose is verbose


@pytest.mark.parametrize("command", ["analyze", "preprocess"])
def test_transcript_format_comes_from_the_suffix(media, command):
    """A ``.json`` transcript is read as JSON even when its content would be sniffed as plain
    text (a list of lists): its error is a transcript error, not words made of brackets."""
    bad = media["tmp"] / f"words-{command}.json"
    bad.write_text('[["I", 0.0, 0.4], ["guess", 0.4, 0.9]]')
    extra = ["--out", str(media["tmp"] / f"{command}.json")] if command == "preprocess" else []
    proc = _run(command, media["clip"], "--transcript", bad, "--quiet", *extra)
    _one_error_line(proc, 1, "transcript")
