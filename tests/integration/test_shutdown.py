"""The ``hubbub`` command as a subprocess: graceful shutdown on SIGTERM, ``config check``.

Shutdown is checked over WebSocket and raw TCP (the server runs with ``tcp_port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import EXAMPLE, START_TIMEOUT, UNIT, chat_settings, free_port, spawn_hubbub

from hubbub.server import Server
from integration.conftest import TRANSPORTS, Client
from integration.tcpclient import TcpClient
from integration.wsclient import WAIT, http_get, open_client

SHUTDOWN_TIMEOUT = 10 * UNIT
UPGRADE = (
    b"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
"""A raw WebSocket upgrade request, for clients that then misbehave."""


class Served(NamedTuple):
    """A running ``hubbub serve``: the process, its WebSocket port and its TCP port."""

    proc: asyncio.subprocess.Process
    port: int
    tcp_port: int


async def _connected(served: Served, transport: str, protobuf: bool = False) -> Client:
    """A connected client of ``transport`` on the served process."""
    if transport == "tcp":
        client = await TcpClient.open(served.tcp_port, protobuf=protobuf)
        await client.connect()
        return client
    url = f"ws://127.0.0.1:{served.port}/connection/websocket"
    return await open_client(url, protobuf=protobuf)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """``hubbub serve`` on the example config (short shutdown_timeout) and free ports,
    TCP on; killed if still alive."""
    config = tmp_path / "chat.yaml"
    tcp_port = free_port()
    text = EXAMPLE.read_text().replace(
        "server:\n",
        f"server:\n  shutdown_timeout: {SHUTDOWN_TIMEOUT}\n  tcp_port: {tcp_port}\n",
        1,
    )
    assert "shutdown_timeout" in text
    config.write_text(text)
    port, internal = free_port(), free_port()
    proc = await spawn_hubbub(
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--internal-port",
        str(internal),
    )
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                try:
                    status, _ = await http_get(port, "/readyz")
                except OSError:
                    status = 0
                if status == 200:
                    break
                await asyncio.sleep(2 * UNIT)
        yield Served(proc, port, tcp_port)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sigterm_sends_shutdown_reconnect_and_exits_zero(
    served: Served, transport: str
) -> None:
    """On SIGTERM connected clients get close 3001 "shutdown, reconnect" and hubbub exits 0."""
    proc = served.proc
    clients = [
        await _connected(served, transport),
        await _connected(served, transport, protobuf=True),
    ]
    await clients[0].subscribe("chat:lobby")

    proc.send_signal(signal.SIGTERM)
    for client in clients:
        assert await client.closed() == (3001, "shutdown, reconnect")
    returncode = await asyncio.wait_for(proc.wait(), WAIT * 5)
    assert returncode == 0, await proc.stderr.read()  # type: ignore[union-attr]


async def test_sigterm_with_no_clients_exits_zero(served: Served) -> None:
    """An idle server stops promptly and cleanly on SIGTERM."""
    proc = served.proc
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), WAIT * 5) == 0


async def test_sigterm_with_an_unresponsive_client_still_exits_zero(served: Served) -> None:
    """A client that never answers the close frame does not hold the process past shutdown."""
    proc, port, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(UPGRADE)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 101")
    # From now on this client neither reads nor answers anything.
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), WAIT * 5) == 0
    writer.close()


@pytest.mark.parametrize("stage", ["preamble", "connected"])
async def test_sigterm_with_an_unreading_tcp_client_still_exits_zero(
    served: Served, stage: str
) -> None:
    """A TCP client that never reads, mid-preamble or connected, does not hold the process."""
    proc = served.proc
    reader, writer = await asyncio.open_connection("127.0.0.1", served.tcp_port)
    if stage == "preamble":
        writer.write(b"hubbub/1 js")  # and never the rest of the line
        await writer.drain()
    else:
        writer.write(b'hubbub/1 json\n{"id":1,"connect":{}}\n')
        assert b'"connect"' in await asyncio.wait_for(reader.readline(), WAIT)
    # From now on this client reads nothing more.
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), WAIT * 5) == 0
    writer.close()


async def test_second_server_on_a_busy_port_exits_1(served: Served) -> None:
    """``hubbub serve`` on a public port another hubbub holds exits 1 with "cannot listen"."""
    port = served.port
    internal = free_port()
    second = await spawn_hubbub(
        "serve", "--config", str(EXAMPLE), "--port", str(port), "--internal-port", str(internal)
    )
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while second.returncode is None:
                with contextlib.suppress(OSError):
                    status, _ = await http_get(internal, "/readyz")
                    assert status != 200, f"a second server is serving on busy port {port}"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(second.wait(), 2 * UNIT)
        _, stderr = await second.communicate()
        assert second.returncode == 1
        assert b"cannot listen" in stderr
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()


async def test_config_check_on_a_bad_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    """``hubbub config check`` on an invalid file exits 2 naming the file, line and key."""
    config = tmp_path / "broken.yaml"
    config.write_text("server:\n  port: 8000\nclient:\n  ping_interval: soon\n")
    proc = await spawn_hubbub("config", "check", str(config))
    _, stderr = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert proc.returncode == 2
    message = stderr.decode()
    assert f"{config}:4" in message
    assert "client.ping_interval" in message
    assert "soon" in message


async def test_config_check_on_the_example_exits_0(tmp_path: Path) -> None:
    """``hubbub config check`` accepts the shipped example config."""
    proc = await spawn_hubbub("config", "check", str(EXAMPLE))
    stdout, _ = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert proc.returncode == 0
    assert b"ok" in stdout


async def test_a_server_that_cannot_start_leaves_nothing_listening() -> None:
    """The internal port is taken: start() fails, and the public listener it had opened
    is closed again, not left accepting for a node nobody will stop."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        public = free_port()
        settings = chat_settings(
            **{"server.port": public, "server.internal_port": taken.getsockname()[1]}
        )
        server = Server(settings)
        with pytest.raises(OSError):
            await server.start()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", public)
        writer.close()


async def test_a_handshake_finishing_during_shutdown_is_refused() -> None:
    """Accepted before the listener closed, its upgrade completes after: it gets 503,
    not a session on a node that is shutting down (one nobody would tell to leave)."""
    server = Server(chat_settings())
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.websocket.port)
    try:
        request = UPGRADE
        writer.write(request[:30])
        await writer.drain()
        await asyncio.sleep(0)
        server.websocket.stop_accepting()
        writer.write(request[30:])
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), WAIT)
    finally:
        writer.close()
        await server.stop()
    assert status.startswith(b"HTTP/1.1 503"), status
    assert not server.node._open
