"""Server-side subscriptions end to end: channels granted by the connect hook
(``Credentials.channels``), over real sockets, with the raw client and with
centrifuge-python (PROTOCOL.md §3.2 ``subs``, §7.2 last paragraph).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    ServerPublicationContext,
    ServerSubscribedContext,
)
from conftest import UNIT, chat_settings, eventually, ws_url
from core.fakes import Gate

from hubbub.core.channels import MAX_CHANNEL_LENGTH
from hubbub.core.hooks import ClientContext, Credentials, Hooks
from hubbub.core.node import Node
from hubbub.protocol import codes
from hubbub.protocol.messages import ConnectRequest, StreamPosition
from hubbub.server import Server
from integration.wsclient import WAIT, WsClient, payload

LOBBY = "chat:lobby"
NEWS = "news:flash"  # a namespace without history
FORMATS = [pytest.param(False, id="json"), pytest.param(True, id="protobuf")]


class ConnectHook:
    """on_connecting granting ``channels`` as server-side subscriptions to user = token.

    ``hold`` (a Gate) makes the next connect wait in the hook until the test opens it.
    """

    def __init__(self) -> None:
        """Grant the lobby; hold nothing."""
        self.channels: tuple[str, ...] = (LOBBY,)
        self.hold: Gate | None = None
        self.requests: list[ConnectRequest] = []

    async def __call__(self, ctx: ClientContext, req: ConnectRequest) -> Credentials:
        """Record the request, wait at the gate if armed, grant the channels."""
        self.requests.append(req)
        gate, self.hold = self.hold, None
        if gate is not None:
            await gate.wait()
        return Credentials(user=req.token, channels=self.channels)


@pytest.fixture
def hook() -> ConnectHook:
    """The connect hook of the server; tests change its channels or arm its gate."""
    return ConnectHook()


@pytest.fixture
async def server(hook: ConnectHook) -> AsyncIterator[Server]:
    """An in-process server on the chat config (plus `news:`, no history) with the hook."""
    settings = chat_settings(**{"channels.namespaces.news.allow_subscribe": False})
    server = Server(settings, node=Node(settings, hooks=Hooks(on_connecting=hook)))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def clients(server: Server) -> AsyncIterator[Callable[..., Any]]:
    """Factory of raw clients (not connected yet); closed at teardown."""
    opened: list[WsClient] = []

    async def make(protobuf: bool = False) -> WsClient:
        client = await WsClient.open(ws_url(server), protobuf=protobuf)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


async def top_of(node: Node, channel: str) -> StreamPosition:
    """The stream's current top position."""
    _, top = await node.broker.history(channel, since=None, limit=0, reverse=False)
    return top


async def publish_n(node: Node, channel: str, first: int, last: int) -> None:
    """Publish {"n": i} for i in first..last."""
    for i in range(first, last + 1):
        await node.publish(channel, b'{"n":%d}' % i)


