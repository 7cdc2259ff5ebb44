"""The client side of one connection, sans I/O: bytes in, replies out, commands in, bytes out.

Four calls, as in websockets' ``protocol.py``: ``receive_data(bytes)``,
``receive_eof()``, ``events_received() -> list[Reply]`` and ``data_to_send() ->
list[bytes]``; plus ``send(Command)``. No event loop, no socket: the asyncio adapter
feeds what the transport read and writes what comes out.

Two framings:

* message (WebSocket): each ``receive_data`` is one whole frame, each item of
  ``data_to_send`` one frame (``codec.join`` of the queued commands);
* stream (raw TCP): the first bytes out are the preamble ``hubbub/1 <codec>\\n``; then
  JSON messages end with ``\\n`` and binary messages are their codec items one after
  the other (each starts with its uvarint length), cut from the stream as they complete.

A TCP server that refuses the preamble answers one line ``hubbub/1 error <reason>``
instead of a first message; it is kept in ``refusal``.

Server pings are answered here (Centrifuge protocol v2: an empty reply is a ping and an
empty command the pong) when the connect result asked for pongs. A malformed message
is recorded in ``error`` and ends the input, never raised at the caller.
"""

from __future__ import annotations

from hubbub.codecs.base import Codec
from hubbub.errors import ProtocolError
from hubbub.protocol.messages import PING, PONG, Command, Reply
from hubbub.protocol.varint import decode_uvarint

PREAMBLE_VERSION = "hubbub/1"
REFUSAL_PREFIX = b"hubbub/1 error "
FATAL_REFUSALS = frozenset({"unknown codec", "bad preamble"})
"""Refusals that the same preamble would get again; others (stale, shutdown) pass."""
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""A longer message on a stream is taken as garbage rather than waited for."""

_UVARINT_MAX_BYTES = 10


class ClientProtocol:
    """Encodes commands and decodes replies for one connection."""

    def __init__(self, codec: Codec, *, stream: bool = False) -> None:
        self.codec = codec
        self.stream = stream
        self.answer_pings = False
        """Set from the connect result's ``pong`` flag."""
        self.error: ProtocolError | None = None
        self.eof = False
        self.pings = 0
        """Pings received so far."""
        self.refusal: str | None = None
        """The reason a TCP server gave for refusing the preamble."""
        self._received = False
        self._items: list[bytes] = []
        self._replies: list[Reply] = []
        self._buffer = bytearray()
        self._out: list[bytes] = []
        if stream:
            self._out.append(f"{PREAMBLE_VERSION} {codec.name}\n".encode())

    # ------------------------------------------------------------------- outbound

    def send(self, command: Command) -> None:
        """Queue ``command``; it goes out with the next ``data_to_send``."""
        self._items.append(self.codec.encode(command))

    def data_to_send(self) -> list[bytes]:
        """The frames (message framing) or byte chunks (stream framing) to write now."""
        if self._items:
            items, self._items = self._items, []
            if not self.stream:
                self._out.append(self.codec.join(items))
            elif self.codec.binary:
                self._out.append(b"".join(items))
            else:
                self._out.append(b"".join(item + b"\n" for item in items))
        out, self._out = self._out, []
        return out

    # -------------------------------------------------------------------- inbound

    def receive_data(self, data: bytes) -> None:
        """One frame (message framing) or the next bytes of the stream."""
        if self.error is not None or self.eof:
            return
        try:
            if self.stream:
                self._buffer += data
                self._cut_stream()
            else:
                self._accept(self.codec.decode(data, Reply))
        except ProtocolError as exc:
            self.error = exc

    def receive_eof(self) -> None:
        """The server closed its side; a partial message left over is an error."""
        if self.stream and self._buffer.strip() and self.error is None:
            self.error = ProtocolError("connection ended inside a message")
        self.eof = True

    def events_received(self) -> list[Reply]:
        """Replies and pushes decoded since the last call, pings left out."""
        replies, self._replies = self._replies, []
        return replies

    def _accept(self, replies: list[Reply]) -> None:
        for reply in replies:
            if reply == PING:
                self.pings += 1
                if self.answer_pings:
                    self.send(PONG)
            else:
                self._replies.append(reply)

    def _cut_stream(self) -> None:
        buf = self._buffer
        if not self._received and not self._take_refusal(buf):
            return
        pos = 0
        if self.codec.binary:
            while (end := _item_end(buf, pos)) is not None:
                self._accept(self.codec.decode(bytes(buf[pos:end]), Reply))
                pos = end
        else:
            while (newline := buf.find(b"\n", pos)) >= 0:
                line = bytes(buf[pos:newline])
                pos = newline + 1
                if line.strip():
                    self._accept(self.codec.decode(line, Reply))
            if len(buf) - pos > MAX_MESSAGE_BYTES:
                raise ProtocolError("message longer than the stream limit")
        if pos:
            self._received = True
        del buf[:pos]

    def _take_refusal(self, buf: bytearray) -> bool:
        """Before the first message: False while a refusal line may still be arriving."""
        head = bytes(buf[: len(REFUSAL_PREFIX)])
        if not REFUSAL_PREFIX.startswith(head):
            return True  # a message, not a refusal
        if len(head) < len(REFUSAL_PREFIX):
            return False
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > 1024:
                raise ProtocolError("refusal line too long")
            return False
        self.refusal = bytes(buf[len(REFUSAL_PREFIX) : end]).decode("utf-8", "replace").strip()
        raise ProtocolError(f"server refused the connection: {self.refusal}")


def _item_end(buf: bytearray, pos: int) -> int | None:
    """Where the item starting at ``pos`` ends, or None while it is incomplete."""
    available = len(buf) - pos
    if available <= 0:
        return None
    head = buf[pos : pos + _UVARINT_MAX_BYTES]
    if all(byte & 0x80 for byte in head) and len(head) < _UVARINT_MAX_BYTES:
        return None  # the length prefix itself is not complete yet
    size, body = decode_uvarint(buf, pos)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError("message longer than the stream limit")
    end = body + size
    return end if end <= len(buf) else None
