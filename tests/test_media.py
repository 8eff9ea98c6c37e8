"""Media decoding on real files made at test time (espeak-ng speech, a real face photo)."""

from __future__ import annotations

import concurrent.futures
import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import (
    HEDGING,
    canvas,
    face_photo,
    have_espeak,
    make_clip,
    portrait,
    read_wav,
    speak,
)
from scipy.signal import resample_poly

from ahmer.preprocessing.media import (
    DecodeReport,
    MediaError,
    VideoFrame,
    iter_audio,
    iter_frames,
    load_audio,
    probe,
)

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

SIZE = (320, 180)  # small frames keep encoding cheap on a shared 2-core machine


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    """Every test file, made once: speech, its 16 kHz reference, and clips built from it."""
    d = tmp_path_factory.mktemp("media")
    wav, rate = read_wav(speak(HEDGING, d / "speech.wav"))
    speech = wav[:, 0]
    ref16 = resample_poly(speech, 16000, rate).astype(np.float32)
    s48 = resample_poly(speech, 48000, rate).astype(np.float32)
    stereo48 = np.stack([s48, 0.5 * s48], axis=1)  # different channels: the mix is their mean
    s8 = resample_poly(speech, 8000, rate).astype(np.float32)
    face = canvas(face_photo(), size=SIZE)
    m = {"d": d, "speech": speech, "rate": rate, "ref16": ref16, "face": face}
    m["talk.mp4"] = make_clip(d / "talk.mp4", face, speech, rate, fps=25)
    m["talk.webm"] = make_clip(
        d / "talk.webm",
        face,
        stereo48,
        48000,
        fps=10,
        video_codec="libvpx-vp9",
        audio_codec="libopus",
    )
    m["talk.mkv"] = make_clip(d / "talk.mkv", face, s8, 8000, fps=10, audio_codec="flac")
    m["speech.wav"] = make_clip(d / "only.wav", None, speech, rate, audio_codec="pcm_s16le")
    m["speech.m4a"] = make_clip(d / "only.m4a", None, stereo48, 48000)
    m["silent.mp4"] = make_clip(d / "silent.mp4", face, duration=2.0, fps=25)
    return m


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _best_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 80) -> int:
    """Lag (samples) of ``a`` against ``b`` with the highest correlation."""
    n = min(len(a), len(b))
    scores = [
        float(a[max(0, lag) : n + min(0, lag)] @ b[max(0, -lag) : n - max(0, lag)])
        for lag in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmax(scores)) - max_lag


# -- probe ------------------------------------------------------------------------------------


def test_probe_fields(media):
    duration = len(media["speech"]) / media["rate"]
    info = probe(media["talk.mp4"])
    assert info.container.startswith("mov,mp4")
    assert (info.has_video, info.has_audio) == (True, True)
    assert (info.width, info.height, info.rotation) == (*SIZE, 0)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.video_fps == pytest.approx(25.0)
    assert (info.sample_rate, info.channels) == (media["rate"], 1)
    assert info.duration == pytest.approx(duration, abs=0.1)

    webm = probe(media["talk.webm"])
    assert "webm" in webm.container
    assert (webm.video_codec, webm.audio_codec) == ("vp9", "opus")
    assert (webm.sample_rate, webm.channels) == (48000, 2)
    assert webm.duration == pytest.approx(duration, abs=0.1)

    mkv = probe(media["talk.mkv"])
    assert "matroska" in mkv.container
    assert (mkv.audio_codec, mkv.sample_rate, mkv.channels) == ("flac", 8000, 1)

    for name, codec, channels in [("speech.wav", "pcm_s16le", 1), ("speech.m4a", "aac", 2)]:
        info = probe(media[name])
        assert (info.has_video, info.has_audio) == (False, True), name
        assert (info.audio_codec, info.channels, info.width) == (codec, channels, 0), name
        assert info.duration == pytest.approx(duration, abs=0.1), name

    silent = probe(media["silent.mp4"])
    assert (silent.has_video, silent.has_audio, silent.sample_rate) == (True, False, 0)
    assert silent.duration == pytest.approx(2.0, abs=0.05)


