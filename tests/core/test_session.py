"""Tests for hubbub.core.session, sans I/O: frames in, frames out of a RecordingConnection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import chat_settings

from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny, Hooks
from hubbub.core.node import Node
from hubbub.engines.memory import MemoryBroker
from hubbub.protocol import codes
from hubbub.protocol.messages import (
    ConnectRequest,
    Publication,
    PublishRequest,
    Reply,
    StreamPosition,
    SubscribeRequest,
)
from hubbub.protocol.state import State

from .fakes import Client, Gate, connected, drain, pubs_of, turns

ROOM = "chat:room"
SMALL_BUFFER = 1000


@pytest.fixture
def client(node: Node) -> Client:
    """A fresh connection on the node, not connected yet."""
    return Client(node)


async def top_of(node: Node, channel: str) -> StreamPosition:
    """The stream's current top position."""
    _, top = await node.broker.history(channel, since=None, limit=0, reverse=False)
    return top


async def publish_n(node: Node, channel: str, n: int) -> None:
    """Publish n small JSON payloads."""
    for i in range(n):
        await node.publish(channel, b'{"n":%d}' % i)


def assert_reply_before_pushes(replies: list[Reply], cid: int, channel: str) -> None:
    """The reply to ``cid`` comes before any push for ``channel``."""
    position = next(i for i, r in enumerate(replies) if r.id == cid)
    pushes = [i for i, r in enumerate(replies) if r.push is not None and r.push.channel == channel]
    assert all(i > position for i in pushes)


# --------------------------------------------------------------------------- connect


async def test_connect_reply_carries_client_id_and_ping_settings(
    node: Node, client: Client
) -> None:
    """The connect reply has the session's client id, the ping interval and pong: true."""
    reply = await client.connect()
    assert reply.error is None
    assert reply.connect is not None
    assert reply.connect.client == client.session.client_id
    assert reply.connect.ping == round(node.settings.client.ping_interval)
    assert reply.connect.pong is True
    assert client.session.state is State.CONNECTED
    assert node.sessions[client.session.client_id] is client.session


async def test_connect_reply_on_the_wire_omits_zero_values(client: Client) -> None:
    """Zero fields stay off the wire: no expires/ttl/data/subs for a plain connect."""
    await client.connect()
    (message,) = client.conn.messages()
    assert set(message) == {"id", "connect"}
    assert set(message["connect"]) == {"client", "version", "ping", "pong"}


async def test_commands_in_the_connect_frame_run_after_connect(client: Client) -> None:
    """Commands sharing a frame with connect wait for it and are answered in order."""
    await client.send(
        {"id": 1, "connect": {}},
        {"id": 2, "subscribe": {"channel": ROOM}},
    )
    replies = client.conn.replies()
    assert [r.id for r in replies] == [1, 2]
    assert replies[1].subscribe is not None
    assert not client.conn.closes


async def test_command_before_connect_closes_3501(client: Client) -> None:
    """Anything but connect as the first command closes the connection with 3501."""
    await client.send({"id": 1, "subscribe": {"channel": ROOM}})
    assert client.conn.closed_with == codes.BAD_REQUEST
    assert client.conn.replies() == []


async def test_second_connect_closes_3501(client: Client) -> None:
    """A connect on a connected session is a protocol violation."""
    await client.connect()
    await client.send({"id": 2, "connect": {}})
    assert client.conn.closed_with == codes.BAD_REQUEST
    assert [r.id for r in client.conn.replies()] == [1]


async def test_refused_connect_replies_with_the_hook_code(hooks: Hooks, client: Client) -> None:
    """A connect hook returning Deny(code) gets an error reply with that code."""

    async def deny(ctx: ClientContext, req: ConnectRequest) -> Deny:
        return Deny(109)

    hooks.on_connecting = deny
    reply = await client.connect()
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (109, "token expired")
    assert reply.connect is None
    assert client.session.state is State.UNUSABLE
    assert not client.conn.closes  # the SDK closes; the server waits


async def test_commands_after_a_refused_connect_close_3501(hooks: Hooks, client: Client) -> None:
    """After a connect error reply the connection is unusable: the next command closes it."""

    async def deny(ctx: ClientContext, req: ConnectRequest) -> Deny:
        return Deny(101)

    hooks.on_connecting = deny
    await client.connect()
    await client.send({"id": 2, "subscribe": {"channel": ROOM}})
    assert client.conn.closed_with == codes.BAD_REQUEST
    assert [r.id for r in client.conn.replies()] == [1]


