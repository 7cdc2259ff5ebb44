"""Framing, sans I/O: where one message ends and the next begins.

Codecs encode each message into an *item*; framing puts items together and takes them
apart again. Three framings, each pure bytes in and bytes out:

* JSON lines: a WebSocket frame is items joined by ``\\n``; on a TCP stream every
  item is followed by ``\\n``.
* varint-delimited (Protobuf, msgpack): an item is ``uvarint(len(body)) + body`` and
  items follow each other back to back, in a WebSocket frame and on a TCP stream alike
  (Centrifuge's layout, Go's ``binary.PutUvarint``).
* the TCP preamble: the client's first line ``hubbub/1 <codec>``, or the server's one
  line of refusal ``hubbub/1 error <reason>`` before it closes.

A TCP stream arrives in reads cut anywhere. A ``StreamFramer`` takes those reads and
hands out what they completed, as one chunk of whole items: the stream's equivalent of
a WebSocket frame. An item over the framer's limit is refused at once with the "message
too big" disconnect, without waiting for the rest of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hubbub.errors import ProtocolError
from hubbub.protocol import codes
from hubbub.protocol.varint import MAX_UVARINT_BYTES, decode_uvarint, encode_uvarint

# ------------------------------------------------------------------ varint-delimited


def varint_item(body: bytes) -> bytes:
    """``body`` with its uvarint length in front: one item of a varint-delimited frame."""
    return encode_uvarint(len(body)) + body


def join_varint_items(items: Sequence[bytes]) -> bytes:
    """One frame of varint-delimited ``items`` (they carry their prefixes already)."""
    return items[0] if len(items) == 1 else b"".join(items)


def split_varint_items(frame: bytes, *, prefixed: bool = False) -> list[bytes]:
    """The items of a varint-delimited ``frame`` in order: their bodies, or with
    ``prefixed`` each whole item, length prefix included.

    Raises:
        ProtocolError: a length prefix is garbage or the frame ends inside an item.
    """
    items: list[bytes] = []
    pos, end = 0, len(frame)
    while pos < end:
        size, body = decode_uvarint(frame, pos)
        stop = body + size
        if stop > end:
            raise ProtocolError("message length runs past the end of the frame")
        items.append(frame[pos if prefixed else body : stop])
        pos = stop
    return items


# ------------------------------------------------------------------------ JSON lines


def join_lines(items: Sequence[bytes]) -> bytes:
    """One frame of JSON lines: ``items`` joined by ``\\n``, no newline after the last."""
    return items[0] if len(items) == 1 else b"\n".join(items)


# ------------------------------------------------------------------------ TCP streams


def _too_big(size: int) -> ProtocolError:
    return ProtocolError(f"message of {size} bytes", codes.MESSAGE_TOO_BIG)


class StreamFramer(Protocol):
    """Cuts a byte stream into chunks of complete items."""

    def feed(self, data: bytes) -> bytes | None:
        """Take ``data``; return the items it completed as one chunk, or None.

        Raises:
            ProtocolError: an item is over the limit (``MESSAGE_TOO_BIG``) or its
                length prefix is garbage.
        """
        ...

    def split(self, chunk: bytes) -> list[bytes]:
        """The items of a chunk that ``feed`` returned."""
        ...

    @property
    def buffered(self) -> bytes:
        """What has been fed but is not part of a complete item yet."""
        ...


class LineFramer:
    """Newline-delimited items; a chunk is complete lines joined by ``\\n``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        end = data.rfind(b"\n")
        if end < 0:
            self._buffer += data
            if len(self._buffer) > self._limit:  # a line this long can only grow
                raise _too_big(len(self._buffer))
            return None
        if self._buffer:
            self._buffer += data[:end]
            chunk = bytes(self._buffer)
            self._buffer.clear()
        else:
            chunk = data[:end]
        rest = data[end + 1 :]
        if len(rest) > self._limit:
            raise _too_big(len(rest))
        self._buffer += rest
        if len(chunk) > self._limit:
            longest = max(len(line) for line in chunk.split(b"\n"))
            if longest > self._limit:
                raise _too_big(longest)
        return chunk

    def split(self, chunk: bytes) -> list[bytes]:
        return chunk.split(b"\n")

    @property
    def buffered(self) -> bytes:
        return bytes(self._buffer)