# -- frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,source_fps", [("talk.mp4", 25), ("talk.webm", 10)])
def test_frames_at_analysis_rate(media, name, source_fps):
    duration = probe(media[name]).duration
    frames = list(iter_frames(media[name], fps=5.0))
    times = np.array([f.time for f in frames])
    assert all(isinstance(f, VideoFrame) for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert times[0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(times) > 0)
    # one frame per 0.2 s grid step, each within one source frame of its grid time
    assert abs(len(frames) - duration * 5) <= 1.5
    grid = np.round(times * 5) / 5
    assert np.all(np.abs(times - grid) <= 1 / source_fps + 1e-6)
    assert np.all(np.abs(np.diff(times) - 0.2) <= 1 / source_fps + 1e-6)
    image = frames[0].image
    assert image.dtype == np.uint8 and image.shape == (SIZE[1], SIZE[0], 3)
    assert np.abs(image.astype(int) - media["face"]).mean() < 8  # RGB order, not BGR


def test_no_grid_time_past_the_end(media):
    times = [f.time for f in iter_frames(media["silent.mp4"], fps=5.0)]  # 2.0 s at 25 fps
    assert times == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8])


def test_every_frame_when_fps_is_none_or_above_source(media):
    all_frames = [f.time for f in iter_frames(media["talk.webm"], fps=None)]
    assert np.allclose(np.diff(all_frames), 0.1, atol=1e-3)
    assert [f.time for f in iter_frames(media["talk.webm"], fps=30)] == all_frames


def test_iter_frames_is_lazy(media):
    gen = iter_frames(media["talk.mp4"], fps=5.0)
    first = next(gen)
    second = next(gen)
    gen.close()  # closes the container without decoding the rest
    assert (first.time, second.time) == (0.0, pytest.approx(0.2))


def test_variable_frame_rate_times_are_real_pts(media):
    times = [0.0, 0.04, 0.08, 0.5, 0.52, 0.9, 1.3, 1.31, 1.32, 1.9, 2.0, 2.6]

    def frame(i, t):  # brightness encodes the frame index, to check image/time pairing
        return np.full((48, 64, 3), 20 * i, np.uint8)

    path = make_clip(media["d"] / "vfr.mp4", frame, duration=2.7, frame_times=times)
    every = list(iter_frames(path, fps=None))
    assert [f.time for f in every] == pytest.approx(times, abs=1e-3)
    for f in every:
        assert abs(f.image.mean() - 20 * times.index(round(f.time, 2))) < 4
    picked = [f.time for f in iter_frames(path, fps=5.0)]
    assert np.all(np.diff(picked) > 0)
    for t in picked:  # a real pts within half a grid step of its grid time
        assert min(abs(t - s) for s in times) < 1e-3
        assert abs(t - round(t * 5) / 5) < 0.1 + 1e-6
    # the 0.5 s gap after 2.0 yields nothing in between (never invented)
    assert not [t for t in picked if 2.0 < t < 2.6]
    assert picked == pytest.approx([0.0, 0.52, 0.9, 1.32, 2.0, 2.6], abs=1e-3)