async def test_connect_refused_with_a_disconnect_closes_with_it(
    hooks: Hooks, client: Client
) -> None:
    """A connect hook returning a Disconnect closes with that code and sends no reply."""

    async def refuse(ctx: ClientContext, req: ConnectRequest) -> codes.Disconnect:
        return codes.Disconnect(3500, "invalid token")

    hooks.on_connecting = refuse
    await client.send({"id": 1, "connect": {"token": "forged"}})
    assert client.conn.closed_with == codes.Disconnect(3500, "invalid token")
    assert client.conn.replies() == []


@pytest.mark.parametrize("settings_overrides", [{"client.allow_anonymous": False}])
async def test_anonymous_connect_refused_when_not_allowed(client: Client) -> None:
    """Without a connect hook and with allow_anonymous off, connect answers 101."""
    reply = await client.connect()
    assert reply.error is not None
    assert reply.error.code == 101


async def test_malformed_frame_closes_3501(client: Client) -> None:
    """Bytes that are not JSON close the connection with 3501, no traceback."""
    client.session.data_received(b"{not json")
    await drain(client.session)
    assert client.conn.closed_with == codes.BAD_REQUEST


async def test_command_with_id_but_no_request_closes_3501(client: Client) -> None:
    """id > 0 and no known request is a bad request (§6)."""
    await client.connect()
    await client.send({"id": 2})
    assert client.conn.closed_with == codes.BAD_REQUEST


# ------------------------------------------------------------------------ ping / pong


async def test_ping_visit_writes_an_empty_reply(node: Node) -> None:
    """session.ping() on a connected session sends a ping: `{}` on JSON."""
    client = await connected(node)
    client.session.ping()
    await turns()
    assert client.conn.frames == [b"{}"]


async def test_ping_before_connect_does_nothing(client: Client) -> None:
    """The heartbeat skips sessions that are not connected yet."""
    client.session.ping()
    await turns()
    assert client.conn.frames == []
    assert not client.conn.closes


async def test_pong_is_never_answered(node: Node) -> None:
    """A pong (empty command) is taken silently: no reply, no close."""
    client = await connected(node)
    client.session.ping()
    await turns()
    client.conn.take()
    await client.send({})
    assert client.conn.frames == []
    assert not client.conn.closes


async def test_missed_pongs_close_3012(node: Node) -> None:
    """max_missed_pongs pings without a pong, then the next visit closes with 3012."""
    client = await connected(node)
    limit = node.settings.client.max_missed_pongs
    for _ in range(limit):
        client.session.ping()
    assert not client.conn.closes
    client.session.ping()
    assert client.conn.closed_with == codes.NO_PONG
    assert client.session.client_id not in node.sessions


async def test_pongs_keep_the_session_alive(node: Node) -> None:
    """A pong after each ping resets the count: many pings never close the session."""
    client = await connected(node)
    for _ in range(3 * node.settings.client.max_missed_pongs):
        client.session.ping()
        await client.send({})
    assert not client.conn.closes
    assert client.session.missed_pongs == 0


async def test_late_pong_resets_the_missed_count(node: Node) -> None:
    """Missing some pongs but answering before the limit keeps the session."""
    client = await connected(node)
    limit = node.settings.client.max_missed_pongs
    for _ in range(limit):
        client.session.ping()
    await client.send({})
    for _ in range(limit):
        client.session.ping()
    assert not client.conn.closes


async def test_stray_pong_is_tolerated(node: Node) -> None:
    """A pong with no ping outstanding does not close the connection (unlike Centrifuge)."""
    client = await connected(node)
    await client.send({})
    await client.send({}, {})
    assert not client.conn.closes
    assert client.conn.frames == []


async def test_pong_before_connect_closes_3501(client: Client) -> None:
    """A pong is a command: before connect it is a protocol violation."""
    await client.send({})
    assert client.conn.closed_with == codes.BAD_REQUEST


# ------------------------------------------------------------------- write coalescing


