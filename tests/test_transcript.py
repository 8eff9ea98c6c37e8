"""Client transcripts: every format to the same words, times, alignment, malformed input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ahmer.preprocessing.timeline import Segment, Word
from ahmer.preprocessing.transcript import (
    MAX_BYTES,
    ClientTranscript,
    Cue,
    TranscriptError,
    align_transcript,
    load_transcript,
    parse_transcript,
)

TOKENS = "Part of me wants to stop, but honestly I enjoy it.".split()
TIMED = [  # (text, start, end): two phrases, 0.5-2.0 s and 2.6-4.0 s
    ("Part", 0.5, 0.8),
    ("of", 0.8, 0.9),
    ("me", 0.9, 1.1),
    ("wants", 1.1, 1.5),
    ("to", 1.5, 1.6),
    ("stop,", 1.6, 2.0),
    ("but", 2.6, 2.8),
    ("honestly", 2.8, 3.3),
    ("I", 3.3, 3.4),
    ("enjoy", 3.4, 3.8),
    ("it.", 3.8, 4.0),
]

PLAIN = "Part of me wants to stop,\nbut honestly   I enjoy it.\n"
VTT = """WEBVTT - an answer

NOTE made by hand for the test

intro
00:00:00.500 --> 00:00:02.000 align:start position:10%
<v Participant>Part of me wants to stop,</v>

00:02.600 --> 00:04.000
but honestly I <i>enjoy</i> it.
"""
SRT = """1
00:00:00,500 --> 00:00:02,000
Part of me wants
to stop,

