"""Heartbeats: pings are answered, and a server silent for too long is taken for dead."""

from __future__ import annotations

import asyncio

from clientkit import FakeServer, Transitions, make_client, until, ws_url
from conftest import UNIT, ServerFactory

from hubbub.client import ClientState, ClientTrigger, LocalCode


async def test_silent_server_is_detected_and_the_client_reconnects() -> None:
    """A server silent past ping + max_server_ping_delay is dropped ("no ping") and redialled."""
    async with FakeServer(ping=1) as fake:
        client = make_client(fake.url, max_server_ping_delay=2 * UNIT)
        seen = Transitions(client)
        await client.connect()
        await client.ready()
        await until(lambda: fake.connects >= 2 and client.state is ClientState.READY)
        lost = next(e for e in seen.events if e.trigger is ClientTrigger.LOST)
        assert (lost.code, lost.reason) == (LocalCode.NO_PING, "no ping")
        assert client.client_id == "fake-2"
        await client.disconnect()


async def test_client_answers_pings_and_stays_connected(start_server: ServerFactory) -> None:
    """The client pongs every ping, so a strict server keeps it on one connection."""
    server = await start_server(**{"client.ping_interval": 2 * UNIT, "client.max_missed_pongs": 2})
    client = make_client(ws_url(server))
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    first_id = client.client_id
    await asyncio.sleep(20 * UNIT)  # ten ping intervals
    assert client.state is ClientState.READY and client.client_id == first_id
    assert ClientTrigger.LOST not in [e.trigger for e in seen.events]
    assert (await client.publish("chat:alive", {"still": "here"})).offset == 1
    await client.disconnect()


async def test_no_watchdog_when_the_server_announces_no_pings() -> None:
    """ping 0 in the connect result: the client does not expect pings and stays."""
    async with FakeServer(ping=0) as fake:
        client = make_client(fake.url, max_server_ping_delay=UNIT)
        await client.connect()
        await client.ready()
        await asyncio.sleep(5 * UNIT)
        assert client.state is ClientState.READY and fake.connects == 1
        await client.disconnect()