async def test_two_pushes_in_one_turn_go_out_as_one_frame(node: Node) -> None:
    """Messages queued in one loop turn are joined into one frame, one per line."""
    client = await connected(node)
    sent0, bytes0 = node.metrics.messages_sent, node.metrics.bytes_sent
    client.session.push(b'{"a":1}')
    client.session.push(b'{"b":2}')
    await turns()
    assert client.conn.frames == [b'{"a":1}\n{"b":2}']
    assert node.metrics.messages_sent - sent0 == 2  # counted per message, not per frame
    assert node.metrics.bytes_sent - bytes0 == len(b'{"a":1}\n{"b":2}')  # the frame's bytes


async def test_received_frames_count_their_messages_bytes_and_methods(node: Node) -> None:
    """The session counts what arrives in place: messages and bytes per frame, one per
    command method, a pong under its own name."""
    client = await connected(node)
    metrics = node.metrics
    received0, bytes0 = metrics.messages_received, metrics.bytes_received
    publish0, pong0 = metrics.commands["publish"], metrics.commands["pong"]
    raw_frame = b'{"id":7,"publish":{"channel":"c","data":{}}}\n{}'
    client.session.data_received(raw_frame)
    await turns()
    assert metrics.messages_received - received0 == 2
    assert metrics.bytes_received - bytes0 == len(raw_frame)
    assert metrics.commands["publish"] - publish0 == 1
    assert metrics.commands["pong"] - pong0 == 1


async def test_pushes_in_different_turns_go_out_as_separate_frames(node: Node) -> None:
    """Coalescing never holds a message back beyond the end of its loop turn."""
    client = await connected(node)
    client.session.push(b'{"a":1}')
    await turns()
    client.session.push(b'{"b":2}')
    await turns()
    assert client.conn.frames == [b'{"a":1}', b'{"b":2}']


async def test_burst_of_publications_reaches_a_subscriber_as_one_frame(node: Node) -> None:
    """Several publications in one turn reach a subscriber in one frame, in order."""
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    client.conn.take()
    await publish_n(node, ROOM, 3)
    await turns()
    (frame,) = client.conn.frame_replies()
    assert pubs_of(frame, ROOM) == [1, 2, 3]


# ------------------------------------------------------------------------ slow client


@pytest.mark.parametrize("settings_overrides", [{"client.write_buffer_bytes": SMALL_BUFFER}])
async def test_transport_backlog_over_the_limit_closes_3008(node: Node) -> None:
    """After a flush, a transport holding more than write_buffer_bytes means slow: 3008."""
    client = await connected(node)
    client.conn.buffered = SMALL_BUFFER + 1
    client.session.push(b'{"a":1}')
    await turns()
    assert client.conn.closed_with == codes.SLOW
    assert client.session.client_id not in node.sessions


@pytest.mark.parametrize("settings_overrides", [{"client.write_buffer_bytes": SMALL_BUFFER}])
async def test_transport_backlog_at_the_limit_is_fine(node: Node) -> None:
    """Exactly write_buffer_bytes in the transport is still within the bound."""
    client = await connected(node)
    client.conn.buffered = SMALL_BUFFER
    client.session.push(b'{"a":1}')
    await turns()
    assert not client.conn.closes


@pytest.mark.parametrize("settings_overrides", [{"client.write_buffer_bytes": SMALL_BUFFER}])
async def test_queue_over_the_limit_closes_3008_and_drops_the_queue(node: Node) -> None:
    """Queued bytes over the limit close at once with 3008; the queue is not written."""
    client = await connected(node)
    item = b'{"x":"' + b"y" * 400 + b'"}'
    client.session.push(item)
    client.session.push(item)
    assert not client.conn.closes
    client.session.push(item)  # 3 x ~408 bytes > 1000
    assert client.conn.closed_with == codes.SLOW
    client.session.push(item)  # after the close: ignored
    await turns()
    assert client.conn.frames == []


async def test_other_closes_write_the_queue_first(node: Node) -> None:
    """A close that is not "slow" sends what is queued before closing, and counts it."""
    client = await connected(node)
    sent0, bytes0 = node.metrics.messages_sent, node.metrics.bytes_sent
    client.session.push(b'{"a":1}')
    client.session.close(codes.FORCE_RECONNECT)
    assert client.conn.frames == [b'{"a":1}']
    assert client.conn.closed_with == codes.FORCE_RECONNECT
    assert (node.metrics.messages_sent - sent0, node.metrics.bytes_sent - bytes0) == (1, 7)