2
00:00:02,600 --> 00:00:04,000
but honestly I <i>enjoy</i> it.
"""
JSON_WORDS = json.dumps({"words": [{"word": w, "start": s, "end": e} for w, s, e in TIMED]})
JSON_LIST = json.dumps([{"text": w, "start": s, "end": e, "confidence": 0.9} for w, s, e in TIMED])
JSON_SEGMENTS = json.dumps(
    {
        "segments": [
            {"start": 0.5, "end": 2.0, "text": " Part of me wants to stop,"},
            {"start": 2.6, "end": 4.0, "text": " but honestly I enjoy it."},
        ]
    }
)
JSON_WHISPER = json.dumps(  # Whisper's own JSON: segments holding timed words
    {
        "text": "ignored when segments are there",
        "segments": [
            {
                "start": 0.5,
                "end": 2.0,
                "text": "x",
                "words": [{"word": f" {w}", "start": s, "end": e} for w, s, e in TIMED[:6]],
            },
            {
                "start": 2.6,
                "end": 4.0,
                "text": "y",
                "words": [{"word": f" {w}", "start": s, "end": e} for w, s, e in TIMED[6:]],
            },
        ],
    }
)
JSON_TEXT = json.dumps({"text": PLAIN})

ALL = {
    "text": (PLAIN, "text", "none"),
    "vtt": (VTT, "vtt", "cues"),
    "srt": (SRT, "srt", "cues"),
    "json_words": (JSON_WORDS, "json", "words"),
    "json_list": (JSON_LIST, "json", "words"),
    "json_segments": (JSON_SEGMENTS, "json", "cues"),
    "json_whisper": (JSON_WHISPER, "json", "words"),
    "json_text": (JSON_TEXT, "json", "none"),
}


@pytest.mark.parametrize("name", list(ALL))
def test_every_format_gives_the_same_words(name):
    data, fmt, timing = ALL[name]
    for t in (parse_transcript(data), parse_transcript(data.encode(), fmt)):
        assert isinstance(t, ClientTranscript)
        assert (t.format, t.timing) == (fmt, timing)
        assert t.text.split() == TOKENS
        words = align_transcript(t, [Segment(0.4, 4.1)], duration=5.0)
        assert [w.text for w in words] == TOKENS
        assert all(0.0 <= w.start <= w.end <= 5.0 for w in words)
        assert [w.start for w in words] == sorted(w.start for w in words)


def test_bytes_with_bom_crlf_and_utf16_are_read():
    crlf = SRT.replace("\n", "\r\n")
    assert parse_transcript(b"\xef\xbb\xbf" + crlf.encode()).text.split() == TOKENS
    assert parse_transcript(VTT.encode("utf-16")).format == "vtt"
    assert parse_transcript("\n\n" + VTT, "webvtt").cues[1].start == pytest.approx(2.6)


@pytest.mark.parametrize("name", ["json_words", "json_list", "json_whisper"])
def test_timed_words_keep_their_times(name):
    t = parse_transcript(ALL[name][0])
    got = [(w.text, w.start, w.end) for w in align_transcript(t, [], duration=10.0)]
    assert got == TIMED
    if name == "json_list":
        assert all(w.probability == pytest.approx(0.9) for w in t.words)


@pytest.mark.parametrize("name", ["vtt", "srt", "json_segments"])
def test_cue_times_and_spreading_by_word_length(name):
    t = parse_transcript(ALL[name][0])
    assert [(c.start, c.end) for c in t.cues] == [(0.5, 2.0), (2.6, 4.0)]
    words = align_transcript(t, [], duration=10.0)
    # first cue: 1.5 s over 20 characters (Part=4 of=2 me=2 wants=5 to=2 stop,=5)
    assert (words[0].start, words[0].end) == pytest.approx((0.5, 0.8))
    assert (words[3].start, words[3].end) == pytest.approx((1.1, 1.475))
    assert words[5].end == pytest.approx(2.0)
    assert words[6].start == pytest.approx(2.6) and words[-1].end == pytest.approx(4.0)
    for a, b in zip(words, words[1:], strict=False):
        assert a.end <= b.start + 1e-9


def test_timed_words_are_clipped_to_the_duration():
    t = parse_transcript(JSON_WORDS)
    words = align_transcript(t, [], duration=2.7)
    assert [w.text for w in words] == TOKENS[:7]  # "but" starts at 2.6 and is cut at 2.7
    assert words[-1].end == pytest.approx(2.7)
    shuffled = json.loads(JSON_WORDS)
    shuffled["words"].reverse()
    assert align_transcript(parse_transcript(json.dumps(shuffled)), [], 9.0) == (
        align_transcript(t, [], 9.0)
    )
    cues = align_transcript(parse_transcript(SRT), [], duration=3.0)
    assert cues[-1].end == pytest.approx(3.0) and len(cues) == len(TOKENS)
    assert align_transcript(t, [], duration=0.0) == []


def test_plain_text_is_spread_over_two_speech_segments():
    # 1 s then 2 s of speech: the first third of the characters goes to the first segment
    text = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii"
    speech = [Segment(1.0, 2.0), Segment(4.0, 6.0)]
    words = align_transcript(parse_transcript(text), speech, duration=7.0)
    assert [w.text for w in words] == text.split()
    first = [w.text for w in words if 1.0 <= w.start and w.end <= 2.0]
    second = [w.text for w in words if 4.0 <= w.start and w.end <= 6.0]
    assert first == ["aaaa", "bbbb", "cccc"]
    assert second == text.split()[3:]
    assert words[0].start == 1.0 and words[2].end == pytest.approx(2.0)
    assert words[3].start == 4.0 and words[-1].end == pytest.approx(6.0)
    # segments are clipped to the audio and sorted
    clipped = align_transcript(parse_transcript(text), speech[::-1], duration=5.0)
    assert clipped[-1].end == pytest.approx(5.0) and clipped[0].start == 1.0


def test_plain_text_without_speech_spreads_over_the_whole_clip():
    words = align_transcript(parse_transcript("one two three"), [], duration=6.0)
    assert [w.text for w in words] == ["one", "two", "three"]
    assert words[0].start == 0.0 and words[-1].end == pytest.approx(6.0)
    assert np.allclose([w.end - w.start for w in words], [6 * 3 / 11, 6 * 3 / 11, 6 * 5 / 11])


def test_load_transcript_uses_the_suffix_then_the_content(tmp_path):
    for suffix, data in [(".vtt", VTT), (".srt", SRT), (".json", JSON_WORDS), (".txt", PLAIN)]:
        path = tmp_path / f"answer{suffix}"
        path.write_text(data)
        assert load_transcript(path).text.split() == TOKENS
    odd = tmp_path / "answer.captions"
    odd.write_text(SRT)
    assert load_transcript(odd).format == "srt"
    # a .txt holding subtitles is read as text because the suffix says so
    (tmp_path / "subs.txt").write_text(SRT)
    assert load_transcript(tmp_path / "subs.txt").timing == "none"
    with pytest.raises(TranscriptError, match="cannot read"):
        load_transcript(tmp_path / "missing.vtt")
    big = tmp_path / "big.txt"
    big.write_bytes(b"a " * (MAX_BYTES // 2 + 1))
    with pytest.raises(TranscriptError, match="more than"):
        load_transcript(big)


def test_repr_never_shows_the_words():
    t = parse_transcript(VTT)
    for shown in (repr(t), str(t), repr(t.cues[0])):
        assert "honestly" not in shown
    assert "words=11" in repr(t)
    assert isinstance(t.cues[0], Cue)


MALFORMED = [
    (VTT.replace("00:00:00.500", "00:00:0x.500"), None, "line 6: bad cue timing"),
    (VTT.replace("00:00:00.500", "00:61:00.500"), None, "line 6: minutes and seconds"),
    (VTT.replace("00:02.600 --> 00:04.000", "00:04.600 --> 00:04.000"), None, "ends before"),
    (VTT.replace("WEBVTT - an answer", "WEBVTTX"), "vtt", "starts with 'WEBVTT'"),
    (SRT.replace("00:00:02,600 --> 00:00:04,000", "00:00:02,600 -> 00:00:04,000"), "srt", "line 6"),
    (
        SRT.replace("00:00:02,600 --> 00:00:04,000\n", "00:00:02,600 --> 00:00:01,000\n"),
        None,
        "line 7",
    ),
    (SRT.replace("to stop,\n\n2", "to stop,\n2"), None, "blank line missing"),
    ("WEBVTT\n\nNOTE only a note\n", None, "no cues with text"),
    ('{"words": [{"word": "stop", "start": 1.0,', None, "unparseable JSON"),
    ('{"words": [{"word": "stop", "start": NaN, "end": 1}]}', None, "NaN"),
    ('{"words": [{"word": "stop", "end": 1}]}', None, r"words\[0\] needs 'start'"),
    ('{"words": [{"word": "stop", "start": 2, "end": 1}]}', None, "ends before it starts"),
    ('{"words": [{"word": "stop", "start": -1, "end": 1}]}', None, ">= 0"),
    ('{"words": [{"word": "stop", "start": "1", "end": 2}]}', None, "number of seconds"),
    ('{"words": [{"word": "stop", "start": true, "end": 2}]}', None, "number of seconds"),
    ('{"words": [{"word": 3, "start": 1, "end": 2}]}', None, "'word'"),
    ('{"words": ["stop"]}', None, r"words\[0\] must be an object"),
    ('{"words": []}', None, "no words"),
    ('{"segments": [{"start": 0, "end": 1}]}', None, r"segments\[0\] needs a 'text'"),
    ('{"speakers": []}', None, "needs 'words', 'segments' or 'text'"),
    ('"just a string"', "json", "object or a list"),
    ("[" * 100000 + "]" * 100000, "json", "nested too deeply"),
    ("[{" * 100000, None, "unparseable JSON"),
    ("", None, "empty"),
    ("  \n\t\n", None, "empty"),
    (b"", None, "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), None, "binary"),
    (bytes(range(128, 256)) * 4, None, "not UTF-8"),
    ("text\x01\x02\x03\x04 with control junk", None, "binary"),
    (PLAIN, "docx", "unknown transcript format"),
    ("x" * (MAX_BYTES + 1), None, "more than"),
    (12, None, "str or bytes"),
]


@pytest.mark.parametrize(("data", "fmt", "message"), MALFORMED)
def test_malformed_input_raises_a_clear_transcript_error(data, fmt, message):
    with pytest.raises(TranscriptError, match=message) as info:
        parse_transcript(data, fmt)
    text = str(info.value)
    for secret in ("honestly", "enjoy", "stop"):  # errors never quote what was said
        assert secret not in text


def test_bad_duration_raises_transcript_error():
    t = parse_transcript(PLAIN)
    for duration in (-1.0, float("nan"), float("inf")):
        with pytest.raises(TranscriptError, match="duration"):
            align_transcript(t, [], duration)


def test_word_type_is_the_timeline_word():
    words = align_transcript(parse_transcript(JSON_WORDS), [], 5.0)
    assert all(type(w) is Word for w in words)


def test_sniffing_keeps_bracketed_plain_text_as_text():
    t = parse_transcript("[laughs] well, maybe")
    assert (t.format, t.text) == ("text", "[laughs] well, maybe")
    with pytest.raises(TranscriptError, match="no words"):
        parse_transcript("  [ ]")
