"""Opening media safely, and what every decoder shares: the errors, the decode report, the
choice of streams, the time origin, packet demuxing and the check of where a stream ended.

Only a fixed list of ordinary audio/video demuxers is allowed (``_FORMATS``); paths are opened
with the ``file`` protocol only; still images are recognised by their first bytes and refused
(see :mod:`.media` for the whole policy). Split out of :mod:`.media`, which re-exports the
public names.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import av

from .errors import InvalidInput
from .truncation import truncation_warning

__all__ = [
    "DecodeReport",
    "MediaError",
    "MediaSource",
    "TruncatedMedia",
    "audio_stream",
    "check_end",
    "demux_packets",
    "media_origin",
    "open_media",
    "seekable",
    "start_seconds",
    "video_stream",
]

# one logger for all of media decoding, named after the public module (logging settings name it)
log = logging.getLogger("ahmer.preprocessing.media")

MediaSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Demuxers FFmpeg may pick (matched against each alias of the demuxer's name).
_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,wav,w64,mp3,ogg,flac,aac,mpegts,mpeg,flv,"
    "asf,amr,caf,aiff,ivf"
)
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


class MediaError(InvalidInput):
    """The input cannot be decoded as media (empty, not a container, truncated, missing the
    stream that was asked for, ...). The message says which, in plain words."""

    what = "media"


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


# -- opening --------------------------------------------------------------------------------


@contextmanager
def open_media(source: MediaSource) -> Iterator[av.container.InputContainer]:
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
        if seekable(file_obj):
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


def seekable(f) -> bool:
    """Whether file object ``f`` can tell and seek (its position is put back after a peek)."""
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def video_stream(container) -> av.video.stream.VideoStream | None:
    """The main video stream, ignoring cover art (attached pictures) and streams FFmpeg has
    no decoder for (an unknown codec, or a header damaged into one)."""
    streams = [s for s in container.streams.video if not _is_attached_pic(s) and _decodable(s)]
    return _main(container, "video", streams)


def audio_stream(container) -> av.audio.stream.AudioStream | None:
    """The main audio stream, ignoring streams FFmpeg has no decoder for."""
    return _main(container, "audio", [s for s in container.streams.audio if _decodable(s)])


def _main(container, kind: str, streams: list):
    """FFmpeg's best stream of ``kind`` when it is one of ``streams``, else the first of them
    (None when there is none)."""
    if not streams:
        return None
    try:
        best = container.streams.best(kind)
        if best in streams:
            return best
    except Exception:  # noqa: BLE001 - best() is advisory only
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


def start_seconds(stream) -> float | None:
    """``stream``'s start on the container clock in seconds, or None when undeclared."""
    if stream is None or stream.start_time is None or stream.time_base is None:
        return None
    return float(stream.start_time * stream.time_base)


def media_origin(container, video, audio) -> float:
    """The media time origin (seconds on the container clock): see the module docstring."""
    for stream in (video, audio):
        start = start_seconds(stream)
        if start is not None:
            return start
    if container.start_time is not None:
        return container.start_time / av.time_base
    return 0.0


def check_end(
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


def _declared_end(container, stream, origin: float) -> float | None:
    """Where ``stream`` should end, in seconds from the origin: its own declared duration
    from its start (MP4, WAV, MP3 with a Xing header), else the container's (Matroska),
    else None."""
    if stream.duration and stream.duration > 0 and stream.time_base is not None:
        start = start_seconds(stream)
        offset = 0.0 if start is None else start - origin
        return offset + float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        start = container.start_time / av.time_base if container.start_time is not None else 0.0
        return start - origin + container.duration / av.time_base
    return None


def demux_packets(container, stream, report: DecodeReport):
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
