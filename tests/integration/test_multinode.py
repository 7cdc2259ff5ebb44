"""Several hubbub nodes on one real broker: a node dies, its clients lose nothing.

Three in-process nodes share Redis or NATS. A client of node A holds a recoverable
subscription; node A is killed; a publisher on node B goes on publishing numbered
messages; the client comes back on node C with its last offset and epoch and must get
every message it missed, once and in order: zero lost, checked by sequence numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conformance import case_nats, case_redis
from conftest import UNIT, ServerFactory, ws_url

from hubbub.server import Server
from integration.wsclient import WsClient, open_client

CHANNEL = "chat:multinode"
BEFORE, DURING, AFTER = 20, 80, 20  # DURING below the example history_size (100)


@pytest.fixture(params=["redis", "nats"])
async def broker_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A broker URL with a prefix of its own; its keys or streams are dropped afterwards."""
    if request.param == "redis":
        reason = case_redis.unavailable()
        if reason:
            pytest.skip(reason)
        prefix = case_redis.fresh_prefix()
        yield f"{case_redis.URL}?prefix={prefix}"
        case_redis.drop_keys(prefix)
    else:
        reason = case_nats.unavailable()
        if reason:
            pytest.skip(reason)
        url = case_nats.scratch_url()
        yield url
        from hubbub.engines.nats import drop_prefix

        await drop_prefix(url)


async def _nodes(start_server: ServerFactory, url: str, count: int) -> list[Server]:
    return [await start_server(**{"engine.broker": url}) for _ in range(count)]


async def _publish_numbered(client: WsClient, first: int, count: int) -> None:
    for n in range(first, first + count):
        reply = await client.call("publish", {"channel": CHANNEL, "data": {"seq": n}})
        assert "publish" in reply, reply


async def _received(client: WsClient, count: int) -> list[dict[str, Any]]:
    return await client.pubs(count, timeout=400 * UNIT)


async def test_client_of_a_killed_node_recovers_every_message_on_another(
    broker_url: str, start_server: ServerFactory
) -> None:
    """Kill the client's node mid-stream: on another node it recovers all, once, in order."""
    node_a, node_b, node_c = await _nodes(start_server, broker_url, 3)
    publisher = await open_client(ws_url(node_b))
    client = await open_client(ws_url(node_a))
    first = await client.subscribe(CHANNEL, recover=True, recoverable=True)
    assert first["recoverable"] is True
    epoch = first["epoch"]

    await _publish_numbered(publisher, 0, BEFORE)
    seen = await _received(client, BEFORE)
    last_offset = seen[-1]["offset"]

    await node_a.stop()  # the node dies; its clients are cut
    await asyncio.wait_for(client.closed(), 100 * UNIT)
    await _publish_numbered(publisher, BEFORE, DURING)

    back = await open_client(ws_url(node_c))
    result = await back.subscribe(
        CHANNEL, recover=True, recoverable=True, offset=last_offset, epoch=epoch
    )
    assert result.get("recovered") is True, result
    assert result["epoch"] == epoch
    recovered = result.get("publications", [])
    await _publish_numbered(publisher, BEFORE + DURING, AFTER)
    live = await _received(back, AFTER)

    sequence = [p["data"]["seq"] for p in seen + recovered + live]
    assert sequence == list(range(BEFORE + DURING + AFTER))  # zero lost, none twice
    offsets = [p["offset"] for p in seen + recovered + live]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    for c in (publisher, back):
        await c.close()


async def test_every_node_agrees_on_presence_and_history(
    broker_url: str, start_server: ServerFactory
) -> None:
    """Presence and history read from any of three nodes are the same."""
    nodes = await _nodes(start_server, broker_url, 3)
    clients = [await open_client(ws_url(node)) for node in nodes]
    for client in clients:
        await client.subscribe(CHANNEL)
    await _publish_numbered(clients[0], 0, 5)
    presences, histories = [], []
    for client in clients:
        reply = await client.call("presence", {"channel": CHANNEL})
        presences.append(set(reply["presence"]["presence"]))
        history = await client.call("history", {"channel": CHANNEL, "limit": -1})
        histories.append([p["data"]["seq"] for p in history["history"]["publications"]])
    assert presences[0] == presences[1] == presences[2]
    assert len(presences[0]) == 3
    assert histories == [[0, 1, 2, 3, 4]] * 3
    for client in clients:
        await client.close()


@pytest.mark.parametrize("channel", ["chat:batch", "plain"])
async def test_publishes_sent_in_one_frame_arrive_in_order_on_every_node(
    broker_url: str, start_server: ServerFactory, channel: str
) -> None:
    """A client's publishes sent together may be in flight together (both brokers say
    they keep them in order): each gets its reply, and subscribers on this node and on
    another get them all, once and in order. ``chat:`` keeps history, ``plain`` not."""
    plain = {"channels.default.allow_subscribe": True, "channels.default.allow_publish": True}
    nodes = [await start_server(**{"engine.broker": broker_url}, **plain) for _ in range(2)]
    publisher = await open_client(ws_url(nodes[0]))
    subscribers = [await open_client(ws_url(node)) for node in nodes]
    for subscriber in subscribers:
        await subscriber.subscribe(channel)
    replies = await publisher.batch(
        *(("publish", {"channel": channel, "data": {"seq": n}}) for n in range(60))
    )
    assert all("publish" in reply for reply in replies), replies
    if channel == "chat:batch":
        assert [r["publish"].get("offset") for r in replies] == list(range(1, 61))
    for subscriber in subscribers:
        received = await subscriber.pubs(60, timeout=400 * UNIT)
        assert [p["data"]["seq"] for p in received] == list(range(60))
    # Once: a publication sent after them is the next each subscriber sees, not a copy.
    await publisher.call("publish", {"channel": channel, "data": {"seq": "end"}})
    for subscriber in subscribers:
        (after,) = await subscriber.pubs(1, timeout=400 * UNIT)
        assert after["data"]["seq"] == "end"
    for client in (publisher, *subscribers):
        await client.close()