async def test_write_failure_closes_3009(node: Node) -> None:
    """A transport that raises on write is closed with 3009 write error."""
    client = await connected(node)

    def broken(frame: bytes) -> None:
        raise ConnectionResetError("gone")

    client.conn.write = broken  # type: ignore[method-assign]
    client.session.push(b'{"a":1}')
    await turns()
    assert client.conn.closed_with == codes.WRITE_ERROR


# ------------------------------------------------------------------------- subscribe


async def test_subscribe_reply_on_a_recoverable_channel(node: Node) -> None:
    """A first subscribe in a recoverable namespace is positioned at the current top."""
    await publish_n(node, ROOM, 2)
    top = await top_of(node, ROOM)
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": ROOM})
    result = reply.subscribe
    assert result is not None
    assert (result.recoverable, result.positioned) == (True, True)
    assert (result.epoch, result.offset) == (top.epoch, 2)
    assert result.publications == []


async def test_second_subscribe_to_a_channel_is_105(node: Node) -> None:
    """A channel is subscribed once per connection; the second subscribe answers 105."""
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    reply = await client.call("subscribe", {"channel": ROOM})
    assert reply.error is not None
    assert reply.error.code == 105


async def test_publications_arrive_after_the_subscribe_reply(node: Node) -> None:
    """A subscriber gets the subscribe reply first, then live publications with offsets."""
    client = await connected(node)
    await publish_n(node, ROOM, 2)  # before the subscribe: not delivered
    client.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await drain(client.session)
    await publish_n(node, ROOM, 2)
    await turns()
    replies = client.conn.replies()
    assert_reply_before_pushes(replies, 2, ROOM)
    assert pubs_of(replies, ROOM) == [3, 4]


async def test_recovering_subscribe_with_publications_during_the_hook(
    node: Node, hooks: Hooks
) -> None:
    """Publications made during the subscribe hook are replayed once; live ones follow the reply."""
    gate = Gate()

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        await gate.wait()
        return Allow()

    hooks.on_subscribe = on_subscribe
    await publish_n(node, ROOM, 3)
    epoch = (await top_of(node, ROOM)).epoch
    client = await connected(node)
    client.feed(
        {"id": 2, "subscribe": {"channel": ROOM, "recover": True, "offset": 1, "epoch": epoch}}
    )
    await gate.reached.wait()
    await publish_n(node, ROOM, 2)  # offsets 4 and 5, while the subscribe is in progress
    gate.opened.set()
    await drain(client.session)
    await publish_n(node, ROOM, 1)  # offset 6, live
    await turns()

    replies = client.conn.replies()
    result = client.reply(2).subscribe
    assert result is not None
    assert (result.recovered, result.was_recovering, result.offset) == (True, True, 1)
    replayed = [p.offset for p in result.publications]
    assert replayed == [2, 3, 4, 5]
    assert_reply_before_pushes(replies, 2, ROOM)
    assert replayed + pubs_of(replies, ROOM) == [2, 3, 4, 5, 6]


class HistoryGatedBroker(MemoryBroker):
    """A memory broker whose next history() call can be held open, like a remote one.

    ``read_first`` decides whether the held call has already read the stream (its answer
    is in flight) or reads it only when released.
    """

    def __init__(self) -> None:
        """No gate armed: history() answers at once."""
        super().__init__()
        self.gate: Gate | None = None
        self.read_first = True

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None = None,
    ) -> tuple[list[Publication], StreamPosition]:
        """Answer, holding the call on the armed gate once."""
        gate, self.gate = self.gate, None
        read = super().history
        if gate is None:
            return await read(channel, since=since, limit=limit, reverse=reverse, meta_ttl=meta_ttl)
        if self.read_first:
            answer = await read(
                channel, since=since, limit=limit, reverse=reverse, meta_ttl=meta_ttl
            )
            await gate.wait()
            return answer
        await gate.wait()
        return await read(channel, since=since, limit=limit, reverse=reverse, meta_ttl=meta_ttl)


@pytest.fixture
def broker() -> HistoryGatedBroker:
    """The gated broker, for tests that hold the subscribe's history read."""
    return HistoryGatedBroker()


@pytest.fixture
async def gated_node(hooks: Hooks, broker: HistoryGatedBroker) -> AsyncIterator[Node]:
    """A started node on the example chat config whose broker can hold history reads."""
    node = Node(chat_settings(), hooks=hooks, broker=broker)
    await node.start()
    yield node
    await node.shutdown(0)
    await turns()


