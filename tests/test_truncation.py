"""Partial media is never silent (issue 14, item 1): a stream that decodes short of the
duration its container declares is a ``truncated media: ...`` warning in every output (result
JSON, protobuf, ``ahmer analyze``'s stderr, ``clips.csv``, the batch report), whole files of
every kind are not flagged, strictness (``--strict``, ``AHMER_STRICT``, ``options.strict``)
makes it an error, and a live session whose audio and video end apart gets the same.

Real files only: clips are made with espeak-ng over a real face, remuxed and cut at byte
offsets; the WAV whose header declares more samples than it holds is a real WAV cut short."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from cli_checks import one_error_line
from media import HEDGING, canvas, make_clip, portrait, read_wav, speak

from ahmer.models.config import CallOptions
from ahmer.preprocessing.media import (
    DecodeReport,
    MediaError,
    TruncatedMedia,
    iter_frames,
    load_audio,
    probe,
)
from ahmer.preprocessing.truncation import (
    drift_warning,
    is_incomplete,
    tolerance,
    truncation_warning,
)

CLI = [sys.executable, "-m", "ahmer.service.cli"]


# -- the rule -----------------------------------------------------------------------------------


def test_tolerance_is_half_a_second_two_frames_or_five_percent():
    assert tolerance(6.0) == 0.5
    assert tolerance(6.0, frame_rate=25) == 0.5
    assert tolerance(6.0, frame_rate=1) == 2.0  # two frames of a 1 fps video
    assert tolerance(100.0, frame_rate=30) == pytest.approx(5.0)  # 5 % of a long one
    text = truncation_warning("video", 1.2, 6.875)
    assert text == (
        "truncated media: the video stream decoded to 1.20 s of the 6.88 s declared "
        "(the file is cut short or damaged)"
    )
    assert is_incomplete(text)
    assert truncation_warning("audio", 6.0 - 0.49, 6.0) is None  # within the tolerance
    assert truncation_warning("audio", 6.0 - 0.51, 6.0) is not None
    assert truncation_warning("audio", 1.0, None) is None  # nothing declared: nothing known
    assert truncation_warning("audio", None, 6.0) is None  # not read to its end
    assert drift_warning(5.0, 5.3, frame_rate=5) is None
    drift = drift_warning(2.0, 6.0, frame_rate=5)
    assert drift.startswith("audio/video drift: the audio ends at 2.00 s and the video at 6.00 s")
    assert is_incomplete(drift) and not is_incomplete("no audio track: vocal cues are absent")


# -- media ---------------------------------------------------------------------------------------


def _remux(src: Path, dst: Path, options: dict | None = None) -> Path:
    """``src`` copied packet by packet into ``dst`` (its container from the suffix)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Whole files of every kind: the speech clip as MP4 (index last), faststart MP4 (index
    first, so a cut still opens), Matroska and WebM; audio-only WAV, MP3, M4A and FLAC; a
    video-only MP4 and a 1 fps one; and the README's sample clip."""
    from scipy.signal import resample_poly

    from ahmer.service.cli.sample import make_sample

    tmp = tmp_path_factory.mktemp("whole")
    audio, rate = read_wav(speak(HEDGING, tmp / "speech.wav"))
    audio = resample_poly(audio[:, 0], 16000, rate).astype(np.float32)
    audio = np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(8000, np.float32)])
    frame = canvas(portrait(), size=(320, 180))
    out = {"mp4": make_clip(tmp / "clip.mp4", frame, audio, 16000, fps=15)}
    out["faststart.mp4"] = _remux(out["mp4"], tmp / "fast.mp4", {"movflags": "faststart"})
    out["mkv"] = _remux(out["mp4"], tmp / "clip.mkv")
    out["webm"] = make_clip(
        tmp / "clip.webm", frame, audio, 16000, fps=15, video_codec="libvpx-vp9",
        audio_codec="libopus",
    )  # fmt: skip
    for suffix, codec in (("wav", "pcm_s16le"), ("mp3", "libmp3lame"), ("m4a", "aac"),
                          ("flac", "flac")):  # fmt: skip
        out[suffix] = make_clip(tmp / f"voice.{suffix}", None, audio, 16000, audio_codec=codec)
    out["video-only"] = make_clip(tmp / "silent.mp4", frame, None, duration=6.3, fps=30)
    out["1fps"] = make_clip(tmp / "slow.mp4", frame, None, duration=6.0, fps=1)
    sample, _ = make_sample()
    out["sample"] = tmp / "sample.mp4"
    out["sample"].write_bytes(sample)
    return out


