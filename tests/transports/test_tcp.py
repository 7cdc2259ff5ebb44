"""Tests for hubbub.transports.tcp without sockets: a fake transport fed bytes.

The framing (preamble, lines, length prefixes) is tested in tests/protocol/test_framing.py;
the same behaviour over real sockets is in tests/integration (test_tcp.py and the
transport-parametrized suites).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hubbub.codecs.json import JsonCodec
from hubbub.config import Settings
from hubbub.core.node import Node
from hubbub.protocol import codes
from hubbub.transports.tcp import _TcpConnection, disconnect_push


def test_disconnect_push_carries_code_and_reason() -> None:
    """The Disconnect push carries the close code, the reason and the reconnect advice."""
    push = JsonCodec().encode(disconnect_push(codes.SHUTDOWN))
    assert json.loads(push) == {
        "push": {"disconnect": {"code": 3001, "reason": "shutdown, reconnect", "reconnect": True}}
    }


# ------------------------------------------------------------------ the connection


class FakeTransport:
    """Records what the connection writes and how it ends."""

    def __init__(self) -> None:
        """Open, nothing written."""
        self.written = bytearray()
        self.eof = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        """Keep the bytes."""
        self.written += data

    def writelines(self, parts: Any) -> None:
        """Keep the bytes."""
        for part in parts:
            self.written += part

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """No socket, no peer."""
        return default

    def get_write_buffer_size(self) -> int:
        """Everything is taken at once."""
        return 0

    def can_write_eof(self) -> bool:
        """A TCP stream can half-close."""
        return True

    def write_eof(self) -> None:
        """Record the half-close."""
        self.eof = True

    def is_closing(self) -> bool:
        """Closing once the half-close or abort happened."""
        return self.eof or self.aborted

    def close(self) -> None:
        """Like a half-close, for these tests."""
        self.eof = True

    def abort(self) -> None:
        """Record the abort."""
        self.aborted = True


async def _connection() -> tuple[Node, _TcpConnection, FakeTransport]:
    node = Node(Settings.model_validate({"client": {"allow_anonymous": True}}))
    connection = _TcpConnection(node, set())
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return node, connection, transport


async def test_preamble_and_connect_fed_byte_by_byte() -> None:
    """A preamble and a command arriving one byte per read still open a JSON session."""
    node, connection, transport = await _connection()
    for byte in b'hubbub/1 json\n{"id":1,"connect":{}}\n':
        connection.data_received(bytes([byte]))
    async with asyncio.timeout(2):
        while not transport.written.endswith(b"\n"):
            await asyncio.sleep(0)
    reply = json.loads(transport.written)
    assert reply["id"] == 1 and reply["connect"]["client"] in node.sessions
    connection.connection_lost(None)
    assert not node.sessions


async def test_refused_connection_drops_further_input_and_half_closes() -> None:
    """After the error line the connection half-closes and ignores what the client sends."""
    _, connection, transport = await _connection()
    connection.data_received(b"hubbub/1 yaml\n")
    connection.data_received(b'{"id":1,"connect":{}}\n')
    assert bytes(transport.written) == b"hubbub/1 error unknown codec\n"
    assert transport.eof and not transport.aborted
    assert connection.eof_received() is False  # the client's EOF completes the close
    connection.connection_lost(None)


async def test_slow_client_is_aborted_not_half_closed() -> None:
    """A slow client's full buffer is not waited on: the connection is aborted."""
    node, connection, transport = await _connection()
    connection.data_received(b'hubbub/1 json\n{"id":1,"connect":{}}\n')
    async with asyncio.timeout(2):
        while not node.sessions:
            await asyncio.sleep(0)
    connection.close(codes.SLOW)
    assert transport.aborted and not transport.eof
    connection.connection_lost(None)
