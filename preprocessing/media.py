"""Media decoding with PyAV: probe a container, stream video frames at the analysis rate,
decode the audio track to mono float32 at 16 kHz.

Sources (:data:`MediaSource`) are a path, the whole file as bytes, or a binary file object;
they all behave the same. Every function opens and closes its own container, and a file
object is put back at the position it had when the call started.

Time origin. All times are seconds from one origin shared by video and audio: the start time
of the video stream when there is one (so the first video frame is at ``t = 0``), else of the
audio stream. Audio is trimmed or zero-padded so that sample ``i`` is at ``i / sample_rate``
on that same clock: audio time ``t`` and video time ``t`` are the same instant.

Safety. Only a fixed list of ordinary audio/video demuxers is allowed (``_FORMATS``): text
files (FFmpeg's ``tty`` demuxer), playlists (``hls``, ``concat``) and image sequences are
refused, so a file can never make FFmpeg open other files or URLs. Paths are opened with
the ``file`` protocol only. Still images (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIF/AVIF) are
recognised by their first bytes and refused with a message that says to send a video or
audio clip instead: the analysis needs speech and movement over time. Corrupt packets are
skipped and counted; a broken container raises :class:`MediaError`; nothing hangs on
garbage (FFmpeg's probe is bounded and every loop consumes the input).
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import av
import numpy as np

from .timeline import SAMPLE_RATE, MediaInfo
from .truncation import truncation_warning

__all__ = [
    "MediaSource",
    "MediaError",
    "TruncatedMedia",
    "DecodeReport",
    "VideoFrame",
    "probe",
    "iter_frames",
    "iter_audio",
    "load_audio",
]

log = logging.getLogger(__name__)

MediaSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Demuxers FFmpeg may pick (matched against each alias of the demuxer's name).
_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,wav,w64,mp3,ogg,flac,aac,mpegts,mpeg,flv,"
    "asf,amr,caf,aiff,ivf"
)
# Packets read at most while looking for the first frame (probe) or for a duration.
_PROBE_PACKETS = 500
# ISO-BMFF brands (bytes 8-12 of an 'ftyp' box) of still images: HEIF/HEIC and AVIF
_IMAGE_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"heif": "HEIF",
    b"mif1": "HEIF",
    b"avif": "AVIF",
}
_STILL_IMAGE = (
    "still images are not supported (this is a {} image): send a video or audio clip of "
    "the answer instead, e.g. MP4, MOV, WebM, WAV or MP3"
)


class MediaError(Exception):
    """The input cannot be decoded as media (empty, not a container, truncated, missing the
    stream that was asked for, ...). The message says which, in plain words."""


class TruncatedMedia(MediaError):
    """Strict analysis only: a stream decoded to less than its declared duration (see
    :mod:`.truncation`); without strictness that is a warning in the result instead."""


@dataclass
class DecodeReport:
    """Counters filled while decoding (pass one in to read them afterwards).

    ``corrupt_packets``: packets the decoder rejected and that were skipped.
    ``dropped_frames``: decoded frames dropped because their timestamp was missing or not
    after the previous frame's (out-of-order or duplicate pts from the demuxer).
    ``truncated``: the stream ended early: a read error, or it stopped short of the
    duration the container declares by more than :func:`.truncation.tolerance` (the output
    stops there).
    ``declared``, ``decoded``: seconds from the media origin where the stream should end (its
    own declared duration, else the container's; None when neither is declared) and where its
    last decoded frame or sample ends (set once the stream is read to its end);
    ``frame_rate``: the video's nominal rate (None for audio).
    ``messages``: the first few reasons, for logs (no media content).
    """

    corrupt_packets: int = 0
    dropped_frames: int = 0
    truncated: bool = False
    declared: float | None = None
    decoded: float | None = None
    frame_rate: float | None = None
    messages: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if len(self.messages) < 20:
            self.messages.append(message)

    def shortfall(self, stream: str) -> str | None:
        """The truncation warning of this stream ("video" or "audio"), or None when it
        decoded to its declared duration (within the tolerance) or was not read to the end."""
        return truncation_warning(stream, self.decoded, self.declared, self.frame_rate)


@dataclass(frozen=True)
class VideoFrame:
    """One analysis frame: ``index`` counts the frames yielded (0, 1, ...), ``time`` is the
    frame's real presentation time in seconds from the media origin, ``image`` is RGB uint8
    ``(H, W, 3)``, rotated upright and downscaled as asked."""

    index: int
    time: float
    image: np.ndarray


# -- opening --------------------------------------------------------------------------------


@contextmanager
def _open(source: MediaSource) -> Iterator[av.container.InputContainer]:
    """Open ``source`` read-only with the safety options; map every failure to MediaError."""
    options = {"format_whitelist": _FORMATS}
    file_obj = None
    rewind: int | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise MediaError("empty input")
        target = io.BytesIO(bytes(source))
        head = bytes(source[:16])
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):  # a FIFO or a device would block or never end
            why = "not a regular file" if os.path.exists(path) else "no such file"
            raise MediaError(f"{why}: {os.path.basename(path)!r}")
        if os.path.getsize(path) == 0:
            raise MediaError("empty input")
        # "file:" + absolute path: a name like "concat:a|b" or "http:..." stays a file name
        target = "file:" + os.path.abspath(path)
        options["protocol_whitelist"] = "file"
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise MediaError(f"cannot read file: {exc.strerror or exc}") from exc
    elif hasattr(source, "read"):
        file_obj = source
        head = b""
        if _seekable(file_obj):
            rewind = file_obj.tell()
            head = file_obj.read(16)
            file_obj.seek(rewind)
            if not head:
                raise MediaError("empty input")
        target = file_obj
    else:
        raise MediaError(f"unsupported source type {type(source).__name__}")
    image = _image_kind(head)
    if image is not None:
        raise MediaError(_STILL_IMAGE.format(image))
    try:
        try:
            container = av.open(target, "r", container_options=options)
        except av.error.FileNotFoundError as exc:
            raise MediaError("no such file") from exc
        except av.error.ArgumentError as exc:  # demuxer not on the whitelist
            raise MediaError(
                "not a media file (FFmpeg could not read a container of a supported format)"
            ) from exc
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            raise MediaError(_unreadable(head)) from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise MediaError(f"could not open media: {exc}") from exc
        with container:
            yield container
    finally:
        if file_obj is not None and rewind is not None:
            try:
                file_obj.seek(rewind)
            except (OSError, ValueError):
                pass


def _image_kind(head: bytes) -> str | None:
    """The kind of still image a file starting with ``head`` (16 bytes) is, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM" and head[6:10] == b"\0\0\0\0" and len(head) >= 14:
        return "BMP"  # 'BM', file size, 4 reserved zero bytes, pixel offset
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        return _IMAGE_BRANDS.get(head[8:12])
    return None


def _unreadable(head: bytes) -> str:
    """Why FFmpeg could not open a file starting with ``head``, in plain words."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "truncated or damaged MP4/MOV file (its index, the 'moov' box, is missing)"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "truncated or damaged Matroska/WebM file (unreadable header)"
    if head[:4] == b"RIFF":
        return "truncated or damaged RIFF (WAV/AVI) file (unreadable header)"
    return "not a media file (FFmpeg could not read a container)"


def _seekable(f) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _video_stream(container) -> av.video.stream.VideoStream | None:
    """The main video stream, ignoring cover art (attached pictures) and streams FFmpeg has
    no decoder for (an unknown codec, or a header damaged into one)."""
    streams = [s for s in container.streams.video if not _is_attached_pic(s) and _decodable(s)]
    if not streams:
        return None
    try:
        best = container.streams.best("video")
        if best in streams:
            return best
    except Exception:  # noqa: BLE001 - best() is advisory only
        pass
    return streams[0]


def _audio_stream(container) -> av.audio.stream.AudioStream | None:
    streams = [s for s in container.streams.audio if _decodable(s)]
    if not streams:
        return None
    try:
        best = container.streams.best("audio")
        if best in streams:
            return best
    except Exception:  # noqa: BLE001
        pass
    return streams[0]


def _decodable(stream) -> bool:
    """PyAV gives a stream no codec context when FFmpeg has no decoder for its codec."""
    return stream.codec_context is not None


def _is_attached_pic(stream) -> bool:
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def _start_seconds(stream) -> float | None:
    if stream is None or stream.start_time is None or stream.time_base is None:
        return None
    return float(stream.start_time * stream.time_base)


def _origin(container, video, audio) -> float:
    """The media time origin (seconds on the container clock): see the module docstring."""
    for stream in (video, audio):
        start = _start_seconds(stream)
        if start is not None:
            return start
    if container.start_time is not None:
        return container.start_time / av.time_base
    return 0.0


def _rotation_tag(stream) -> int:
    """Clockwise degrees from a legacy ``rotate`` metadata tag (0 when absent)."""
    try:
        return int(round(float(stream.metadata.get("rotate", 0)))) % 360
    except (TypeError, ValueError):
        return 0


def _clockwise(frame, tag: int) -> int:
    """Clockwise display rotation of ``frame`` in {0, 90, 180, 270}: FFmpeg's display matrix
    gives a counter-clockwise angle, the legacy tag a clockwise one."""
    ccw = frame.rotation
    degrees = (-ccw) % 360 if ccw else tag
    return int(90 * round(degrees / 90)) % 360


# -- probe ----------------------------------------------------------------------------------


def probe(source: MediaSource) -> MediaInfo:
    """What the container holds. Decodes only the first video frame (for the rotation in its
    display-matrix side data); the duration comes from the container, else the streams, else
    from reading the packets' timestamps to the end."""
    with _open(source) as container:
        video = _video_stream(container)
        audio = _audio_stream(container)
        if video is None and audio is None:
            if container.streams.video or container.streams.audio:
                raise MediaError(
                    "no video or audio stream that can be decoded (an unsupported codec, or "
                    "a damaged header)"
                )
            raise MediaError("no video or audio stream")
        info: dict = {"container": container.format.name}
        if video is not None:
            vctx = video.codec_context
            rate = video.average_rate or video.guessed_rate or video.base_rate
            rotation = _first_frame_rotation(container, video)
            width, height = vctx.width, vctx.height
            if rotation in (90, 270):
                width, height = height, width
            info.update(
                has_video=True,
                width=int(width),
                height=int(height),
                rotation=rotation,
                video_codec=vctx.name,
                video_fps=float(rate) if rate else 0.0,
            )
        if audio is not None:
            actx = audio.codec_context
            info.update(
                has_audio=True,
                audio_codec=actx.name,
                sample_rate=int(actx.sample_rate or 0),
                channels=int(actx.channels or 0),
            )
        duration = _duration(container, video, audio)
    return MediaInfo(
        duration=duration,
        has_video=info.pop("has_video", False),
        has_audio=info.pop("has_audio", False),
        **info,
    )


def _first_frame_rotation(container, video) -> int:
    tag = _rotation_tag(video)
    try:
        for n, packet in enumerate(container.demux(video)):
            if n >= _PROBE_PACKETS:
                break
            try:
                frames = video.decode(packet)
            except av.error.FFmpegError:
                continue
            if frames:
                return _clockwise(frames[0], tag)
    except av.error.FFmpegError:
        pass
    return tag


def _duration(container, video, audio) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    spans = [
        float(s.duration * s.time_base)
        for s in (video, audio)
        if s is not None and s.duration and s.time_base is not None
    ]
    if spans:
        return max(spans)
    # Read every packet's timestamps (no decoding) from the start.
    origin = _origin(container, video, audio)
    end = 0.0
    streams = [s for s in (video, audio) if s is not None]
    try:
        container.seek(0)
    except (av.error.FFmpegError, OSError, ValueError):
        pass
    try:
        for packet in container.demux(streams):
            if packet.pts is None or packet.time_base is None:
                continue
            stop = (packet.pts + (packet.duration or 0)) * packet.time_base
            end = max(end, float(stop) - origin)
    except av.error.FFmpegError:
        pass
    return end


# -- video ----------------------------------------------------------------------------------


def iter_frames(
    source: MediaSource,
    fps: float | None = 5.0,
    max_side: int | None = 1280,
    report: DecodeReport | None = None,
) -> Iterator[VideoFrame]:
    """Yield video frames at about ``fps`` frames per second, lazily (streamed: at most the
    current decoded frame and one candidate are held).

    Selection rule (real timestamps, variable frame rate safe). Decoded frames get their
    presentation time ``t`` = pts x time_base minus the origin; a frame whose ``t`` is missing
    or not after the previous kept frame's (out-of-order or duplicate pts) is dropped, so
    times strictly increase. The time axis is cut into cells of one grid step centred on the
    grid times ``g_k = k / fps``: ``[g_k - 1/(2 fps), g_k + 1/(2 fps))``. From each cell the
    frame nearest to ``g_k`` is yielded (the earlier one on a tie); an empty cell yields
    nothing. So each yielded time is a real pts (never invented, never repeated), at most
    one frame comes per grid step, a constant-rate source gives the frame at or nearest each
    grid time, and a gap in a variable-rate stream gives no frames. A last cell whose grid
    time is at or after the end of the video (last pts plus that frame's duration) is not
    sampled, so a 2.0 s clip gives frames at 0.0 ... 1.8 s at 5 fps. ``fps=None``, or
    ``fps`` at or above the stream's nominal rate, yields every frame.

    Frames whose longer side exceeds ``max_side`` are scaled down (aspect kept) by FFmpeg in
    the same pass that converts them to RGB; only the selected frames are converted. The
    image is then rotated upright per the display matrix (or a legacy ``rotate`` tag).

    Raises :class:`MediaError` (on the first ``next``) for unreadable input, for a source
    without a video stream ("no video stream") and for a video stream that yields no frame.
    Corrupt packets are skipped and counted in ``report``; a read error in the middle ends
    the stream early (``report.truncated``).
    """
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise MediaError(f"analysis fps must be positive, got {fps!r}")
    if max_side is not None and max_side < 16:
        raise MediaError(f"max_side must be at least 16, got {max_side!r}")
    report = report if report is not None else DecodeReport()
    with _open(source) as container:
        video = _video_stream(container)
        if video is None:
            raise MediaError("no video stream")
        audio = _audio_stream(container)
        origin = _origin(container, video, audio)
        video.thread_type = "AUTO"
        nominal = video.average_rate or video.guessed_rate or video.base_rate
        every = fps is None or (nominal is not None and fps >= float(nominal) - 1e-6)
        tag = _rotation_tag(video)

        def convert(frame, t: float, index: int) -> VideoFrame:
            return VideoFrame(index, t, _to_rgb(frame, max_side, _clockwise(frame, tag)))

        decoded = 0
        index = 0
        cell = None  # grid index of the cell being filled
        best = None  # (distance to its grid time, time, frame) nearest frame in that cell
        last_t, last_span = -math.inf, 0.0
        for frame, t in _decoded(container, video, origin, report):
            decoded += 1
            last_t, last_span = t, _span(frame, nominal)
            if every:
                yield convert(frame, t, index)
                index += 1
                continue
            k = math.floor(t * fps + 0.5)
            distance = abs(t - k / fps)
            if k != cell:
                if best is not None:
                    yield convert(best[2], best[1], index)
                    index += 1
                cell, best = k, (distance, t, frame)
            elif distance < best[0]:
                best = (distance, t, frame)
        # The last cell counts only if its grid time is inside the video (before the last
        # frame's end): a grid time past the end is not an analysis time.
        if best is not None and (index == 0 or cell / fps < last_t + last_span - 1e-6):
            yield convert(best[2], best[1], index)
            index += 1
        rate = float(nominal) if nominal else None
        end = last_t + last_span if decoded else 0.0
        _check_end(container, video, origin, end, "video", report, rate)
        if decoded == 0:
            raise MediaError(
                "the video stream yielded no decodable frames (corrupt or truncated video)"
            )
        if report.corrupt_packets or report.dropped_frames or report.truncated:
            log.log(
                # truncation alone reaches the user as the result's warning (pipeline.py)
                logging.WARNING
                if report.corrupt_packets or report.dropped_frames
                else logging.INFO,
                "video decode: %d corrupt packets skipped, %d frames dropped, truncated=%s",
                report.corrupt_packets,
                report.dropped_frames,
                report.truncated,
            )


def _span(frame, nominal) -> float:
    """How long ``frame`` is shown (its duration, else one nominal frame interval)."""
    if frame.duration and frame.time_base is not None:
        return float(frame.duration * frame.time_base)
    return 1.0 / float(nominal) if nominal else 0.0


def _check_end(
    container,
    stream,
    origin: float,
    end: float,
    what: str,
    report: DecodeReport,
    rate: float | None = None,
    declared: float | None = None,
) -> None:
    """Record where ``stream`` ended (``end``, seconds from the origin) against where it
    should (``declared`` when the caller read it from the file, else
    :func:`_declared_end`), and flag one that stopped short by more than the tolerance (a
    damaged or cut file whose demuxer ended quietly)."""
    if declared is None:
        declared = _declared_end(container, stream, origin)
    report.declared = declared
    report.decoded, report.frame_rate = end, rate
    if report.shortfall(what) is not None:
        report.truncated = True
        report.note(f"{what} ends at {end:.2f} s of a declared {report.declared:.2f} s")
        log.info("%s ends at %.2f s of a declared %.2f s", what, end, report.declared)


def _wav_declared(source: MediaSource) -> float | None:
    """Seconds of audio a WAV header declares (its ``data`` chunk size over the ``fmt``
    chunk's byte rate), or None. FFmpeg's demuxer ignores a ``data`` size larger than the
    file and estimates the duration from the file size instead, so a cut WAV would look
    whole: the header says what was recorded. Streaming writers' placeholder sizes (0 and
    0xFFFFFFFF) declare nothing."""
    head = _read_head(source, 1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        kind, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if kind == b"fmt " and pos + 20 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        elif kind == b"data":
            if byte_rate <= 0 or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        pos += 8 + size + (size & 1)
    return None


def _read_head(source: MediaSource, size: int) -> bytes:
    """The first ``size`` bytes of ``source`` (a file object: from where it is now, and put
    back there; b"" when they cannot be read)."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source[:size])
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(size)
        if _seekable(source):
            at = source.tell()
            try:
                return source.read(size)
            finally:
                source.seek(at)
    except (OSError, ValueError):
        pass
    return b""


def _declared_end(container, stream, origin: float) -> float | None:
    """Where ``stream`` should end, in seconds from the origin: its own declared duration
    from its start (MP4, WAV, MP3 with a Xing header), else the container's (Matroska),
    else None."""
    if stream.duration and stream.duration > 0 and stream.time_base is not None:
        start = _start_seconds(stream)
        offset = 0.0 if start is None else start - origin
        return offset + float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        start = container.start_time / av.time_base if container.start_time is not None else 0.0
        return start - origin + container.duration / av.time_base
    return None


def _decoded(container, video, origin: float, report: DecodeReport):
    """Decoded frames of ``video`` with strictly increasing times (seconds from origin)."""
    last = -math.inf
    tb = video.time_base

    def accept(frames):
        nonlocal last
        for frame in frames:
            pts = frame.pts
            ftb = frame.time_base or tb
            if pts is None or ftb is None:
                report.dropped_frames += 1
                continue
            t = float(pts * ftb) - origin
            if t <= last + 1e-7:
                report.dropped_frames += 1
                continue
            last = t
            yield frame, t

    packets = _packets(container, video, report)
    for packet in packets:
        try:
            frames = video.decode(packet)
        except av.error.FFmpegError as exc:
            report.corrupt_packets += 1
            report.note(f"video packet skipped: {exc}")
            continue
        yield from accept(frames)
    try:
        frames = video.decode(None)
    except av.error.FFmpegError as exc:
        report.corrupt_packets += 1
        report.note(f"video flush failed: {exc}")
        frames = []
    yield from accept(frames)


def _packets(container, stream, report: DecodeReport):
    """Demux ``stream``'s packets, stopping (and flagging truncation) on a read error."""
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except av.error.EOFError:
            return
        except av.error.FFmpegError as exc:
            report.truncated = True
            report.note(f"read error, stream ends here: {exc}")
            return
        if packet.size == 0 and packet.pts is None and packet.dts is None:
            continue  # PyAV's end-of-stream marker; decode(None) flushes instead
        yield packet


def _target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def _to_rgb(frame, max_side: int | None, rotation: int) -> np.ndarray:
    width, height = _target_size(frame.width, frame.height, max_side)
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    if rotation:
        # Display rotation is clockwise; np.rot90 turns counter-clockwise for positive k.
        rgb = np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))
    return rgb