def _streams(source) -> dict[str, DecodeReport]:
    """Each stream of ``source`` decoded to its end, with its report."""
    info = probe(source)
    reports = {}
    if info.has_video:
        reports["video"] = DecodeReport()
        try:
            list(iter_frames(source, fps=5, max_side=320, report=reports["video"]))
        except MediaError:
            pass
    if info.has_audio:
        reports["audio"] = DecodeReport()
        try:
            load_audio(source, report=reports["audio"])
        except MediaError:
            pass
    return reports


@pytest.mark.parametrize(
    "kind",
    ["mp4", "faststart.mp4", "mkv", "webm", "wav", "mp3", "m4a", "flac", "video-only", "1fps",
     "sample"],
)  # fmt: skip
def test_whole_files_are_not_flagged(files, kind):
    reports = _streams(files[kind])
    assert reports
    for stream, report in reports.items():
        assert report.declared is not None, (kind, stream)  # the check did run
        assert report.decoded >= report.declared - 0.1, (kind, stream, report)
        assert report.shortfall(stream) is None and not report.truncated, (kind, stream)


def _cut(path: Path, fraction: float) -> bytes:
    data = path.read_bytes()
    return data[: int(len(data) * fraction)]


@pytest.mark.parametrize(
    "kind, fraction, streams",
    [
        ("faststart.mp4", 0.8, ("video", "audio")),
        ("faststart.mp4", 0.6, ("video", "audio")),
        ("faststart.mp4", 0.45, ("video", "audio")),
        ("mkv", 0.7, ("video", "audio")),
        ("mkv", 0.4, ("video", "audio")),
        ("webm", 0.5, ("video", "audio")),
        ("mp3", 0.5, ("audio",)),
        ("wav", 0.6, ("audio",)),  # the header still declares every sample
        ("flac", 0.5, ("audio",)),
    ],
)
def test_cut_files_are_flagged_with_both_durations(files, kind, fraction, streams):
    whole = probe(files[kind]).duration
    reports = _streams(_cut(files[kind], fraction))
    for stream in streams:
        report = reports[stream]
        warning = report.shortfall(stream)
        assert report.truncated and warning is not None, (kind, fraction, stream)
        assert warning.startswith(f"truncated media: the {stream} stream decoded to ")
        assert report.decoded < whole * fraction + 0.5 < report.declared
        assert f"{report.decoded:.2f} s of the {report.declared:.2f} s declared" in warning
        assert report.declared == pytest.approx(whole, abs=0.1)


def test_a_wav_header_declaring_more_samples_than_present(files, tmp_path):
    """A WAV whose ``data`` chunk says 6 s but holds 2 s: FFmpeg alone estimates 2 s from the
    file size, the header says what was recorded."""
    pcm = (0.1 * np.sin(np.arange(2 * 16000) / 5) * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + 6 * 32000) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    header += b"data" + struct.pack("<I", 6 * 32000)
    path = tmp_path / "short.wav"
    path.write_bytes(header + pcm)
    for source in (path, path.read_bytes(), io.BytesIO(path.read_bytes())):
        report = _streams(source)["audio"]
        assert report.declared == pytest.approx(6.0) and report.decoded == pytest.approx(2.0)
        assert report.shortfall("audio") == (
            "truncated media: the audio stream decoded to 2.00 s of the 6.00 s declared "
            "(the file is cut short or damaged)"
        )
    # streaming writers' placeholder size (0xFFFFFFFF) declares nothing: no warning
    path.write_bytes(header[:-4] + struct.pack("<I", 0xFFFFFFFF) + pcm)
    assert _streams(path)["audio"].shortfall("audio") is None


# -- whole pipeline: result, protobuf, strict --------------------------------------------------


@pytest.fixture(scope="module")
def analyzer(model_store):
    from serving import shared_analyzer

    return shared_analyzer()


@pytest.fixture(scope="module")
def cut(files, tmp_path_factory):
    """The faststart clip cut to 60 % of its bytes (it still opens: the index is first)."""
    path = tmp_path_factory.mktemp("cut") / "cut.mp4"
    path.write_bytes(_cut(files["faststart.mp4"], 0.6))
    return path


