"""WebSocket transport on picows: frames in, frames out, nothing else.

Each accepted connection gets a ``_WebSocketConnection``, the listener picows calls
and the ``Connection`` its session writes to. The upgrade handler routes by path:
``/connection/websocket`` upgrades, ``/healthz`` and ``/readyz`` answer plain GETs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import structlog
from multidict import CIMultiDict, CIMultiDictProxy
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from hubbub.codecs.base import Codec
from hubbub.core.node import Node
from hubbub.core.session import Session
from hubbub.protocol import codes
from hubbub.protocol.codes import Disconnect
from hubbub.transports.sockets import keepalive_on_listeners

WEBSOCKET_PATH = "/connection/websocket"
CLOSE_GRACE = 5.0
"""Seconds to wait for the client's close frame (or to flush) before dropping the socket."""

_log = structlog.get_logger(__name__)
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class _WebSocketConnection(WSListener):
    """One WebSocket connection: picows listener and the session's Connection."""

    transport_name = "websocket"
    __slots__ = (
        "_fragments",
        "_fragments_size",
        "_limit",
        "_msg_type",
        "_session",
        "_transport",
        "codec",
        "node",
    )

    def __init__(self, node: Node, codec: Codec) -> None:
        self.node = node
        self.codec = codec
        self._msg_type = WSMsgType.BINARY if codec.binary else WSMsgType.TEXT
        self._limit = node.settings.client.max_message_bytes
        # A fragmented message is rare: the list exists only while one arrives.
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._transport: WSTransport | None = None
        self._session: Session | None = None

    @property
    def remote(self) -> str:
        """The peer's ``host:port``, asked when needed (hook context, logs), not kept."""
        if self._transport is None:
            return ""
        peer = self._transport.underlying_transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if peer else ""

    # ------------------------------------------------------------ picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._transport = transport
        # picows keeps the upgrade request and response for the connection's life;
        # their header dicts are ~2 KB per idle connection that nothing reads again.
        # A read-only empty proxy: a late reader sees no headers, a writer fails loudly.
        transport.request.headers = _NO_HEADERS  # type: ignore[assignment]
        transport.response.headers = _NO_HEADERS  # type: ignore[assignment]
        self._session = self.node.accept(self, self.codec)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        session = self._session
        if session is None:
            return
        msg_type = frame.msg_type
        if msg_type is WSMsgType.TEXT or msg_type is WSMsgType.BINARY:
            if frame.fin and self._fragments is None:
                if frame.payload_size > self._limit:
                    session.close(codes.MESSAGE_TOO_BIG)
                    return
                # UTF-8 is the JSON codec's check, for every frame type and transport.
                session.data_received(frame.get_payload_as_bytes())
            elif self._fragments is None:
                self._fragments = []  # the first frame of a fragmented message
                self._fragment(session, frame)
            else:
                # RFC 6455 §5.4: no new message may start inside a fragmented one.
                self._protocol_error(session)
        elif msg_type is WSMsgType.CONTINUATION:
            if self._fragments is None:
                self._protocol_error(session)  # a continuation of nothing (§5.4)
            else:
                self._fragment(session, frame)
        elif msg_type is WSMsgType.CLOSE:
            # The client closes, or answers our close: complete the handshake, let go.
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()  # once what is written is flushed
            if transport.underlying_transport.get_write_buffer_size():
                # A client that stops reading would hold the socket and buffer for good.
                self.node.loop.call_later(CLOSE_GRACE, transport.disconnect, False)

    def _fragment(self, session: Session, frame: WSFrame) -> None:
        fragments = self._fragments
        assert fragments is not None
        payload = frame.get_payload_as_bytes()
        fragments.append(payload)
        self._fragments_size += len(payload)
        if self._fragments_size > self._limit:
            self._drop_fragments()
            session.close(codes.MESSAGE_TOO_BIG)
            return
        if frame.fin:
            self._drop_fragments()
            session.data_received(b"".join(fragments))

    def _drop_fragments(self) -> None:
        self._fragments = None
        self._fragments_size = 0

    def _protocol_error(self, session: Session) -> None:
        """Frames out of order: the stream cannot be trusted, so close 1002 (RFC 6455 §7.4.1)."""
        self._drop_fragments()
        session.close(codes.PROTOCOL_ERROR)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._session is not None:
            self._session.connection_lost()

    # -------------------------------------------------------- session Connection

    def write(self, frame: bytes) -> int:
        transport = self._transport
        assert transport is not None
        transport.send(self._msg_type, frame)
        size: int = transport.underlying_transport.get_write_buffer_size()
        return size

    def close(self, disconnect: Disconnect) -> None:
        transport = self._transport
        if transport is None or transport.is_disconnected:
            return
        # The disconnect code and reason are the close frame's (PROTOCOL.md §8.4).
        transport.send_close(disconnect.code, disconnect.reason.encode())  # type: ignore[arg-type]
        if disconnect is codes.SLOW:
            transport.disconnect(graceful=False)  # its buffer is full: do not wait on it
            return
        # Then drop it, unsent bytes and all: a graceful close would wait for a client
        # that stopped reading to drain the buffer, and keep both for good.
        self.node.loop.call_later(CLOSE_GRACE, transport.disconnect, False)


