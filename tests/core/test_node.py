"""Tests for hubbub.core.node: session bookkeeping, heartbeats, releases, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from conftest import chat_settings, eventually

from hubbub.core.node import Node
from hubbub.core.session import Session, Subscription
from hubbub.engines.memory import MemoryBroker
from hubbub.errors import EngineError, ReplyError
from hubbub.protocol import codes
from hubbub.protocol.codes import UnsubscribeCode
from hubbub.protocol.messages import (
    Publication,
    StreamPosition,
    SubscribeResult,
    raw,
)

from .fakes import CODEC, Client, Gate, GatedBroker, GatedPresence, connected, drain, pubs_of, turns

ROOM = "chat:room"


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """A started node on the example chat config (memory engines)."""
    node = Node(chat_settings())
    await node.start()
    yield node
    await node.shutdown(0)
    await turns()


async def subscribed(node: Node, channel: str = ROOM) -> Client:
    """A connected client subscribed to ``channel``, with the replies taken."""
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": channel})
    assert reply.subscribe is not None
    client.conn.take()
    return client


@pytest.fixture
async def gated() -> AsyncIterator[tuple[Node, GatedBroker]]:
    """A started node whose broker subscriptions wait at the broker's gate."""
    broker = GatedBroker(hold_all=True)
    node = Node(chat_settings(), broker=broker)
    await node.start()
    try:
        yield node, broker
    finally:
        broker.gate.opened.set()
        await node.shutdown(0)


async def server_subscribing(node: Node, broker: GatedBroker) -> Client:
    """A connected client that Node.subscribe is subscribing, held at the broker's gate."""
    client = await connected(node)
    client.conn.take()
    assert node.subscribe(client.session, ROOM)
    await broker.gate.reached.wait()
    return client


# ---------------------------------------------------------------------- bookkeeping


async def test_accepted_session_is_known_only_after_connect(node: Node) -> None:
    """node.sessions lists connected clients by id; an accepted one is not there yet."""
    client = Client(node)
    assert client.session.client_id not in node.sessions
    await client.connect()
    assert node.sessions[client.session.client_id] is client.session


async def test_heartbeat_wheel_pings_connected_sessions_once_per_interval(node: Node) -> None:
    """A full turn of the node's wheel pings each connected session exactly once."""
    clients = [await connected(node) for _ in range(3)]
    never_connected = Client(node)
    wheel = node._wheel
    for _ in range(len(wheel._slots)):
        wheel.advance()
    await turns()
    assert all(c.conn.frames == [b"{}"] for c in clients)
    assert never_connected.conn.frames == []


async def test_closed_session_leaves_the_wheel_and_the_session_table(node: Node) -> None:
    """After a close the session is neither pinged nor listed."""
    client = await connected(node)
    client.session.close(codes.FORCE_RECONNECT)
    assert client.session.client_id not in node.sessions
    assert len(node._wheel) == 0


async def test_ping_item_is_encoded_once_per_codec(node: Node) -> None:
    """Every ping on a codec is the same cached bytes: `{}` for JSON."""
    assert node.ping_item(CODEC) == b"{}"
    assert node.ping_item(CODEC) is node.ping_item(CODEC)


# -------------------------------------------------------------------------- publish


async def test_publish_returns_increasing_offsets_in_one_epoch(node: Node) -> None:
    """Publishing in a history namespace stamps offsets 1, 2, ... of one epoch."""
    first = await node.publish(ROOM, b'{"n":1}')
    second = await node.publish(ROOM, b'{"n":2}')
    assert (first.offset, second.offset) == (1, 2)
    assert first.epoch == second.epoch != ""


async def test_publish_to_an_unknown_namespace_is_102(node: Node) -> None:
    """A channel of a namespace the config does not define is error 102."""
    with pytest.raises(ReplyError) as caught:
        await node.publish("nowhere:x", b"{}")
    assert caught.value.code == 102