class LengthPrefixFramer:
    """``uvarint(len) + body`` items; a chunk is complete items, prefixes included."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        buffer = self._buffer
        if buffer:
            buffer += data
            end = self._complete(buffer)
            if not end:
                return None
            chunk = bytes(buffer[:end])
            del buffer[:end]
            return chunk
        end = self._complete(data)  # the common case: no copy when nothing is left over
        buffer += data[end:]
        return data[:end] if end else None

    def split(self, chunk: bytes) -> list[bytes]:
        return split_varint_items(chunk, prefixed=True)

    @property
    def buffered(self) -> bytes:
        return bytes(self._buffer)

    def _complete(self, data: bytes | bytearray) -> int:
        """Where the last complete item in ``data`` ends (0: none yet)."""
        pos, size_of_data = 0, len(data)
        while pos < size_of_data:
            try:
                size, start = decode_uvarint(data, pos)
            except ProtocolError:
                if size_of_data - pos < MAX_UVARINT_BYTES:
                    break  # the length prefix itself is still arriving
                raise
            if size > self._limit:
                raise _too_big(size)
            if start + size > size_of_data:
                break
            pos = start + size
        return pos


def stream_framer(*, binary: bool, limit: int) -> StreamFramer:
    """Length prefixes for a binary codec's items, lines for a text codec's."""
    return LengthPrefixFramer(limit) if binary else LineFramer(limit)


# -------------------------------------------------------------------- TCP preamble

PREAMBLE = b"hubbub/1"
"""First word of the preamble line and of a refusal line: protocol name and version."""
MAX_PREAMBLE = 64
"""Longest preamble line, ``\\n`` included."""
REFUSAL_PREFIX = PREAMBLE + b" error "
MAX_REFUSAL = 1024
"""Longest refusal line a client waits for; a longer one is garbage."""
BAD_PREAMBLE = "bad preamble"
UNKNOWN_CODEC = "unknown codec"
"""Refusal reasons that the same preamble would get again (others: stale, shutdown)."""


def format_preamble(codec: str) -> bytes:
    """The line a client opens a TCP connection with to speak ``codec``."""
    return f"{PREAMBLE.decode()} {codec}\n".encode()


def parse_preamble(data: bytes | bytearray) -> tuple[str, int] | None:
    """The codec that the preamble line at the start of ``data`` names, and where the
    line ends; None while the line is still arriving.

    Raises:
        ProtocolError: ``data`` does not start with a preamble line (message
            ``BAD_PREAMBLE``).
    """
    end = data.find(b"\n")
    if end < 0 and len(data) < MAX_PREAMBLE:
        return None
    if end < 0 or end >= MAX_PREAMBLE:
        raise ProtocolError(BAD_PREAMBLE)
    words = bytes(data[:end]).rstrip(b"\r").split(b" ")
    if len(words) != 2 or words[0] != PREAMBLE:
        raise ProtocolError(BAD_PREAMBLE)
    return words[1].decode("ascii", "replace"), end + 1


def format_refusal(reason: str) -> bytes:
    """The line a refused client reads before the close."""
    return REFUSAL_PREFIX + reason.encode() + b"\n"


def may_be_refusal(data: bytes | bytearray) -> bool:
    """False once the first bytes of a stream, ``data``, cannot begin a refusal line."""
    return REFUSAL_PREFIX.startswith(bytes(data[: len(REFUSAL_PREFIX)]))


def parse_refusal(data: bytes | bytearray) -> str | None:
    """The reason of the refusal line that ``data`` begins (``may_be_refusal``); None
    while the line is still arriving.

    Raises:
        ProtocolError: the line is longer than ``MAX_REFUSAL`` and still not ended.
    """
    if len(data) < len(REFUSAL_PREFIX):
        return None
    end = data.find(b"\n")
    if end < 0:
        if len(data) > MAX_REFUSAL:
            raise ProtocolError("refusal line too long")
        return None
    return bytes(data[len(REFUSAL_PREFIX) : end]).decode("utf-8", "replace").strip()
