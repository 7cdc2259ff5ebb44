"""Helpers for the client tests: short back-off, waiting on a condition, a fake server.

Every wait is a multiple of ``UNIT`` (tests/conftest.py), which an environment
variable scales on slow machines; nothing here asserts on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import msgspec
from conftest import UNIT, ws_url
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from hubbub.client import Backoff, Client, ClientState, ClientStateChanged
from hubbub.server import Server

__all__ = [
    "WAIT",
    "CountingBackoff",
    "FakeServer",
    "OpenClient",
    "Transitions",
    "fast_backoff",
    "make_client",
    "tcp_url",
    "until",
    "ws_url",
]

WAIT = 100 * UNIT
"""The longest a test waits for something that should happen (5 s at scale 1)."""


def fast_backoff() -> Backoff:
    """Reconnect delays of one to four units: quick tests, same code path."""
    return Backoff(initial=UNIT, factor=1.5, maximum=4 * UNIT)


@dataclass(frozen=True)
class CountingBackoff(Backoff):
    """A Backoff that records which attempt each delay was asked for."""

    asked: list[int] = field(default_factory=list, compare=False)

    def delay(self, attempt: int) -> float:
        self.asked.append(attempt)
        return super().delay(attempt)


def tcp_url(server: Server) -> str:
    assert server.tcp is not None, "start the server with server.tcp_port set"
    return f"tcp://127.0.0.1:{server.tcp.port}"


def make_client(url: str, **options: Any) -> Client:
    """A client with test-sized back-off and timeouts unless the test says otherwise."""
    options.setdefault("backoff", fast_backoff())
    options.setdefault("timeout", WAIT)
    return Client(url, **options)


class OpenClient(Protocol):
    """A fixture's function that opens a READY client (closed at teardown)."""

    async def __call__(self, **options: Any) -> Client: ...


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds; fail the test after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(UNIT / 5)


class Transitions:
    """Records every state transition of a client."""

    def __init__(self, client: Client) -> None:
        self.events: list[ClientStateChanged] = []
        client.on_state(self.events.append)

    @property
    def states(self) -> list[ClientState]:
        return [event.new for event in self.events]

    def count(self, state: ClientState) -> int:
        return self.states.count(state)


class FakeWsServer:
    """A WebSocket server on a free local port whose connections ``listener`` serves;
    leaving it drops every connection it accepted (``transports``)."""

    def __init__(self) -> None:
        self.port = 0
        self.transports: list[WSTransport] = []
        self._server: asyncio.Server | None = None

    def listener(self) -> WSListener:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    async def __aenter__(self) -> Self:
        self._server = await ws_create_server(lambda request: self.listener(), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for transport in self.transports:
            transport.disconnect(graceful=False)


class FakeServer(FakeWsServer):
    """A WebSocket server that accepts connect and then does only what the test says.

    It announces ``ping`` seconds in its connect reply but never pings: a server that
    went silent without closing its sockets.
    """

    def __init__(self, *, ping: int = 1) -> None:
        super().__init__()
        self.ping = ping
        self.connects = 0

    def listener(self) -> WSListener:
        return _FakeListener(self)


class FakeWsListener(WSListener):
    """One connection of a FakeWsServer: answers a close, hands each JSON command of a
    frame to ``command``."""

    def __init__(self, server: FakeWsServer) -> None:
        self.transports = server.transports

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transports.append(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        for line in frame.get_payload_as_bytes().split(b"\n"):
            if line.strip():
                self.command(transport, msgspec.json.decode(line))

    def command(self, transport: WSTransport, command: dict[str, Any]) -> None:
        raise NotImplementedError


class _FakeListener(FakeWsListener):
    def __init__(self, server: FakeServer) -> None:
        super().__init__(server)
        self.server = server

    def command(self, transport: WSTransport, command: dict[str, Any]) -> None:
        if "connect" in command:
            self.server.connects += 1
            reply = {
                "id": command["id"],
                "connect": {"client": f"fake-{self.server.connects}", "ping": self.server.ping},
            }
            transport.send(WSMsgType.TEXT, msgspec.json.encode(reply))
