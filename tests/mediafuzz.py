"""Seeded media and transcript fuzzing helpers: damaged containers, codecs, frames, PCM and
transcripts, built from real inputs made at test time.

Like :mod:`protofuzz`, everything draws from a ``random.Random`` the caller seeds, so a run is
repeatable and a failure names the seed and the input's index.
"""

from __future__ import annotations

import random
import struct

__all__ = [
    "MEDIA_MUTATIONS",
    "TRANSCRIPT_KINDS",
    "mutate_media",
    "mp4_boxes",
    "odd_transcript",
]

# -- media ---------------------------------------------------------------------------------

MEDIA_MUTATIONS = ("bit_flip", "truncate", "header", "splice")


def mp4_boxes(data: bytes) -> list[tuple[int, int, bytes]]:
    """The top-level ISO BMFF boxes of ``data``: ``(offset, size, type)`` (as far as they
    parse)."""
    boxes, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if size == 1 and i + 16 <= len(data):
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
        elif size == 0:
            size = len(data) - i
        if size < 8:
            break
        boxes.append((i, size, kind))
        i += size
    return boxes


def _mp4_header(rng: random.Random, out: bytearray) -> str:
    boxes = mp4_boxes(bytes(out))
    named = [b for b in boxes if b[2] in (b"ftyp", b"moov", b"mdat")] or boxes
    offset, size, kind = rng.choice(named)
    how = rng.choice(("size_zero", "size_huge", "size_small", "type", "inner_codec", "erase"))
    if how == "size_zero":
        out[offset : offset + 4] = b"\x00\x00\x00\x00"
    elif how == "size_huge":
        out[offset : offset + 4] = b"\xff\xff\xff\xf0"
    elif how == "size_small":
        out[offset : offset + 4] = struct.pack(">I", rng.choice((1, 7, 9, max(8, size // 2))))
    elif how == "type":
        out[offset + 4 : offset + 8] = rng.choice((b"free", b"\x00\x00\x00\x00", b"moov", b"zzzz"))
    elif how == "inner_codec":  # the sample description's codec fourcc swapped
        for old, new in ((b"avc1", b"hvc1"), (b"mp4a", b"ac-3"), (b"avcC", b"xxxx")):
            at = out.find(old)
            if at >= 0 and rng.random() < 0.7:
                out[at : at + 4] = new
    else:  # erase the box's content
        end = min(len(out), offset + size)
        out[offset + 8 : end] = bytes(end - offset - 8)
    return f"mp4 {kind.decode('latin-1')} {how}"


# WAVE format codes a header may claim: float, A-law, mu-law, ADPCM, MP3, extensible, junk
_WAV_FORMATS = (3, 6, 7, 2, 0x11, 0x55, 0xFFFE, 0, 0x1234)


def _wav_header(rng: random.Random, out: bytearray) -> str:
    fmt = out.find(b"fmt ")
    if fmt < 0:
        return "wav (no fmt)"
    body = fmt + 8  # format, channels, rate, byte rate, block align, bits
    how = rng.choice(("format", "channels", "rate", "bits", "data_size", "riff"))
    if how == "format":
        out[body : body + 2] = struct.pack("<H", rng.choice(_WAV_FORMATS))
    elif how == "channels":
        out[body + 2 : body + 4] = struct.pack("<H", rng.choice((0, 3, 64, 65535)))
    elif how == "rate":
        out[body + 4 : body + 8] = struct.pack("<I", rng.choice((0, 1, 7999, 2**31, 2**32 - 1)))
    elif how == "bits":
        out[body + 14 : body + 16] = struct.pack("<H", rng.choice((0, 1, 12, 64, 65535)))
    elif how == "data_size":
        data = out.find(b"data")
        if data >= 0:
            out[data + 4 : data + 8] = struct.pack("<I", rng.choice((0, 1, 2**32 - 1)))
    else:
        out[0:4] = rng.choice((b"RIFX", b"RF64", b"\x00\x00\x00\x00"))
    return f"wav {how}"


# Matroska codec ids swapped for others of the same length (the EBML sizes stay right)
_MKV_SWAPS = (
    (b"V_MPEG4/ISO/AVC", (b"V_MS/VFW/FOURCC", b"V_MPEGH/ISO/HEVC"[:15], b"V_UNCOMPRESSED\x00")),
    (b"A_AAC", (b"A_AC3", b"A_DTS", b"A_MP3", b"S_ASS")),
    (b"V_VP9", (b"V_VP8", b"V_AV1", b"A_AAC")),
    (b"A_OPUS", (b"A_FLAC", b"A_EAC3", b"V_VP90")),
)


def _mkv_header(rng: random.Random, out: bytearray) -> str:
    found = [(old, news) for old, news in _MKV_SWAPS if old in out]
    how = rng.choice(("codec_id", "ebml_magic", "doc_type")) if found else "ebml_magic"
    if how == "codec_id":
        old, news = rng.choice(found)
        new = rng.choice(news)
        at = out.find(old)
        out[at : at + len(old)] = new
        return f"mkv codec {old.decode()} -> {new.decode('latin-1')}"
    if how == "doc_type":
        for name, new in ((b"matroska", b"matrosko"), (b"webm", b"webn")):
            at = out.find(name)
            if at >= 0:
                out[at : at + len(name)] = new
        return "mkv doc_type"
    out[0:4] = rng.choice((b"\x1a\x45\xdf\xa4", b"\x1a\x45\xdf\xa3\xff", b"\x00\x00\x00\x00"))[:4]
    return "mkv ebml_magic"


def mutate_media(rng: random.Random, data: bytes, kind: str | None = None) -> tuple[str, bytes]:
    """``data`` (an MP4, WAV, MKV or WebM file) damaged one way: ``bit_flip`` (1-64 flipped
    bits anywhere), ``truncate`` (cut at a random point), ``header`` (a container or codec
    header changed: MP4 ``ftyp``/``moov``/``mdat`` box sizes, types or contents, the sample
    description's codec fourcc; a WAV header claiming another format, channel count, rate or
    size; a Matroska codec id swapped, its magic or doc type changed) or ``splice`` (a run
    of the file repeated or removed). Returns a description and the bytes."""
    kind = kind or rng.choice(MEDIA_MUTATIONS)
    out = bytearray(data)
    if kind == "bit_flip":
        count = rng.choice((1, 4, 64))
        for _ in range(count):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        return f"bit_flip x{count}", bytes(out)
    if kind == "truncate":
        cut = rng.randrange(len(out))
        return f"truncate at {cut}/{len(out)}", bytes(out[:cut])
    if kind == "splice":
        start = rng.randrange(len(out))
        size = rng.randint(1, max(1, len(out) // 8))
        if rng.random() < 0.5:
            out[start:start] = out[start : start + size]
            return f"splice repeat {size} at {start}", bytes(out)
        del out[start : start + size]
        return f"splice remove {size} at {start}", bytes(out)
    if out[:4] == b"RIFF":
        return _wav_header(rng, out), bytes(out)
    if out[:4] == b"\x1a\x45\xdf\xa3":
        return _mkv_header(rng, out), bytes(out)
    return _mp4_header(rng, out), bytes(out)


# -- transcripts ---------------------------------------------------------------------------

TRANSCRIPT_KINDS = (
    "deep_json",
    "deep_json_words",
    "long_number",
    "huge_cues",
    "huge_json",
    "over_limit",
    "bad_timing",
    "mutated",
    "binary",
    "odd_values",
)


def _cues(rng: random.Random, fmt: str, count: int) -> str:
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    sep = "." if fmt == "vtt" else ","
    for k in range(count):
        start, end = k * 0.05, k * 0.05 + 0.05
        stamp = [
            f"{int(t // 3600):02d}:{int(t // 60 % 60):02d}:{t % 60:06.3f}" for t in (start, end)
        ]
        if fmt == "srt":
            lines.append(str(k + 1))
        lines += [f"{stamp[0]} --> {stamp[1]}".replace(".", sep), f"word{k} <b>bold</b>", ""]
    return "\n".join(lines)


def odd_transcript(
    rng: random.Random, limit: int, kind: str | None = None
) -> tuple[str, str, bytes]:
    """A malformed, huge or deeply nested transcript: ``(description, format, bytes)``.
    ``limit`` is the server's transcript size limit; huge ones come near it, over_limit just
    past it. Formats are the names AnalyzeClip's Transcript.Format and ``--transcript`` use:
    ``vtt``, ``srt``, ``json``, ``text``."""
    kind = kind or rng.choice(TRANSCRIPT_KINDS)
    fmt = rng.choice(("vtt", "srt", "json"))
    if kind == "deep_json":
        depth = rng.choice((10_000, 100_000, 400_000))
        open_, close = rng.choice((("[", "]"), ('{"a":', "}")))
        text = open_ * depth + ("1" if open_ != "[" else "") + close * rng.choice((depth, 0))
        return f"deep_json {open_} x{depth}", "json", text.encode()
    if kind == "deep_json_words":
        depth = rng.choice((10_000, 200_000))
        text = '{"words": [{"word": "a", "start": 0, "end": 1, "x": ' + "[" * depth + "]" * depth
        return f"deep_json_words x{depth}", "json", (text + "}]}").encode()
    if kind == "long_number":
        digits = rng.choice((4_301, 20_000, 1_000_000))
        where = rng.choice(("json", "srt", "vtt"))
        if where == "json":
            text = '[{"word": "a", "start": ' + "9" * digits + ', "end": 1}]'
        elif where == "srt":
            text = f"1\n{'9' * digits}:00:00,000 --> {'9' * digits}:00:01,000\nword\n"
        else:
            text = f"WEBVTT\n\n{'9' * digits}:00:00.000 --> 00:00:01.000\nword\n"
        return f"long_number {where} {digits}", where, text.encode()[:limit]
    if kind == "huge_cues":
        count = rng.choice((1_000, 30_000))
        text = _cues(rng, fmt if fmt != "json" else "vtt", count)
        fmt = fmt if fmt != "json" else "vtt"
        return f"huge_cues {fmt} {count}", fmt, text.encode()[: limit - 1]
    if kind == "huge_json":
        item = '{"word": "w", "start": 0.5, "end": 0.6},'
        count = (limit - 20) // len(item)
        text = '{"words": [' + item * count
        return f"huge_json {count} words", "json", (text[:-1] + "]}").encode()
    if kind == "over_limit":
        return "over_limit", rng.choice(("vtt", "srt", "json", "text")), b"a " * (limit // 2 + 1)
    if kind == "bad_timing":
        stamps = rng.choice((
            "00:00:05,000 --> 00:00:01,000", "00:61:00,000 --> 00:62:00,000", "--> 00:00:01,000",
            "00:00:00,000 --> 00:00:00,000", "00:00:00,000 --> ", "1:2:3 --> 4:5:6",
            "00:00:00,000 --> 00:00:01,000 --> 00:00:02,000", "-00:00:01,000 --> 00:00:01,000",
        ))  # fmt: skip
        head = "WEBVTT\n\n" if fmt == "vtt" else "1\n"
        fmt = fmt if fmt != "json" else "srt"
        return f"bad_timing {stamps!r}", fmt, f"{head}{stamps}\nword\n".encode()
    if kind == "binary":
        data = rng.choice((b"\x00" * 64, rng.randbytes(500), b"\xff\xfe" + rng.randbytes(51),
                           b"WEBVTT\n\n\xc3\x28\xa0\xa1"))  # fmt: skip
        return "binary", fmt, data
    if kind == "odd_values":
        text = rng.choice((
            '[{"word": "a", "start": 1e400, "end": 1}]', '[{"word": "a", "start": NaN, "end": 1}]',
            '{"text": "\\ud800 lone surrogate"}', '[{"word": "\\udfff", "start": 0, "end": 1}]',
            '{"segments": [{"start": 0, "end": 1, "text": "\\u0000"}]}', '{"words": {}}',
            '[{"word": "a", "start": true, "end": 1}]', '"just a string"', "[]", "{}",
            '[{"word": "a", "start": 0, "end": 1, "probability": 2}]',
            '{"segments": [{"start": 0, "end": 1, "text": "a", "words": []}]}',
        ))  # fmt: skip
        return f"odd_values {text[:30]!r}", "json", text.encode()
    # mutated: a valid small transcript with bit flips, a truncation or lines repeated
    base = _cues(rng, fmt, 5) if fmt != "json" else (
        '{"segments": [{"start": 0.0, "end": 0.5, "text": "um maybe", "words": '
        '[{"word": "um", "start": 0.0, "end": 0.2}, {"word": "maybe", "start": 0.2, "end": 0.5}]}]}'
    )  # fmt: skip
    out = bytearray(base.encode())
    how = rng.choice(("bit_flip", "truncate", "repeat"))
    if how == "bit_flip":
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    elif how == "truncate":
        out = out[: rng.randrange(1, len(out))]
    else:
        lines = bytes(out).split(b"\n")
        i = rng.randrange(len(lines))
        lines[i:i] = [lines[i]] * rng.randint(1, 3)
        out = bytearray(b"\n".join(lines))
    return f"mutated {fmt} {how}", fmt, bytes(out)
