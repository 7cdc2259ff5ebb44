"""centrifuge-python (the PyPI SDK) against hubbub, unchanged, over JSON and Protobuf."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from centrifuge import (
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    DisconnectedContext,
    JoinContext,
    LeaveContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)
from conftest import UNIT, ws_url
from integration.wsclient import WAIT, open_client

from hubbub.protocol import codes
from hubbub.server import Server

FORMATS = [pytest.param(False, id="json"), pytest.param(True, id="protobuf")]


def encode(protobuf: bool, value: Any) -> Any:
    """SDK payloads: JSON values on JSON, bytes on Protobuf."""
    return json.dumps(value).encode() if protobuf else value


def decode(data: Any) -> Any:
    return json.loads(data) if isinstance(data, bytes) else data


class Events(ClientEventHandler):
    """Records the client ids the SDK connects with and its disconnects."""

    def __init__(self) -> None:
        self.connected: asyncio.Queue[str] = asyncio.Queue()
        self.disconnected: asyncio.Queue[DisconnectedContext] = asyncio.Queue()

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.connected.put_nowait(ctx.client)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.disconnected.put_nowait(ctx)


class SubEvents(SubscriptionEventHandler):
    """Records publications and subscribed contexts of one subscription."""

    def __init__(self) -> None:
        self.publications: asyncio.Queue[Any] = asyncio.Queue()
        self.subscribed: asyncio.Queue[SubscribedContext] = asyncio.Queue()
        self.joins: asyncio.Queue[str] = asyncio.Queue()
        self.leaves: asyncio.Queue[str] = asyncio.Queue()

    async def on_join(self, ctx: JoinContext) -> None:
        self.joins.put_nowait(ctx.info.client)

    async def on_leave(self, ctx: LeaveContext) -> None:
        self.leaves.put_nowait(ctx.info.client)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.publications.put_nowait(ctx.pub)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.put_nowait(ctx)

    async def take(self, n: int) -> list[Any]:
        return [await asyncio.wait_for(self.publications.get(), WAIT) for _ in range(n)]


SdkFactory = Callable[..., Any]


@pytest.fixture
async def sdk(server: Server) -> AsyncIterator[SdkFactory]:
    """Factory of SDK clients pointed at the server; disconnected at teardown."""
    made: list[Client] = []

    def make(protobuf: bool, **kwargs: Any) -> tuple[Client, Events]:
        events = Events()
        client = Client(
            ws_url(server),
            events=events,
            use_protobuf=protobuf,
            timeout=WAIT,
            proxy=None,
            **kwargs,
        )
        made.append(client)
        return client, events

    yield make
    for client in made:
        await asyncio.wait_for(client.disconnect(), WAIT)


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_subscribes_publishes_and_receives(
    server: Server, sdk: SdkFactory, protobuf: bool
) -> None:
    """The SDK connects, subscribes, publishes and receives its publication with info and offset."""
    client, events = sdk(protobuf)
    sub_events = SubEvents()
    sub = client.new_subscription("chat:sdk", events=sub_events)
    await asyncio.wait_for(client.connect(), WAIT)
    client_id = await asyncio.wait_for(events.connected.get(), WAIT)
    assert client_id in server.node.sessions
    await asyncio.wait_for(sub.subscribe(), WAIT)
    await sub.ready(timeout=WAIT)
    subscribed = await asyncio.wait_for(sub_events.subscribed.get(), WAIT)
    assert subscribed.recoverable is True and subscribed.stream_position is not None

    await sub.publish(encode(protobuf, {"text": "hello"}))
    (pub,) = await sub_events.take(1)
    assert decode(pub.data) == {"text": "hello"}
    assert pub.offset == 1
    assert pub.info is not None and pub.info.client == client_id and pub.info.user == ""


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_receives_from_a_raw_client_of_the_other_format(
    server: Server, sdk: SdkFactory, protobuf: bool
) -> None:
    """Publications from a raw client of the other format reach the SDK's handler."""
    client, _ = sdk(protobuf)
    sub_events = SubEvents()
    sub = client.new_subscription("chat:mixed", events=sub_events)
    await asyncio.wait_for(client.connect(), WAIT)
    await asyncio.wait_for(sub.subscribe(), WAIT)
    await sub.ready(timeout=WAIT)
    raw = await open_client(ws_url(server), protobuf=not protobuf)
    await raw.publish("chat:mixed", {"n": 1})
    (pub,) = await sub_events.take(1)
    assert decode(pub.data) == {"n": 1} and pub.info.client == raw.client_id
    await raw.close()


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_presence_presence_stats_and_history(
    server: Server, sdk: SdkFactory, protobuf: bool
) -> None:
    """presence, presence_stats and history work through the SDK's own result types."""
    client, events = sdk(protobuf)
    sub = client.new_subscription("chat:info")
    await asyncio.wait_for(client.connect(), WAIT)
    client_id = await asyncio.wait_for(events.connected.get(), WAIT)
    await asyncio.wait_for(sub.subscribe(), WAIT)
    await sub.ready(timeout=WAIT)

    presence = await sub.presence(timeout=WAIT)
    assert set(presence.clients) == {client_id}
    assert presence.clients[client_id].client == client_id
    assert presence.clients[client_id].user == ""
    stats = await sub.presence_stats(timeout=WAIT)
    assert (stats.num_clients, stats.num_users) == (1, 1)

    for i in range(1, 4):
        await sub.publish(encode(protobuf, {"n": i}), timeout=WAIT)
    history = await sub.history(limit=-1, timeout=WAIT)
    assert [decode(p.data)["n"] for p in history.publications] == [1, 2, 3]
    assert [p.offset for p in history.publications] == [1, 2, 3]
    assert history.offset == 3 and history.epoch
    newest = await sub.history(limit=2, reverse=True, timeout=WAIT)
    assert [p.offset for p in newest.publications] == [3, 2]
    position = await sub.history(limit=0, timeout=WAIT)
    assert position.publications == [] and position.offset == 3


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_join_and_leave_events(server: Server, sdk: SdkFactory, protobuf: bool) -> None:
    """With join_leave the SDK's handlers see another client join and leave."""
    client, _ = sdk(protobuf)
    sub_events = SubEvents()
    sub = client.new_subscription("chat:jl", events=sub_events, join_leave=True)
    await asyncio.wait_for(client.connect(), WAIT)
    await asyncio.wait_for(sub.subscribe(), WAIT)
    await sub.ready(timeout=WAIT)
    other = await open_client(ws_url(server))
    await other.subscribe("chat:jl", join_leave=True)
    assert await asyncio.wait_for(sub_events.joins.get(), WAIT) == other.client_id
    await other.close()
    assert await asyncio.wait_for(sub_events.leaves.get(), WAIT) == other.client_id


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_stops_on_a_terminal_disconnect(
    server: Server, sdk: SdkFactory, protobuf: bool
) -> None:
    """A 35xx close (force disconnect) leaves the SDK disconnected with that code, no reconnect."""
    client, events = sdk(protobuf, min_reconnect_delay=UNIT)
    await asyncio.wait_for(client.connect(), WAIT)
    client_id = await asyncio.wait_for(events.connected.get(), WAIT)
    assert server.node.disconnect(client_id, codes.FORCE_DISCONNECT)
    ctx = await asyncio.wait_for(events.disconnected.get(), WAIT)
    assert (ctx.code, ctx.reason) == (3503, "force disconnect")
    assert client.state == ClientState.DISCONNECTED
    assert not server.node.sessions  # it did not come back


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_rpc(server: Server, sdk: SdkFactory, protobuf: bool) -> None:
    """rpc through the SDK reaches a node.rpc handler and returns its data."""

    @server.node.rpc("echo")
    async def echo(ctx: Any, data: bytes) -> bytes:
        return data

    client, _ = sdk(protobuf)
    await asyncio.wait_for(client.connect(), WAIT)
    result = await client.rpc("echo", encode(protobuf, {"x": 1}), timeout=WAIT)
    assert decode(result.data) == {"x": 1}


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_recovers_missed_publications_after_a_cut(
    server: Server, sdk: SdkFactory, protobuf: bool
) -> None:
    """Cut by the server, the SDK reconnects, recovers, and gets every missed publication once."""
    client, events = sdk(protobuf, min_reconnect_delay=4 * UNIT, max_reconnect_delay=8 * UNIT)
    sub_events = SubEvents()
    sub = client.new_subscription("chat:recover", events=sub_events)
    await asyncio.wait_for(client.connect(), WAIT)
    first_id = await asyncio.wait_for(events.connected.get(), WAIT)
    await asyncio.wait_for(sub.subscribe(), WAIT)
    await sub.ready(timeout=WAIT)
    first = await asyncio.wait_for(sub_events.subscribed.get(), WAIT)
    assert first.recoverable is True

    publisher = await open_client(ws_url(server))
    await publisher.publish("chat:recover", {"n": 1})
    assert [decode(p.data)["n"] for p in await sub_events.take(1)] == [1]

    assert server.node.disconnect(first_id, codes.FORCE_RECONNECT)
    # All in one frame, straight away: the SDK waits at least min_reconnect_delay.
    replies = await publisher.batch(
        *[("publish", {"channel": "chat:recover", "data": {"n": n}}) for n in range(2, 7)]
    )
    assert all("publish" in r for r in replies)

    second_id = await asyncio.wait_for(events.connected.get(), WAIT)
    assert second_id != first_id
    again = await asyncio.wait_for(sub_events.subscribed.get(), WAIT)
    assert again.was_recovering is True
    assert again.recovered is True
    missed = await sub_events.take(5)
    assert [decode(p.data)["n"] for p in missed] == [2, 3, 4, 5, 6]
    assert [p.offset for p in missed] == [2, 3, 4, 5, 6]

    await publisher.publish("chat:recover", {"n": 7})
    (live,) = await sub_events.take(1)
    assert (decode(live.data)["n"], live.offset) == (7, 7)
    assert sub_events.publications.empty()  # none twice
    await publisher.close()