async def subscribe_while_publishing(
    node: Node, broker: HistoryGatedBroker, body: dict[str, Any], *, read_first: bool
) -> Client:
    """Subscribe with ``body``; publish 2 while its history read is held, 1 after."""
    client = await connected(node)
    gate = broker.gate = Gate()
    broker.read_first = read_first
    client.feed({"id": 2, "subscribe": {"channel": ROOM, **body}})
    await gate.reached.wait()
    await publish_n(node, ROOM, 2)
    gate.opened.set()
    await drain(client.session)
    await publish_n(node, ROOM, 1)
    await turns()
    return client


@pytest.mark.parametrize("read_first", [True, False], ids=["read-then-wait", "wait-then-read"])
async def test_recovering_subscribe_racing_publications_has_no_gap_or_duplicate(
    gated_node: Node, broker: HistoryGatedBroker, read_first: bool
) -> None:
    """Publications racing a recovering subscribe arrive once, in order, after the reply."""
    await publish_n(gated_node, ROOM, 3)
    epoch = (await top_of(gated_node, ROOM)).epoch
    body = {"recover": True, "offset": 1, "epoch": epoch}
    client = await subscribe_while_publishing(gated_node, broker, body, read_first=read_first)

    replies = client.conn.replies()
    result = client.reply(2).subscribe
    assert result is not None
    assert result.recovered
    assert result.offset == 1
    assert_reply_before_pushes(replies, 2, ROOM)
    replayed = [p.offset for p in result.publications]
    # Read before the race: 4 and 5 were held and follow the reply. Read after: the
    # reply has them, and the held copies are dropped.
    assert replayed == ([2, 3] if read_first else [2, 3, 4, 5])
    assert replayed + pubs_of(replies, ROOM) == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("read_first", [True, False], ids=["read-then-wait", "wait-then-read"])
async def test_first_subscribe_racing_publications_continues_from_its_offset(
    gated_node: Node, broker: HistoryGatedBroker, read_first: bool
) -> None:
    """A first subscribe then gets each publication after its reply's offset, once."""
    await publish_n(gated_node, ROOM, 1)
    client = await subscribe_while_publishing(gated_node, broker, {}, read_first=read_first)

    replies = client.conn.replies()
    result = client.reply(2).subscribe
    assert result is not None
    assert_reply_before_pushes(replies, 2, ROOM)
    assert pubs_of(replies, ROOM) == list(range(result.offset + 1, 5))


