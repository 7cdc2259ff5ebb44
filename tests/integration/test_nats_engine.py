"""The NATS engines under faults and across nodes, against the real server on :4222.

NATS is never restarted (others share it): a broker that should lose it talks through
a ``FaultProxy`` that the test cuts and makes refuse connections. Every test uses its
own prefix and deletes its streams and bucket afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from conformance.case_nats import scratch_url, unavailable
from conftest import ServerFactory, eventually, ws_url
from core.fakes import turns
from enginekit import HISTORY, Recorder, client, count_pings, numbers, pub
from faultproxy import FaultProxy

from hubbub.engines.nats import NatsBroker, drop_prefix
from hubbub.errors import EngineError
from hubbub.server import Server
from integration.wsclient import WsClient, open_client, payload

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

BOUND = 10.0
"""Seconds any wait here may take before the test fails."""
QUICK = "&timeout=1&reconnect_wait=0.05&reconnect_max_wait=0.25"
"""Short timeouts and back-off, so outages in these tests stay short."""
CHANNEL = "chat:room"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A direct URL with a fresh prefix; everything under it is deleted afterwards."""
    url = scratch_url()
    yield url
    await drop_prefix(url)


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with FaultProxy(4222) as proxy:
        yield proxy


def through(proxy: FaultProxy, url: str) -> str:
    """The same engine URL, reaching NATS through ``proxy``."""
    return proxy.url("nats") + "?" + url.partition("?")[2] + QUICK


@pytest.fixture
async def brokers() -> AsyncIterator[Callable[[str], Awaitable[tuple[NatsBroker, Recorder]]]]:
    """Start brokers on given URLs, each with a recorder; closed after the test."""
    started: list[NatsBroker] = []

    async def start(url: str) -> tuple[NatsBroker, Recorder]:
        broker, events = NatsBroker.from_url(url), Recorder()
        await broker.start(events)
        started.append(broker)
        return broker, events

    yield start
    for broker in started:
        await broker.close()


def gaps(events: Recorder) -> set[str]:
    return {channel for kind, channel, _ in events.events if kind == "gap"}


# ------------------------------------------------------------------------------- faults


async def test_publishes_fail_while_nats_is_away_and_delivery_resumes(
    url: str, proxy: FaultProxy, brokers: Any
) -> None:
    """While NATS is unreachable every call fails with EngineError and nothing is kept;
    once it is back the broker reports the gap, publishes again and receives again."""
    (away, events), (direct, _) = await brokers(through(proxy, url)), await brokers(url)
    await away.subscribe([CHANNEL])
    await away.publish(CHANNEL, pub(1), HISTORY)
    proxy.refuse = True
    await proxy.cut()
    for call in (
        away.publish(CHANNEL, pub(2), HISTORY),
        away.publish(CHANNEL, pub(3), None),
        away.publish_join(CHANNEL, client("u1", "c1")),
        away.history(CHANNEL, since=None, limit=-1, reverse=False),
    ):
        with pytest.raises(EngineError):
            await call
    proxy.refuse = False
    await eventually(lambda: CHANNEL in gaps(events))
    assert (await away.publish(CHANNEL, pub(4), HISTORY)).offset == 2
    page, _ = await direct.history(CHANNEL, since=None, limit=-1, reverse=False)
    assert numbers(page) == [1, 4]  # the failed publishes were never kept
    await direct.publish(CHANNEL, pub(5), HISTORY)
    await eventually(lambda: len(events.pubs(CHANNEL)) == 3)
    assert numbers(events.pubs(CHANNEL)) == [1, 4, 5]


async def test_a_silent_connection_is_reconnected_and_reported_as_a_gap(
    url: str, proxy: FaultProxy, brokers: Any
) -> None:
    """A connection gone silent (a blackholed route: open, nothing arrives either way)
    is found dead within about 2 x timeout, reconnected, and what another node stored
    meanwhile is reported as a gap; delivery then resumes."""
    (away, events), (direct, _) = await brokers(through(proxy, url)), await brokers(url)
    await away.subscribe([CHANNEL])
    await direct.publish(CHANNEL, pub(1), HISTORY)
    await eventually(lambda: numbers(events.pubs(CHANNEL)) == [1], BOUND)
    proxy.silence()
    await direct.publish(CHANNEL, pub(2), HISTORY)
    await direct.publish(CHANNEL, pub(3), HISTORY)
    await eventually(lambda: gaps(events) == {CHANNEL}, BOUND)
    assert numbers(events.pubs(CHANNEL)) == [1]
    await direct.publish(CHANNEL, pub(4), HISTORY)
    await eventually(lambda: numbers(events.pubs(CHANNEL)) == [1, 4], BOUND)


async def test_a_send_through_a_silent_connection_fails(
    url: str, proxy: FaultProxy, brokers: Any
) -> None:
    """A publish without history and a join have no history to fall back on: through a
    silent connection they fail with EngineError (they used to be answered OK and lost),
    and once reconnected they go through again."""
    away, _ = await brokers(through(proxy, url))
    await away.publish(CHANNEL, pub(1), None)
    proxy.silence()
    with pytest.raises(EngineError):
        await away.publish(CHANNEL, pub(2), None)
    with pytest.raises(EngineError):
        await away.publish_join(CHANNEL, client("u1", "c1"))
    async with asyncio.timeout(BOUND):
        while True:
            with contextlib.suppress(EngineError):
                await away.publish(CHANNEL, pub(3), None)
                break
            await asyncio.sleep(0.05)


