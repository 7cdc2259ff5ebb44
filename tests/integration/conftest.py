"""Integration fixtures: servers with the TCP port on, clients of either transport.

Tests that take ``client_factory`` run once per transport (WebSocket and raw TCP)
with the same assertions: what a client sees must not depend on how it connects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import pytest
from conftest import ServerFactory, ws_url

from hubbub.server import Server
from integration.tcpclient import TcpClient
from integration.wsclient import WsClient

Client: TypeAlias = WsClient | TcpClient
TRANSPORTS = ["websocket", "tcp"]
WITH_TCP = {"server.tcp_port": 0}


class ClientFactory:
    """Starts servers (TCP port on) and opens clients of one transport on them."""

    def __init__(self, transport: str, start_server: ServerFactory) -> None:
        """Open clients over ``transport`` ("websocket" or "tcp")."""
        self.transport = transport
        self._start_server = start_server
        self._opened: list[Client] = []

    async def start(self, **overrides: Any) -> Server:
        """A server on the example config with ``overrides`` and a TCP port."""
        return await self._start_server(**{**WITH_TCP, **overrides})

    async def open(
        self, server: Server, *, protobuf: bool = False, auto_pong: bool = True, **kwargs: Any
    ) -> Client:
        """A connection that has not sent connect yet (JSON, or Protobuf if asked)."""
        client: Client
        if self.transport == "tcp":
            assert server.tcp is not None, "start the server with server.tcp_port"
            client = await TcpClient.open(
                server.tcp.port, protobuf=protobuf, auto_pong=auto_pong, **kwargs
            )
        else:
            client = await WsClient.open(
                ws_url(server), protobuf=protobuf, auto_pong=auto_pong, **kwargs
            )
        self._opened.append(client)
        return client

    async def client(self, server: Server, **kwargs: Any) -> Client:
        """A connected client."""
        client = await self.open(server, **kwargs)
        await client.connect()
        return client

    async def close_all(self) -> None:
        for client in self._opened:
            if not client.is_closed:
                await client.close()


@pytest.fixture(params=TRANSPORTS)
async def client_factory(
    request: pytest.FixtureRequest, start_server: ServerFactory
) -> AsyncIterator[ClientFactory]:
    """Clients over each transport in turn; those left open are closed at teardown."""
    factory = ClientFactory(request.param, start_server)
    yield factory
    await factory.close_all()


@pytest.fixture
async def server(start_server: ServerFactory) -> Server:
    """One in-process server on the example chat config, with the TCP port on."""
    return await start_server(**WITH_TCP)