async def test_publish_reaches_every_local_subscriber(node: Node) -> None:
    """A server-side publish is pushed to each subscriber with its offset."""
    clients = [await subscribed(node) for _ in range(3)]
    await node.publish(ROOM, b'{"n":1}')
    await turns()
    assert all(pubs_of(c.conn.replies(), ROOM) == [1] for c in clients)


# ------------------------------------------------------------------- release_pending


def pending_subscription(session_channel: str, offsets: list[int]) -> Subscription:
    """A subscription still holding publications with these offsets."""
    return Subscription(
        session_channel,
        pending=[Publication(data=raw(b'{"o":%d}' % o), offset=o) for o in offsets],
    )


async def test_release_pending_drops_what_the_reply_already_carries(node: Node) -> None:
    """Held publications at or before the reply's last offset are not pushed again."""
    client = await connected(node)
    sub = pending_subscription(ROOM, [3, 4, 5, 6])
    client.session.subscriptions[ROOM] = sub
    result = SubscribeResult(
        positioned=True, offset=2, publications=[Publication(offset=3), Publication(offset=4)]
    )
    node.release_pending(client.session, ROOM, result)
    await turns()
    assert pubs_of(client.conn.replies(), ROOM) == [5, 6]
    assert sub.pending is None


async def test_release_pending_without_replay_starts_after_the_reply_offset(node: Node) -> None:
    """With no publications in the reply, the reply's offset is the cut."""
    client = await connected(node)
    client.session.subscriptions[ROOM] = pending_subscription(ROOM, [4, 5])
    node.release_pending(client.session, ROOM, SubscribeResult(positioned=True, offset=4))
    await turns()
    assert pubs_of(client.conn.replies(), ROOM) == [5]


async def test_release_pending_of_a_non_recoverable_subscription_sends_all(node: Node) -> None:
    """Without positions nothing can be deduplicated: every held publication goes out."""
    client = await connected(node)
    client.session.subscriptions[ROOM] = pending_subscription(ROOM, [4, 5])
    node.release_pending(client.session, ROOM, SubscribeResult(offset=4))
    await turns()
    assert pubs_of(client.conn.replies(), ROOM) == [4, 5]


async def test_release_pending_happens_once(node: Node) -> None:
    """A second release is a no-op, and later publications go straight to the queue."""
    client = await connected(node)
    client.session.subscriptions[ROOM] = pending_subscription(ROOM, [1])
    node.release_pending(client.session, ROOM, SubscribeResult())
    node.release_pending(client.session, ROOM, SubscribeResult())
    await turns()
    assert pubs_of(client.conn.replies(), ROOM) == [1]


async def test_binary_publication_held_during_subscribe_is_not_written_as_json(
    node: Node,
) -> None:
    """A non-JSON payload held for a JSON subscriber closes it with 3506, as live ones do."""
    client = await connected(node)
    sub = Subscription(ROOM, pending=[Publication(data=raw(b"\x00\xff"), offset=1)])
    client.session.subscriptions[ROOM] = sub
    node.release_pending(client.session, ROOM, SubscribeResult())
    await turns()
    assert client.conn.frames == []
    assert client.conn.closed_with == codes.INAPPROPRIATE_PROTOCOL


# ----------------------------------------------------------------- closing, releasing


async def test_disconnect_unknown_client_is_false(node: Node) -> None:
    """Node.disconnect of an id not connected here returns False and closes nothing."""
    client = Client(node)  # accepted, never connected
    assert node.disconnect(client.session.client_id) is False
    assert node.disconnect("no-such-client") is False
    assert client.conn.closes == []


async def test_disconnect_with_a_custom_code(node: Node) -> None:
    """Node.disconnect passes the given Disconnect to the transport."""
    client = await connected(node)
    bye = codes.Disconnect(4500, "banned")
    assert node.disconnect(client.session.client_id, bye) is True
    assert client.conn.closes == [bye]


