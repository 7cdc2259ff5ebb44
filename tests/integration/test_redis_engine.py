"""The Redis engines with real sockets: outages through a fault proxy, and two nodes
sharing one Redis (publications, join/leave, presence and history across nodes).

The machine's Redis is shared with other tests: it is never restarted or flushed.
An outage is played by the proxy (tests/faultproxy.py) between hubbub and Redis, and
every test uses a random key prefix whose keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from conformance.case_redis import URL, scratch_prefix, unavailable
from conftest import ServerFactory, chat_settings, eventually, ws_url
from enginekit import HISTORY, Recorder, client, numbers, offsets, pub
from engines.test_redis_cluster import local_cluster
from faultproxy import FaultProxy
from redis.backoff import EqualJitterBackoff

from hubbub.core.hooks import ClientContext, Credentials, Hooks
from hubbub.core.node import Node
from hubbub.engines.redis import RedisBroker, RedisOptions, RedisPresenceStore
from hubbub.engines.redis.keys import KeyNames
from hubbub.errors import EngineError
from hubbub.protocol.codes import UnsubscribeCode
from hubbub.protocol.messages import ConnectRequest
from hubbub.server import Server
from integration.wsclient import WsClient, open_client, payload

REDIS_PORT = urlsplit(URL).port or 6379
BOUND = 15.0
"""Seconds a reconnect, a delivery or a push may take before the test fails."""
LOBBY = "chat:lobby"
pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A random key prefix; every key under it is deleted after the test."""
    yield from scratch_prefix()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of Redis; requested before servers, so it outlives them."""
    async with FaultProxy(REDIS_PORT) as fault_proxy:
        yield fault_proxy


def gaps(events: Recorder) -> set[str]:
    return {channel for kind, channel, _ in events.events if kind == "gap"}


async def outage(proxy: FaultProxy) -> None:
    """Drop every connection to Redis and refuse new ones until ``proxy.refuse`` is off."""
    proxy.refuse = True
    await proxy.cut()


# ------------------------------------------------------------------------ broker level


async def test_outage_fails_publishes_then_resubscribes_and_reports_the_gap(
    proxy: FaultProxy, prefix: str
) -> None:
    """Outage: calls raise EngineError; then the broker resubscribes, reports the gap, delivers."""
    events = Recorder()
    options = RedisOptions.from_url(proxy.url("redis", f"/0?prefix={prefix}&timeout=2"))
    broker = RedisBroker(options, backoff=EqualJitterBackoff(cap=0.2, base=0.02))
    await broker.start(events)
    try:
        await broker.subscribe(["chat:a", "chat:b"])
        await broker.publish("chat:a", pub(1), HISTORY)
        await broker.settle()
        await outage(proxy)
        for call in (
            lambda: broker.publish("chat:a", pub(2), HISTORY),
            lambda: broker.publish("chat:b", pub(2), None),
            lambda: broker.publish_join("chat:a", client("u1", "c1")),
            lambda: broker.history("chat:a", since=None, limit=-1, reverse=False),
            lambda: broker.subscribe(["chat:c"]),
        ):
            with pytest.raises(EngineError):
                await call()
        assert gaps(events) == set()
        proxy.refuse = False
        await eventually(lambda: gaps(events) >= {"chat:a", "chat:b"})
        await broker.publish("chat:a", pub(3), HISTORY)
        await broker.publish("chat:c", pub(4), None)
        await broker.settle()
        assert numbers(events.pubs("chat:a")) == [1, 3]
        assert numbers(events.pubs("chat:c")) == [4]  # held through the failed subscribe
        page, _ = await broker.history("chat:a", since=None, limit=-1, reverse=False)
        assert (offsets(page), numbers(page)) == ([1, 2], [1, 3])  # nothing half-published
    finally:
        await broker.close()


async def test_offsets_that_jump_on_the_live_path_are_reported_as_a_gap(prefix: str) -> None:
    """The stream's metadata gone while subscribed (evicted, or flushed without a
    reconnect): offsets start again at 1 under a new epoch. Live subscribers holding the
    old position would skip them as already seen; the broker reports a gap instead,
    and consecutive offsets report none."""
    events = Recorder()
    broker = RedisBroker(RedisOptions.from_url(f"{URL}?prefix={prefix}"))
    await broker.start(events)
    try:
        await broker.subscribe(["chat:a"])
        for n in (1, 2):
            await broker.publish("chat:a", pub(n), HISTORY)
        await broker.settle()
        assert gaps(events) == set()
        _, before = await broker.history("chat:a", since=None, limit=0, reverse=False)
        with redis.Redis.from_url(URL) as direct:
            names = KeyNames(prefix)
            direct.delete(names.stream("chat:a"), names.meta("chat:a"))
        await broker.publish("chat:a", pub(3), HISTORY)
        await broker.settle()
        _, after = await broker.history("chat:a", since=None, limit=0, reverse=False)
        assert (after.offset, after.epoch != before.epoch) == (1, True)
        assert gaps(events) == {"chat:a"}
        assert numbers(events.pubs("chat:a")) == [1, 2, 3]
    finally:
        await broker.close()


async def test_presence_fails_during_an_outage_and_works_after(
    proxy: FaultProxy, prefix: str
) -> None:
    """Presence calls raise EngineError while Redis is away and answer once it is back."""
    store = RedisPresenceStore.from_url(proxy.url("redis", f"/0?prefix={prefix}&timeout=2"))
    try:
        await outage(proxy)
        with pytest.raises(EngineError):
            await store.presence("chat:p")
        proxy.refuse = False
        await eventually(lambda: _answers(store))
        assert await store.stats("chat:p") == (0, 0)
    finally:
        await store.close()


async def _answers(store: RedisPresenceStore) -> bool:
    try:
        await store.presence("chat:p")
    except EngineError:
        return False
    return True


# -------------------------------------------------------------------------- two nodes


async def test_two_nodes_share_publications_presence_and_history(
    start_server: ServerFactory, prefix: str
) -> None:
    """A gets B's publication and join; presence and history read the same on both nodes."""
    await two_nodes_share(start_server, f"{URL}?prefix={prefix}")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary")