# --------------------------------------------------------------------- raw client


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_connect_result_lists_the_server_side_subscriptions(
    server: Server, hook: ConnectHook, clients: Any, protobuf: bool
) -> None:
    """ConnectResult.subs has each granted channel, positioned per namespace; unknown,
    malformed and empty ones are left out and the connection stands."""
    hook.channels = (LOBBY, NEWS, "nope:x", "", "chat:" + "x" * MAX_CHANNEL_LENGTH)
    await publish_n(server.node, LOBBY, 1, 2)
    top = await top_of(server.node, LOBBY)
    client = await clients(protobuf)
    result = await client.connect()
    subs = result["subs"]
    assert set(subs) == {LOBBY, NEWS}
    lobby = subs[LOBBY]
    assert (lobby["recoverable"], lobby["positioned"]) == (True, True)
    assert (lobby["epoch"], lobby["offset"]) == (top.epoch, 2)
    assert "publications" not in lobby and "recovered" not in lobby
    assert subs[NEWS] == {}
    session = server.node.sessions[client.client_id]
    assert set(session.subscriptions) == {LOBBY, NEWS}


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_publication_reaches_the_client_without_a_subscribe(
    server: Server, clients: Any, protobuf: bool
) -> None:
    """Publications into a server-side channel arrive as pushes; the client never subscribed."""
    client = await clients(protobuf)
    await client.connect(token="alice")
    other = await clients()
    await other.connect(token="bob")
    await server.node.publish(LOBBY, b'{"n":1}')
    await other.publish(LOBBY, {"n": 2})
    pushes = [await client.push("pub") for _ in range(2)]
    assert [p["channel"] for p in pushes] == [LOBBY, LOBBY]
    assert [payload(p["pub"]["data"]) for p in pushes] == [{"n": 1}, {"n": 2}]
    assert [p["pub"]["offset"] for p in pushes] == [1, 2]
    assert pushes[1]["pub"]["info"]["user"] == "bob"


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_reconnect_recovers_exactly_the_missed_publications(
    server: Server, clients: Any, protobuf: bool
) -> None:
    """Reconnecting with subs {recover, offset, epoch} gets recovered: true and just the missed."""
    first = await clients(protobuf)
    epoch = (await first.connect())["subs"][LOBBY]["epoch"]
    await publish_n(server.node, LOBBY, 1, 1)
    assert (await first.push("pub"))["pub"]["offset"] == 1
    await first.close()
    await publish_n(server.node, LOBBY, 2, 3)  # missed while away

    again = await clients(protobuf)
    result = await again.connect(subs={LOBBY: {"recover": True, "offset": 1, "epoch": epoch}})
    sub = result["subs"][LOBBY]
    assert (sub["recovered"], sub["was_recovering"]) == (True, True)
    assert (sub["epoch"], sub["offset"]) == (epoch, 1)
    assert [p["offset"] for p in sub["publications"]] == [2, 3]
    assert [payload(p["data"]) for p in sub["publications"]] == [{"n": 2}, {"n": 3}]
    await publish_n(server.node, LOBBY, 4, 4)
    assert (await again.push("pub"))["pub"]["offset"] == 4  # nothing replayed twice


async def test_reconnect_from_another_epoch_is_not_recovered(server: Server, clients: Any) -> None:
    """A server-side recover from an unknown epoch: recovered false, no publications, the top."""
    await publish_n(server.node, LOBBY, 1, 3)
    client = await clients()
    result = await client.connect(subs={LOBBY: {"recover": True, "offset": 1, "epoch": "gone"}})
    sub = result["subs"][LOBBY]
    assert sub.get("recovered", False) is False
    assert sub["was_recovering"] is True
    assert sub["offset"] == 3
    assert "publications" not in sub


async def test_subs_for_channels_not_granted_are_ignored(
    server: Server, hook: ConnectHook, clients: Any
) -> None:
    """Recovery state for a channel the hook no longer grants creates no subscription."""
    hook.channels = ()
    await publish_n(server.node, LOBBY, 1, 2)
    client = await clients()
    result = await client.connect(subs={LOBBY: {"recover": True, "offset": 1}})
    assert "subs" not in result
    assert server.node.sessions[client.client_id].subscriptions == {}


async def test_server_side_subscriber_joins_presence_and_is_released_on_close(
    server: Server, hook: ConnectHook, clients: Any
) -> None:
    """A server-side subscriber is announced (join), listed in presence, and released on close."""
    hook.channels = ()
    watcher = await clients()
    await watcher.connect(token="watcher")
    await watcher.subscribe(LOBBY, join_leave=True)
    hook.channels = (LOBBY,)
    alice = await clients()
    await alice.connect(token="alice")
    join = await watcher.push("join")
    assert join["join"]["info"] == {"user": "alice", "client": alice.client_id}
    presence = (await watcher.call("presence", {"channel": LOBBY}))["presence"]["presence"]
    assert set(presence) == {watcher.client_id, alice.client_id}

    await alice.close()
    leave = await watcher.push("leave")
    assert leave["leave"]["info"]["client"] == alice.client_id
    await eventually(lambda: server.node.hub.subscribers(LOBBY) == 1)


async def test_client_subscribe_to_a_server_side_channel_is_105(
    server: Server, clients: Any
) -> None:
    """Subscribing from the client to a channel already held server-side answers 105."""
    client = await clients()
    await client.connect()
    reply = await client.call("subscribe", {"channel": LOBBY})
    assert reply["error"] == {"code": 105, "message": "already subscribed"}


# -------------------------------------------------------------- centrifuge-python


