"""Seeded protobuf fuzzing helpers for the server tests: mutations of serialized messages at
the wire level, and valid messages with odd values built from the message descriptors.

Everything draws from a ``random.Random`` the caller seeds, so a run is repeatable: a
failure names the seed and the input's index, and the same input comes back.
"""

from __future__ import annotations

import math
import random

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor

__all__ = ["MUTATIONS", "mutate", "odd_message", "unknown_field", "wire_spans"]

# -- wire format -------------------------------------------------------------------------------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if not byte & 0x80:
            return value, i


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int, int]] | None:
    """The fields of ``data[start:end]`` as ``(tag_start, value_start, end, number, wire)``
    spans (``value_start`` is where a length-delimited field's length begins), or None when
    those bytes are not a clean sequence of fields."""
    spans = []
    i = start
    try:
        while i < end:
            tag, j = _varint(data, i)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                return None
            if wire == 0:
                _, k = _varint(data, j)
            elif wire == 1:
                k = j + 8
            elif wire == 5:
                k = j + 4
            elif wire == 2:
                size, k = _varint(data, j)
                k += size
            else:
                return None
            if k > end:
                return None
            spans.append((i, j, k, number, wire))
            i = k
    except ValueError:
        return None
    return spans


def wire_spans(data: bytes, max_depth: int = 3) -> list[tuple[int, int, int, int, int, int]]:
    """Every field of ``data``, nested ones too (length-delimited values that parse as
    fields): ``(depth, tag_start, value_start, end, number, wire)``."""
    found = []
    todo = [(0, 0, len(data))]
    while todo:
        depth, start, end = todo.pop()
        for span in _fields(data, start, end) or ():
            found.append((depth, *span))
            tag_start, value_start, stop, _, wire = span
            if wire == 2 and depth < max_depth:
                _, inner = _varint(data, value_start)
                if inner < stop and _fields(data, inner, stop):
                    todo.append((depth + 1, inner, stop))
    return found


# -- mutations ---------------------------------------------------------------------------------

HUGE_LENGTHS = (2**31 - 1, 2**32, 2**63 - 1, 2**64 - 1)
MUTATIONS = (
    "random",
    "bit_flip",
    "truncate",
    "insert",
    "duplicate_field",
    "wrong_wire_type",
    "huge_length",
)


def _random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def mutate(rng: random.Random, data: bytes, kind: str | None = None) -> tuple[str, bytes]:
    """``data`` changed one way (``kind``, or one drawn from :data:`MUTATIONS`): random bytes,
    bit flips, a truncation, inserted bytes, a field repeated, a field's wire type changed
    (nested fields too), or a length prefix made huge or overlong."""
    kind = kind or rng.choice(MUTATIONS)
    spans = wire_spans(data)
    if kind in ("duplicate_field", "wrong_wire_type") and not spans:
        kind = "bit_flip"
    lengths = [s for s in spans if s[5] == 2]
    if kind == "huge_length" and not lengths:
        kind = "insert"
    if kind in ("bit_flip", "truncate") and not data:
        kind = "insert"
    out = bytearray(data)
    if kind == "random":
        out = bytearray(_random_bytes(rng, rng.choice((1, 2, 3, 7, 16, 64, 300, 2000))))
    elif kind == "bit_flip":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        out = out[: rng.randrange(len(out))]
    elif kind == "insert":
        i = rng.randint(0, len(out))
        out[i:i] = _random_bytes(rng, rng.randint(1, 16))
    elif kind == "duplicate_field":
        top = [s for s in spans if s[0] == 0] or spans
        _, start, _, end, _, _ = rng.choice(top)
        field = bytes(out[start:end])
        at = len(out) if rng.random() < 0.5 else end
        out[at:at] = field * rng.randint(1, 3)
    elif kind == "wrong_wire_type":
        _, start, value_start, _, number, wire = rng.choice(spans)
        new = rng.choice([w for w in range(8) if w != wire])
        out[start:value_start] = _encode_varint(number << 3 | new)
    else:  # huge_length
        _, _, value_start, _, _, _ = rng.choice(lengths)
        length_end = _varint(data, value_start)[1]
        if rng.random() < 0.2:
            prefix = b"\xff" * 10 + b"\x01"  # an overlong varint: 11 bytes
        else:
            prefix = _encode_varint(rng.choice(HUGE_LENGTHS))
        out[value_start:length_end] = prefix
    return kind, bytes(out)


