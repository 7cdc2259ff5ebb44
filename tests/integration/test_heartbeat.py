"""Server pings: clients that answer stay, clients that never pong are closed 3012.

Over WebSocket and raw TCP alike (``client_factory``).
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import UNIT

from hubbub.server import Server
from integration.conftest import Client, ClientFactory
from integration.wsclient import WAIT

INTERVAL = 2 * UNIT  # 100 ms at scale 1; config durations also accept "100ms"
MISSED = 2


@pytest.fixture
async def fast_server(client_factory: ClientFactory) -> Server:
    """A server that pings every INTERVAL and gives up after MISSED unanswered pings."""
    return await client_factory.start(
        **{"client.ping_interval": INTERVAL, "client.max_missed_pongs": MISSED}
    )


async def _until_pings(client: Client, n: int) -> None:
    async with asyncio.timeout(WAIT):
        while client.pings < n:
            assert not client.is_closed, await client.closed()
            await asyncio.sleep(UNIT / 5)


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_client_that_answers_pings_stays_connected(
    fast_server: Server, client_factory: ClientFactory, protobuf: bool
) -> None:
    """A client answering every ping with a pong outlives many ping intervals."""
    client = await client_factory.open(fast_server, protobuf=protobuf)
    result = await client.connect()
    assert result["ping"] >= 1 and result["pong"] is True  # whole seconds on the wire
    await _until_pings(client, 3 * MISSED)
    assert not client.is_closed
    await client.subscribe("chat:alive")  # and it still works
    assert client.client_id in fast_server.node.sessions
    await client.close()


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_client_that_never_pongs_is_closed_no_pong(
    fast_server: Server, client_factory: ClientFactory, protobuf: bool
) -> None:
    """A client that never pongs is closed 3012 "no pong" after max_missed_pongs pings."""
    client = await client_factory.client(fast_server, protobuf=protobuf, auto_pong=False)
    assert await client.closed() == (3012, "no pong")
    assert client.pings == MISSED
    assert client.client_id not in fast_server.node.sessions
    metrics = fast_server.node.metrics.render()[0].decode()
    assert 'hubbub_disconnects_total{code="3012"} 1.0' in metrics


async def test_other_commands_do_not_count_as_pongs(
    fast_server: Server, client_factory: ClientFactory
) -> None:
    """Only a pong answers a ping: a client busy with other commands but no pongs is closed."""
    client = await client_factory.client(fast_server, auto_pong=False)

    async def busy() -> None:
        while not client.is_closed:
            await client.call("presence_stats", {"channel": "chat:busy"})
            await asyncio.sleep(UNIT / 5)

    task = asyncio.get_running_loop().create_task(busy())
    assert await client.closed() == (3012, "no pong")
    task.cancel()


async def test_pings_are_sent_on_a_busy_connection(
    fast_server: Server, client_factory: ClientFactory
) -> None:
    """Pings keep coming while publications flow to the client (py resets its watchdog on pings)."""
    sub = await client_factory.client(fast_server)
    pub = await client_factory.client(fast_server)
    await sub.subscribe("chat:busy")
    received = 0
    async with asyncio.timeout(WAIT):
        while sub.pings < 3:
            await pub.publish("chat:busy", {"n": received})
            await sub.push("pub")
            received += 1
    assert not sub.is_closed
    await sub.close()
    await pub.close()


async def test_stray_pong_is_tolerated(server: Server, client_factory: ClientFactory) -> None:
    """A pong with no ping outstanding is ignored (Centrifuge would close 3501), never answered."""
    client = await client_factory.client(server)
    await client.send_raw("{}")
    await client.send_raw("{}")
    presence = await client.call("presence_stats", {"channel": "chat:x"})
    assert "presence_stats" in presence
    assert not client.is_closed
    # The connect and presence_stats replies, nothing else: no answer to pongs.
    assert sum(len(frame) for frame in client.frames) == 2
    await client.close()


async def test_duration_strings_are_accepted_for_ping_interval(
    client_factory: ClientFactory,
) -> None:
    """client.ping_interval accepts "100ms": the server pings a connected client."""
    server = await client_factory.start(**{"client.ping_interval": "100ms"})
    client = await client_factory.client(server)
    await _until_pings(client, 1)
    await client.close()