async def test_two_nodes_share_a_redis_cluster(
    start_server: ServerFactory, prefix: str, tmp_path: Path
) -> None:
    """The same across two nodes on a three-primary Redis Cluster (cluster=true)."""
    with local_cluster(tmp_path, 3) as cluster:
        await two_nodes_share(start_server, cluster.url(f"prefix={prefix}"))


async def two_nodes_share(start_server: ServerFactory, url: str) -> None:
    a = await start_server(chat_settings(**{"engine.broker": url}))
    b = await start_server(chat_settings(**{"engine.broker": url}))
    on_a, on_b = await open_client(ws_url(a)), await open_client(ws_url(b))
    try:
        await on_a.subscribe(LOBBY)
        await on_b.subscribe(LOBBY)
        async with asyncio.timeout(BOUND):  # A's own join may come first
            while (await on_a.push("join"))["join"]["info"]["client"] != on_b.client_id:
                pass
        sent = await on_b.publish(LOBBY, {"text": "from b"})
        [got] = await on_a.pubs(1, BOUND)
        assert payload(got["data"]) == {"text": "from b"}
        assert got["offset"] == sent["offset"] == 1
        for node_client in (on_a, on_b):
            presence = await node_client.call("presence", {"channel": LOBBY})
            assert set(presence["presence"]["presence"]) == {on_a.client_id, on_b.client_id}
        histories = [
            (await c.call("history", {"channel": LOBBY, "limit": -1}))["history"]
            for c in (on_a, on_b)
        ]
        assert histories[0] == histories[1]
        assert [payload(p["data"]) for p in histories[0]["publications"]] == [{"text": "from b"}]
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_node_cut_from_redis_tells_its_clients_to_recover(
    proxy: FaultProxy, start_server: ServerFactory, prefix: str
) -> None:
    """Node cut from Redis: publish gets temporary 100, then its client gets 2500 and recovers."""
    a = await start_server(
        chat_settings(**{"engine.broker": proxy.url("redis", f"/0?prefix={prefix}&timeout=2")})
    )
    b = await start_server(chat_settings(**{"engine.broker": f"{URL}?prefix={prefix}"}))
    on_a, on_b = await open_client(ws_url(a)), await open_client(ws_url(b))
    try:
        first = await on_a.subscribe(LOBBY)
        await on_b.publish(LOBBY, {"n": 1})
        [got] = await on_a.pubs(1, BOUND)
        await outage(proxy)
        refused = await on_a.call("publish", {"channel": LOBBY, "data": {"n": "lost"}})
        assert refused["error"]["code"] == 100
        assert refused["error"]["temporary"] is True
        await on_b.publish(LOBBY, {"n": 2})
        await on_b.publish(LOBBY, {"n": 3})
        proxy.refuse = False
        push = await on_a.push("unsubscribe", BOUND)
        assert push["unsubscribe"]["code"] == UnsubscribeCode.INSUFFICIENT_STATE
        again = await on_a.subscribe(
            LOBBY, recover=True, epoch=first["epoch"], offset=got["offset"]
        )
        assert again["recovered"] is True
        assert [payload(p["data"]) for p in again["publications"]] == [{"n": 2}, {"n": 3}]
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_gap_closes_a_server_side_subscriber_3010_and_it_recovers_through_connect(
    proxy: FaultProxy, prefix: str
) -> None:
    """A server-side subscription cannot be asked to subscribe again (2500): after a
    gap its connection is closed with 3010, and a reconnect recovering it through
    connect gets what was published meanwhile."""

    async def grant(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user="u", channels=(LOBBY,))

    settings_a = chat_settings(
        **{"engine.broker": proxy.url("redis", f"/0?prefix={prefix}&timeout=2")}
    )
    a = Server(settings_a, node=Node(settings_a, hooks=Hooks(on_connecting=grant)))
    b = Server(chat_settings(**{"engine.broker": f"{URL}?prefix={prefix}"}))
    await a.start()
    await b.start()
    on_a = await WsClient.open(ws_url(a))
    again = None
    try:
        first = (await on_a.connect())["subs"][LOBBY]
        await b.node.publish(LOBBY, b'{"n":1}')
        [got] = await on_a.pubs(1, BOUND)
        await outage(proxy)
        await b.node.publish(LOBBY, b'{"n":2}')
        proxy.refuse = False
        assert await on_a.closed(BOUND) == (3010, "insufficient state")
        again = await WsClient.open(ws_url(a))
        sub = {"recover": True, "epoch": first["epoch"], "offset": got["offset"]}
        result = (await again.connect(subs={LOBBY: sub}))["subs"][LOBBY]
        assert result["recovered"] is True
        assert [payload(p["data"]) for p in result["publications"]] == [{"n": 2}]
    finally:
        for ws in (on_a, again):
            if ws is not None:
                await ws.close()
        await a.stop()
        await b.stop()


# ---------------------------------------------------------------------- a silent path


async def test_a_silent_pubsub_connection_is_replaced(prefix: str) -> None:
    """A Pub/Sub connection gone silent is probed, dropped and replaced, and the gap reported."""
    events = Recorder()
    async with FaultProxy(REDIS_PORT) as proxy:
        url = proxy.url("redis", f"/0?prefix={prefix}&timeout=0.2")
        broker = RedisBroker(RedisOptions.from_url(url), backoff=EqualJitterBackoff(0.1, 0.02))
        await broker.start(events)
        try:
            await broker.subscribe(["chat:a"])
            proxy.silence()
            await eventually(lambda: gaps(events) == {"chat:a"})
            await broker.publish("chat:a", pub(1), None)
            await broker.settle()
            assert numbers(events.pubs("chat:a")) == [1]
        finally:
            await broker.close()
