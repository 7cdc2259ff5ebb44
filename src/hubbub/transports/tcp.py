"""Raw TCP transport: the client protocol without WebSocket, for native clients.

The wire, per connection (``server.tcp_port``):

1. The client opens with one preamble line naming the codec, at most 64 bytes with
   its ``\\n``, within ``client.stale_timeout``: ``hubbub/1 json``, ``hubbub/1 protobuf``,
   ``hubbub/1 msgpack`` (any registered codec name). The server does not answer a
   good preamble; a bad one gets a single line ``hubbub/1 error <reason>\\n`` (reason
   ``unknown codec``, ``bad preamble``, ``stale`` or ``shutdown``) and the close.
2. Then messages both ways, framed by the codec's kind:

   * text codecs (JSON): one message per line, each followed by ``\\n``;
   * binary codecs (Protobuf, msgpack): ``uvarint(len) + message``, back to back,
     exactly the items those codecs encode.

   A message over ``client.max_message_bytes`` ends the connection "message too big".
3. The server ends a connection by sending a ``Disconnect`` push with the code and
   reason (PROTOCOL.md §8.4: transports without a close frame deliver the disconnect
   as a push), then its EOF; it drops the socket at the client's EOF or CLOSE_GRACE
   later. EOF from the client, even mid-message, is a lost connection.

The framing (preamble, lines, length prefixes) is sans-I/O, in
:mod:`hubbub.protocol.framing`, shared with the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import structlog

from hubbub.codecs.base import Codec
from hubbub.core.node import Node
from hubbub.core.session import Session
from hubbub.errors import ProtocolError
from hubbub.protocol import codes
from hubbub.protocol.codes import Disconnect
from hubbub.protocol.framing import (
    BAD_PREAMBLE,
    UNKNOWN_CODEC,
    StreamFramer,
    format_refusal,
    parse_preamble,
    stream_framer,
)
from hubbub.protocol.messages import Disconnect as DisconnectPush
from hubbub.protocol.messages import Push, Reply
from hubbub.transports.sockets import keepalive_on_listeners

CLOSE_GRACE = 5.0
"""Seconds a closing connection waits for the client's EOF before it is dropped."""

_log = structlog.get_logger(__name__)


def disconnect_push(disconnect: Disconnect) -> Reply:
    """The Disconnect push that carries a close code where there is no close frame."""
    return Reply(
        push=Push(
            disconnect=DisconnectPush(
                code=disconnect.code, reason=disconnect.reason, reconnect=disconnect.reconnect
            )
        )
    )


# ------------------------------------------------------------------------ connection


class _TcpConnection(asyncio.Protocol):
    """One TCP connection: the asyncio protocol and its session's Connection."""

    transport_name = "tcp"
    __slots__ = (
        "_codec",
        "_ending",
        "_framer",
        "_pending",
        "_preamble",
        "_session",
        "_timer",
        "_transport",
        "node",
    )

    def __init__(self, node: Node, pending: set[_TcpConnection]) -> None:
        self.node = node
        self._pending = pending  # the server's connections still in their preamble
        self._preamble = bytearray()
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._codec: Codec | None = None
        self._framer: StreamFramer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ending = False  # our last bytes are written; what comes in is dropped

    @property
    def remote(self) -> str:
        """The peer's ``host:port``, asked when needed (hook context, logs), not kept."""
        peer = None if self._transport is None else self._transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if peer else ""

    # ---------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
        self._transport = cast(asyncio.Transport, transport)
        self._pending.add(self)
        self._arm(self.node.settings.client.stale_timeout, self.refuse, "stale")

    def data_received(self, data: bytes) -> None:
        if self._ending:
            return
        if self._session is None:
            self._read_preamble(data)
            return
        assert self._framer is not None
        try:
            chunk = self._framer.feed(data)
        except ProtocolError as exc:
            _log.info("bad TCP framing", remote=self.remote, error=str(exc))
            self._session.close(exc.disconnect)
            return
        if chunk is not None:
            self._session.data_received(chunk)

    def eof_received(self) -> bool:
        return False  # the client is gone; a half-sent message is dropped with it

    def connection_lost(self, exc: Exception | None) -> None:
        self._pending.discard(self)
        self._disarm()
        if self._session is not None:
            self._session.connection_lost()

    def _arm(self, delay: float, callback: Callable[..., object], *args: Any) -> None:
        """Set the one timer of this connection: the preamble deadline or the close grace."""
        self._disarm()
        self._timer = self.node.loop.call_later(delay, callback, *args)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ preamble

    def _read_preamble(self, data: bytes) -> None:
        self._preamble += data
        try:
            found = parse_preamble(self._preamble)
        except ProtocolError:
            self.refuse(BAD_PREAMBLE)
            return
        if found is None:
            return  # the line is still arriving
        name, end = found
        rest = bytes(self._preamble[end:])
        self._preamble.clear()
        try:
            codec = self.node.codecs.get(name)
        except KeyError:
            self.refuse(UNKNOWN_CODEC)
            return
        self._open(codec)
        if rest:
            self.data_received(rest)

    def _open(self, codec: Codec) -> None:
        self._pending.discard(self)
        self._disarm()
        self._codec = codec
        limit = self.node.settings.client.max_message_bytes
        self._framer = stream_framer(binary=codec.binary, limit=limit)
        self._session = self.node.accept(self, codec)

    def refuse(self, reason: str) -> None:
        """Answer a connection that has no session yet with one error line and close it."""
        transport = self._transport
        if self._session is not None or transport is None or self._ending:
            return
        _log.info("TCP connection refused", remote=self.remote, reason=reason)
        transport.write(format_refusal(reason))
        self._end(abort=False)

    # -------------------------------------------------------- session Connection

    def write(self, frame: bytes) -> int:
        transport = self._transport
        assert transport is not None and self._codec is not None
        if self._codec.binary:
            transport.write(frame)
        else:
            transport.writelines((frame, b"\n"))  # the codec joined the lines
        return transport.get_write_buffer_size()

    def close(self, disconnect: Disconnect) -> None:
        if self._transport is None or self._ending:
            return
        if self._codec is not None:
            self.write(self._codec.encode(disconnect_push(disconnect)))  # a frame of one
        # A slow client's buffer is full: do not wait on it.
        self._end(abort=disconnect is codes.SLOW)

    def _end(self, *, abort: bool) -> None:
        """Finish after what is written: FIN, then drop input until the client closes.

        Closing at once while the client's bytes are still unread makes the kernel send
        a reset, which can destroy our last message (the Disconnect push or the error
        line) before the client reads it. So, like a WebSocket close handshake: half-close,
        wait for the client's EOF, give up after CLOSE_GRACE.
        """
        transport = self._transport
        assert transport is not None
        self._ending = True
        if abort:
            transport.abort()
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()  # sent once the buffer is flushed
            else:
                transport.close()
        except OSError:  # the client is gone already
            transport.abort()
            return
        self._arm(CLOSE_GRACE, transport.abort)


# ---------------------------------------------------------------------------- server


class TcpServer:
    """The raw TCP port of a node (``server.tcp_port``)."""

    def __init__(self, node: Node, *, host: str, port: int, reuse_port: bool = False) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._pending: set[_TcpConnection] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpConnection(self.node, self._pending),
            self.host,
            self.port,
            reuse_port=self.reuse_port or None,
        )
        sockets = list(self._server.sockets or ())
        keepalive_on_listeners(sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    def stop_accepting(self) -> None:
        """Accept no more connections; drop those that have not said their codec yet."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._pending):
            connection.refuse("shutdown")


__all__ = ["TcpServer", "disconnect_push"]
