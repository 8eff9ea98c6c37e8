"""A transcript the client sends instead of ASR: parsing and alignment to the audio.

Formats (sniffed when not named):

- **text**: plain words, no times.
- **vtt**: WebVTT (``WEBVTT`` header; NOTE/STYLE/REGION blocks skipped; tags and entities
  removed from cue text).
- **srt**: SubRip (``1`` / ``00:00:01,000 --> 00:00:02,500`` / text).
- **json**: ``{"words": [{"word" | "text": .., "start": .., "end": ..}]}`` or a bare list of
  such words (optional ``probability``/``confidence``); ``{"segments": [{"start", "end",
  "text"}]}`` (segments that all carry ``words``, as Whisper's JSON does, give those timed
  words); or ``{"text": ".."}``.

:func:`align_transcript` gives every word a time span: timed words pass through, cue text is
spread inside its cue and plain text over the speech that the VAD found (see there).

Privacy: transcripts are health conversations. ``repr`` of the results shows counts only and
error messages name lines, fields and indices, never the words.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .timeline import Segment, Word

__all__ = [
    "FORMATS",
    "MAX_BYTES",
    "TranscriptError",
    "Cue",
    "ClientTranscript",
    "parse_transcript",
    "load_transcript",
    "format_of",
    "spread_text",
    "align_transcript",
]

FORMATS = ("text", "vtt", "srt", "json")
MAX_BYTES = 4 * 1024 * 1024  # a 96 s answer needs a few kB; this bounds memory and time
_ALIASES = {
    "text": "text",
    "txt": "text",
    "plain": "text",
    "vtt": "vtt",
    "webvtt": "vtt",
    "srt": "srt",
    "subrip": "srt",
    "json": "json",
}
_SUFFIXES = {".txt": "text", ".vtt": "vtt", ".srt": "srt", ".json": "json"}

# [hh:]mm:ss[.,]fff -- both formats' separators are accepted in both (players do too); hours
# have at most 9 digits (a longer number is no time, and int() refuses 4300+ digits anyway)
_TIME = r"(?:(\d{1,9}):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?$")
_TIMING_LIKE = re.compile(r"^\s*[\d:.,]+\s*-->", re.MULTILINE)
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")


class TranscriptError(InvalidInput, ValueError):
    """The transcript cannot be read: malformed, empty, binary or too large."""

    what = "transcript"


@dataclass(frozen=True)
class Cue:
    """Text shown from ``start`` to ``end`` seconds (a subtitle cue or a JSON segment)."""

    start: float
    end: float
    text: str = field(repr=False)


@dataclass(frozen=True, repr=False)
class ClientTranscript:
    """A parsed client transcript.

    ``timing`` says what carries the times: ``"words"`` (``words`` are timed), ``"cues"``
    (``cues`` hold timed text) or ``"none"`` (plain text). ``text`` is always the whole text,
    whitespace-normalised. ``format`` is the format read.
    """

    format: str
    timing: str
    text: str
    words: list[Word] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"ClientTranscript(format={self.format!r}, timing={self.timing!r}, "
            f"words={len(self.text.split())}, cues={len(self.cues)})"
        )

    __str__ = __repr__


def parse_transcript(data: str | bytes, fmt: str | None = None) -> ClientTranscript:
    """Parse ``data`` as ``fmt`` (one of :data:`FORMATS` or an alias such as ``"txt"``,
    ``"webvtt"``), or sniff the format when ``fmt`` is ``None``."""
    if fmt is not None:
        if fmt.lower().lstrip(".") not in _ALIASES:
            raise TranscriptError(f"unknown transcript format {fmt!r}: use one of {FORMATS}")
        fmt = _ALIASES[fmt.lower().lstrip(".")]
    text = _to_text(data)
    if not text.strip():
        raise TranscriptError("the transcript is empty")
    fmt = fmt or _sniff(text)
    if fmt == "json":
        parsed = _parse_json(text)
        try:  # JSON's \ud800 escapes can make lone surrogates, which no UTF-8 output holds
            parsed.text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise TranscriptError(
                f"the JSON transcript holds an invalid \\u escape (a lone surrogate) at "
                f"word character {exc.start}"
            ) from None
        return parsed
    if fmt in ("vtt", "srt"):
        return _parse_cues(text, fmt)
    words = text.split()
    return ClientTranscript("text", "none", " ".join(words))


def format_of(path: str | Path) -> str | None:
    """The transcript format a file's suffix names (``.txt``, ``.vtt``, ``.srt``, ``.json``),
    or None (then the content decides)."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def load_transcript(path: str | Path, fmt: str | None = None) -> ClientTranscript:
    """Read a transcript file; the format comes from ``fmt``, else the suffix (``.txt``,
    ``.vtt``, ``.srt``, ``.json``), else the content."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise TranscriptError(f"transcript file is {size} bytes, more than {MAX_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise TranscriptError(f"cannot read transcript {path}: {exc.strerror or exc}") from exc
    return parse_transcript(data, fmt or format_of(path))


def align_transcript(t: ClientTranscript, speech: list[Segment], duration: float) -> list[Word]:
    """Timed words for ``t`` over audio of ``duration`` seconds with VAD ``speech`` segments.

    - timed words pass through, clipped to ``[0, duration]`` and sorted; words that start at
      or after the end are dropped;
    - cue text is spread inside its cue, each word getting time in proportion to its length
      in characters;
    - plain text is spread over the speech segments the same way: each word goes to the
      segment where its share of the total speech time falls, then is spread inside it; with
      no speech, over the whole duration. This is an approximation (speaking rate is taken as
      constant and pauses as silent); a forced aligner would place words exactly.
    """
    if not (isinstance(duration, int | float) and math.isfinite(duration) and duration >= 0):
        raise TranscriptError(f"duration must be a finite number >= 0, got {duration!r}")
    if duration == 0:
        return []
    if t.timing == "words":
        out = []
        for w in t.words:
            if w.start < duration:
                out.append(Word(w.start, min(w.end, duration), w.text, w.probability))
        return sorted(out, key=lambda w: (w.start, w.end))
    if t.timing == "cues":
        out = []
        for cue in sorted(t.cues, key=lambda c: (c.start, c.end)):
            if cue.start < duration:
                out += _spread(cue.text.split(), cue.start, min(cue.end, duration))
        return out
    return _spread_over_speech(t.text.split(), speech, duration)


# -- reading -------------------------------------------------------------------------------


def _to_text(data: str | bytes) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        if len(data) > MAX_BYTES:
            raise TranscriptError(f"transcript is {len(data)} bytes, more than {MAX_BYTES}")
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
        elif b"\x00" in data:
            raise TranscriptError("the transcript is binary data, not text")
        else:
            encoding = "utf-8-sig"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise TranscriptError(
                f"the transcript is not UTF-8 text (bad byte at offset {exc.start})"
            ) from exc
    elif isinstance(data, str):
        text = data
        if len(text) > MAX_BYTES:
            raise TranscriptError(f"transcript has {len(text)} characters, more than {MAX_BYTES}")
    else:
        raise TranscriptError(f"a transcript is str or bytes, not {type(data).__name__}")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    control = sum(1 for c in text if ord(c) < 32 and c not in "\n\t\f\v") + text.count("\ufffd")
    if "\x00" in text or control > max(2, len(text) // 100):
        raise TranscriptError("the transcript is binary data, not text")
    return text


def _sniff(text: str) -> str:
    head = text.lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith("{") or re.match(r"\[\s*[{\]]", head):
        return "json"
    if _TIMING_LIKE.search(text):
        return "srt"
    return "text"


def _seconds(groups: tuple[str | None, ...], line_no: int) -> float:
    hours, minutes, seconds, fraction = groups
    if int(minutes) >= 60 or int(seconds) >= 60:
        raise TranscriptError(f"line {line_no}: minutes and seconds must be below 60")
    value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return value + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _parse_cues(text: str, fmt: str) -> ClientTranscript:
    lines = text.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if fmt == "vtt":
        first = lines[i].strip()
        if not first.startswith("WEBVTT") or first[6:7] not in ("", " ", "\t"):
            raise TranscriptError(f"line {i + 1}: a WebVTT file starts with 'WEBVTT'")
        while i < len(lines) and lines[i].strip():  # header block
            i += 1
    cues: list[Cue] = []
    expected = "'HH:MM:SS.mmm --> HH:MM:SS.mmm'" if fmt == "vtt" else "'HH:MM:SS,mmm --> ...'"
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        start_line = i
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        if fmt == "vtt" and block[0].split(" ")[0] in ("NOTE", "STYLE", "REGION"):
            continue
        arrows = [k for k, line in enumerate(block[:2]) if "-->" in line]
        if not arrows:
            raise TranscriptError(f"line {start_line + 1}: cue without a timing line {expected}")
        k = arrows[0]
        match = _TIMING.match(block[k])
        if not match:
            raise TranscriptError(f"line {start_line + k + 1}: bad cue timing, expected {expected}")
        start = _seconds(match.groups()[:4], start_line + k + 1)
        end = _seconds(match.groups()[4:], start_line + k + 1)
        if end < start:
            raise TranscriptError(f"line {start_line + k + 1}: cue ends before it starts")
        for j, line in enumerate(block[k + 1 :], start_line + k + 2):
            if "-->" in line and _TIMING.match(line):
                raise TranscriptError(
                    f"line {j}: a cue timing inside cue text (a blank line missing?)"
                )
        payload = " ".join(html.unescape(_TAG.sub("", line)) for line in block[k + 1 :])
        words = payload.split()
        if words:
            cues.append(Cue(start, end, " ".join(words)))
    if not cues:
        raise TranscriptError(f"the {fmt.upper()} transcript has no cues with text")
    cues.sort(key=lambda c: (c.start, c.end))
    return ClientTranscript(fmt, "cues", " ".join(c.text for c in cues), cues=cues)


def _reject_constant(name: str) -> Any:
    raise TranscriptError(f"JSON transcript holds {name}, which is not a time")


def _parse_json(text: str) -> ClientTranscript:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise TranscriptError(
            f"unparseable JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise TranscriptError("unparseable JSON: nested too deeply") from exc
    except TranscriptError:  # NaN or Infinity (see _reject_constant)
        raise
    except ValueError as exc:  # a number of 4300+ digits (int()'s limit), not a time
        raise TranscriptError("unparseable JSON: a number is too long") from exc
    if isinstance(data, list):
        return _json_words(data, "words")
    if not isinstance(data, dict):
        raise TranscriptError("a JSON transcript is an object or a list of words")
    if "words" in data:
        if not isinstance(data["words"], list):
            raise TranscriptError("'words' must be a list")
        return _json_words(data["words"], "words")
    if "segments" in data:
        segments = data["segments"]
        if not isinstance(segments, list):
            raise TranscriptError("'segments' must be a list")
        if segments and all(
            isinstance(s, dict) and isinstance(s.get("words"), list) and s["words"]
            for s in segments
        ):
            flat = [(f"segments[{i}].words", s["words"]) for i, s in enumerate(segments)]
            words = [
                _json_word(item, f"{where}[{j}]") for where, ws in flat for j, item in enumerate(ws)
            ]
            return _words_transcript(words)
        cues = []
        for i, item in enumerate(segments):
            where = f"segments[{i}]"
            if not isinstance(item, dict):
                raise TranscriptError(f"{where} must be an object")
            start, end = _json_span(item, where)
            content = item.get("text")
            if not isinstance(content, str):
                raise TranscriptError(f"{where} needs a 'text' string")
            if content.split():
                cues.append(Cue(start, end, " ".join(content.split())))
        if not cues:
            raise TranscriptError("the JSON transcript has no segments with text")
        cues.sort(key=lambda c: (c.start, c.end))
        return ClientTranscript("json", "cues", " ".join(c.text for c in cues), cues=cues)
    if isinstance(data.get("text"), str):
        words = data["text"].split()
        if not words:
            raise TranscriptError("the transcript is empty")
        return ClientTranscript("json", "none", " ".join(words))
    raise TranscriptError("a JSON transcript needs 'words', 'segments' or 'text'")


def _json_words(items: list, where: str) -> ClientTranscript:
    return _words_transcript([_json_word(item, f"{where}[{i}]") for i, item in enumerate(items)])


def _words_transcript(words: list[Word | None]) -> ClientTranscript:
    kept = sorted((w for w in words if w is not None), key=lambda w: (w.start, w.end))
    if not kept:
        raise TranscriptError("the JSON transcript has no words")
    return ClientTranscript("json", "words", " ".join(w.text for w in kept), words=kept)


def _json_word(item: Any, where: str) -> Word | None:
    if not isinstance(item, dict):
        raise TranscriptError(f"{where} must be an object with 'word', 'start' and 'end'")
    content = item.get("word", item.get("text"))
    if not isinstance(content, str):
        raise TranscriptError(f"{where} needs a 'word' (or 'text') string")
    start, end = _json_span(item, where)
    probability = item.get("probability", item.get("confidence"))
    if probability is not None and not (_is_number(probability) and 0 <= probability <= 1):
        raise TranscriptError(f"{where}: 'probability' must be a number in [0, 1]")
    content = " ".join(content.split())
    if not content:
        return None
    return Word(start, end, content, None if probability is None else float(probability))


def _json_span(item: dict, where: str) -> tuple[float, float]:
    for key in ("start", "end"):
        if key not in item:
            raise TranscriptError(f"{where} needs '{key}' (seconds)")
        if not (_is_number(item[key]) and math.isfinite(item[key]) and item[key] >= 0):
            raise TranscriptError(f"{where}: '{key}' must be a number of seconds >= 0")
    start, end = float(item["start"]), float(item["end"])
    if end < start:
        raise TranscriptError(f"{where} ends before it starts")
    return start, end


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- alignment -----------------------------------------------------------------------------


def spread_text(text: str, start: float, end: float) -> list[Word]:
    """The words of ``text`` over ``[start, end]``, each in proportion to its length (for a
    cue or a live transcript segment that has no word times)."""
    return _spread(text.split(), start, end)


def _spread(tokens: list[str], start: float, end: float) -> list[Word]:
    """``tokens`` over ``[start, end]``, each in proportion to its length in characters."""
    if not tokens:
        return []
    weights = [max(1, len(tok)) for tok in tokens]
    total = float(sum(weights))
    span = max(0.0, end - start)
    out, done = [], 0
    for tok, weight in zip(tokens, weights, strict=True):
        w_start = start + span * done / total
        done += weight
        out.append(Word(w_start, start + span * done / total, tok))
    return out


def _spread_over_speech(tokens: list[str], speech: list[Segment], duration: float) -> list[Word]:
    segments = []
    for seg in sorted(speech, key=lambda s: (s.start, s.end)):
        start, end = max(0.0, seg.start), min(duration, seg.end)
        if end > start:
            segments.append(Segment(start, end))
    if not segments:
        segments = [Segment(0.0, duration)]
    lengths = [s.end - s.start for s in segments]
    total_time = sum(lengths)
    weights = [max(1, len(tok)) for tok in tokens]
    total_chars = float(sum(weights))
    # each word goes to the segment where the middle of its share of speech time falls
    groups: list[list[str]] = [[] for _ in segments]
    done, seg_index, seg_end = 0, 0, lengths[0]
    for tok, weight in zip(tokens, weights, strict=True):
        middle = (done + weight / 2) / total_chars * total_time
        while middle > seg_end and seg_index < len(segments) - 1:
            seg_index += 1
            seg_end += lengths[seg_index]
        groups[seg_index].append(tok)
        done += weight
    out = []
    for seg, group in zip(segments, groups, strict=True):
        out += _spread(group, seg.start, seg.end)
    return out