def test_out_of_order_and_duplicate_pts_give_increasing_times(media):
    """Packets with duplicate and backwards timestamps (MJPEG in Matroska, which accepts
    them) come out strictly increasing; dropped frames are counted."""
    path = media["d"] / "dup.mkv"
    pts_ms = [0, 40, 40, 80, 60, 120, 200, 200, 240]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        packets = []
        for i in range(len(pts_ms)):
            img = np.full((48, 64, 3), 25 * i, np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            packets += stream.encode(vf)
        packets += stream.encode()
        for i, (packet, pts) in enumerate(zip(packets, pts_ms, strict=True)):
            packet.pts, packet.dts = pts, min(pts_ms[i:])  # dts never decreases, <= pts
            packet.time_base = Fraction(1, 1000)
            out.mux(packet)
    report = DecodeReport()
    frames = list(iter_frames(path, fps=None, report=report))
    assert [f.time for f in frames] == pytest.approx([0, 0.04, 0.08, 0.12, 0.2, 0.24])
    assert report.dropped_frames == 3
    # the first frame with each time is kept: brightness 25 * packet index
    assert [round(f.image.mean() / 25) for f in frames] == [0, 1, 3, 5, 6, 8]


def test_4k_is_downscaled(media):
    face = canvas(face_photo(), size=(3840, 2160))
    path = make_clip(media["d"] / "uhd.mp4", face, duration=0.4, fps=5)
    info = probe(path)
    assert (info.width, info.height) == (3840, 2160)
    frames = list(iter_frames(path, fps=5.0))
    assert len(frames) == 2
    assert frames[0].image.shape == (720, 1280, 3)
    small = canvas(face_photo(), size=(1280, 720))
    assert np.abs(frames[0].image.astype(int) - small).mean() < 10
    assert next(iter_frames(path, max_side=640)).image.shape == (360, 640, 3)
    assert next(iter_frames(path, max_side=None)).image.shape == (2160, 3840, 3)


def _portrait() -> np.ndarray:
    """An upright portrait frame (180 wide, 320 tall): face in the upper part, a red block in
    the top-left corner, a blue one at the bottom-right."""
    img = np.full((320, 180, 3), 90, np.uint8)
    img[20:180, 10:170] = canvas(face_photo(), size=(160, 160))
    img[:30, :30] = (255, 0, 0)
    img[-30:, -30:] = (0, 0, 255)
    return img


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_honoured(media, rotation):
    upright = _portrait()
    stored = np.ascontiguousarray(np.rot90(upright, k=rotation // 90))  # what a phone stores
    path = make_clip(
        media["d"] / f"rot{rotation}.mp4", stored, duration=0.4, fps=5, rotation=rotation
    )
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == (180, 320)
    image = next(iter_frames(path)).image
    assert image.shape == (320, 180, 3)
    assert image[:30, :30].mean(axis=(0, 1)) == pytest.approx([255, 0, 0], abs=30)
    assert image[-30:, -30:].mean(axis=(0, 1)) == pytest.approx([0, 0, 255], abs=30)
    assert np.abs(image.astype(int) - upright).mean() < 8


def test_bytes_and_file_objects_match_paths(media):
    path = media["talk.mp4"]
    data = path.read_bytes()
    ref = list(iter_frames(path))
    with open(path, "rb") as f:
        f.seek(0)
        from_file = list(iter_frames(f))
        assert f.tell() == 0  # put back where it was: the next call reads it again
        audio_file = load_audio(f)
    for other in (list(iter_frames(data)), from_file):
        assert [x.time for x in other] == [x.time for x in ref]
        assert all(np.array_equal(x.image, y.image) for x, y in zip(other, ref, strict=True))
    assert probe(data) == probe(path) == probe(io.BytesIO(data))
    assert np.array_equal(load_audio(data), load_audio(path))
    assert np.array_equal(audio_file, load_audio(path))


def test_corrupt_packets_in_the_middle_are_skipped(media):
    data = bytearray(media["talk.mp4"].read_bytes())
    rng = np.random.default_rng(0)
    for offset in range(int(len(data) * 0.4), int(len(data) * 0.6), 997):
        data[offset : offset + 50] = rng.integers(0, 256, 50, np.uint8).tobytes()
    report = DecodeReport()
    frames = list(iter_frames(bytes(data), report=report))
    assert len(frames) >= 0.8 * len(list(iter_frames(media["talk.mp4"])))
    assert np.all(np.diff([f.time for f in frames]) > 0)
    audio_report = DecodeReport()
    audio = load_audio(bytes(data), report=audio_report)
    assert report.corrupt_packets + audio_report.corrupt_packets > 0
    assert len(audio) > 0.5 * len(media["ref16"])


# -- audio ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,gain",
    [("talk.mp4", 1.0), ("talk.webm", 0.75), ("talk.mkv", 1.0), ("speech.wav", 1.0),
     ("speech.m4a", 0.75)],
)  # fmt: skip
def test_audio_is_16k_mono_with_the_same_content(media, name, gain):
    ref = media["ref16"]
    audio = load_audio(media[name])
    assert audio.dtype == np.float32 and audio.ndim == 1
    duration = probe(media[name]).duration
    assert len(audio) == pytest.approx(duration * 16000, rel=0.01)
    assert len(audio) == pytest.approx(len(ref), rel=0.01)
    assert _corr(audio, ref) > 0.98  # 8 kHz FLAC keeps the band below 4 kHz only
    assert _best_lag(audio, ref) == 0  # no shift: audio starts at the media origin
    assert np.std(audio) / np.std(ref) == pytest.approx(gain, rel=0.05)  # channel mean


def test_iter_audio_chunks_concatenate_to_load_audio(media):
    whole = load_audio(media["talk.webm"])
    chunks = list(iter_audio(media["talk.webm"], chunk_seconds=1.0))
    assert all(len(c) == 16000 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 16000
    assert np.array_equal(np.concatenate(chunks), whole)
    at_8k = load_audio(media["talk.webm"], sample_rate=8000)
    assert len(at_8k) == pytest.approx(len(whole) / 2, abs=2)


@pytest.mark.parametrize("ext,vcodec,acodec", [
    ("mp4", "libx264", "aac"), ("webm", "libvpx-vp9", "libopus"), ("mkv", "libx264", "flac"),
])  # fmt: skip
def test_audio_and_video_share_one_clock(media, ext, vcodec, acodec):
    """A click in the audio and a white frame at the same instant (1.0 s) are found at the
    same time in the decoded audio and video."""
    rate = 48000
    audio = np.zeros((3 * rate, 2), np.float32)
    audio[rate : rate + rate // 100] = 0.8

    def frame(i, t):
        return np.full((48, 64, 3), 255 if abs(t - 1.0) < 1e-6 else 0, np.uint8)

    path = make_clip(
        media["d"] / f"sync.{ext}", frame, audio, rate, video_codec=vcodec, audio_codec=acodec
    )
    decoded = load_audio(path)
    onset = np.argmax(np.abs(decoded) > 0.2) / 16000
    white = [f.time for f in iter_frames(path, fps=None) if f.image.mean() > 128]
    assert white == [pytest.approx(1.0, abs=1e-3)]
    assert onset == pytest.approx(1.0, abs=0.002)


def test_late_audio_stream_is_padded_to_the_video_clock(media):
    """Audio whose stream starts 0.5 s after the video gets 0.5 s of leading silence, so
    audio time t is video time t."""
    path = media["d"] / "late.mkv"
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("flac", rate=rate, layout="mono")
        for i in range(20):
            vf = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            vf.pts = i
            for packet in video.encode(vf):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        pcm = (tone * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            chunk = np.ascontiguousarray(pcm[start : start + 1024].reshape(1, -1))
            af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            af.sample_rate = rate
            af.time_base = Fraction(1, rate)
            af.pts = start + rate // 2  # starts at 0.5 s
            for packet in sound.encode(af):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    decoded = load_audio(path)
    onset = np.argmax(np.abs(decoded) > 0.1) / 16000
    assert onset == pytest.approx(0.5, abs=0.003)
    assert len(decoded) / 16000 == pytest.approx(1.5, abs=0.01)
    assert next(iter_frames(path)).time == 0.0


# -- bad input --------------------------------------------------------------------------------


def _run_bounded(fn, *args, timeout: float = 60.0):
    """Run ``fn(*args)`` in a thread, failing the test if it does not finish in time."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result(timeout=timeout)


def _every_call(source):
    """Call each public function on ``source``; return the messages of the errors raised."""
    errors = []
    for fn in (probe, lambda s: list(iter_frames(s)), load_audio):
        try:
            fn(source)
        except MediaError as exc:
            errors.append(str(exc))
    return errors


def test_empty_input(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for source in (b"", empty, io.BytesIO()):
        assert _every_call(source) == ["empty input"] * 3


def test_random_bytes_and_text_are_not_media(tmp_path):
    text = tmp_path / "notes.txt"  # FFmpeg would read this as an ANSI-art "video"
    text.write_text("I am not a video.\n" * 200)
    for source in (os.urandom(200_000), text, text.read_bytes()):
        errors = _run_bounded(_every_call, source)
        assert len(errors) == 3
        assert all(e.startswith("not a media file") for e in errors), errors


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_still_images_are_refused_with_what_to_send_instead(tmp_path, fmt):
    from PIL import Image

    path = tmp_path / f"photo.{fmt.lower()}"
    Image.fromarray(portrait()).save(path, fmt)
    data = path.read_bytes()
    for source in (path, data, io.BytesIO(data)):
        errors = _every_call(source)
        assert len(errors) == 3
        for error in errors:
            assert error.startswith("still images are not supported"), error
            assert "send a video or audio clip" in error


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_truncated_mp4_raises_clearly_without_hanging(media):
    data = media["talk.mp4"].read_bytes()
    cut = data[: int(len(data) * 0.4)]  # the index ('moov') is written at the end
    errors = _run_bounded(_every_call, cut)
    assert len(errors) == 3
    assert all("truncated" in e for e in errors), errors


def test_truncated_webm_gives_a_partial_result_or_a_clear_error(media):
    data = media["talk.webm"].read_bytes()
    cut = data[: int(len(data) * 0.6)]

    def frames_and_audio():
        report = DecodeReport()
        try:
            frames = list(iter_frames(cut, report=report))
        except MediaError as exc:
            return str(exc), None
        return frames, report

    frames, report = _run_bounded(frames_and_audio)
    if isinstance(frames, str):
        assert "truncated" in frames or "no decodable" in frames
    else:
        assert 0 < len(frames) < len(list(iter_frames(media["talk.webm"])))
        assert report.truncated


def test_missing_streams(media):
    with pytest.raises(MediaError, match="^no audio track$"):
        load_audio(media["silent.mp4"])
    with pytest.raises(MediaError, match="^no audio track$"):
        list(iter_audio(media["silent.mp4"]))
    # without video, iter_frames raises (on the first next()); the pipeline masks video
    with pytest.raises(MediaError, match="^no video stream$"):
        next(iter_frames(media["speech.wav"]))
    with pytest.raises(MediaError, match="^no video stream$"):
        next(iter_frames(media["speech.m4a"]))


def test_bad_arguments(media):
    with pytest.raises(MediaError, match="fps"):
        next(iter_frames(media["silent.mp4"], fps=0))
    with pytest.raises(MediaError, match="sample_rate"):
        load_audio(media["speech.wav"], sample_rate=0)
    with pytest.raises(MediaError, match="unsupported source"):
        probe(12345)  # type: ignore[arg-type]


def test_paths_as_strings_and_pathlike(media):
    path: Path = media["silent.mp4"]
    assert probe(str(path)) == probe(path)


def test_duration_from_packets_when_the_container_has_none():
    """Matroska written to a pipe (not seekable) carries no duration: probe reads the
    packets' timestamps instead."""

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += bytes(b)
            return len(b)

    pipe = Pipe()
    with av.open(pipe, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(23):
            vf = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytes(pipe.data)
    with av.open(io.BytesIO(data)) as container:
        assert container.duration is None  # the case under test
    assert probe(data).duration == pytest.approx(2.3, abs=1e-6)
    assert len(list(iter_frames(data, fps=None))) == 23