async def test_close_releases_subscriptions_and_tells_the_others(node: Node) -> None:
    """A closed session leaves its channels: hub, presence, and a leave push to others."""
    staying = await subscribed(node)
    leaving = await subscribed(node)
    staying.conn.take()  # the join of `leaving`
    assert node.hub.subscribers(ROOM) == 2
    leaving.session.close(codes.FORCE_RECONNECT)
    await turns(5)
    assert node.hub.subscribers(ROOM) == 1
    assert leaving.session.client_id not in await node.presence.presence(ROOM)
    (leave,) = staying.conn.replies()
    assert leave.push is not None
    assert leave.push.leave is not None
    assert leave.push.leave.info.client == leaving.session.client_id


async def test_subscriber_sees_joins_of_later_subscribers(node: Node) -> None:
    """In a join_leave namespace a new subscriber's join reaches the existing ones."""
    first = await subscribed(node)
    second = await subscribed(node)
    (join,) = first.conn.replies()
    assert join.push is not None
    assert join.push.join is not None
    assert join.push.join.info.client == second.session.client_id


async def test_server_unsubscribe_pushes_2000_then_releases(node: Node) -> None:
    """Node.unsubscribe sends an Unsubscribe push with code 2000 and drops the subscription."""
    client = await subscribed(node)
    node.unsubscribe(client.session, ROOM)
    await turns(5)
    (push,) = client.conn.messages()
    assert push == {
        "push": {"channel": ROOM, "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
    }
    assert ROOM not in client.session.subscriptions
    assert node.hub.subscribers(ROOM) == 0


async def test_server_unsubscribe_with_a_resubscribe_code(node: Node) -> None:
    """A code >= 2500 travels as given, with its reason."""
    client = await subscribed(node)
    node.unsubscribe(client.session, ROOM, UnsubscribeCode.INSUFFICIENT_STATE)
    await turns(5)
    (push,) = client.conn.messages()
    assert push["push"]["unsubscribe"] == {"code": 2500, "reason": "insufficient state"}


async def test_server_subscribe_pushes_the_position_then_publications(node: Node) -> None:
    """Node.subscribe: a Subscribe push with the stream's position and the data, then the
    channel's publications; the session holds the subscription like its own."""
    for i in range(2):
        await node.publish(ROOM, b'{"n":%d}' % i)
    client = await connected(node)
    client.conn.take()
    assert node.subscribe(client.session, ROOM, data=b'{"why":"invited"}')
    await drain(client.session)
    (push,) = client.conn.messages()
    added = push["push"]["subscribe"]
    assert push["push"]["channel"] == ROOM
    assert (added["recoverable"], added["positioned"], added["offset"]) == (True, True, 2)
    assert added["epoch"] and added["data"] == {"why": "invited"}
    assert ROOM in client.session.subscriptions and node.hub.subscribers(ROOM) == 1
    await node.publish(ROOM, b'{"n":2}')
    await drain(client.session)
    assert pubs_of(client.conn.take(), ROOM) == [3]


async def test_server_subscribe_waits_for_the_clients_command_in_progress(node: Node) -> None:
    """It takes its turn behind what the client already sent: while the client's RPC
    waits in its handler nothing is subscribed, and the push comes after the reply."""
    gate = Gate()

    @node.rpc("slow")
    async def slow(ctx: object, data: bytes) -> bytes:
        await gate.wait()
        return data

    client = await connected(node)
    client.conn.take()
    client.feed({"id": 5, "rpc": {"method": "slow", "data": {}}})
    await gate.reached.wait()
    assert node.subscribe(client.session, ROOM)
    await turns(5)
    assert ROOM not in client.session.subscriptions and client.conn.frames == []
    gate.opened.set()
    await drain(client.session)
    rpc_reply, push = client.conn.replies()
    assert rpc_reply.id == 5 and rpc_reply.rpc is not None
    assert push.push is not None and push.push.subscribe is not None


async def test_server_subscribe_from_a_hook_runs_after_the_hooks_command(node: Node) -> None:
    """Called from inside a command that has not waited yet, it is queued behind that
    command, not run beside it. The case it was written for is 3.12+, where the command
    runs eagerly inside ``data_received``: CI runs this file under 3.13 too."""

    seen_in_hook: list[bool] = []

    @node.rpc("invite")
    async def invite(ctx: object, data: bytes) -> bytes:
        # Recorded, not asserted here: the session would turn an AssertionError into
        # an error reply.
        seen_in_hook.append(node.subscribe(client.session, ROOM))
        seen_in_hook.append(ROOM in client.session.subscriptions)  # not yet: after us
        return data

    client = await connected(node)
    client.conn.take()
    client.feed({"id": 6, "rpc": {"method": "invite", "data": {}}})
    await drain(client.session)
    assert seen_in_hook == [True, False]
    rpc_reply, push = client.conn.replies()
    assert rpc_reply.id == 6 and rpc_reply.rpc is not None
    assert push.push is not None and push.push.subscribe is not None
    assert client.session._worker is None  # one worker, and it has finished


async def test_server_subscribe_finds_the_client_subscribed_already(node: Node) -> None:
    """A client subscribed by itself gets no second subscription and no push."""
    client = await subscribed(node)
    assert node.subscribe(client.session, ROOM)
    await drain(client.session)
    assert client.conn.frames == [] and node.hub.subscribers(ROOM) == 1


async def test_server_subscribe_undone_meanwhile_sends_nothing(
    gated: tuple[Node, GatedBroker],
) -> None:
    """A server unsubscribe while the broker subscription is in flight wins: the client
    gets the Unsubscribe push and no Subscribe push after it, and nothing is held."""
    node, broker = gated
    client = await server_subscribing(node, broker)
    node.unsubscribe(client.session, ROOM)
    broker.gate.opened.set()
    await drain(client.session)
    pushes = [r.push for r in client.conn.replies() if r.push is not None]
    assert [p.unsubscribe is not None for p in pushes] == [True]
    assert ROOM not in client.session.subscriptions and node.hub.subscribers(ROOM) == 0
    assert broker.live == set()  # the release waited for the subscribe it undoes


@pytest.mark.parametrize(
    ("code", "answer"),
    [(UnsubscribeCode.SERVER, (103, False)), (UnsubscribeCode.INSUFFICIENT_STATE, (100, True))],
)
async def test_client_subscribe_overtaken_by_a_server_unsubscribe(
    gated: tuple[Node, GatedBroker], code: UnsubscribeCode, answer: tuple[int, bool]
) -> None:
    """A server unsubscribe while the client's own subscribe awaits the broker wins: the
    Unsubscribe push, then an error reply (temporary when the code asks the client to
    subscribe again), and nothing held: no subscriber, presence or broker subscription."""
    node, broker = gated
    client = await connected(node)
    client.conn.take()
    client.feed({"id": 5, "subscribe": {"channel": ROOM}})
    await broker.gate.reached.wait()
    node.unsubscribe(client.session, ROOM, code)
    broker.gate.opened.set()
    await drain(client.session)
    push, reply = client.conn.replies()
    assert push.push is not None and push.push.unsubscribe is not None
    assert push.push.unsubscribe.code == code
    assert reply.id == 5 and reply.error is not None
    assert (reply.error.code, reply.error.temporary) == answer
    assert client.session.subscriptions == {} and node.hub.subscribers(ROOM) == 0
    assert broker.live == set()
    assert await node.presence.presence(ROOM) == {}


@pytest.mark.parametrize("then_close", [False, True])
async def test_server_unsubscribe_during_the_presence_add_leaves_no_trace(
    then_close: bool,
) -> None:
    """Unsubscribed while its presence entry is being added, a subscribe ends with no
    entry left, and the others see neither a join nor a leave for it; closing the
    session meanwhile (the command is cancelled) releases it once, the same way."""
    presence = GatedPresence()
    presence.add_gate = gate = Gate()
    node = Node(chat_settings(), presence=presence)
    await node.start()
    try:
        watcher = await connected(node)
        watcher.feed({"id": 2, "subscribe": {"channel": ROOM}})
        await gate.reached.wait()
        gate.opened.set()
        await drain(watcher.session)
        assert watcher.reply(2).subscribe is not None
        gate.opened.clear()
        gate.reached.clear()
        watcher.conn.take()
        client = await connected(node)
        client.feed({"id": 5, "subscribe": {"channel": ROOM}})
        await gate.reached.wait()
        node.unsubscribe(client.session, ROOM)
        if then_close:
            client.session.close(codes.FORCE_DISCONNECT)
        gate.opened.set()
        await drain(client.session)
        await turns(5)
        assert client.session.client_id not in await presence.presence(ROOM)
        assert watcher.conn.replies() == []  # no join, no leave
        assert node.hub.subscribers(ROOM) == 1
        if not then_close:
            error = client.reply(5).error
            assert error is not None and error.code == 103
    finally:
        gate.opened.set()
        await node.shutdown(0)


async def test_server_subscribe_refuses_what_no_client_may_have(node: Node) -> None:
    """A bad channel fails at once; a client not connected (yet, or any more) gets False."""
    client = await connected(node)
    with pytest.raises(ReplyError) as empty:
        node.subscribe(client.session, "")
    with pytest.raises(ReplyError) as unknown:
        node.subscribe(client.session, "nope:x")
    assert (empty.value.code, unknown.value.code) == (107, 102)
    with pytest.raises(ValueError, match="JSON"):
        node.subscribe(client.session, ROOM, data=b"not json")
    assert not node.subscribe(Client(node).session, ROOM)
    client.session.close(codes.FORCE_DISCONNECT)
    assert not node.subscribe(client.session, ROOM)
    await turns(5)
    assert node.hub.subscribers(ROOM) == 0


async def test_server_subscribe_stops_when_the_session_closes_midway(
    gated: tuple[Node, GatedBroker],
) -> None:
    """Closing while the broker subscription is in flight cancels it like a command:
    no Subscribe push, no subscriber left, and the broker never ends up subscribed
    (an uncancelled subscribe would finish after the release had unsubscribed)."""
    node, broker = gated
    client = await server_subscribing(node, broker)
    client.session.close(codes.FORCE_DISCONNECT)
    broker.gate.opened.set()
    await turns(5)
    assert node.hub.subscribers(ROOM) == 0
    assert client.session.subscriptions == {}
    assert not [r for r in client.conn.replies() if r.push is not None]
    assert broker.live == set()


async def test_shutdown_closes_every_session_with_3001(node: Node) -> None:
    """Shutdown tells every client, connected or not, to come back later."""
    clients = [await connected(node), Client(node)]
    await node.shutdown(0)
    assert all(c.conn.closes == [codes.SHUTDOWN] for c in clients)


async def test_connection_lost_mid_subscribe_leaves_no_subscription(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport that goes away while a subscribe is half done leaves nothing behind."""
    gate = Gate()
    add_subscriber = node.add_subscriber

    async def held_add(session: Session, sub: Subscription) -> None:
        await add_subscriber(session, sub)
        await gate.wait()

    monkeypatch.setattr(node, "add_subscriber", held_add)
    client = await connected(node)
    client.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await gate.reached.wait()
    assert node.hub.subscribers(ROOM) == 1
    client.session.connection_lost()
    await turns(5)
    assert node.hub.subscribers(ROOM) == 0
    assert client.session.subscriptions == {}
    assert client.conn.frames == []


async def test_second_subscriber_waits_for_the_first_ones_broker_subscription(
    gated: tuple[Node, GatedBroker],
) -> None:
    """While the broker subscription of a channel is in flight, a second subscriber of it
    gets no reply either: its history read must not come before delivery is set up."""
    node, broker = gated
    gate = broker.gate
    first, second = await connected(node), await connected(node)
    first.feed({"id": 9, "subscribe": {"channel": ROOM}})
    await gate.reached.wait()
    second.feed({"id": 9, "subscribe": {"channel": ROOM}})
    await turns()
    assert [r for r in second.conn.replies() if r.id == 9] == []  # still waiting
    gate.opened.set()
    await drain(first.session)
    await drain(second.session)
    assert second.reply(9).subscribe is not None and first.reply(9).subscribe is not None
    assert broker.calls == 1


class _BrokenPublish(MemoryBroker):
    """A broker whose publishes fail as a lost Redis or NATS connection makes them fail."""

    async def publish(self, channel: str, pub: Publication, history: object) -> StreamPosition:
        raise EngineError("broker away")


async def test_engine_failure_is_a_temporary_internal_error_and_the_session_lives() -> None:
    """An EngineError from any handler answers 100 temporary; the connection stays usable."""
    node = Node(chat_settings(), broker=_BrokenPublish())
    await node.start()
    client = await connected(node)
    reply = await client.call("publish", {"channel": ROOM, "data": {"n": 1}})
    assert reply.error is not None
    assert (reply.error.code, reply.error.temporary) == (100, True)
    assert (await client.call("presence_stats", {"channel": ROOM})).presence_stats is not None
    assert client.conn.closed_with is None
    await node.shutdown(0)


async def test_a_gap_unsubscribes_own_subscriptions_2500_and_closes_server_side_ones_3010(
    node: Node,
) -> None:
    """After a gap a client's own subscription is ended with 2500 (it subscribes again
    and recovers); a server-side one cannot be asked that, so its connection is closed
    with 3010 (the client reconnects and recovers it through connect)."""
    own = await subscribed(node)
    granted = await connected(node)
    assert node.subscribe(granted.session, ROOM)
    await drain(granted.session)
    assert ROOM in granted.session.subscriptions
    node.hub.on_gap([ROOM])
    await turns(5)
    ends = [r.push.unsubscribe for r in own.conn.replies() if r.push and r.push.unsubscribe]
    assert [end.code for end in ends] == [2500]
    assert not own.conn.closes
    assert granted.conn.closes == [codes.INSUFFICIENT_STATE]
    assert node.hub.subscribers(ROOM) == 0


async def test_a_hanging_presence_refresh_does_not_hold_up_the_stale_sweep() -> None:
    """The stale sweep closes a connection that never sent connect while a presence
    refresh is stuck on the store."""
    presence = GatedPresence()
    settings = chat_settings(**{"client.stale_timeout": 0.05, "client.presence_ttl": 0.3})
    node = Node(settings, presence=presence)
    await node.start()
    try:
        await subscribed(node)
        presence.add_gate = stuck = Gate()  # never opened: a store that stopped answering
        await eventually(stuck.reached.is_set)  # a refresh is stuck on the store now
        silent = Client(node)  # never sends connect
        await eventually(lambda: silent.conn.closes)
        assert silent.conn.closes == [codes.STALE]
    finally:
        await node.shutdown(0)


async def test_shutdown_waits_for_the_channel_releases_before_closing_engines() -> None:
    """Closing every client starts their channel releases (presence removal, leave);
    shutdown waits for them, within its timeout, before it closes the engines: else a
    slow store would keep the entries until their TTL."""
    presence = GatedPresence()
    presence.remove_gate = gate = Gate()
    node = Node(chat_settings(), presence=presence)
    await node.start()
    client = await subscribed(node)
    client_id = client.session.client_id
    shutdown = asyncio.ensure_future(node.shutdown(5))
    try:
        await gate.reached.wait()
        client.session.connection_lost()  # the socket goes, as the transport would report
        await asyncio.sleep(0.1)  # time for shutdown to pass its wait for open sockets
        assert not shutdown.done()  # still waiting for the removal
    finally:
        gate.opened.set()
        await shutdown
    assert client_id not in await presence.presence(ROOM)
