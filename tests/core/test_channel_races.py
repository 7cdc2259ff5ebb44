"""Subscribe, unsubscribe and close racing each other across engine round trips.

Each test holds an engine call at a gate (as a remote Redis or NATS call would wait),
lets something else happen meanwhile, and checks what the node holds afterwards: hub
entries, the broker's subscriptions, presence entries, and what the others were told.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from conftest import chat_settings

from hubbub.core.hooks import Allow, ClientContext, Credentials, Hooks
from hubbub.core.node import Node
from hubbub.protocol import codes
from hubbub.protocol.messages import (
    ConnectRequest,
    Reply,
    SubRefreshRequest,
    SubscribeRequest,
)

from .fakes import Client, Gate, GatedBroker, GatedPresence, connected, drain, pubs_of, turns

ROOM = "chat:room"
A, B = "chat:a", "chat:b"


@pytest.fixture
async def parts() -> AsyncIterator[tuple[Node, GatedBroker, GatedPresence]]:
    broker, presence = GatedBroker(), GatedPresence()
    node = Node(chat_settings(), broker=broker, presence=presence)
    await node.start()
    try:
        yield node, broker, presence
    finally:
        broker.gate.opened.set()
        if presence.add_gate is not None:
            presence.add_gate.opened.set()
        await node.shutdown(0)


def _pushes(replies: list[Reply], kind: str) -> list[str]:
    """Client ids in the join or leave pushes among ``replies``."""
    found = []
    for reply in replies:
        push = reply.push
        event = getattr(push, kind) if push is not None else None
        if event is not None:
            found.append(event.info.client)
    return found


async def test_unsubscribe_then_subscribe_again_keeps_the_new_subscription(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """An application moving a user (unsubscribe, then subscribe at once): the release of
    the old subscription, which runs later, must not undo the new one's broker
    subscription or presence entry."""
    node, broker, presence = parts
    client = await connected(node)
    assert (await client.call("subscribe", {"channel": ROOM})).subscribe is not None

    @node.rpc("rejoin")
    async def rejoin(ctx: ClientContext, data: bytes) -> bytes:
        node.unsubscribe(client.session, ROOM)
        node.subscribe(client.session, ROOM)
        return data

    assert (await client.call("rpc", {"method": "rejoin", "data": {}})).rpc is not None
    await turns(10)
    client.conn.take()
    await node.publish(ROOM, b'{"n":1}')
    await drain(client.session)
    assert ROOM in broker.live
    assert pubs_of(client.conn.replies(), ROOM) == [1]
    assert client.session.client_id in await presence.presence(ROOM)


async def test_a_failed_broker_subscribe_does_not_leave_later_subscribers_deaf(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """The first subscriber's broker subscribe fails while a second waits for it; both
    are answered 100, and a third arriving any time after gets a working subscription."""
    node, broker, _ = parts
    first, second, third = [await connected(node) for _ in range(3)]
    broker.hold, broker.fail_once = {ROOM}, True
    first.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await broker.gate.reached.wait()
    second.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await turns(2)
    broker.hold = set()
    broker.gate.opened.set()
    await asyncio.sleep(0)
    third.feed({"id": 2, "subscribe": {"channel": ROOM}})
    for client in (first, second, third):
        await drain(client.session)
    assert first.reply(2).error is not None and second.reply(2).error is not None
    assert third.reply(2).subscribe is not None
    third.conn.take()
    await node.publish(ROOM, b'{"n":1}')
    await drain(third.session)
    assert ROOM in broker.live
    assert pubs_of(third.conn.replies(), ROOM) == [1]


async def test_one_clients_close_does_not_fail_anothers_subscribe(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """The broker subscribe is the node's, not the first subscriber's: the first closing
    while it is in flight neither cancels it nor fails the second one waiting for it."""
    node, broker, _ = parts
    first, second = await connected(node), await connected(node)
    broker.hold = {ROOM}
    first.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await broker.gate.reached.wait()
    second.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await turns(2)
    first.session.close(codes.FORCE_DISCONNECT)
    broker.gate.opened.set()
    await drain(second.session)
    await turns(5)
    reply = second.reply(2)
    assert reply.error is None and reply.subscribe is not None
    assert node.hub.subscribers(ROOM) == 1 and ROOM in broker.live


@pytest.mark.parametrize("lost", [False, True], ids=["close", "close-then-lost"])
async def test_a_cancelled_subscribe_releases_once_even_when_cancelled_twice(
    parts: tuple[Node, GatedBroker, GatedPresence], lost: bool
) -> None:
    """Closed after its join went out, a subscribe undoes itself once: the entry goes
    and the others see one leave. The close's own release must not double it, and the
    socket's loss right after (a second cancel) must not cut the cleanup short while it
    awaits the store."""
    node, broker, presence = parts
    watcher = await connected(node)
    assert (await watcher.call("subscribe", {"channel": ROOM})).subscribe is not None
    watcher.conn.take()
    client = await connected(node)
    client_id = client.session.client_id
    broker.join_gate, presence.remove_gate = Gate(), Gate()
    client.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await broker.join_gate.reached.wait()
    client.session.close(codes.FORCE_DISCONNECT)
    await presence.remove_gate.reached.wait()  # the cleanup awaits the store
    if lost:
        client.session.connection_lost()
    presence.remove_gate.opened.set()
    broker.join_gate.opened.set()
    await turns(10)
    assert client_id not in await presence.presence(ROOM)
    replies = watcher.conn.replies()
    assert _pushes(replies, "join") == [client_id] and _pushes(replies, "leave") == [client_id]
    assert node.hub.subscribers(ROOM) == 1


async def test_a_hook_that_disconnects_the_client_leaves_no_subscription(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """A subscribe hook closing its own client (a ban check) runs inside the command,
    which close() cannot cancel: the subscribe must still end with nothing held."""
    node, broker, presence = parts

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        node.disconnect(ctx.client_id, codes.FORCE_DISCONNECT)
        return Allow()

    node.hooks.on_subscribe = on_subscribe
    client = await connected(node)
    client.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await drain(client.session)
    client.session.connection_lost()
    await turns(10)
    assert client.session.closed and client.session.subscriptions == {}
    assert node.hub.subscribers(ROOM) == 0 and broker.live == set()
    assert client.session.client_id not in await presence.presence(ROOM)


def _granting(*channels: str) -> Hooks:
    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(channels=channels)

    return Hooks(on_connecting=on_connecting)


async def test_a_failed_connect_releases_the_server_side_channels_set_up_so_far(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """The second granted channel's broker subscribe fails the connect (100): the first
    one, already set up, is released with it, and the others see its join undone."""
    node, broker, presence = parts
    watcher = await connected(node)
    assert (await watcher.call("subscribe", {"channel": A})).subscribe is not None
    watcher.conn.take()
    node.hooks.on_connecting = _granting(A, B).on_connecting
    broker.fail = {B}
    client = Client(node)
    reply = await client.connect()
    assert reply.error is not None and reply.error.code == 100
    await turns(5)
    assert client.session.subscriptions == {} and node.hub.subscribers(A) == 1
    assert client.session.client_id not in await presence.presence(A)
    replies = watcher.conn.replies()
    joined = _pushes(replies, "join")
    assert joined == _pushes(replies, "leave") == [client.session.client_id]


async def test_the_connect_reply_leaves_out_a_channel_unsubscribed_meanwhile(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """The application unsubscribes the first granted channel while the second is set
    up: the connect reply does not claim the first, which the server no longer holds."""
    node, broker, _ = parts
    node.hooks.on_connecting = _granting(A, B).on_connecting
    broker.hold = {B}
    client = Client(node)
    client.feed({"id": 1, "connect": {}})
    await broker.gate.reached.wait()
    assert A in client.session.subscriptions
    node.unsubscribe(client.session, A)
    broker.gate.opened.set()
    await drain(client.session)
    connect = client.reply(1).connect
    assert connect is not None
    assert list(connect.subs) == [B] and list(client.session.subscriptions) == [B]


async def test_presence_refresh_brings_back_no_released_entry(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """The periodic refresh awaits the store entry by entry: a session that closed
    meanwhile gets none of its entries back."""
    node, _, presence = parts
    client = await connected(node)
    for channel in (A, B):
        assert (await client.call("subscribe", {"channel": channel})).subscribe is not None
    presence.add_gate = gate = Gate()
    refresh = asyncio.ensure_future(node._refresh_presence())
    await gate.reached.wait()  # refreshing A
    client.session.connection_lost()
    await turns(10)
    gate.opened.set()
    await refresh
    for channel in (A, B):
        assert client.session.client_id not in await presence.presence(channel)


async def test_presence_refresh_skips_a_subscription_still_being_set_up(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """A refresh while a subscribe awaits the broker adds nothing for it: the subscribe
    then fails, and no entry is left for a subscription that never was."""
    node, broker, presence = parts
    client = await connected(node)
    broker.hold, broker.fail = {A}, {A}
    client.feed({"id": 2, "subscribe": {"channel": A}})
    await broker.gate.reached.wait()
    await node._refresh_presence()
    broker.gate.opened.set()
    await drain(client.session)
    assert client.reply(2).error is not None
    assert client.session.client_id not in await presence.presence(A)


async def test_sub_refresh_answers_an_error_when_the_subscription_ended_meanwhile(
    parts: tuple[Node, GatedBroker, GatedPresence],
) -> None:
    """The server unsubscribes while the sub_refresh hook runs: no success reply with a
    new ttl for a subscription the server no longer has."""
    node, _, _ = parts
    gate = Gate()

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        return Allow(expire_at=4_000_000_000.0)

    async def on_sub_refresh(ctx: ClientContext, channel: str, req: SubRefreshRequest) -> Allow:
        await gate.wait()
        return Allow(expire_at=4_000_000_000.0)

    node.hooks.on_subscribe, node.hooks.on_sub_refresh = on_subscribe, on_sub_refresh
    client = await connected(node)
    assert (await client.call("subscribe", {"channel": ROOM})).subscribe is not None
    client.feed({"id": 3, "sub_refresh": {"channel": ROOM, "token": "t"}})
    await gate.reached.wait()
    node.unsubscribe(client.session, ROOM)
    gate.opened.set()
    await drain(client.session)
    error = client.reply(3).error
    assert error is not None and error.code == 103


async def test_an_eager_task_factory_does_not_stall_broker_subscriptions() -> None:
    """An application may run the node under ``asyncio.eager_task_factory`` (3.12+):
    a broker sync that finishes while being created must not be left behind as the one
    later subscribers wait on."""
    if not hasattr(asyncio, "eager_task_factory"):
        pytest.skip("asyncio.eager_task_factory needs Python 3.12+")
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    broker = GatedBroker()
    node = Node(chat_settings(), broker=broker)
    await node.start()
    try:
        first = await connected(node)
        assert (await first.call("subscribe", {"channel": ROOM})).subscribe is not None
        assert (await first.call("unsubscribe", {"channel": ROOM})).unsubscribe is not None
        second = await connected(node)
        assert (await second.call("subscribe", {"channel": ROOM})).subscribe is not None
        await node.publish(ROOM, b'{"n":1}')
        await drain(second.session)
        assert ROOM in broker.live and pubs_of(second.conn.replies(), ROOM) == [1]
    finally:
        loop.set_task_factory(None)
        await node.shutdown(0)
