"""Tests for the hub's turns: a channel's publications of one loop turn are joined once
per codec and handed to each subscriber as one frame, and every change that must come
after them for some subscriber still does."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from conftest import chat_settings

from hubbub.codecs.base import Codec
from hubbub.codecs.json import JsonCodec
from hubbub.codecs.msgpack import MsgpackCodec
from hubbub.codecs.protobuf import ProtobufCodec
from hubbub.core.node import Node
from hubbub.core.session import Subscription
from hubbub.protocol import codes
from hubbub.protocol.messages import Publication, Reply, SubscribeResult, raw

from .fakes import Client, RecordingConnection, connected, drain, turns
from .test_fanout import ALICE, ROOM, CountingCodec, publication
from .test_fanout import subscriber as subscribe


class JoinCountingCodec(CountingCodec):
    """Counts the joins too, and how many items each joined."""

    def __init__(self, name: str = "json-join-counting", *, binary: bool = False) -> None:
        super().__init__(name, binary=binary)
        self.joins: list[int] = []

    def join(self, items: Sequence[bytes]) -> bytes:
        self.joins.append(len(items))
        return super().join(items)


@pytest.fixture
def node() -> Node:
    """A node that is not started: the tests call the hub directly."""
    return Node(chat_settings())


def numbered(n: int) -> Publication:
    return publication(b'{"n":%d}' % n, offset=n)


def received(conn: RecordingConnection) -> list[object]:
    """What one connection was sent, in order: publication numbers, "join" or "leave"."""
    return pushed(conn.replies())


def pushed(replies: list[Reply]) -> list[object]:
    seen: list[object] = []
    for reply in replies:
        push = reply.push
        assert push is not None
        if push.pub is not None:
            seen.append(int(bytes(push.pub.data)[5:-1]))
        else:
            seen.append("join" if push.join is not None else "leave")
    return seen


async def test_a_burst_is_encoded_once_and_joined_once_per_codec(node: Node) -> None:
    """Five publications in one turn to 50 subscribers: five encodes and one join, and
    each subscriber writes that one frame (before, each of them joined the five again)."""
    codec = JoinCountingCodec()
    conns = [subscribe(node, codec)[1] for _ in range(50)]
    for n in range(1, 6):
        node.hub.on_publication(ROOM, numbered(n))
    await turns()
    assert len(codec.encoded) == 5
    assert codec.joins == [5]
    assert all(conn.frames == conns[0].frames for conn in conns)
    assert len(conns[0].frames) == 1
    assert received(conns[0]) == [1, 2, 3, 4, 5]
    assert node.metrics.messages_sent == 250  # messages, not frames


async def test_a_subscriber_added_mid_turn_gets_only_what_follows(node: Node) -> None:
    codec = CountingCodec()
    _, early = subscribe(node, codec)
    node.hub.on_publication(ROOM, numbered(1))
    _, late = subscribe(node, codec)
    node.hub.on_publication(ROOM, numbered(2))
    await turns()
    assert received(early) == [1, 2]
    assert received(late) == [2]


async def test_a_subscriber_removed_mid_turn_gets_what_came_before(node: Node) -> None:
    codec = CountingCodec()
    _, stays = subscribe(node, codec)
    leaving, leaves = subscribe(node, codec)
    node.hub.on_publication(ROOM, numbered(1))
    node.hub.remove(leaving, ROOM)
    node.hub.on_publication(ROOM, numbered(2))
    await turns()
    assert received(stays) == [1, 2]
    assert received(leaves) == [1]


async def test_a_join_between_publications_stays_between_them(node: Node) -> None:
    codec = CountingCodec()
    _, conn = subscribe(node, codec, join_leave=True)
    node.hub.on_publication(ROOM, numbered(1))
    node.hub.on_join(ROOM, ALICE)
    node.hub.on_publication(ROOM, numbered(2))
    node.hub.on_leave(ROOM, ALICE)
    await turns()
    assert received(conn) == [1, "join", 2, "leave"]


async def test_the_turn_reaches_a_recovering_subscriber_once(node: Node) -> None:
    """Publications 1 and 2 arrive while the subscribe reply is prepared, in the turn it
    is sent; the reply carries 1 already. The client then gets 2 once, after the reply:
    the turn is merged into what waited, not delivered live beside it."""
    codec = CountingCodec()
    session, conn = subscribe(node, codec, pending=True)
    node.hub.on_publication(ROOM, numbered(1))
    node.hub.on_publication(ROOM, numbered(2))
    session.push(codec.encode(Reply(id=7)))  # the subscribe reply, as the session queues it
    result = SubscribeResult(positioned=True, offset=1, publications=[numbered(1)])
    node.release_pending(session, ROOM, result)
    await turns()
    replies = conn.replies()
    assert replies[0].id == 7
    assert pushed(replies[1:]) == [2]


async def test_a_session_closed_mid_turn_is_sent_the_turn_first(node: Node) -> None:
    codec = CountingCodec()
    session, conn = subscribe(node, codec)
    node.hub.on_publication(ROOM, numbered(1))
    session.close(codes.FORCE_RECONNECT)
    node.hub.on_publication(ROOM, numbered(2))
    await turns()
    assert received(conn) == [1]
    assert conn.closed_with == codes.FORCE_RECONNECT


async def test_a_slow_subscriber_found_by_the_turn_is_closed_once() -> None:
    """The turn's frame takes the session over its write buffer while it closes for
    another reason: it closes once, as slow, with nothing written."""
    node = Node(chat_settings(**{"client.write_buffer_bytes": 1024}))
    codec = CountingCodec()
    session, conn = subscribe(node, codec)
    node.hub.on_publication(ROOM, publication(b'"%s"' % (b"x" * 2048)))
    session.close(codes.FORCE_RECONNECT)
    await turns()
    assert conn.closes == [codes.SLOW]
    assert conn.frames == []


async def test_a_payload_that_does_not_fit_ends_the_text_frame(node: Node) -> None:
    """JSON subscribers get what came before a binary payload, then 3506; binary-codec
    subscribers get all three."""
    text, binary = CountingCodec("text"), CountingCodec("binary", binary=True)
    _, text_conn = subscribe(node, text)
    _, binary_conn = subscribe(node, binary)
    node.hub.on_publication(ROOM, numbered(1))
    node.hub.on_publication(ROOM, publication(b"\x00\xffnot json", offset=2))
    node.hub.on_publication(ROOM, numbered(3))
    await turns()
    assert received(text_conn) == [1]
    assert text_conn.closed_with == codes.INAPPROPRIATE_PROTOCOL
    (frame,) = binary_conn.frames  # JSON lines under a binary codec's name
    assert frame.count(b"\n") == 2
    assert binary_conn.closed_with is None


async def test_closes_that_detach_at_once_leave_the_delivery_whole(node: Node) -> None:
    """Under an eager task factory (3.12+) the closes a turn makes must not release
    their channels while it is handed out (they did, and walking the subscriber table
    raised): every subscriber is served or closed, and the closed ones leave after."""
    if not hasattr(asyncio, "eager_task_factory"):
        pytest.skip("asyncio.eager_task_factory needs Python 3.12+")
    text, binary = CountingCodec("text"), CountingCodec("binary", binary=True)
    texts = [subscribe(node, text)[1] for _ in range(3)]
    _, binary_conn = subscribe(node, binary)
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    try:
        node.hub.on_publication(ROOM, publication(b"\x00\xffnot json"))
        await turns()
    finally:
        loop.set_task_factory(None)
    assert [conn.closed_with for conn in texts] == [codes.INAPPROPRIATE_PROTOCOL] * 3
    assert len(binary_conn.frames) == 1
    assert node.hub.subscribers(ROOM) == 1


async def test_slow_subscribers_that_leave_at_once_leave_a_join_whole() -> None:
    """The same for a join that finds its subscribers over their write buffer."""
    if not hasattr(asyncio, "eager_task_factory"):
        pytest.skip("asyncio.eager_task_factory needs Python 3.12+")
    node = Node(chat_settings(**{"client.write_buffer_bytes": 16}))
    conns = [subscribe(node, CountingCodec(), join_leave=True)[1] for _ in range(3)]
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    try:
        node.hub.on_join(ROOM, ALICE)
        await turns()
    finally:
        loop.set_task_factory(None)
    assert [conn.closed_with for conn in conns] == [codes.SLOW] * 3
    assert node.hub.subscribers(ROOM) == 0


async def test_a_publication_a_codec_fails_on_is_left_out_and_the_rest_goes(
    node: Node,
) -> None:
    """A tag that is not a string (a hook's bug) makes protobuf's encode raise: that
    publication is logged and left out for protobuf subscribers; the JSON subscriber,
    the publications after it, the other channel and a close later are unaffected (it
    used to stop every later turn from being handed out)."""
    other = "chat:other"
    _, protobuf = subscribe(node, ProtobufCodec())  # type: ignore[arg-type]
    json_session, json_conn = subscribe(node, CountingCodec())
    elsewhere = RecordingConnection()
    session = node.accept(elsewhere, CountingCodec())
    sub = Subscription(other, pending=None)
    session.subscriptions[other] = sub
    node.hub.add(session, sub)
    node.hub.on_publication(ROOM, publication(b'{"n":1}', offset=1))
    bad_tag = Publication(data=raw(b'{"n":2}'), offset=2, tags={"k": 1})  # type: ignore[dict-item]
    node.hub.on_publication(ROOM, bad_tag)
    node.hub.on_publication(ROOM, numbered(3))
    node.hub.on_publication(other, numbered(4))
    await turns()
    (frame,) = protobuf.frames
    assert pushed(ProtobufCodec().decode(frame, Reply)) == [1, 3]
    assert offsets(json_conn) == [1, 2, 3]  # JSON writes the tag as it is
    assert received(elsewhere) == [4]
    node.hub.on_publication(ROOM, numbered(5))
    json_session.close(codes.FORCE_RECONNECT)
    assert offsets(json_conn) == [1, 2, 3, 5]


def offsets(conn: RecordingConnection) -> list[int]:
    return [message["push"]["pub"]["offset"] for message in conn.messages()]


async def test_a_leave_published_while_a_turn_is_handed_out_comes_after_it() -> None:
    """Under an eager task factory the close of a JSON subscriber that a binary payload
    refuses publishes its leave; it used to do so at once, while its channel's turn was
    being handed out. A subscriber served after it gets the turn first, then the leave."""
    if not hasattr(asyncio, "eager_task_factory"):
        pytest.skip("asyncio.eager_task_factory needs Python 3.12+")
    node = Node(chat_settings())
    await node.start()
    loop = asyncio.get_running_loop()
    try:
        leaving = await connected(node)
        staying = Client(node, CountingCodec("binary", binary=True))  # JSON lines inside
        await staying.connect()
        for client in (leaving, staying):
            assert (await client.call("subscribe", {"channel": ROOM})).subscribe is not None
        await drain(leaving.session)
        staying.conn.frames.clear()
        loop.set_task_factory(asyncio.eager_task_factory)
        node.hub.on_publication(ROOM, publication(b"\x00\xffnot json", offset=9))
        await turns(10)
    finally:
        loop.set_task_factory(None)
        await node.shutdown(0)
    assert leaving.conn.closed_with == codes.INAPPROPRIATE_PROTOCOL
    sent = b"\n".join(staying.conn.frames)
    assert 0 <= sent.find(b"not json") < sent.find(b'"leave"')


async def test_a_turn_of_publications_costs_one_flush(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sessions the turn's delivery marks are flushed in the same call, not in one
    more the loop runs next turn for nothing."""
    flusher = node.flusher
    calls: list[None] = []
    flush = flusher.flush

    def counted() -> None:
        calls.append(None)
        flush()

    monkeypatch.setattr(flusher, "flush", counted)
    conns = [subscribe(node, CountingCodec())[1] for _ in range(3)]
    node.hub.on_publication(ROOM, numbered(1))
    await turns(5)
    assert len(calls) == 1
    assert all(received(conn) == [1] for conn in conns)


async def test_a_delivery_asked_for_during_the_deliveries_runs_in_that_flush(
    node: Node,
) -> None:
    """A delivery asked for while the flush runs the deliveries (``first`` schedules
    nothing then: a flush is under way) runs in that flush, not in some later one."""
    ran: list[str] = []

    def second() -> None:
        ran.append("second")

    def first() -> None:
        ran.append("first")
        node.flusher.first(second)

    node.flusher.first(first)
    await turns()
    assert ran == ["first", "second"]


async def test_publications_of_two_turns_go_out_as_two_frames(node: Node) -> None:
    codec = CountingCodec()
    _, conn = subscribe(node, codec)
    node.hub.on_publication(ROOM, numbered(1))
    await turns()
    node.hub.on_publication(ROOM, numbered(2))
    await turns()
    assert len(conn.frames) == 2
    assert received(conn) == [1, 2]


@pytest.mark.parametrize(
    "codec", [JsonCodec(), ProtobufCodec(), MsgpackCodec()], ids=lambda codec: codec.name
)
def test_joining_frames_is_joining_their_items(codec: Codec) -> None:
    """The Codec contract the turn relies on: a session joins the hub's frame with its
    other items as it would have joined the items themselves."""
    items = [codec.encode(Reply(id=n)) for n in range(1, 6)]
    assert codec.join([codec.join(items[:3]), codec.join(items[3:])]) == codec.join(items)
    assert [r.id for r in codec.decode(codec.join(items), Reply)] == [1, 2, 3, 4, 5]
