"""Nothing retained, nothing leaked (issue 14, item 6): the privacy promises of docs/privacy.md
checked on a real ``ahmer serve`` (debug-level JSON logs) and a real ``ahmer score``.

A clip with a transcript of nonsense words (no ASR would make them) goes through every call —
``AnalyzeClip``, ``UploadClip``, a ``StreamSession`` with client transcript segments,
``GetModels`` — and through calls that fail (undecodable media, an unparsable transcript) or
are cancelled mid-upload. Afterwards the server's log and its TMPDIR hold none of the words,
no run of the clip's bytes and not the client's file name; error messages quote none of the
words. ``ahmer score`` with the transcript as a file: its stderr and TMPDIR hold none of the
words or bytes, and in ``--out`` the words appear only in ``results/<id>.json`` and
``report.html``, the two outputs docs/privacy.md says carry transcripts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving import serve_process, speech_clip

from ahmer.v1 import service_pb2

WORDS = ("zorblaxian", "quindlefrop", "vemtrovasko")  # nonsense: no model says them
NAME = "patient-7731-secret"  # the client's file name
CLI = [sys.executable, "-m", "ahmer.service.cli"]
VTT = (
    "WEBVTT\n\n00:00.100 --> 00:01.000\n"
    f"um {WORDS[0]} maybe\n\n00:01.000 --> 00:02.500\n{WORDS[1]} {WORDS[2]}\n"
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("private")
    path = speech_clip(folder, "I guess maybe, um.", "answer", lead=0.2)
    return path.rename(folder / f"{NAME}.mp4")


def _marker(data: bytes) -> bytes:
    """A 24-byte run from the middle of the clip's bytes that is no simple pattern."""
    for start in range(len(data) // 2, len(data) - 24, 97):
        run = data[start : start + 24]
        if len(set(run)) >= 16:
            return run
    raise AssertionError("no distinctive run in the clip")


def _leaks(blob: bytes, media: bytes) -> list[str]:
    found = [w for w in WORDS if w.encode() in blob]
    if _marker(media) in blob:
        found.append("media bytes")
    if NAME.encode() in blob:
        found.append("file name")
    return found


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _jpegs_and_pcm(clip: Path) -> tuple[list[bytes], bytes]:
    import av
    import cv2

    frames, audio = [], []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if len(frames) < 10:
                image = frame.to_ndarray(format="bgr24")
                frames.append(cv2.imencode(".jpg", image)[1].tobytes())
    with av.open(str(clip)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                audio.append(out.to_ndarray().tobytes())
    return frames, b"".join(audio)


def test_server_keeps_and_logs_nothing_of_a_clip(clip, tmp_path, model_store):
    from ahmer.client import AhmerClient, AhmerError

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    log = tmp_path / "serve.log"
    media = clip.read_bytes()
    frames, pcm = _jpegs_and_pcm(clip)
    details = []
    args = ("--log-level", "debug", "--log-format", "json", "--fps", "5")
    with serve_process(env={"TMPDIR": str(tmp)}, stderr=log, args=args) as (_proc, target):
        with AhmerClient(target) as client:
            kwargs = {"transcript": VTT, "transcript_format": "vtt", "explanation": "full"}
            result = client.analyze_file(clip, **kwargs)  # container: the file's name
            assert WORDS[1] in " ".join(w.text for w in result.transcript)  # it was used
            result = client.upload_file(clip, chunk_size=16384, **kwargs)
            assert WORDS[2] in " ".join(w.text for w in result.transcript)
            client.get_models()
            with client.session(fps=5, video=True, audio=True, client_transcript=True) as s:
                for k, jpeg in enumerate(frames):
                    s.send_frame(jpeg, pts=k / 15)
                s.send_audio(pcm, start=0.0)
                s.send_transcript(f"um {WORDS[0]} {WORDS[1]}", 0.1, 1.0)
                s.send_transcript(WORDS[2], 1.0, 1.5)
                s.close()
            # failures: undecodable media, an unparsable transcript, a cancelled upload
            unreadable = '{"words": [{"word": "' + WORDS[0] + '"}]}'
            for call in (
                lambda: client.analyze_bytes(media[: len(media) // 3], container=clip.name,
                                             transcript=VTT, transcript_format="vtt"),
                lambda: client.analyze_bytes(media, container=clip.name, transcript_format="vtt",
                                             transcript=VTT.replace("-->", "- ->")),
                lambda: client.analyze_bytes(media, container=clip.name, transcript_format="json",
                                             transcript=unreadable),
            ):  # fmt: skip
                with pytest.raises(AhmerError) as caught:
                    call()
                details.append(caught.value.details())
            gate = []

            def requests():
                header = service_pb2.UploadHeader(
                    container=clip.name, total_size=len(media),
                    transcript={"data": VTT.encode(), "format": 2},
                )  # fmt: skip
                yield service_pb2.UploadRequest(header=header)
                yield service_pb2.UploadRequest(chunk={"data": media[: len(media) // 2]})
                while not gate:
                    time.sleep(0.05)

            call = client.stub.UploadClip.future(requests())
            time.sleep(1.0)
            call.cancel()
            gate.append(True)
            with pytest.raises(grpc.FutureCancelledError):
                call.result()
        time.sleep(0.5)  # the cancelled call's handler ends
        assert _tree(tmp) == {}, "the server left files in its TMPDIR"
    text = log.read_bytes()
    assert text.count(b'"call finished"') >= 8  # the log is there and JSON
    assert _leaks(text, media) == [], "the server log holds these"
    for message in details:
        assert not [w for w in WORDS if w in message], message
    assert any("transcript" in m for m in details), details


def test_score_keeps_transcripts_in_its_own_outputs_only(clip, tmp_path, model_store):
    transcript = tmp_path / f"{NAME}-words.vtt"
    transcript.write_text(VTT)
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"path,transcript\n{clip},{transcript}\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    env = {**__import__("os").environ, "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [*CLI, "score", str(manifest), "--out", str(out), "--fps", "2", "--frames-csv"],
        capture_output=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    media = clip.read_bytes()
    for stream in (proc.stdout, proc.stderr):
        assert [w for w in WORDS if w.encode() in stream] == []
        assert _marker(media) not in stream
    assert _tree(tmp) == {}, "ahmer score left files in its TMPDIR"
    outputs = _tree(out)
    holding = sorted(name for name, blob in outputs.items() if WORDS[1].encode() in blob)
    assert holding == ["report.html", f"results/{clip.stem}.json"], holding
    assert not [n for n, blob in outputs.items() if _marker(media) in blob]
    assert np.all([WORDS[0].encode() not in outputs[n] for n in ("clips.csv", "frames.csv")])
