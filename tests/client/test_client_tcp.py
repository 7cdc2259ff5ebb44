"""The client over hubbub's raw TCP transport: Disconnect pushes, refusals, recovery.

Requests over TCP with every codec run in test_client_requests.py; this module holds
what only a stream transport has.
"""

from __future__ import annotations

import importlib.util

import pytest
from clientkit import Transitions, make_client, tcp_url, until
from conftest import ServerFactory

from hubbub.client import (
    ClientState,
    ClientTrigger,
    ConnectionLostError,
    LocalCode,
    SubscribedEvent,
)
from hubbub.codecs.json import JsonCodec
from hubbub.protocol import codes
from hubbub.server import Server

if importlib.util.find_spec("hubbub.transports.tcp") is None:
    pytest.skip("hubbub.transports.tcp does not exist yet", allow_module_level=True)

CHANNEL = "chat:tcp"


@pytest.fixture
async def tcp_server(start_server: ServerFactory) -> Server:
    """A chat server with its TCP port on."""
    return await start_server(**{"server.tcp_port": 0})


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_disconnect_push_with_a_reconnect_code_brings_the_client_back(
    tcp_server: Server, codec: str
) -> None:
    """3011 arrives as a Disconnect push then EOF; the client reconnects and recovers."""
    client = make_client(tcp_url(tcp_server), codec=codec)
    seen = Transitions(client)
    await client.connect()
    sub = await client.subscribe(CHANNEL)
    subscribed: list[SubscribedEvent] = []
    sub.on_subscribed(subscribed.append)
    first_id = client.client_id
    tcp_server.node.disconnect(client.client_id, codes.FORCE_RECONNECT)
    await until(lambda: len(subscribed) == 1 and client.client_id != first_id)
    lost = next(e for e in seen.events if e.trigger is ClientTrigger.LOST)
    assert (lost.code, lost.reason) == (3011, "force reconnect")
    assert subscribed[0].recovered
    await client.publish(CHANNEL, {"over": "tcp"})
    assert (await anext(sub)).json() == {"over": "tcp"}
    await client.disconnect()


async def test_disconnect_push_with_a_terminal_code_closes_the_client(tcp_server: Server) -> None:
    """3503 as a Disconnect push: CLOSED, no reconnect."""
    client = make_client(tcp_url(tcp_server))
    await client.connect()
    await client.ready()
    tcp_server.node.disconnect(client.client_id, codes.FORCE_DISCONNECT)
    await until(lambda: client.state is ClientState.CLOSED)
    assert isinstance(client.error, ConnectionLostError) and client.error.code == 3503


async def test_server_refusing_the_codec_is_terminal(tcp_server: Server) -> None:
    """A codec the server does not know gets "hubbub/1 error unknown codec": CLOSED."""

    class Unknown(JsonCodec):
        name = "nosuchcodec"

    client = make_client(tcp_url(tcp_server), codec=Unknown())
    await client.connect()
    with pytest.raises(ConnectionLostError) as caught:
        await client.ready()
    assert client.state is ClientState.CLOSED
    assert caught.value.code == LocalCode.BAD_PROTOCOL
    assert caught.value.reason == "refused: unknown codec"


async def test_server_shutdown_over_tcp_is_a_reconnect(
    start_server: ServerFactory, tcp_server: Server
) -> None:
    """Stopping the server sends "shutdown, reconnect" (3001): the client tries again."""
    client = make_client(tcp_url(tcp_server))
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    await tcp_server.stop()
    await until(lambda: ClientTrigger.LOST in [e.trigger for e in seen.events])
    lost = next(e for e in seen.events if e.trigger is ClientTrigger.LOST)
    assert (lost.code, lost.reason) == (3001, "shutdown, reconnect")
    assert client.state is ClientState.CONNECTING
    await client.disconnect()
