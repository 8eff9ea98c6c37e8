"""``ahmer score``: discovery, ids, shards and resumption keys; then the real command as a
subprocess on clips made at test time (real face, espeak-ng speech, an audio-only clip, a
truncated file and a text file named .mp4): failures recorded and the batch going on, a run
interrupted with SIGINT and resumed equal to an uninterrupted run, shards + merge equal to
one run, usage errors, and BAH metrics from label files.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media import CONFIDENT, HEDGING, canvas, face_photo, have_espeak, make_clip, read_wav, speak

from ahmer.models.config import AnalyzerConfig
from ahmer.service.batch.engine import (
    BatchError,
    batch_key,
    discover,
    file_sha256,
    parse_shard,
    plan,
    read_manifest,
    result_path,
    select_shard,
)
from ahmer.service.batch.tables import FRAME_COLUMNS

# -- discovery, ids, shards, keys (no models needed) --------------------------------------------


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_discover_folders_files_and_ids(tmp_path):
    data = tmp_path / "data"
    _touch(data / "p1" / "Visite 1" / "answer 1.mp4")
    _touch(data / "p2" / "answer 1.MOV")  # same stem, other folder: ids get a path hash
    _touch(data / "p2" / "voice.wav")
    _touch(data / "p2" / "notes.txt")  # not a media extension
    _touch(data / ".hidden" / "x.mp4")  # hidden folder
    _touch(data / "out" / "results" / "old.mp4")  # inside --out: excluded
    single = _touch(tmp_path / "single.webm")
    items = discover([data, single, data / "p2" / "voice.wav"], exclude=data / "out")
    ids = [i.id for i in items]
    assert ids == sorted(ids)
    assert len(items) == 4  # voice.wav given twice counts once
    assert "single" in ids and "voice" in ids
    twins = [i for i in items if i.id.startswith("answer_1-")]
    assert len(twins) == 2 and twins[0].id != twins[1].id
    assert all(i.path.is_absolute() and i.error is None for i in items)
    # ids are stable: the same inputs give the same ids
    assert [i.id for i in discover([data, single], exclude=data / "out")] == ids
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no inputs found"):
        discover([tmp_path / "empty"])
    with pytest.raises(BatchError, match="no inputs found"):
        discover([data / "p2"], exclude=data)  # everything is under the output folder
    with pytest.raises(BatchError, match="no such file"):
        discover([tmp_path / "nope"])


def test_symlink_loops_and_dangling_links_are_failed_items(tmp_path):
    """A symlink loop in a folder used to end the whole batch (``RuntimeError: Symlink
    loop``); like a dangling link, it is one item with an error, named as found."""
    data = tmp_path / "data"
    _touch(data / "good.mp4")
    (data / "loop_a.mp4").symlink_to("loop_b.mp4")
    (data / "loop_b.mp4").symlink_to("loop_a.mp4")
    (data / "self.mp4").symlink_to("self.mp4")
    (data / "dangling.mp4").symlink_to("gone.mp4")
    (data / "sub").mkdir()
    (data / "sub" / "link.mp4").symlink_to("../good.mp4")  # the same file twice: once
    manifest = _touch(tmp_path / "list.csv", b"path,transcript\ndata/good.mp4,data/self.mp4\n")
    items = {i.id: i for i in discover([data])}
    assert {k: i.error for k, i in items.items()} == {
        "good": None,
        "loop_a": "symlink loop",
        "loop_b": "symlink loop",
        "self": "symlink loop",
        "dangling": "no such file",
    }
    assert items["dangling"].path == data / "dangling.mp4"  # not its target
    assert items["loop_a"].path == data / "loop_a.mp4"
    (item,) = discover([manifest])
    assert item.error == "transcript self.mp4: symlink loop"
    with pytest.raises(BatchError, match="self.mp4: symlink loop"):
        discover([data / "self.mp4"])  # named on the command line: a usage error


def test_manifest_relative_paths_transcripts_ids(tmp_path):
    folder = tmp_path / "set"
    _touch(folder / "clips" / "a.mp4")
    _touch(folder / "clips" / "a.vtt")
    _touch(folder / "clips" / "b.mp4")
    manifest = folder / "list.csv"
    manifest.write_text(
        "id,path,transcript\n"
        "alpha,clips/a.mp4,clips/a.vtt\n"
        ",clips/b.mp4,\n"
        "gone,clips/missing.mp4,\n"
        "beta,clips/b.mp4,clips/none.vtt\n",  # b again: the first entry wins
        encoding="utf-8",
    )
    rows = read_manifest(manifest)
    assert rows[0] == (folder.resolve() / "clips/a.mp4", folder.resolve() / "clips/a.vtt", "alpha")
    items = {i.id: i for i in discover([manifest])}
    assert set(items) == {"alpha", "b", "gone"}
    assert items["alpha"].transcript == (folder / "clips" / "a.vtt").resolve()
    assert items["gone"].error == "no such file"  # recorded as a failure, not a usage error
    headerless = folder / "plain.csv"
    headerless.write_text("clips/a.mp4\n")
    assert read_manifest(headerless) == [(folder.resolve() / "clips/a.mp4", None, None)]
    (folder / "empty.csv").write_text("")
    with pytest.raises(BatchError, match="empty"):
        discover([folder / "empty.csv"])
    (folder / "binary.csv").write_bytes(b"\xff\xfe\x00bad\x00")
    with pytest.raises(BatchError, match="unreadable|empty path"):
        discover([folder / "binary.csv"])


def test_shards_partition_the_items_deterministically(tmp_path):
    for k in range(23):
        _touch(tmp_path / f"c{k:02d}.mp4")
    items = discover([tmp_path])
    for n in (1, 2, 3, 5):
        parts = [select_shard(items, i, n) for i in range(n)]
        ids = [x.id for part in parts for x in part]
        assert sorted(ids) == [x.id for x in items] and len(ids) == len(set(ids))
        assert parts == [select_shard(list(reversed(items)), i, n)[::-1] for i in range(n)]
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(BatchError):
            parse_shard(bad)


def test_batch_keys_do_not_change(monkeypatch):
    """Results written by earlier versions are found by their key: its body is fixed."""
    from ahmer.service.batch import engine

    monkeypatch.setattr(engine, "_ahmer_version", lambda: "0.2.0")
    key = batch_key("a" * 64, None, AnalyzerConfig(), {"fer_emotion": "v1@abc"})
    assert key == "25116da3d2ff9fabf0b7d7cf61ce2bf4e34b93fb4f2a4cfdadd0b45e4b502d51"
    options = AnalyzerConfig(
        fps=2,
        threshold=0.6,
        device="cuda",
        whisper_model="/m/w",
        landmark_fps=0,
        face_engine="tasks",
    )
    models = {"fer_emotion": "v1@abc", "minilm": "v2@def"}
    key = batch_key("b" * 64, "c" * 64, options, models)
    assert key == "f4782853e6c98468eff1a5d2cfe8eb5502a9f4925fae465bf51929c721c92134"
    # backend and device do not change results: not in the key
    same = AnalyzerConfig(**{**options.__dict__, "backend": "triton", "device": "cpu"})
    assert batch_key("b" * 64, "c" * 64, same, models) == key


def test_plan_skips_only_matching_keys(tmp_path):
    media = _touch(tmp_path / "in" / "a.mp4", b"first content")
    out = tmp_path / "out"
    (item,) = discover([media])
    options = AnalyzerConfig(fps=2.0)
    models = {"fer_emotion": "v1@abc"}
    assert plan([item], out, options, models) == ([item], [])
    sha = file_sha256(media)
    st = media.stat()
    record = {
        "clip": {},
        "batch": {
            "key": batch_key(sha, None, options, models),
            "sha256": sha,
            "stat": {"size": st.st_size, "mtime_ns": st.st_mtime_ns},
        },
    }
    result_path(out, item.id).parent.mkdir(parents=True)
    result_path(out, item.id).write_text(json.dumps(record))
    assert plan([item], out, options, models) == ([], [item])
    # other options or models: computed again
    assert plan([item], out, AnalyzerConfig(fps=5.0), models)[0] == [item]
    assert plan([item], out, AnalyzerConfig(fps=2.0, threshold=0.6), models)[0] == [item]
    assert plan([item], out, AnalyzerConfig(fps=2.0, landmark_fps=0.0), models)[0] == [item]
    assert plan([item], out, AnalyzerConfig(fps=2.0, face_engine="tasks"), models)[0] == [item]
    assert plan([item], out, options, {"fer_emotion": "v2@def"})[0] == [item]
    # same size, new content and mtime: re-hashed, so not skipped
    media.write_bytes(b"other content")
    os.utime(media, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert plan([item], out, options, models)[0] == [item]
    # a touched but unchanged file is re-hashed and still done
    media.write_bytes(b"first content")
    assert plan([item], out, options, models) == ([], [item])


# -- the real command ---------------------------------------------------------------------------

pytestmark_media = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
FPS = "2"


def _ahmer(*args: str, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ahmer.service.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def collection(tmp_path_factory, model_store):
    """Three good clips of 2-3 s (two with a face, one audio-only) and two bad files."""
    root = tmp_path_factory.mktemp("collection")
    data = root / "data"
    (data / "p1").mkdir(parents=True)
    face = canvas(face_photo(), size=(320, 240))
    for name, text, with_face in (
        ("p1/hedging", HEDGING.split(",")[0] + ", but I'm not sure.", True),
        ("confident", CONFIDENT, True),
        ("p1/voice_only", "Um, I don't know.", False),
    ):
        wav = speak(text, root / f"{Path(name).name}.wav", words_per_minute=190)
        audio, rate = read_wav(wav)
        audio = audio[: int(3.0 * rate), 0]
        audio = np.pad(audio, (0, max(0, int(2.5 * rate) - len(audio))))  # 2.5-3 s
        suffix = ".mp4" if with_face else ".m4a"
        make_clip(data / f"{name}{suffix}", face if with_face else None, audio, rate, fps=10)
    good = (data / "confident.mp4").read_bytes()
    (data / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (data / "notes.mp4").write_text("not a video, just some notes\n")
    return data


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _results(out: Path) -> dict[str, dict]:
    """Result JSON by id, without timings (everything else must match exactly: a clip's
    result does not depend on what the process analysed before it)."""
    found = {}
    for p in sorted((out / "results").glob("*.json")):
        data = json.loads(p.read_text())
        data.pop("timings")
        found[p.stem] = data
    return found


@pytest.fixture(scope="module")
def full_run(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    t = time.monotonic()
    proc = _ahmer("score", str(collection), "--out", str(out), "--fps", FPS, "--frames-csv")
    return out, proc, time.monotonic() - t


@pytestmark_media
def test_bad_files_are_recorded_and_the_batch_goes_on(full_run):
    out, proc, _ = full_run
    assert proc.returncode == 1, proc.stderr
    failures = {r["id"]: r for r in _rows(out / "failures.csv")}
    assert set(failures) == {"truncated", "notes"}
    assert all(r["error"] and r["path"].endswith(".mp4") for r in failures.values())
    clips = _rows(out / "clips.csv")
    assert [r["id"] for r in clips] == ["confident", "hedging", "voice_only"]
    for row in clips:
        assert 0.0 <= float(row["ah_probability"]) <= 1.0
        assert 2.4 < float(row["duration"]) < 3.2
        assert "ah_fusion_zeroshot" in row["models"]
    assert {r["id"]: r["dominant_emotion"] for r in clips}["voice_only"] == ""
    results = _results(out)
    assert set(results) == {"confident", "hedging", "voice_only"}
    assert all(r["batch"]["key"] and r["batch"]["fps"] == 2.0 for r in results.values())
    import pyarrow.parquet as pq

    frames = pq.read_table(out / "frames.parquet")
    assert frames.num_rows == sum(len(r["frames"]) for r in results.values()) > 10
    assert set(frames.column("id").to_pylist()) == set(results)
    assert len(_rows(out / "frames.csv")) == frames.num_rows
    assert frames.column_names == list(_rows(out / "frames.csv")[0]) == ["id", *FRAME_COLUMNS]
    page = (out / "report.html").read_text()
    assert all(f'id="clip-{k}"' in page for k in results)
    # no transcript text on the console: no two consecutive transcript words appear
    logged = " ".join((proc.stdout + proc.stderr).lower().split())
    pairs = set()
    for r in results.values():
        words = [w["text"].strip(" .,?!").lower() for w in r["transcript"]]
        pairs |= {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
    assert len(pairs) > 5  # speech was transcribed...
    assert not [p for p in pairs if p in logged]  # ...and not printed


@pytestmark_media
def test_rerun_skips_what_is_done(full_run, collection):
    out, _, _ = full_run
    before = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    proc = _ahmer("score", str(collection), "--out", str(out), "--fps", FPS)
    assert proc.returncode == 1
    assert "3 already done, 2 to score" in proc.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert after == before
    assert len(_rows(out / "clips.csv")) == 3


@pytestmark_media
def test_interrupted_run_resumes_to_the_same_outputs(full_run, collection, tmp_path):
    reference, _, _ = full_run
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ahmer.service.cli", "score", str(collection)]
    cmd += ["--out", str(out), "--fps", FPS, "--workers", "1"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control (CI in the background) starts us with SIGINT ignored,
        # which Python keeps: give the child the default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not list((out / "results").glob("*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    done = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert 1 <= len(done) < 3
    assert [r["id"] for r in _rows(out / "clips.csv")] == done  # tables for what finished
    assert (out / "report.html").exists()
    assert not list((out / "results").glob(".*.tmp"))  # no partial writes left

    proc = _ahmer("score", str(collection), "--out", str(out), "--fps", FPS)
    assert proc.returncode == 1, proc.stderr
    assert f"{len(done)} already done" in proc.stderr
    assert _rows(out / "clips.csv") == _rows(reference / "clips.csv")
    assert _results(out) == _results(reference)


def _close(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
    """Rows equal, numbers within 1e-3 (workers run ONNX Runtime with other thread counts)."""
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for x, y in zip(a, b, strict=True):
        for key in x:
            try:
                assert float(x[key]) == pytest.approx(float(y[key]), abs=1e-3), key
            except ValueError:
                assert x[key] == y[key], key


@pytestmark_media
def test_shards_and_merge_equal_one_run(full_run, collection, tmp_path):
    reference, _, _ = full_run
    out = tmp_path / "out"
    first = _ahmer("score", str(collection), "--out", str(out), "--fps", FPS, "--shard", "0/2")
    second = _ahmer(
        "score", str(collection), "--out", str(out), "--fps", FPS, "--shard", "1/2",
        "--workers", "2",
    )  # fmt: skip
    assert {first.returncode, second.returncode} <= {0, 1}, first.stderr + second.stderr
    assert not (out / "clips.csv").exists()  # shards write results only
    shard_failures = list(out.glob("failures.shard-*-of-2.csv"))
    assert len(shard_failures) == 2
    merged = _ahmer("score", "--merge", "--out", str(out))
    assert merged.returncode == 1, merged.stderr
    assert {r["id"] for r in _rows(out / "failures.csv")} == {"truncated", "notes"}
    _close(_rows(out / "clips.csv"), _rows(reference / "clips.csv"))
    assert set(_results(out)) == set(_results(reference))
    assert (out / "report.html").exists() and (out / "frames.parquet").exists()


@pytestmark_media
def test_labels_give_bah_metrics(full_run, tmp_path):
    out, _, _ = full_run
    split = tmp_path / "test.txt"
    split.write_text(
        "Videos/1/Visite_1/hedging.mp4,1,I guess, maybe\n"
        "Videos/2/Visite_1/confident.mp4,0,I will\n"
        "Videos/3/Visite_1/voice_only.mp4,1,um, I don't know\n"
    )
    annotation = tmp_path / "video_annotation.yaml"
    annotation.write_text(
        "Videos/1/Visite 1/hedging.mp4:\n  frame_annotation:\n"
        + "".join(f"  - [frame-{i}.jpg, {int(i >= 10)}]\n" for i in range(25))
    )
    proc = _ahmer("score", "--merge", "--out", str(out), "--labels", str(split), str(annotation))
    assert proc.returncode == 1, proc.stderr  # the two failures are still there
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["matching"]["matched_video_level"] == 3
    assert metrics["video"]["n"] == 3 and metrics["video"]["positives"] == 2
    assert 0.0 <= metrics["video"]["avgf1"] <= 1.0
    frame = metrics["frame"]  # 25 frames at the clip's 10 fps: 2.5 s, within the clip
    assert frame["n"] == 25 and frame["positives"] == 15
    assert "AVGF1" in proc.stdout
    assert "BAH metrics" in (out / "report.html").read_text()
    bad = tmp_path / "bad.txt"
    bad.write_text("a.mp4,maybe,words\nb.mp4,7,x\n")
    proc = _ahmer("score", "--merge", "--out", str(out), "--labels", str(bad))
    assert proc.returncode == 2 and "label must be 0 or 1" in proc.stderr


@pytestmark_media
def test_manifest_with_transcript(collection, tmp_path):
    (tmp_path / "t").mkdir()
    vtt = tmp_path / "t" / "confident.vtt"
    vtt.write_text("WEBVTT\n\n00:00.100 --> 00:02.000\nI will definitely stop next week.\n")
    manifest = tmp_path / "list.csv"
    media = os.path.relpath(collection / "confident.mp4", tmp_path)
    manifest.write_text(f"path,transcript,id\n{media},t/confident.vtt,answer-7\n")
    out = tmp_path / "out"
    proc = _ahmer("score", str(manifest), "--out", str(out), "--fps", FPS, "--no-report")
    assert proc.returncode == 0, proc.stderr
    (result,) = _results(out).values()
    assert result["id"] == "answer-7" and result["transcript_source"] == "client"
    assert [w["text"].strip(".") for w in result["transcript"]][-2:] == ["next", "week"]
    assert result["batch"]["transcript_sha256"] == file_sha256(vtt)
    assert "definitely" not in proc.stdout + proc.stderr
    assert not (out / "report.html").exists()
    # another transcript is another key: scored again
    vtt.write_text("WEBVTT\n\n00:00.100 --> 00:02.000\nMaybe, I don't know.\n")
    proc = _ahmer("score", str(manifest), "--out", str(out), "--fps", FPS, "--no-report")
    assert "0 already done, 1 to score" in proc.stderr


def test_usage_errors_exit_2_before_any_work(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    for args in (
        [str(empty)],
        [str(tmp_path / "missing.mp4")],
        [],
        [str(empty), "--shard", "3/2"],
        [str(empty), "--workers", "0"],
    ):
        proc = _ahmer("score", *args, "--out", str(out))
        assert proc.returncode == 2, (args, proc.stderr)
        assert "error:" in proc.stderr
    clip = _touch(tmp_path / "a.mp4")
    proc = _ahmer("score", str(clip), "--out", str(out), "--backend", "triton")
    assert proc.returncode == 2 and "triton" in proc.stderr
    assert not out.exists()  # nothing was started


def test_folders_named_like_media_and_folder_links_are_rows_not_silence(tmp_path):
    """A folder named ``x.mp4`` and a directory symlink loop inside the input used to vanish:
    each is now a failed item saying what it is (the folder's own media are still found), and
    ``ahmer score`` lists them in failures.csv."""
    data = tmp_path / "data"
    _touch(data / "good.mp4")
    _touch(data / "x.mp4" / "inner.wav")  # a folder named like a clip, with a clip in it
    (data / "sub").mkdir()
    (data / "sub" / "loop").symlink_to("..")  # a directory symlink loop
    (data / "sub" / "self").symlink_to("self")  # a loop with no media extension
    (data / "elsewhere").symlink_to(tmp_path / "other", target_is_directory=True)
    (tmp_path / "other").mkdir()
    _touch(tmp_path / "other" / "outside.mp4")
    items = {i.id: i for i in discover([data])}
    assert {k: i.error for k, i in items.items()} == {
        "good": None,
        "inner": None,
        "x": "not a regular file: a folder",
        "loop": "not a regular file: a symlink to a folder (folder links are not followed)",
        "self": "symlink loop",
        "elsewhere": "not a regular file: a symlink to a folder (folder links are not followed)",
    }
    assert items["loop"].path == data / "sub" / "loop"  # named as found, not its target


# the frame table's columns before head pose, blendshapes and the pixel box were added: a
# contract with users' scripts, so written out here rather than derived
OLD_FRAME_COLUMNS = (
    "frame timestamp face_id confidence success face_x0 face_y0 face_x1 face_y1 emotion_label "
    "emotion_angry emotion_disgust emotion_fear emotion_happy emotion_sad emotion_surprise "
    "emotion_neutral valence ah_probability ah_label"
).split()


@pytestmark_media
def test_frame_table_has_pose_blendshapes_and_a_pixel_box(full_run):
    """frames.parquet and frames.csv carry head pose (degrees), the 52 blendshapes (one
    ``blendshape_`` column each) and the face box in pixels (x, y, width, height) beside the
    old columns, which keep their names; the pixel box is the normalised one times the frame
    size the result records."""
    import pyarrow.parquet as pq

    from ahmer.preprocessing.face_engine import BLENDSHAPE_NAMES

    out, _, _ = full_run
    table = pq.read_table(out / "frames.parquet")
    names = table.column_names
    assert set(OLD_FRAME_COLUMNS) <= set(names)
    shapes = [n for n in names if n.startswith("blendshape_")]
    assert len(shapes) == len(BLENDSHAPE_NAMES) == 52 and "blendshape_jawOpen" in shapes
    assert {"pose_pitch", "pose_yaw", "pose_roll"} <= set(names)
    assert {"face_x", "face_y", "face_width", "face_height"} <= set(names)
    rows = table.to_pylist()
    results = _results(out)
    faced = [r for r in rows if r["success"] == 1]
    assert faced and all(r["success"] == 0 for r in rows if r["id"] == "voice_only")
    with_pose = [r for r in faced if r["pose_yaw"] is not None]
    assert with_pose  # landmarks on at least the landmark frames
    for r in with_pose:
        assert all(-90 <= r[f"pose_{k}"] <= 90 for k in ("pitch", "yaw", "roll"))
        assert all(0.0 <= r[n] <= 1.0 for n in shapes if r[n] is not None)
        assert any(r[n] is not None for n in shapes)
    for r in faced:
        media = results[r["id"]]["media"]
        width, height = media["width"], media["height"]
        assert r["face_x"] == pytest.approx(r["face_x0"] * width, abs=0.1)
        assert r["face_height"] == pytest.approx((r["face_y1"] - r["face_y0"]) * height, abs=0.1)
        assert 0 < r["face_width"] <= width
    for r in rows:
        if r["success"] == 0:
            assert r["face_x"] is None and r["pose_pitch"] is None
    csv_rows = _rows(out / "frames.csv")
    assert list(csv_rows[0]) == names
    first = next(r for r in csv_rows if r["pose_yaw"])
    assert float(first["blendshape_jawOpen"]) >= 0.0