def decode(data: Any) -> Any:
    """An SDK publication's data as a Python value on either format."""
    return json.loads(data) if isinstance(data, bytes) else data


class ServerSubEvents(ClientEventHandler):
    """Records connects and the server-side subscription events of one SDK client."""

    def __init__(self) -> None:
        """Empty queues."""
        self.connected: asyncio.Queue[str] = asyncio.Queue()
        self.subscribed: asyncio.Queue[ServerSubscribedContext] = asyncio.Queue()
        self.publications: asyncio.Queue[ServerPublicationContext] = asyncio.Queue()

    async def on_connected(self, ctx: ConnectedContext) -> None:
        """Record the client id."""
        self.connected.put_nowait(ctx.client)

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        """Record a server-side subscribe."""
        self.subscribed.put_nowait(ctx)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        """Record a server-side publication."""
        self.publications.put_nowait(ctx)

    async def take(self, n: int) -> list[ServerPublicationContext]:
        """The next ``n`` publications."""
        return [await asyncio.wait_for(self.publications.get(), WAIT) for _ in range(n)]


@pytest.fixture
async def sdk(server: Server) -> AsyncIterator[Callable[[bool], tuple[Client, ServerSubEvents]]]:
    """Factory of centrifuge-python clients on the server; disconnected at teardown."""
    made: list[Client] = []

    def make(protobuf: bool) -> tuple[Client, ServerSubEvents]:
        events = ServerSubEvents()
        client = Client(
            ws_url(server),
            events=events,
            use_protobuf=protobuf,
            timeout=WAIT,
            proxy=None,
            min_reconnect_delay=UNIT,
            max_reconnect_delay=2 * UNIT,
        )
        made.append(client)
        return client, events

    yield make
    for client in made:
        await asyncio.wait_for(client.disconnect(), WAIT)


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_gets_server_side_subscription_and_publications(
    server: Server, sdk: Any, protobuf: bool
) -> None:
    """centrifuge-python reports the server-side subscription and its publications."""
    client, events = sdk(protobuf)
    await asyncio.wait_for(client.connect(), WAIT)
    subscribed = await asyncio.wait_for(events.subscribed.get(), WAIT)
    assert subscribed.channel == LOBBY
    assert (subscribed.recoverable, subscribed.positioned) == (True, True)
    assert subscribed.stream_position is not None
    await publish_n(server.node, LOBBY, 1, 2)
    pubs = await events.take(2)
    assert [p.channel for p in pubs] == [LOBBY, LOBBY]
    assert [decode(p.pub.data) for p in pubs] == [{"n": 1}, {"n": 2}]
    assert [p.pub.offset for p in pubs] == [1, 2]


@pytest.mark.parametrize("protobuf", FORMATS)
async def test_sdk_recovers_server_side_subscription_after_reconnect(
    server: Server, hook: ConnectHook, sdk: Any, protobuf: bool
) -> None:
    """After a reconnect the SDK sends its position and gets exactly the missed publications."""
    client, events = sdk(protobuf)
    await asyncio.wait_for(client.connect(), WAIT)
    client_id = await asyncio.wait_for(events.connected.get(), WAIT)
    first = await asyncio.wait_for(events.subscribed.get(), WAIT)
    await publish_n(server.node, LOBBY, 1, 1)
    assert [p.pub.offset for p in await events.take(1)] == [1]

    gate = hook.hold = Gate()
    assert server.node.disconnect(client_id, codes.FORCE_RECONNECT)
    await asyncio.wait_for(gate.reached.wait(), WAIT)  # the reconnect is in the hook
    await publish_n(server.node, LOBBY, 2, 3)
    gate.opened.set()

    again = await asyncio.wait_for(events.subscribed.get(), WAIT)
    sent = hook.requests[-1].subs[LOBBY]
    assert (sent.recover, sent.offset) == (True, 1)
    assert first.stream_position is not None
    assert sent.epoch == first.stream_position.epoch
    assert (again.channel, again.was_recovering, again.recovered) == (LOBBY, True, True)
    recovered = await events.take(2)
    assert [p.pub.offset for p in recovered] == [2, 3]
    assert [decode(p.pub.data) for p in recovered] == [{"n": 2}, {"n": 3}]
    await publish_n(server.node, LOBBY, 4, 4)
    assert [p.pub.offset for p in await events.take(1)] == [4]