def choose_codec(node: Node, request: WSUpgradeRequest) -> tuple[Codec | None, str]:
    """The codec a client asks for: subprotocol first, then ``?format=``; JSON otherwise."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for name in (p.strip() for p in offered.split(",")):
        if name:
            codec = node.codecs.by_subprotocol(name)
            if codec is not None:
                return codec, name
    query = parse_qs(urlsplit(request.path.decode("latin-1")).query)
    fmt = (query.get("format") or query.get("cf_protocol") or ["json"])[0]
    try:
        return node.codecs.get(fmt), ""
    except KeyError:
        return None, ""


def _plain(status: int, body: bytes) -> WSUpgradeResponseWithListener:
    if status >= 400:
        response = WSUpgradeResponse.create_error_response(status, body)
    else:
        response = WSUpgradeResponse.create_ok_response(body)
    return WSUpgradeResponseWithListener(response, None)


class WebSocketServer:
    """The public WebSocket port of a node."""

    def __init__(
        self,
        node: Node,
        *,
        host: str,
        port: int,
        ready: Callable[[], bool] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        self._ready = ready or (lambda: True)
        self._server: asyncio.Server | None = None
        self._closing = False

    def _route(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener | None:
        path = urlsplit(request.path.decode("latin-1")).path
        if path == WEBSOCKET_PATH:
            if self._closing:  # accepted before the listener closed, upgraded after
                return _plain(503, b"shutting down\n")
            codec, subprotocol = choose_codec(self.node, request)
            if codec is None:
                return _plain(400, b"unknown format\n")
            headers = {"Sec-WebSocket-Protocol": subprotocol} if subprotocol else None
            listener = _WebSocketConnection(self.node, codec)
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_101_response(headers), listener
            )
        if path == "/healthz":
            return _plain(200, b"ok\n")
        if path == "/readyz":
            return _plain(200, b"ready\n") if self._ready() else _plain(503, b"not ready\n")
        return _plain(404, b"not found\n")

    async def start(self) -> None:
        self._server = await ws_create_server(
            self._route,
            self.host,
            self.port,
            # picows drops bigger frames itself, with its own close reason; above our
            # limit but below this one we close with "message too big" and count it.
            max_frame_size=2 * self.node.settings.client.max_message_bytes,
            enable_auto_pong=True,
            websocket_handshake_timeout=10,
            # Commands are small; the buffer grows for a big one. 16 KiB (the default)
            # per idle connection would be most of its memory.
            read_buffer_init_size=2048,
            # aiofastnet transports cost about 5 KiB more per connection than uvloop's.
            use_aiofastnet=False,
            # Only --workers shares a port; otherwise a second server must fail to bind.
            reuse_port=self.reuse_port or None,
        )
        sockets = list(self._server.sockets or ())
        keepalive_on_listeners(sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    def stop_accepting(self) -> None:
        """Close the listener; a handshake already under way is refused (503), so no
        session starts on a node that is shutting down."""
        self._closing = True
        if self._server is not None:
            self._server.close()


__all__ = ["WEBSOCKET_PATH", "WSCloseCode", "WebSocketServer", "choose_codec"]
