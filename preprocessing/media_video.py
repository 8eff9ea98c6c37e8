"""Video decoding: stream the frames of a container at the analysis rate (real timestamps,
variable frame rate safe), as upright RGB, downscaled as asked. Public through
:mod:`.media`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from .media_container import (
    DecodeReport,
    MediaError,
    MediaSource,
    audio_stream,
    check_end,
    demux_packets,
    log,
    media_origin,
    open_media,
    video_stream,
)
from .media_probe import clockwise, rotation_tag
from .options import DEFAULT_FPS

__all__ = ["VideoFrame", "iter_frames"]


@dataclass(frozen=True)
class VideoFrame:
    """One analysis frame: ``index`` counts the frames yielded (0, 1, ...), ``time`` is the
    frame's real presentation time in seconds from the media origin, ``image`` is RGB uint8
    ``(H, W, 3)``, rotated upright and downscaled as asked."""

    index: int
    time: float
    image: np.ndarray


def iter_frames(
    source: MediaSource,
    fps: float | None = DEFAULT_FPS,
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
    with open_media(source) as container:
        video = video_stream(container)
        if video is None:
            raise MediaError("no video stream")
        audio = audio_stream(container)
        origin = media_origin(container, video, audio)
        video.thread_type = "AUTO"
        nominal = video.average_rate or video.guessed_rate or video.base_rate
        every = fps is None or (nominal is not None and fps >= float(nominal) - 1e-6)
        tag = rotation_tag(video)

        def convert(frame, t: float, index: int) -> VideoFrame:
            return VideoFrame(index, t, _to_rgb(frame, max_side, clockwise(frame, tag)))

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
        check_end(container, video, origin, end, "video", report, rate)
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

    packets = demux_packets(container, video, report)
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
