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

Layout. This module is the public face; the work is done in :mod:`.media_container`
(opening, the safety rules, errors, the decode report, streams, origin, packets),
:mod:`.media_probe` (what a container holds), :mod:`.media_video` (frames at the analysis
rate) and :mod:`.media_audio` (mono float32 audio, resampled and aligned to the origin).
"""

from __future__ import annotations

from .media_audio import iter_audio, load_audio
from .media_container import DecodeReport, MediaError, MediaSource, TruncatedMedia
from .media_probe import probe
from .media_video import VideoFrame, iter_frames

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