# -- audio ----------------------------------------------------------------------------------


def iter_audio(
    source: MediaSource,
    sample_rate: int = SAMPLE_RATE,
    chunk_seconds: float = 5.0,
    report: DecodeReport | None = None,
) -> Iterator[np.ndarray]:
    """Yield the audio track as mono float32 chunks of ``chunk_seconds`` at ``sample_rate``
    (the last one shorter), aligned to the media origin (leading silence added, or samples
    before the origin dropped). Any codec, rate and channel layout; FFmpeg's resampler
    downmixes and resamples. Raises :class:`MediaError` ("no audio track") without audio."""
    if sample_rate < 1000 or sample_rate > 384000:
        raise MediaError(f"sample_rate out of range: {sample_rate!r}")
    if not chunk_seconds > 0:
        raise MediaError(f"chunk_seconds must be positive, got {chunk_seconds!r}")
    report = report if report is not None else DecodeReport()
    chunk = max(1, int(round(chunk_seconds * sample_rate)))
    wav_declared = _wav_declared(source)  # before FFmpeg moves a file object on
    with _open(source) as container:
        audio = _audio_stream(container)
        if audio is None:
            raise MediaError("no audio track")
        origin = _origin(container, _video_stream(container), audio)
        audio.thread_type = "AUTO"
        # Keep the channels through the resampler and average them here: FFmpeg's own
        # stereo->mono downmix adds the channels at -3 dB each, which makes a stereo file
        # 3 dB louder than the same sound in mono.
        resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
        # Encoders pad the last frame (AAC to 1024 samples): stop at the stream's declared
        # end when the container states one.
        limit = _audio_end(audio, origin, sample_rate)
        pending: list[np.ndarray] = []
        held = 0  # samples in pending
        emitted = 0  # samples yielded or pending
        skip = 0  # samples still to drop before the origin
        started = False
        for samples, first_time in _resampled(container, audio, resampler, report):
            if not started:
                started = True
                start = first_time if first_time is not None else origin
                offset = int(round((start - origin) * sample_rate))
                if offset > 0:
                    pending.append(np.zeros(offset, np.float32))
                    held += offset
                    emitted += offset
                else:
                    skip = -offset
            if skip:
                cut = min(skip, len(samples))
                samples = samples[cut:]
                skip -= cut
            if limit is not None:
                samples = samples[: max(0, limit - emitted)]
            if len(samples) == 0:
                continue
            pending.append(samples)
            held += len(samples)
            emitted += len(samples)
            while held >= chunk:
                joined = np.concatenate(pending)
                yield joined[:chunk]
                rest = joined[chunk:]
                pending, held = ([rest] if len(rest) else []), len(rest)
        declared = wav_declared if container.format.name == "wav" else None
        _check_end(container, audio, origin, emitted / sample_rate, "audio", report, None, declared)
        if not started:
            raise MediaError("the audio track yielded no decodable samples")
        if held:
            yield np.concatenate(pending)