def unknown_field(rng: random.Random) -> bytes:
    """One well-formed field with a number no ahmer message uses."""
    number = rng.choice((15, 99, 1000, 2**29 - 1))
    wire = rng.choice((0, 1, 2, 5))
    if wire == 0:
        value = _encode_varint(rng.choice((0, 1, 2**64 - 1)))
    elif wire == 1:
        value = _random_bytes(rng, 8)
    elif wire == 5:
        value = _random_bytes(rng, 4)
    else:
        payload = _random_bytes(rng, rng.randint(0, 40))
        value = _encode_varint(len(payload)) + payload
    return _encode_varint(number << 3 | wire) + value


# -- valid messages with odd values ------------------------------------------------------------

_DOUBLES = (0.0, -0.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -1.0, 1e-9,
            0.5, 5.0, 30.0, 30.000001, 600.0, 600.001, 1e6)  # fmt: skip
_FLOATS = (0.0, -0.0, math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, -1.0, 0.5, 5.0)
_INT32 = (0, 1, -1, 2, 15, 16, 4096, 4097, 7999, 8000, 192000, 192001, 2**31 - 1, -(2**31))
_INT64 = (0, 1, -1, 16000, 2**40, 2**63 - 1, -(2**63))
_UINT32 = (0, 1, 2**32 - 1)
_UINT64 = (0, 1, 2**64 - 1)
_STRINGS = ("", " ", "en", "EN", " en ", "zz", "english", "é", "\U0001f600" * 8, "a" * 128,
            "a" * 129, "x" * 70_000, "\x00", "id\n1", "../../etc/passwd", "%s%n{}",
            "answer.webm", "mp4", "\u202e")  # fmt: skip
_BYTES = (b"", b"\x00", b"\xff\xfe\xfd", b"WEBVTT\n\n00:00.000 --> 99:59:59.999\nhi there\n",
          b"1\n00:00:00,000 --> 00:00:01,000\nhello\n",
          b'[{"start": -1, "end": 1e308, "text": "x"}]', b'{"a": ', b"[]",
          b"\xff\xd8\xff\xe0" + b"\x00" * 40, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
          b"RIFF\x24\x00\x00\x00WAVEfmt ", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 24)  # fmt: skip

_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: _DOUBLES,
    FieldDescriptor.TYPE_FLOAT: _FLOATS,
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_BOOL: (False, True),
    FieldDescriptor.TYPE_STRING: _STRINGS,
}


def _scalar(rng: random.Random, field, payloads: tuple[bytes, ...]):
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return rng.choice(known + [-1, 99, 2**31 - 1, -(2**31)])  # open enums: unknown too
    if field.type == FieldDescriptor.TYPE_BYTES:
        if rng.random() < 0.2:
            return _random_bytes(rng, rng.choice((1, 7, 100, 4000)))
        return rng.choice(_BYTES + payloads)
    return rng.choice(_TYPES[field.type])


def odd_message(
    rng: random.Random,
    cls,
    payloads: tuple[bytes, ...] = (),
    density: float = 0.7,
    depth: int = 0,
):
    """A valid ``cls`` message whose fields hold odd values: extreme and non-finite numbers,
    empty and huge strings, unknown enum values, garbage and near-valid bytes (plus
    ``payloads``), each field set with probability ``density``, at most one member of each
    oneof."""
    msg = cls()
    chosen = set()
    for oneof in cls.DESCRIPTOR.oneofs:
        if len(oneof.fields) > 1:  # a real oneof (``optional`` makes one-field ones)
            members = list(oneof.fields)
            skip = [f.name for f in members]
            chosen.update(skip)
            if rng.random() < 0.9:
                chosen.discard(rng.choice(members).name)
    for field in cls.DESCRIPTOR.fields:
        if field.name in chosen or rng.random() >= density:
            continue
        repeated = field.is_repeated
        count = rng.randint(0, 3) if repeated else 1
        for _ in range(count):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth >= 4 or field.message_type.GetOptions().map_entry:
                    continue  # (no request message has a map)
                sub_cls = message_factory.GetMessageClass(field.message_type)
                sub = odd_message(rng, sub_cls, payloads, density, depth + 1)
                target = getattr(msg, field.name)
                (target.add() if repeated else target).CopyFrom(sub)
            else:
                value = _scalar(rng, field, payloads)
                if repeated:
                    getattr(msg, field.name).append(value)
                else:
                    setattr(msg, field.name, value)
    return msg