@pytest.mark.parametrize("settings_overrides", [{"channels.namespaces.news.allow_subscribe": True}])
async def test_non_recoverable_channel_gets_every_racing_publication_after_the_reply(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without history, every publication racing the subscribe is sent after the reply."""
    gate = Gate()
    add_subscriber = node.add_subscriber

    async def slow_add(session: Any, sub: Any) -> None:
        await add_subscriber(session, sub)  # in the hub now: publications are held
        await gate.wait()

    monkeypatch.setattr(node, "add_subscriber", slow_add)
    client = await connected(node)
    client.feed({"id": 2, "subscribe": {"channel": "news:x"}})
    await gate.reached.wait()
    await node.publish("news:x", b'{"n":1}')
    await node.publish("news:x", b'{"n":2}')
    assert client.conn.frames == []
    gate.opened.set()
    await drain(client.session)
    replies = client.conn.replies()
    assert_reply_before_pushes(replies, 2, "news:x")
    pushed = [r.push.pub for r in replies if r.push is not None and r.push.pub is not None]
    assert [bytes(p.data) for p in pushed] == [b'{"n":1}', b'{"n":2}']


async def test_unrecoverable_position_answers_recovered_false_with_the_top(node: Node) -> None:
    """A recover from another epoch is answered recovered: false, no publications, the top."""
    await publish_n(node, ROOM, 3)
    client = await connected(node)
    reply = await client.call(
        "subscribe", {"channel": ROOM, "recover": True, "offset": 1, "epoch": "gone"}
    )
    result = reply.subscribe
    assert result is not None
    assert (result.recovered, result.was_recovering, result.offset) == (False, True, 3)
    assert result.publications == []


async def test_reject_unrecovered_flag_answers_112_and_does_not_subscribe(node: Node) -> None:
    """With flag 2 a failed recovery is error 112 and leaves no subscription behind."""
    await publish_n(node, ROOM, 3)
    client = await connected(node)
    reply = await client.call(
        "subscribe", {"channel": ROOM, "recover": True, "offset": 1, "epoch": "gone", "flag": 3}
    )
    assert reply.error is not None
    assert reply.error.code == 112
    assert ROOM not in client.session.subscriptions
    assert node.hub.subscribers(ROOM) == 0


# -------------------------------------------------------------------- personal channels


def as_user(hooks: Hooks) -> None:
    """Install a connect hook that takes the user id from the connect token."""

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user=req.token)

    hooks.on_connecting = on_connecting


async def test_personal_channel_is_subscribable_by_its_user(hooks: Hooks, node: Node) -> None:
    """`#alice` may be subscribed by user alice, though the default namespace allows nothing."""
    as_user(hooks)
    alice = Client(node)
    await alice.connect({"token": "alice"})
    reply = await alice.call("subscribe", {"channel": "#alice"})
    assert reply.error is None
    assert reply.subscribe is not None


@pytest.mark.parametrize("user", ["bob", ""], ids=["other-user", "anonymous"])
async def test_personal_channel_refuses_other_users(hooks: Hooks, node: Node, user: str) -> None:
    """Anyone but alice (anonymous included) gets 103 on `#alice`."""
    as_user(hooks)
    other = Client(node)
    await other.connect({"token": user})
    reply = await other.call("subscribe", {"channel": "#alice"})
    assert reply.error is not None
    assert reply.error.code == 103


async def test_personal_channel_delivers_to_its_user(hooks: Hooks, node: Node) -> None:
    """A server publication to `#alice` reaches alice's connection."""
    as_user(hooks)
    alice = Client(node)
    await alice.connect({"token": "alice"})
    await alice.call("subscribe", {"channel": "#alice"})
    alice.conn.take()
    await node.publish("#alice", b'{"dm":"hi"}')
    await turns()
    (push,) = alice.conn.replies()
    assert push.push is not None
    assert push.push.pub is not None
    assert bytes(push.push.pub.data) == b'{"dm":"hi"}'


# ----------------------------------------------------------------------------- hooks


async def test_subscribe_hook_deny_code_is_the_error_code(hooks: Hooks, node: Node) -> None:
    """on_subscribe returning Deny(code, message) answers that error; nothing is subscribed."""

    async def deny(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Deny:
        return Deny(4001, "not in this room")

    hooks.on_subscribe = deny
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": ROOM})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (4001, "not in this room")
    assert ROOM not in client.session.subscriptions
    assert node.hub.subscribers(ROOM) == 0


async def test_publish_hook_deny_defaults_to_103(hooks: Hooks, node: Node) -> None:
    """on_publish returning a bare Deny() answers 103 permission denied."""

    async def deny(ctx: ClientContext, channel: str, req: PublishRequest) -> Deny:
        return Deny()

    hooks.on_publish = deny
    client = await connected(node)
    reply = await client.call("publish", {"channel": ROOM, "data": {"t": 1}})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (103, "permission denied")
    assert (await top_of(node, ROOM)).offset == 0


async def test_rpc_deny_temporary_is_carried(node: Node) -> None:
    """A Deny marked temporary comes back with temporary: true."""

    @node.rpc("busy")
    async def busy(ctx: ClientContext, data: bytes) -> Deny:
        return Deny(111, temporary=True)

    client = await connected(node)
    reply = await client.call("rpc", {"method": "busy"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.temporary) == (111, True)


async def test_exception_in_a_handler_is_error_100_and_the_session_survives(node: Node) -> None:
    """A hook that raises answers 100 temporary; later commands on the session still work."""

    @node.rpc("boom")
    async def boom(ctx: ClientContext, data: bytes) -> bytes:
        raise RuntimeError("bug in the application")

    @node.rpc("echo")
    async def echo(ctx: ClientContext, data: bytes) -> bytes:
        return data

    client = await connected(node)
    failed = await client.call("rpc", {"method": "boom", "data": {"x": 1}})
    assert failed.error is not None
    assert (failed.error.code, failed.error.message, failed.error.temporary) == (
        100,
        "internal server error",
        True,
    )
    ok = await client.call("rpc", {"method": "echo", "data": {"x": 1}})
    assert ok.rpc is not None
    assert bytes(ok.rpc.data) == b'{"x":1}'
    assert not client.conn.closes


async def test_exception_in_the_subscribe_hook_leaves_no_subscription(
    hooks: Hooks, node: Node
) -> None:
    """A raising subscribe hook answers 100 and leaves neither a subscription nor a hub entry."""

    async def broken(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        raise ValueError("oops")

    hooks.on_subscribe = broken
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": ROOM})
    assert reply.error is not None
    assert reply.error.code == 100
    assert client.session.subscriptions == {}
    assert node.hub.subscribers(ROOM) == 0


async def test_exception_in_the_connect_hook_is_100_and_unusable(
    hooks: Hooks, client: Client
) -> None:
    """A raising connect hook answers 100 temporary and leaves the session unusable."""

    async def broken(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        raise RuntimeError("auth service down")

    hooks.on_connecting = broken
    reply = await client.connect()
    assert reply.error is not None
    assert (reply.error.code, reply.error.temporary) == (100, True)
    assert client.session.state is State.UNUSABLE


# ---------------------------------------------------------------------------- closing


async def test_node_disconnect_closes_with_3503_by_default(node: Node) -> None:
    """Node.disconnect(client_id) closes that connection with force disconnect."""
    client = await connected(node)
    assert node.disconnect(client.session.client_id) is True
    assert client.conn.closed_with == codes.FORCE_DISCONNECT
    assert client.session.closed
    assert client.session.client_id not in node.sessions


async def test_closed_session_ignores_further_frames(node: Node) -> None:
    """After a close, inbound frames are dropped and nothing more is written."""
    client = await connected(node)
    node.disconnect(client.session.client_id)
    await client.send({"id": 2, "subscribe": {"channel": ROOM}})
    assert client.conn.frames == []
    assert client.conn.closes == [codes.FORCE_DISCONNECT]


async def test_subscribe_finishing_after_a_close_leaves_no_subscriber(
    hooks: Hooks, node: Node
) -> None:
    """A subscribe completing after a close leaves the dead session in neither hub nor presence."""
    gate = Gate()

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        await gate.wait()
        return Allow()

    hooks.on_subscribe = on_subscribe
    client = await connected(node)
    client.feed({"id": 2, "subscribe": {"channel": ROOM}})
    await gate.reached.wait()
    node.disconnect(client.session.client_id)
    gate.opened.set()
    await drain(client.session)
    client.session.connection_lost()  # the transport reports the socket gone
    await turns(5)
    await publish_n(node, ROOM, 3)
    assert node.hub.subscribers(ROOM) == 0
    assert client.session.client_id not in await node.presence.presence(ROOM)


# ------------------------------------------------------------------------------ send


async def test_send_goes_to_the_hook_and_is_never_answered(hooks: Hooks, node: Node) -> None:
    """A send (no id) reaches on_send with its data; nothing is written back."""
    received: list[bytes] = []

    async def on_send(ctx: ClientContext, data: bytes) -> None:
        received.append(data)

    hooks.on_send = on_send
    client = await connected(node)
    await client.send({"send": {"data": {"typing": True}}})
    assert received == [b'{"typing":true}']
    assert client.conn.frames == []


async def test_failing_send_hook_writes_nothing(hooks: Hooks, node: Node) -> None:
    """A raising on_send writes nothing (an id-less reply reads as a ping); the session lives."""

    async def on_send(ctx: ClientContext, data: bytes) -> None:
        raise RuntimeError("handler bug")

    hooks.on_send = on_send
    client = await connected(node)
    await client.send({"send": {"data": {}}})
    assert client.conn.frames == []
    assert not client.conn.closes


async def test_send_without_a_hook_closes_3508(node: Node) -> None:
    """With no message handler a send closes the connection with 3508 not available."""
    client = await connected(node)
    await client.send({"send": {"data": {}}})
    assert client.conn.closed_with == codes.NOT_AVAILABLE


async def test_id_zero_command_other_than_send_counts_as_a_pong(node: Node) -> None:
    """An id-0 command with a request other than send is taken as a pong (§6), not a close."""
    client = await connected(node)
    client.session.ping()
    await client.send({"subscribe": {"channel": ROOM}})
    assert not client.conn.closes
    assert client.session.ponged
    assert ROOM not in client.session.subscriptions
