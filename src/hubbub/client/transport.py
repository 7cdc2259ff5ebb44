"""Transports of the client: bytes to and from the server, nothing else.

A ``ClientTransport`` writes what the protocol core produced and hands what it reads to
a ``TransportSink`` (the client's connection). Two implementations, chosen by the URL:

* ``ws://`` / ``wss://`` — WebSocket on picows. Text frames for JSON, binary for the
  binary codecs; the codec's ``subprotocol`` is offered in the upgrade and, for binary
  codecs, must come back (a server that does not know it would answer in JSON).
  The server's disconnect code and reason are the close frame's.
* ``tcp://host:port`` — hubbub's raw TCP transport: a stream (see
  :mod:`hubbub.client.protocol` for its framing); the server's disconnect arrives as a
  Disconnect push, then EOF.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from hubbub.codecs.base import Codec
from hubbub.errors import ProtocolError

WS_SCHEMES = ("ws", "wss")
TCP_SCHEMES = ("tcp",)


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """The code and reason the server closed a WebSocket with."""

    code: int
    reason: str


class TransportSink(Protocol):
    """Where a transport delivers what it reads; must not raise."""

    def data_received(self, data: bytes) -> None:
        """One WebSocket message, or the next bytes of a TCP stream."""
        ...

    def eof_received(self) -> None:
        """The server closed its side of a TCP stream."""
        ...

    def connection_lost(self, close: CloseFrame | None, exc: BaseException | None) -> None:
        """The transport is gone; ``close`` is the server's close frame, if one came."""
        ...


class ClientTransport(Protocol):
    """A connection to the server that carries frames (WebSocket) or a stream (TCP)."""

    stream: bool
    """True when bytes form a stream that the protocol must cut into messages."""

    def write(self, data: bytes) -> None:
        """Send one frame, or the next bytes of the stream."""
        ...

    def close(self) -> None:
        """Close after what was written (WebSocket: close frame 1000)."""
        ...

    def abort(self) -> None:
        """Drop the connection now, discarding unsent data."""
        ...


def check_url(url: str) -> None:
    """Refuse at once a URL no attempt could ever open (retrying would loop for good).

    Raises:
        ValueError: an unsupported scheme, no host, or (TCP, which has no default port)
            no port, or a port that is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme not in WS_SCHEMES + TCP_SCHEMES:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r} (use ws, wss or tcp)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the port in {url!r} is not a port number") from None
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    if parts.scheme in TCP_SCHEMES and port is None:
        raise ValueError(f"a TCP URL needs a host and a port: {url!r}")


async def open_transport(
    url: str,
    codec: Codec,
    sink: TransportSink,
    *,
    headers: Mapping[str, str] | None = None,
    ssl: ssl_module.SSLContext | None = None,
    max_message_bytes: int = 16 * 1024 * 1024,
) -> ClientTransport:
    """Connect to ``url``; the caller bounds the time it takes.

    Raises:
        ValueError: a URL no attempt could open (``check_url``).
        OSError, picows.WSError: the connection or the upgrade failed.
        ProtocolError: the server did not accept the codec's subprotocol.
    """
    check_url(url)
    if urlsplit(url).scheme in WS_SCHEMES:
        return await _open_websocket(url, codec, sink, headers, ssl, max_message_bytes)
    return await _open_tcp(url, sink, ssl)


# ------------------------------------------------------------------------ WebSocket


class _WebSocketListener(WSListener):
    """picows callbacks → sink; frames reassembled, the close frame remembered."""

    def __init__(self, sink: TransportSink, limit: int) -> None:
        self._sink = sink
        self._limit = limit
        self._fragments: list[bytes] = []
        self._close: CloseFrame | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is WSMsgType.TEXT or msg_type is WSMsgType.BINARY:
            if frame.fin and not self._fragments:
                self._sink.data_received(frame.get_payload_as_bytes())
            else:
                self._fragment(transport, frame)
        elif msg_type is WSMsgType.CONTINUATION:
            self._fragment(transport, frame)
        elif msg_type is WSMsgType.CLOSE:
            code = frame.get_close_code()
            self._close = CloseFrame(int(code.value), frame.get_close_reason() or "")
            if not transport.is_close_frame_sent:
                transport.send_close(code, frame.get_close_message())
            transport.disconnect()

    def _fragment(self, transport: WSTransport, frame: WSFrame) -> None:
        self._fragments.append(frame.get_payload_as_bytes())
        if sum(map(len, self._fragments)) > self._limit:
            self._fragments.clear()
            transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
            transport.disconnect()
        elif frame.fin:
            message = b"".join(self._fragments)
            self._fragments.clear()
            self._sink.data_received(message)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._sink.connection_lost(self._close, None)


class _WebSocketTransport:
    stream = False

    def __init__(self, transport: WSTransport, binary: bool) -> None:
        self._transport = transport
        self._msg_type = WSMsgType.BINARY if binary else WSMsgType.TEXT

    def write(self, data: bytes) -> None:
        self._transport.send(self._msg_type, data)

    def close(self) -> None:
        if not self._transport.is_disconnected:
            self._transport.send_close(WSCloseCode.OK, b"disconnect called")
            self._transport.disconnect()

    def abort(self) -> None:
        self._transport.disconnect(graceful=False)


async def _open_websocket(
    url: str,
    codec: Codec,
    sink: TransportSink,
    headers: Mapping[str, str] | None,
    ssl: ssl_module.SSLContext | None,
    limit: int,
) -> ClientTransport:
    extra = dict(headers or {})
    if codec.subprotocol:
        extra["Sec-WebSocket-Protocol"] = codec.subprotocol
    transport, _ = await ws_connect(
        lambda: _WebSocketListener(sink, limit),
        url,
        ssl_context=ssl,
        extra_headers=extra,
        websocket_handshake_timeout=None,  # the caller's timeout covers the whole connect
        enable_auto_pong=True,
        max_frame_size=limit,
    )
    chosen = transport.response.headers.get("Sec-WebSocket-Protocol", "")
    if codec.binary and chosen != codec.subprotocol:
        transport.disconnect(graceful=False)
        raise ProtocolError(f"server did not accept subprotocol {codec.subprotocol!r}")
    return _WebSocketTransport(transport, codec.binary)


# ------------------------------------------------------------------------------ TCP


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, sink: TransportSink) -> None:
        self._sink = sink

    def data_received(self, data: bytes) -> None:
        self._sink.data_received(data)

    def eof_received(self) -> bool:
        self._sink.eof_received()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._sink.connection_lost(None, exc)


class _TcpTransport:
    stream = True

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()


async def _open_tcp(
    url: str, sink: TransportSink, ssl: ssl_module.SSLContext | None
) -> ClientTransport:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None  # check_url
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(
        lambda: _TcpProtocol(sink), parts.hostname, parts.port, ssl=ssl
    )
    return _TcpTransport(transport)