def _partial(warnings) -> list[str]:
    return [w for w in warnings if is_incomplete(w)]


def test_the_result_and_its_protobuf_say_so(analyzer, files, cut):
    from ahmer.service.convert import from_proto, to_proto

    result = analyzer.analyze(cut, options=CallOptions(fps=2))
    partial = _partial(result.warnings)
    assert [w.split(" stream ")[0] for w in partial] == [
        "truncated media: the video",
        "truncated media: the audio",
    ]
    assert result.frames and result.frames[-1].time < 0.7 * result.media["duration"]
    data = json.loads(result.to_json())
    assert _partial(data["warnings"]) == partial
    msg = to_proto(result)
    assert _partial(msg.warnings) == partial
    assert from_proto(msg).warnings == result.warnings
    two = CallOptions(fps=2)
    assert not _partial(analyzer.analyze(files["faststart.mp4"], options=two).warnings)


def test_strict_makes_it_an_error(analyzer, files, cut):
    with pytest.raises(TruncatedMedia, match="truncated media: the .* stream decoded to") as err:
        analyzer.analyze(cut, options=CallOptions(fps=2, strict=True))
    assert isinstance(err.value, MediaError)
    assert "strict analysis refuses partial media" in str(err.value)
    wav = files["wav"].read_bytes()
    with pytest.raises(TruncatedMedia, match="the audio stream decoded to"):
        analyzer.analyze(wav[: len(wav) // 2], options=CallOptions(fps=2, strict=True))
    whole = analyzer.analyze(files["wav"], options=CallOptions(fps=2, strict=True))  # whole: pass
    assert not _partial(whole.warnings)


# -- gRPC ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(model_store):
    """A server whose default is strict (AHMER_STRICT), with the session's analyzer."""
    from serving import ServerThread, shared_analyzer

    from ahmer.models.config import AnalyzerConfig

    srv = ServerThread(analyzer=shared_analyzer(), analysis=AnalyzerConfig(strict=True))
    srv.wait_ready()
    yield srv
    srv.stop()


def test_grpc_warning_and_strict_option(client, cut):
    from ahmer.client import make_options

    result = client.analyze_file(cut, fps=2, timeout=120)
    assert [w.split(" stream ")[0] for w in _partial(result.warnings)] == [
        "truncated media: the video",
        "truncated media: the audio",
    ]
    assert make_options(strict=True).HasField("strict")
    assert not make_options().HasField("strict")
    with pytest.raises(grpc.RpcError) as err:
        client.analyze_file(cut, fps=2, strict=True, timeout=120)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "truncated media" in err.value.details() and "strict" in err.value.details()


def test_grpc_server_default_strict_and_request_override(strict_server, cut):
    from ahmer.client import AhmerClient

    with AhmerClient(strict_server.target) as client:
        with pytest.raises(grpc.RpcError) as err:
            client.analyze_file(cut, fps=2, timeout=120)  # unset: the server's default
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "truncated media" in err.value.details()
        result = client.analyze_file(cut, fps=2, strict=False, timeout=120)
        assert _partial(result.warnings)


# -- live sessions ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(canvas(portrait(), size=(320, 180))).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _session(jpeg: bytes, video_s: float, audio_s: float, strict: bool | None = None):
    """A session of JPEG frames over ``video_s`` seconds at 5 fps and ``audio_s`` seconds
    of a tone, interleaved by time."""
    from ahmer.client import make_options, stream_config
    from ahmer.v1 import live_pb2

    requests = [stream_config("", True, True, make_options(fps=5, strict=strict))]
    tone = (0.05 * np.sin(np.arange(1600) / 3) * 32767).astype("<i2").tobytes()  # 0.1 s
    for k in range(int(round(max(video_s, audio_s) * 10))):
        t = k / 10
        if k % 2 == 0 and t < video_s:
            requests.append(live_pb2.StreamRequest(video=live_pb2.VideoFrame(pts=t, data=jpeg)))
        if t < audio_s:
            requests.append(live_pb2.StreamRequest(audio=live_pb2.AudioChunk(data=tone)))
    return requests


def test_live_session_whose_audio_and_video_end_apart(client, jpeg):
    replies = list(client.stream(_session(jpeg, video_s=6.0, audio_s=1.5), timeout=120))
    notices = [m.notice for m in replies if m.WhichOneof("message") == "notice"]
    assert [n.code for n in notices if n.code == "clock_skew"] == ["clock_skew"]  # once
    result = replies[-1].result
    assert _partial(result.warnings) == [
        "audio/video drift: the audio ends at 1.50 s and the video at 6.00 s; the last "
        "4.50 s have no audio"
    ]
    whole = list(client.stream(_session(jpeg, video_s=3.0, audio_s=3.0), timeout=120))
    assert not _partial(whole[-1].result.warnings)
    assert not [m for m in whole if m.WhichOneof("message") == "notice"]
    with pytest.raises(grpc.RpcError) as err:
        list(client.stream(_session(jpeg, 6.0, 1.5, strict=True), timeout=120))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "audio/video drift" in err.value.details() and "strict" in err.value.details()


# -- command line and batch ---------------------------------------------------------------------


def _run(*args, timeout=600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AHMER_DEBUG"}
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_analyze_prints_the_warning_and_strict_fails(model_store, cut, tmp_path):
    out = tmp_path / "cut.json"
    proc = _run("analyze", cut, "--fps", "2", "--quiet", "--json", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "truncated media" in line]
    assert [line.split(" stream ")[0] for line in lines] == [
        "warning: truncated media: the video",
        "warning: truncated media: the audio",
    ]
    assert "truncated=True" not in proc.stderr  # the decoder's log stays out of the way
    assert len(_partial(json.loads(out.read_text())["warnings"])) == 2
    proc = _run("analyze", cut, "--fps", "2", "--quiet", "--strict")
    line = one_error_line(proc, 1, "truncated media", "strict analysis refuses partial media")
    assert line.startswith("ahmer analyze: error: ")


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def test_score_flags_then_strict_fails(model_store, files, cut, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "whole.mp4").write_bytes(files["faststart.mp4"].read_bytes())
    (data / "cut.mp4").write_bytes(cut.read_bytes())
    wav = files["wav"].read_bytes()
    (data / "cutvoice.wav").write_bytes(wav[: len(wav) // 2])
    out = tmp_path / "out"
    proc = _run("score", data, "--out", out, "--fps", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _rows(out / "clips.csv")
    assert {k: rows[k]["truncated"] for k in rows} == {"whole": "0", "cut": "1", "cutvoice": "1"}
    assert int(rows["cut"]["warnings"]) >= 2 and int(rows["cutvoice"]["warnings"]) >= 1
    page = (out / "report.html").read_text()
    badge = '<span class="truncated" title="truncated media: the video'
    assert page.count(badge) == 2  # in the clips table and in the clip's summary
    assert page.count('<p class="partial">Partial media: truncated media: the video') == 1
    assert "2 clip(s) are partial media" in page

    proc = _run("score", data, "--out", out, "--fps", "2", "--quiet", "--strict")
    assert proc.returncode == 1, proc.stderr[-2000:]
    failures = _rows(out / "failures.csv")
    assert set(failures) == {"cut", "cutvoice"}
    assert "truncated media" in failures["cut"]["error"]
    assert "strict analysis refuses partial media" in failures["cutvoice"]["error"]
    assert set(_rows(out / "clips.csv")) == {"whole"}  # whole: done by the first run
    assert not (out / "results" / "cut.json").exists()


def test_strict_is_an_option_of_every_analysing_command():
    """One row of the option table: ``--strict`` for analyze and score, ``--strict`` /
    ``AHMER_STRICT`` for serve (into ``ServerConfig.analysis``), off by default."""
    from ahmer.service.cli.main import build_parser
    from ahmer.service.grpc.settings import ServerConfig

    parser = build_parser()
    assert parser.parse_args(["analyze", "a.mp4", "--strict"]).strict is True
    assert parser.parse_args(["analyze", "a.mp4"]).strict is False
    assert parser.parse_args(["score", "a.mp4", "--out", "o", "--strict"]).strict is True
    assert ServerConfig.from_sources(None, {"AHMER_STRICT": "true"}).analysis.strict is True
    assert ServerConfig.from_sources(None, {}).analysis.strict is False
    args = parser.parse_args(["serve", "--strict"])
    assert ServerConfig.from_sources(args, {"AHMER_STRICT": "0"}).analysis.strict is True
    with pytest.raises(Exception, match="AHMER_STRICT"):
        ServerConfig.from_sources(None, {"AHMER_STRICT": "maybe"})