async def test_sends_of_one_loop_turn_share_one_ping(url: str, brokers: Any) -> None:
    """Publishes without history wait for a PONG (a silent connection must not swallow
    them); those made in one loop turn share one PING instead of one each."""
    broker, _ = await brokers(url)
    pings = count_pings(broker._link.nc)
    await asyncio.gather(*(broker.publish(CHANNEL, pub(n), None) for n in range(20)))
    assert pings == [1]
    await broker.publish(CHANNEL, pub(20), None)
    assert pings == [2]


@pytest.mark.parametrize("eager", [False, True])
async def test_a_send_after_the_ping_went_out_waits_for_the_next(
    url: str, brokers: Any, eager: bool
) -> None:
    """A PING confirms the sends made before it was written, not a later one: a publish
    made while it is out gets a PING of its own. Also under an eager task factory, which
    runs the PING's task inside ``create_task``, before the link can keep it."""
    if eager and not hasattr(asyncio, "eager_task_factory"):
        pytest.skip("asyncio.eager_task_factory needs Python 3.12+")
    broker, _ = await brokers(url)
    gate = asyncio.Event()
    pings = count_pings(broker._link.nc, hold=gate)  # a PING is out, its PONG not yet read
    loop = asyncio.get_running_loop()
    if eager:
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        first = asyncio.ensure_future(broker.publish(CHANNEL, pub(1), None))
        await turns(5)
        assert pings == [1]
        second = asyncio.ensure_future(broker.publish(CHANNEL, pub(2), None))
        await turns(5)
        assert pings == [2]
        gate.set()
        await asyncio.gather(first, second)
    finally:
        loop.set_task_factory(None)


async def test_reconnect_resubscribes_every_channel(
    url: str, proxy: FaultProxy, brokers: Any
) -> None:
    """After the connection is cut, every subscribed channel is reported as a gap and
    delivered again without subscribing anew."""
    (away, events), (direct, _) = await brokers(through(proxy, url)), await brokers(url)
    channels = [f"{CHANNEL}:{n}" for n in range(3)]
    await away.subscribe(channels)
    await proxy.cut()
    await eventually(lambda: gaps(events) == set(channels))
    for n, channel in enumerate(channels):
        await direct.publish(channel, pub(n), HISTORY)
    await eventually(lambda: all(events.pubs(channel) for channel in channels))
    assert [numbers(events.pubs(channel)) for channel in channels] == [[0], [1], [2]]


# -------------------------------------------------------------------------------- nodes


async def node(start_server: ServerFactory, url: str, presence: str | None = None) -> Server:
    return await start_server(**{"engine.broker": url, "engine.presence": presence or url})


async def client_on(server: Server) -> WsClient:
    return await open_client(ws_url(server))


async def subscribe_retrying(client: WsClient, channel: str, **request: Any) -> dict[str, Any]:
    """Subscribe, retrying (bounded) while the answer is a temporary error."""
    async with asyncio.timeout(BOUND):
        while True:
            reply = await client.call("subscribe", {"channel": channel, **request})
            if not reply.get("error", {}).get("temporary"):
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["subscribe"]
                return result
            await asyncio.sleep(0.05)


async def test_two_nodes_share_publications_presence_and_history(
    url: str, start_server: ServerFactory
) -> None:
    """A client on node A receives what a client on node B publishes, and both nodes
    give the same presence and history."""
    a, b = await node(start_server, url), await node(start_server, url)
    on_a, on_b = await client_on(a), await client_on(b)
    await on_a.subscribe(CHANNEL)
    await on_b.subscribe(CHANNEL)
    join = await on_a.push("join", timeout=BOUND)
    assert join["join"]["info"]["client"] == on_b.client_id
    for n in range(3):
        await on_b.publish(CHANNEL, {"n": n})
    pubs = await on_a.pubs(3, timeout=BOUND)
    assert [payload(p["data"]) for p in pubs] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [p["offset"] for p in pubs] == [1, 2, 3]
    assert {p["info"]["client"] for p in pubs} == {on_b.client_id}
    answers = [await c.call("presence", {"channel": CHANNEL}) for c in (on_a, on_b)]
    assert [set(r["presence"]["presence"]) for r in answers] == [
        {on_a.client_id, on_b.client_id}
    ] * 2
    pages = [await c.call("history", {"channel": CHANNEL, "limit": -1}) for c in (on_a, on_b)]
    assert pages[0] == {**pages[1], "id": pages[0]["id"]}
    assert [p["offset"] for p in pages[0]["history"]["publications"]] == [1, 2, 3]
    for c in (on_a, on_b):
        await c.close()


async def test_clients_are_told_to_recover_after_an_outage(
    url: str, proxy: FaultProxy, start_server: ServerFactory
) -> None:
    """When node A's broker loses NATS, its subscribers get unsubscribe 2500 once it is
    back and recover from history what node B published meanwhile."""
    # Only A's broker goes through the proxy: the outage is the broker's, and presence
    # calls failing meanwhile are another matter (see test_publishes_fail_while_...).
    a = await node(start_server, through(proxy, url), presence=url)
    b = await node(start_server, url)
    on_a, on_b = await client_on(a), await client_on(b)
    first = await on_a.subscribe(CHANNEL)
    assert first["recoverable"] is True
    proxy.refuse = True
    await proxy.cut()
    for n in range(2):
        await on_b.publish(CHANNEL, {"n": n})
    proxy.refuse = False
    push = await on_a.push("unsubscribe", timeout=BOUND)
    assert push["unsubscribe"]["code"] == 2500
    # Temporary errors are retried, as SDKs do.
    again = await subscribe_retrying(
        on_a, CHANNEL, recover=True, epoch=first["epoch"], offset=first.get("offset", 0)
    )
    assert again["recovered"] is True
    assert [payload(p["data"]) for p in again["publications"]] == [{"n": 0}, {"n": 1}]
    for c in (on_a, on_b):
        await c.close()
