"""WebSocket transport edges over real sockets: crafted frames and a client that stops reading.

The websockets library refuses to send frames that break RFC 6455, and reads in the
background; these tests speak the wire themselves on a plain non-blocking socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import pytest
from conftest import ServerFactory, eventually, ws_url
from integration.wsclient import WsClient

import hubbub.transports.websocket as websocket_transport
from hubbub.config import MAX_MESSAGE_BYTES
from hubbub.core.session import Session
from hubbub.server import Server

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CHANNEL = "chat:lobby"


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One masked client frame, as RFC 6455 §5.2 lays it out."""
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return head + key + masked


class RawClient:
    """A WebSocket client on a bare socket: it reads only when told to."""

    def __init__(self, sock: socket.socket) -> None:
        """Wrap a connected, upgraded, non-blocking socket."""
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = b""

    @classmethod
    async def open(cls, server: Server, *, rcvbuf: int | None = None) -> RawClient:
        """Connect and upgrade; ``rcvbuf`` shrinks the receive buffer, as on a slow link."""
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        client = cls(sock)
        await client.loop.sock_connect(sock, ("127.0.0.1", server.websocket.port))
        key = base64.b64encode(os.urandom(16)).decode()
        await client.send_bytes(
            "GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await client.read_until(b"\r\n\r\n")
        client.buffer = client.buffer.split(b"\r\n\r\n", 1)[1]
        return client

    async def send_bytes(self, data: bytes) -> None:
        """Write raw bytes."""
        await self.loop.sock_sendall(self.sock, data)

    async def send(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        """Write one frame."""
        await self.send_bytes(frame(opcode, payload, fin=fin))

    async def read_until(self, marker: bytes) -> None:
        """Read until ``marker`` has arrived (bounded by the test's timeout)."""
        async with asyncio.timeout(10):
            while marker not in self.buffer:
                chunk = await self.loop.sock_recv(self.sock, 65536)
                if not chunk:
                    raise ConnectionError("closed before the marker arrived")
                self.buffer += chunk

    async def next_frame(self) -> tuple[int, bytes]:
        """Read one server frame (servers do not mask): its opcode and payload."""
        async with asyncio.timeout(10):
            while True:
                parsed = self._parse()
                if parsed is not None:
                    return parsed
                chunk = await self.loop.sock_recv(self.sock, 65536)
                if not chunk:
                    raise ConnectionError("closed without a frame")
                self.buffer += chunk

    def _parse(self) -> tuple[int, bytes] | None:
        data = self.buffer
        if len(data) < 2:
            return None
        size, start = data[1] & 0x7F, 2
        if size == 126:
            if len(data) < 4:
                return None
            size, start = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            if len(data) < 10:
                return None
            size, start = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < start + size:
            return None
        self.buffer = data[start + size :]
        return data[0] & 0x0F, data[start : start + size]

    async def close_frame(self) -> tuple[int, str]:
        """Skip data frames up to the server's close frame: its code and reason."""
        while True:
            opcode, payload = await self.next_frame()
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def shut(self) -> None:
        """Let the socket go."""
        self.sock.close()


async def connected(server: Server, *, rcvbuf: int | None = None) -> RawClient:
    """A raw client past its connect command."""
    client = await RawClient.open(server, rcvbuf=rcvbuf)
    await client.send(TEXT, b'{"id":1,"connect":{}}')
    await client.read_until(b'"client"')
    client.buffer = b""
    return client


# ------------------------------------------------------------------ fragmentation

PRESENCE_STATS = b'{"id":2,"presence_stats":{"channel":"chat:a"}}'


async def test_fragmented_message_with_a_control_frame_between_is_answered(
    server: Server,
) -> None:
    """Start, continuation, final continuation, a ping among them: one command, answered."""
    client = await connected(server)
    await client.send(TEXT, PRESENCE_STATS[:10], fin=False)
    await client.send(PING, b"hi")
    await client.send(CONT, PRESENCE_STATS[10:20], fin=False)
    await client.send(CONT, PRESENCE_STATS[20:])
    assert await client.next_frame() == (PONG, b"hi")
    opcode, payload = await client.next_frame()
    assert opcode == TEXT and json.loads(payload)["id"] == 2
    client.shut()


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_new_message_inside_a_fragmented_one_closes_1002(server: Server, opcode: int) -> None:
    """RFC 6455 §5.4: a data frame may not start while a fragmented message is open.

    Neither message runs: the first frame the client gets is the close.
    """
    client = await connected(server)
    await client.send(TEXT, PRESENCE_STATS[:10], fin=False)
    await client.send(opcode, PRESENCE_STATS)
    assert await client.next_frame() == (CLOSE, struct.pack("!H", 1002) + b"protocol error")
    metrics = server.node.metrics.render()[0].decode()
    assert 'hubbub_disconnects_total{code="1002"} 1.0' in metrics
    client.shut()


@pytest.mark.parametrize("fin", [True, False])
async def test_continuation_without_a_start_closes_1002(server: Server, fin: bool) -> None:
    """RFC 6455 §5.4: a continuation frame with no message open is a protocol error."""
    client = await connected(server)
    await client.send(CONT, PRESENCE_STATS, fin=fin)
    if not fin:
        await client.send(CONT, b"")
    assert await client.next_frame() == (CLOSE, struct.pack("!H", 1002) + b"protocol error")
    client.shut()


# ------------------------------------------------------- a client that stops reading


async def stalled_subscriber(server: Server) -> tuple[RawClient, Session]:
    """A subscriber with ~300 KB of publications stuck in the server's send buffer."""
    victim = await connected(server, rcvbuf=4096)
    await victim.send(TEXT, json.dumps({"id": 2, "subscribe": {"channel": CHANNEL}}).encode())
    await victim.read_until(b'"id":2')
    (session,) = server.node.sessions.values()
    connection = session.connection
    assert isinstance(connection, websocket_transport._WebSocketConnection)
    assert connection._transport is not None
    raw = connection._transport.underlying_transport
    raw.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    publisher = await WsClient.open(ws_url(server))
    await publisher.connect()
    for n in range(30):  # well under client.write_buffer_bytes: not closed as slow
        await publisher.publish(CHANNEL, {"n": n, "pad": "x" * 10_000})
    await publisher.close()
    await eventually(lambda: raw.get_write_buffer_size() > 100_000)
    return victim, session


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The close grace cut to a fraction of a second, so a test need not wait 5 s."""
    monkeypatch.setattr(websocket_transport, "CLOSE_GRACE", 0.1)


@pytest.mark.usefixtures("short_grace")
async def test_closed_client_that_stops_reading_is_dropped_after_the_grace(
    start_server: ServerFactory,
) -> None:
    """Closed by the server with bytes unsent and never read: the socket goes after the grace.

    A graceful close would wait for the buffer to drain, holding socket and buffer for good.
    """
    server = await start_server()
    victim, session = await stalled_subscriber(server)
    await victim.send(TEXT, b"{not json")  # closed 3501 bad request
    await eventually(lambda: session.closed)
    await eventually(lambda: session not in server.node._open)
    victim.shut()


@pytest.mark.usefixtures("short_grace")
async def test_client_close_then_no_reading_is_dropped_after_the_grace(
    start_server: ServerFactory,
) -> None:
    """A client that sends its close frame and then stops reading is dropped all the same."""
    server = await start_server()
    victim, session = await stalled_subscriber(server)
    await victim.send(CLOSE, struct.pack("!H", 1000))
    await eventually(lambda: session not in server.node._open)
    victim.shut()


# ------------------------------------------------------------------ limits at their bound


@pytest.mark.parametrize("protobuf", [False, True])
async def test_clients_connect_with_limits_at_their_upper_bound(
    start_server: ServerFactory, protobuf: bool
) -> None:
    """The largest accepted message size and ping interval still serve clients: the handshake
    (picows gets twice the size) and the connect reply (ping is a uint32) both work."""
    server = await start_server(
        **{"client.max_message_bytes": MAX_MESSAGE_BYTES, "client.ping_interval": "24h"}
    )
    client = await WsClient.open(ws_url(server), protobuf=protobuf)
    reply = await client.connect()
    assert reply["ping"] == 86400
    await client.subscribe(CHANNEL)
    await client.close()
