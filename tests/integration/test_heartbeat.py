"""Server pings: clients that answer stay, clients that never pong are closed 3012."""

from __future__ import annotations

import asyncio

import pytest
from conftest import UNIT, ServerFactory, ws_url

from hubbub.server import Server
from integration.wsclient import WAIT, WsClient, open_client

INTERVAL = 2 * UNIT  # 100 ms at scale 1; config durations also accept "100ms"
MISSED = 2


@pytest.fixture
async def fast_server(start_server: ServerFactory) -> Server:
    """A server that pings every INTERVAL and gives up after MISSED unanswered pings."""
    return await start_server(
        **{"client.ping_interval": INTERVAL, "client.max_missed_pongs": MISSED}
    )


async def _until_pings(client: WsClient, n: int) -> None:
    async with asyncio.timeout(WAIT):
        while client.pings < n:
            assert not client.is_closed, await client.closed()
            await asyncio.sleep(UNIT / 5)


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_client_that_answers_pings_stays_connected(
    fast_server: Server, protobuf: bool
) -> None:
    """A client answering every ping with a pong outlives many ping intervals."""
    client = await WsClient.open(ws_url(fast_server), protobuf=protobuf)
    result = await client.connect()
    assert result["ping"] >= 1 and result["pong"] is True  # whole seconds on the wire
    await _until_pings(client, 3 * MISSED)
    assert not client.is_closed
    await client.subscribe("chat:alive")  # and it still works
    assert client.client_id in fast_server.node.sessions
    await client.close()


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_client_that_never_pongs_is_closed_no_pong(
    fast_server: Server, protobuf: bool
) -> None:
    """A client that never pongs is closed 3012 "no pong" after max_missed_pongs pings."""
    client = await open_client(ws_url(fast_server), protobuf=protobuf, auto_pong=False)
    assert await client.closed() == (3012, "no pong")
    assert client.pings == MISSED
    assert client.client_id not in fast_server.node.sessions
    metrics = fast_server.node.metrics.render()[0].decode()
    assert 'hubbub_disconnects_total{code="3012"} 1.0' in metrics


async def test_other_commands_do_not_count_as_pongs(fast_server: Server) -> None:
    """Only a pong answers a ping: a client busy with other commands but no pongs is closed."""
    client = await open_client(ws_url(fast_server), auto_pong=False)

    async def busy() -> None:
        while not client.is_closed:
            await client.call("presence_stats", {"channel": "chat:busy"})
            await asyncio.sleep(UNIT / 5)

    task = asyncio.get_running_loop().create_task(busy())
    assert await client.closed() == (3012, "no pong")
    task.cancel()


async def test_pings_are_sent_on_a_busy_connection(fast_server: Server) -> None:
    """Pings keep coming while publications flow to the client (py resets its watchdog on pings)."""
    sub = await open_client(ws_url(fast_server))
    pub = await open_client(ws_url(fast_server))
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


async def test_stray_pong_is_tolerated(server: Server) -> None:
    """A pong with no ping outstanding is ignored (Centrifuge would close 3501), never answered."""
    client = await open_client(ws_url(server))
    await client.send_raw("{}")
    await client.send_raw("{}")
    presence = await client.call("presence_stats", {"channel": "chat:x"})
    assert "presence_stats" in presence
    assert not client.is_closed
    assert len(client.frames) == 2  # the connect and presence_stats replies: no answer to pongs
    await client.close()


async def test_duration_strings_are_accepted_for_ping_interval(
    start_server: ServerFactory,
) -> None:
    """client.ping_interval accepts "100ms": the server pings a connected client."""
    server = await start_server(**{"client.ping_interval": "100ms"})
    client = await open_client(ws_url(server))
    await _until_pings(client, 1)
    await client.close()