def _audio_end(audio, origin: float, sample_rate: int) -> int | None:
    """Sample index (at ``sample_rate``, from the origin) where the audio stream's declared
    duration ends, or None when the container does not declare one."""
    start = _start_seconds(audio)
    if not audio.duration or audio.time_base is None:
        return None
    end = (start if start is not None else origin) + float(audio.duration * audio.time_base)
    return max(0, int(round((end - origin) * sample_rate)))


def load_audio(
    source: MediaSource,
    sample_rate: int = SAMPLE_RATE,
    report: DecodeReport | None = None,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """The whole audio track as mono float32 ``(samples,)`` at ``sample_rate``, aligned to
    the media origin (see :func:`iter_audio`). ``check()`` is called after each 10 s
    decoded; an exception it raises stops decoding and propagates (a caller's way to cancel
    the decoding of a long recording)."""
    chunks = []
    with closing(iter_audio(source, sample_rate, chunk_seconds=10.0, report=report)) as pieces:
        for chunk in pieces:
            chunks.append(chunk)
            if check is not None:
                check()
    if not chunks:
        return np.zeros(0, np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _resampled(container, audio, resampler, report: DecodeReport):
    """Resampled mono chunks ``(samples, time of the first input frame or None)``."""
    first_time: float | None = None
    seen_first = False

    def out(frames):
        for f in frames:
            data = f.to_ndarray()
            if data.ndim == 2:
                data = data.mean(axis=0) if data.shape[0] > 1 else data[0]
            if data.size:
                yield data.astype(np.float32, copy=False)

    for packet in _packets(container, audio, report):
        try:
            frames = audio.decode(packet)
        except av.error.FFmpegError as exc:
            report.corrupt_packets += 1
            report.note(f"audio packet skipped: {exc}")
            continue
        for frame in frames:
            if not seen_first:
                seen_first = True
                if frame.pts is not None and frame.time_base is not None:
                    first_time = float(frame.pts * frame.time_base)
            try:
                for data in out(resampler.resample(frame)):
                    yield data, first_time
            except (av.error.FFmpegError, ValueError) as exc:  # e.g. a layout change
                report.corrupt_packets += 1
                report.note(f"audio frame skipped: {exc}")
    try:
        tail = audio.decode(None)
    except av.error.FFmpegError:
        tail = []
    for frame in tail:
        if not seen_first:
            seen_first = True
            if frame.pts is not None and frame.time_base is not None:
                first_time = float(frame.pts * frame.time_base)
        for data in out(resampler.resample(frame)):
            yield data, first_time
    if seen_first:
        for data in out(resampler.resample(None)):
            yield data, first_time
