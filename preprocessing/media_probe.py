"""Probing a container: what it holds (streams, size, codecs, rates, rotation) and how long
it lasts, decoding at most the first video frame. The display rotation helpers are shared
with the video decoder (:mod:`.media_video`). Public through :mod:`.media`.
"""

from __future__ import annotations

import av

from .media_container import (
    MediaError,
    MediaSource,
    audio_stream,
    media_origin,
    open_media,
    video_stream,
)
from .timeline import MediaInfo

__all__ = ["clockwise", "probe", "rotation_tag"]

# Packets read at most while looking for the first frame (probe) or for a duration.
_PROBE_PACKETS = 500


def rotation_tag(stream) -> int:
    """Clockwise degrees from a legacy ``rotate`` metadata tag (0 when absent)."""
    try:
        return int(round(float(stream.metadata.get("rotate", 0)))) % 360
    except (TypeError, ValueError):
        return 0


def clockwise(frame, tag: int) -> int:
    """Clockwise display rotation of ``frame`` in {0, 90, 180, 270}: FFmpeg's display matrix
    gives a counter-clockwise angle, the legacy tag a clockwise one."""
    ccw = frame.rotation
    degrees = (-ccw) % 360 if ccw else tag
    return int(90 * round(degrees / 90)) % 360


def probe(source: MediaSource) -> MediaInfo:
    """What the container holds. Decodes only the first video frame (for the rotation in its
    display-matrix side data); the duration comes from the container, else the streams, else
    from reading the packets' timestamps to the end."""
    with open_media(source) as container:
        video = video_stream(container)
        audio = audio_stream(container)
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
    tag = rotation_tag(video)
    try:
        for n, packet in enumerate(container.demux(video)):
            if n >= _PROBE_PACKETS:
                break
            try:
                frames = video.decode(packet)
            except av.error.FFmpegError:
                continue
            if frames:
                return clockwise(frames[0], tag)
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
    origin = media_origin(container, video, audio)
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
