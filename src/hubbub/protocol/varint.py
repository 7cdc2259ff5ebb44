"""Unsigned LEB128 varints: the length prefix of every Protobuf message in a frame.

Centrifuge delimits Protobuf messages with ``uvarint(len(msg)) + msg`` (Go's
``binary.PutUvarint``), so a frame is read by alternating :func:`decode_uvarint` and a
slice. Decoding accepts what Go's ``binary.Uvarint`` accepts: at most 10 bytes holding a
value below 2**64.
"""

from __future__ import annotations

from hubbub.errors import ProtocolError

MAX_UVARINT = (1 << 64) - 1
MAX_UVARINT_BYTES = 10  # ceil(64 / 7)
"""The longest uvarint: a prefix this long that does not end is garbage, not unfinished."""

# Lengths below 128 are the common case; precomputed single bytes skip the loop.
_SMALL = tuple(bytes((n,)) for n in range(0x80))


def encode_uvarint(value: int) -> bytes:
    """``value`` as a uvarint: 7 bits per byte, low group first, high bit = more follows.

    Raises:
        ValueError: ``value`` is negative or does not fit in 64 bits (a local bug).
    """
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0 or value > MAX_UVARINT:
        raise ValueError(f"uvarint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Read the uvarint that starts at ``data[pos]``; return (value, position after it).

    Raises:
        ProtocolError: the input ends inside the varint, or it is longer than 10 bytes
            or exceeds 64 bits (the peer sent garbage).
    """
    result = 0
    shift = 0
    end = len(data)
    for i in range(pos, min(pos + MAX_UVARINT_BYTES, end)):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result > MAX_UVARINT:
                raise ProtocolError("varint exceeds 64 bits")
            return result, i + 1
        shift += 7
    if end - pos >= MAX_UVARINT_BYTES:
        raise ProtocolError("varint longer than 10 bytes")
    raise ProtocolError("truncated varint")
