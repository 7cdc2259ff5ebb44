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
  the other (each starts with its uvarint length), cut from the stream as they complete
  by the framing of :mod:`hubbub.protocol.framing`, the server's own.

A TCP server that refuses the preamble answers one line ``hubbub/1 error <reason>``
instead of a first message; it is kept in ``refusal``.

Server pings are answered here (Centrifuge protocol v2: an empty reply is a ping and an
empty command the pong) when the connect result asked for pongs. A malformed message
is recorded in ``error`` and ends the input, never raised at the caller.
"""

from __future__ import annotations

from hubbub.codecs.base import Codec
from hubbub.errors import ProtocolError
from hubbub.protocol.framing import (
    BAD_PREAMBLE,
    UNKNOWN_CODEC,
    format_preamble,
    may_be_refusal,
    parse_refusal,
    stream_framer,
)
from hubbub.protocol.messages import PING, PONG, Command, Reply

FATAL_REFUSALS = frozenset({UNKNOWN_CODEC, BAD_PREAMBLE})
"""Refusals that the same preamble would get again; others (stale, shutdown) pass."""
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""A longer message on a stream is taken as garbage rather than waited for."""


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
        self._items: list[bytes] = []
        self._replies: list[Reply] = []
        self._head = bytearray()
        """The first bytes of a stream, kept while they may still be a refusal line."""
        self._head_done = not stream
        self._framer = stream_framer(binary=codec.binary, limit=MAX_MESSAGE_BYTES)
        self._out: list[bytes] = []
        if stream:
            self._out.append(format_preamble(codec.name))

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
                self._receive_stream(data)
            else:
                self._accept(self.codec.decode(data, Reply))
        except ProtocolError as exc:
            self.error = exc

    def receive_eof(self) -> None:
        """The server closed its side; a partial message left over is an error."""
        leftover = self._head + self._framer.buffered
        if self.stream and leftover.strip() and self.error is None:
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

    def _receive_stream(self, data: bytes) -> None:
        if not self._head_done:
            self._head += data
            if not self._take_refusal(self._head):
                return
            data = bytes(self._head)
            self._head.clear()
            self._head_done = True
        chunk = self._framer.feed(data)
        if chunk is None:
            return
        for item in self._framer.split(chunk):
            if self.codec.binary or item.strip():  # blank lines are skipped
                self._accept(self.codec.decode(item, Reply))

    def _take_refusal(self, head: bytearray) -> bool:
        """Before the first message: False while a refusal line may still be arriving."""
        if not may_be_refusal(head):
            return True  # a message, not a refusal
        reason = parse_refusal(head)
        if reason is None:
            return False
        self.refusal = reason
        raise ProtocolError(f"server refused the connection: {reason}")
