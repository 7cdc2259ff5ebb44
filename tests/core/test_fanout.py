"""Tests for hubbub.core.fanout: one encode per codec, the same bytes to every subscriber."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from conftest import chat_settings

from hubbub.codecs.json import JsonCodec
from hubbub.core.node import Node
from hubbub.core.session import Session, Subscription
from hubbub.protocol import codes
from hubbub.protocol.messages import ClientInfo, Command, Publication, Reply, raw

from .fakes import RecordingConnection, turns

ROOM = "chat:room"
ALICE = ClientInfo(user="alice", client="c-alice")


class CountingCodec:
    """The JSON codec under another name, counting the messages it encodes."""

    subprotocol = ""

    def __init__(self, name: str = "json-counting", *, binary: bool = False) -> None:
        """A codec of its own identity: the hub keys encodings by codec."""
        self.name = name
        self.binary = binary
        self.encoded: list[Command | Reply] = []
        self._json = JsonCodec()

    def encode(self, message: Command | Reply) -> bytes:
        """Count, then encode as JSON."""
        self.encoded.append(message)
        return self._json.encode(message)

    def join(self, items: Sequence[bytes]) -> bytes:
        """Join as JSON does."""
        return self._json.join(items)

    def decode(self, frame: bytes, kind: type) -> list:  # type: ignore[type-arg]
        """Decode as JSON does."""
        return self._json.decode(frame, kind)


@pytest.fixture
def node() -> Node:
    """A node that is not started: the tests call the hub directly."""
    return Node(chat_settings())


def subscriber(
    node: Node,
    codec: CountingCodec,
    *,
    join_leave: bool = False,
    pending: bool = False,
) -> tuple[Session, RecordingConnection]:
    """A session on ``node`` subscribed to ROOM in the hub, and its connection."""
    conn = RecordingConnection()
    session = node.accept(conn, codec)
    sub = Subscription(ROOM, join_leave=join_leave, pending=[] if pending else None)
    session.subscriptions[ROOM] = sub
    node.hub.add(session, sub)
    return session, conn


def publication(data: bytes = b'{"text":"hi"}', offset: int = 1) -> Publication:
    """A publication as a broker hands it to the hub."""
    return Publication(data=raw(data), offset=offset)


async def test_one_encode_for_many_subscribers_of_one_codec(node: Node) -> None:
    """A publication is encoded once, and every subscriber gets those very bytes."""
    codec = CountingCodec()
    conns = [subscriber(node, codec)[1] for _ in range(50)]
    node.hub.on_publication(ROOM, publication())
    await turns()
    assert len(codec.encoded) == 1
    frames = {conn.frames[0] for conn in conns}
    assert len(frames) == 1
    assert all(len(conn.frames) == 1 for conn in conns)
    (reply,) = conns[0].replies()
    assert reply.push is not None
    assert reply.push.channel == ROOM
    assert reply.push.pub is not None
    assert bytes(reply.push.pub.data) == b'{"text":"hi"}'


async def test_one_encode_per_codec_in_use(node: Node) -> None:
    """Subscribers on two codecs cost exactly two encodes, one per codec."""
    first, second = CountingCodec("one"), CountingCodec("two")
    for _ in range(3):
        subscriber(node, first)
        subscriber(node, second)
    node.hub.on_publication(ROOM, publication())
    await turns()
    assert (len(first.encoded), len(second.encoded)) == (1, 1)


async def test_publication_without_local_subscribers_is_not_encoded(node: Node) -> None:
    """Nobody subscribed here: no work at all."""
    codec = CountingCodec()
    subscriber(node, codec)
    node.hub.on_publication("chat:elsewhere", publication())
    assert codec.encoded == []


async def test_pending_subscriber_holds_the_publication(node: Node) -> None:
    """A subscriber whose subscribe reply is not out yet keeps the publication for later."""
    codec = CountingCodec()
    waiting, waiting_conn = subscriber(node, codec, pending=True)
    _, live_conn = subscriber(node, codec)
    pub = publication()
    node.hub.on_publication(ROOM, pub)
    await turns()
    assert waiting_conn.frames == []
    assert waiting.subscriptions[ROOM].pending == [pub]
    assert len(live_conn.frames) == 1


async def test_join_and_leave_go_only_to_join_leave_subscribers(node: Node) -> None:
    """Join/leave pushes reach the subscribers that asked for them, and no others."""
    codec = CountingCodec()
    _, wants = subscriber(node, codec, join_leave=True)
    _, ignores = subscriber(node, codec, join_leave=False)
    node.hub.on_join(ROOM, ALICE)
    node.hub.on_leave(ROOM, ALICE)
    await turns()
    assert ignores.frames == []
    join, leave = wants.replies()
    assert join.push is not None
    assert join.push.join is not None
    assert join.push.join.info == ALICE
    assert leave.push is not None
    assert leave.push.leave is not None
    assert leave.push.leave.info == ALICE
    assert wants.messages()[0] == {
        "push": {"channel": ROOM, "join": {"info": {"user": "alice", "client": "c-alice"}}}
    }


async def test_join_is_encoded_once_per_codec(node: Node) -> None:
    """Join/leave share the encode-once rule of publications."""
    codec = CountingCodec()
    for _ in range(10):
        subscriber(node, codec, join_leave=True)
    node.hub.on_join(ROOM, ALICE)
    assert len(codec.encoded) == 1


async def test_join_skips_a_pending_subscriber(node: Node) -> None:
    """No join/leave push before the subscribe reply (it would come before the reply)."""
    codec = CountingCodec()
    _, conn = subscriber(node, codec, join_leave=True, pending=True)
    node.hub.on_join(ROOM, ALICE)
    await turns()
    assert conn.frames == []


async def test_binary_payload_closes_json_subscribers_with_3506(node: Node) -> None:
    """A non-JSON payload closes JSON subscribers with 3506; binary-codec ones still get it."""
    text, binary = CountingCodec("text"), CountingCodec("binary", binary=True)
    _, text_conn = subscriber(node, text)
    _, binary_conn = subscriber(node, binary)
    node.hub.on_publication(ROOM, publication(b"\x00\xffnot json"))
    await turns()
    assert text_conn.closed_with == codes.INAPPROPRIATE_PROTOCOL
    assert text_conn.frames == []
    assert text.encoded == []
    assert len(binary_conn.frames) == 1


async def test_hub_counts_subscribers_and_forgets_a_channel_left_empty(node: Node) -> None:
    """The node decides the broker's subscription from these counts: the first add makes
    the channel known, the last remove forgets it, a remove of nobody changes nothing."""
    hub = node.hub
    one = node.accept(RecordingConnection(), CountingCodec())
    two = node.accept(RecordingConnection(), CountingCodec())
    hub.add(one, Subscription(ROOM))
    assert (hub.subscribers(ROOM), hub.channels()) == (1, [ROOM])
    hub.add(two, Subscription(ROOM))
    assert (hub.subscribers(ROOM), hub.channels()) == (2, [ROOM])
    hub.remove(one, ROOM)
    assert (hub.subscribers(ROOM), hub.channels()) == (1, [ROOM])
    hub.remove(two, ROOM)
    assert (hub.subscribers(ROOM), hub.channels()) == (0, [])
    hub.remove(two, ROOM)
    assert (hub.subscribers(ROOM), hub.channels()) == (0, [])


async def test_flusher_flushes_every_marked_session_once_at_the_end_of_the_turn(
    node: Node,
) -> None:
    """Sessions queueing in one turn each write one frame when the turn ends, not before."""
    codec = CountingCodec()
    sessions = [subscriber(node, codec) for _ in range(3)]
    for session, _ in sessions:
        session.push(b'{"a":1}')
        session.push(b'{"b":2}')
    assert all(conn.frames == [] for _, conn in sessions)
    await turns()
    assert all(conn.frames == [b'{"a":1}\n{"b":2}'] for _, conn in sessions)
