"""What only the NATS engines do: URL options, subject tokens, live ordering, and the
behaviour of a real server (concurrent publishers, trimming, real TTLs, lost streams).

Tests that need NATS use a fresh prefix and delete what they made; they are skipped
where no server answers on 127.0.0.1:4222.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import nats
import pytest
from conformance.case_nats import ScratchBroker, ScratchPresenceStore, scratch_url, unavailable
from conftest import eventually, free_port
from enginekit import Recorder, client, count_pings, numbers, offsets, pub
from hypothesis import given
from hypothesis import strategies as st

from hubbub.engines.base import HistoryOptions
from hubbub.engines.nats import (
    JOIN,
    PUB,
    ChannelFeed,
    NatsBroker,
    NatsOptions,
    NatsPresenceStore,
    Record,
    decode_token,
    drop_prefix,
    encode_token,
)
from hubbub.engines.nats import broker as nats_broker
from hubbub.engines.nats import history as nats_history
from hubbub.engines.registry import create_broker
from hubbub.errors import EngineError
from hubbub.protocol.messages import StreamPosition

if TYPE_CHECKING:
    from .conftest import StartBroker

BOUND = 10.0
"""Seconds any wait in these tests may take before it fails."""

needs_nats = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


# ---------------------------------------------------------------------------- URL options


def test_url_defaults() -> None:
    """A bare URL gives the server and every default."""
    options = NatsOptions.from_url("nats://127.0.0.1:4222")
    assert options == NatsOptions(server="nats://127.0.0.1:4222")
    assert options.prefix == "hubbub"
    assert options.storage == "file"


def test_url_options_are_read() -> None:
    """Every option in the query is parsed to its type; credentials stay with the server."""
    options = NatsOptions.from_url(
        "nats://u:p@nats.local:4223?prefix=chat-1&stream_replicas=3&storage=memory"
        "&timeout=2.5&reorder_wait=0.05&reconnect_wait=0.2&reconnect_max_wait=9"
    )
    assert options == NatsOptions(
        server="nats://u:p@nats.local:4223",
        prefix="chat-1",
        stream_replicas=3,
        storage="memory",
        timeout=2.5,
        reorder_wait=0.05,
        reconnect_wait=0.2,
        reconnect_max_wait=9.0,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h", "starts with nats://"),
        ("nats://", "needs a host"),
        ("nats://h/db", "takes no path"),
        ("nats://h?bogus=1", "unknown nats:// option 'bogus'; known options: prefix"),
        ("nats://h?prefix=a&prefix=b", "given more than once"),
        ("nats://h?prefix=a.b", "prefix must be"),
        ("nats://h?prefix=a_b", "prefix must be"),
        ("nats://h?prefix=", "prefix must be"),
        ("nats://h?stream_replicas=two", "'stream_replicas' must be int"),
        ("nats://h?stream_replicas=0", "stream_replicas must be 1 to 5"),
        ("nats://h?storage=disk", "storage must be 'file' or 'memory'"),
        ("nats://h?timeout=0", "timeout must be a number of seconds > 0"),
        ("nats://h?timeout=nan", "must be finite"),
        ("nats://h?reorder_wait=-1", "reorder_wait must be"),
    ],
)
def test_bad_urls_are_value_errors(url: str, message: str) -> None:
    """Each mistake in a nats:// URL is a ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=re.escape(message)):
        NatsOptions.from_url(url)


async def test_an_unreachable_server_is_named_in_the_error() -> None:
    """Nothing listens there: the EngineError says where it tried (no credentials)."""
    port = free_port()
    broker = NatsBroker.from_url(f"nats://user:secret@127.0.0.1:{port}?timeout=0.5")
    with pytest.raises(EngineError, match=rf"NATS connect to 127\.0\.0\.1:{port} failed") as exc:
        await broker.start(Recorder())
    assert "secret" not in str(exc.value)


def test_registry_builds_the_nats_broker() -> None:
    """nats:// in the registry gives a NatsBroker with the URL's options (not started)."""
    broker = create_broker("nats://127.0.0.1:4222?prefix=reg")
    assert isinstance(broker, NatsBroker)
    assert broker.options.prefix == "reg"


# ------------------------------------------------------------------------- subject tokens

AWKWARD = [
    "chat:lobby",
    "a b",
    "a.b",
    "*",
    ">",
    "a.*.>",
    "",
    "_",
    "_41",
    "é",
    "😀",
    "\t\n",
    "x" * 255,
]
TOKEN = re.compile(r"[A-Za-z0-9_-]+")


@pytest.mark.parametrize("name", AWKWARD)
def test_awkward_names_become_safe_tokens(name: str) -> None:
    """Spaces, dots, wildcards, empty and non-ASCII names give one safe token, reversibly."""
    token = encode_token(name)
    assert TOKEN.fullmatch(token)
    assert decode_token(token) == name


def test_readable_names_stay_readable() -> None:
    """Letters, digits and '-' pass unchanged; ':' is escaped like any other byte."""
    assert encode_token("room-42") == "room-42"
    assert encode_token("chat:lobby") == "chat_3Alobby"


@given(st.text())
def test_token_round_trip(name: str) -> None:
    """Any text encodes to a token of [A-Za-z0-9_-] that decodes to the same text."""
    token = encode_token(name)
    assert TOKEN.fullmatch(token)
    assert decode_token(token) == name


@given(st.text(), st.text())
def test_tokens_of_distinct_names_differ(a: str, b: str) -> None:
    """Two different names never share a token, so channels never share a subject."""
    assert (encode_token(a) == encode_token(b)) == (a == b)


@pytest.mark.parametrize("token", ["", "a.b", "a b", "_4", "_zz", "_41", "_3a", "*"])
def test_decode_rejects_what_encode_never_makes(token: str) -> None:
    """A token encode_token cannot produce (bad escape, non-canonical, unsafe) is refused."""
    with pytest.raises(ValueError):
        decode_token(token)


# ------------------------------------------------------------------------------ live order


class FakeSink:
    """A FeedSink recording deliveries and gaps; ``stored`` plays JetStream."""

    def __init__(self, stored: list[Record] | None = None) -> None:
        self.stored = stored or []
        self.delivered: list[Record] = []
        self.gaps = 0
        self.fetches = 0
        self.answered = 0
        self.gate: asyncio.Event | None = None
        """When set, a fetch reads ``stored`` at once but answers only once the gate opens."""

    def deliver(self, channel: str, record: Record) -> None:
        self.delivered.append(record)

    def gap(self, channel: str) -> None:
        self.gaps += 1

    async def fetch(self, channel: str, epoch: str, first: int, last: int) -> list[Record]:
        self.fetches += 1
        found = [r for r in self.stored if r.epoch == epoch and first <= r.offset <= last]
        if self.gate is not None:
            await self.gate.wait()
        self.answered += 1  # the feed handles the answer before anything else runs
        return found

    @property
    def offsets(self) -> list[int]:
        return [r.offset for r in self.delivered]


def rec(offset: int, epoch: str = "e") -> Record:
    return Record(kind=PUB, epoch=epoch, offset=offset)


def feed(sink: FakeSink, wait: float = 0.01) -> ChannelFeed:
    return ChannelFeed("chat:x", sink, wait)


async def test_feed_puts_publications_back_in_offset_order() -> None:
    """Offsets arriving 2, 3, 1 are delivered 1, 2, 3 without reading history."""
    sink = FakeSink()
    f = feed(sink, wait=BOUND)
    f.begin(None)
    for n in (2, 3, 1):
        f.accept(rec(n))
    assert sink.offsets == [1, 2, 3]
    assert (sink.fetches, sink.gaps) == (0, 0)


async def test_feed_delivers_each_offset_once() -> None:
    """A repeated or older offset is dropped."""
    sink = FakeSink()
    f = feed(sink)
    f.begin(None)
    for n in (1, 1, 2, 1, 2, 3):
        f.accept(rec(n))
    assert sink.offsets == [1, 2, 3]


async def test_feed_holds_events_until_it_knows_the_position() -> None:
    """Before begin() nothing is delivered; then offsets up to the tail are dropped."""
    sink = FakeSink()
    f = feed(sink)
    for n in (2, 3, 4):
        f.accept(rec(n))
    assert sink.delivered == []
    f.begin(rec(2))
    assert sink.offsets == [3, 4]


async def test_feed_reads_a_missing_offset_from_history() -> None:
    """An offset that does not come live in time is read from history, in its place."""
    sink = FakeSink(stored=[rec(2)])
    f = feed(sink)
    f.begin(None)
    f.accept(rec(1))
    f.accept(rec(3))
    await eventually(lambda: len(sink.delivered) == 3)
    assert sink.offsets == [1, 2, 3]
    assert sink.gaps == 0


async def test_feed_reports_a_gap_when_history_lacks_the_offset() -> None:
    """A missing offset that history no longer has is skipped and reported as a gap."""
    sink = FakeSink(stored=[])
    f = feed(sink)
    f.begin(None)
    f.accept(rec(1))
    f.accept(rec(3))
    f.accept(rec(4))
    await eventually(lambda: sink.gaps)
    assert sink.offsets == [1, 3, 4]
    assert sink.gaps == 1


async def test_feed_skips_every_offset_history_lacks_in_one_gap() -> None:
    """Offsets missing from the range read from history are skipped together: one read,
    one gap, and what history had among them is delivered in order."""
    sink = FakeSink(stored=[rec(3), rec(5)])
    f = feed(sink)
    f.begin(None)
    f.accept(rec(1))
    f.accept(rec(7))
    await eventually(lambda: len(sink.delivered) == 4)
    assert sink.offsets == [1, 3, 5, 7]
    assert (sink.fetches, sink.gaps) == (1, 1)


async def test_feed_uses_an_offset_that_arrives_live_while_history_is_read() -> None:
    """A hole that opens while history is read is waited for like any other: when its
    offset arrives live just after the read, it is delivered and no gap is reported."""
    sink = FakeSink(stored=[rec(n) for n in range(1, 6)])
    sink.gate = asyncio.Event()
    f = feed(sink)
    f.begin(None)
    f.accept(rec(1))
    f.accept(rec(3))
    await eventually(lambda: sink.fetches == 1)  # reading offset 2
    f.accept(rec(2))  # ... which arrives live meanwhile: 1, 2, 3
    f.accept(rec(5))  # 4 is on its way
    sink.gate.set()
    await eventually(lambda: sink.answered >= 1)  # the read of 2 is over
    f.accept(rec(4))
    assert sink.offsets == [1, 2, 3, 4, 5]
    assert sink.gaps == 0
    f.close()


async def test_feed_reports_a_new_epoch_as_a_gap() -> None:
    """A publication of another epoch means the stream restarted: gap, then from offset 1."""
    sink = FakeSink()
    f = feed(sink)
    f.begin(rec(5, epoch="old"))
    f.accept(rec(1, epoch="new"))
    assert sink.gaps == 1
    assert [(r.epoch, r.offset) for r in sink.delivered] == [("new", 1)]


async def test_feed_passes_events_without_offset_at_once() -> None:
    """Joins and history-less publications are not held behind a missing offset."""
    sink = FakeSink()
    f = feed(sink, wait=BOUND)
    f.begin(None)
    f.accept(rec(2))
    f.accept(Record(kind=JOIN))
    f.accept(rec(0))
    assert [(r.kind, r.offset) for r in sink.delivered] == [(JOIN, 0), (PUB, 0)]
    f.close()


async def test_feed_adopts_the_next_position_after_a_reconnect() -> None:
    """After adopt() the first publication sets the position, whatever its offset."""
    sink = FakeSink()
    f = feed(sink)
    f.begin(rec(3))
    f.adopt()
    f.accept(rec(9))
    f.accept(rec(10))
    assert sink.offsets == [9, 10]
    assert sink.fetches == 0


# ---------------------------------------------------------------------- against a server


@pytest.fixture
def url() -> str:
    return scratch_url()


@pytest.fixture
def brokers(
    url: str, start_broker: StartBroker
) -> Callable[[], Awaitable[tuple[NatsBroker, Recorder]]]:
    """Started brokers sharing one prefix, each with its own recorder; closed after."""

    async def start() -> tuple[NatsBroker, Recorder]:
        events = Recorder()
        return await start_broker(ScratchBroker.from_url(url), events), events

    return start


@pytest.fixture
async def jetstream(url: str) -> AsyncIterator[Any]:
    """A plain nats-py JetStream context, to look at what the engines stored."""
    nc = await nats.connect("nats://127.0.0.1:4222")
    yield nc.jetstream()
    await nc.close()


@needs_nats
async def test_four_brokers_get_offsets_one_to_n(brokers: Any) -> None:
    """Concurrent publishers on 4 brokers get offsets exactly 1..N, and every subscribed
    broker delivers all N in offset order, each once."""
    channel, per_broker = "chat:race", 25
    history = HistoryOptions(size=200, ttl=60.0)
    nodes = [await brokers() for _ in range(4)]
    for broker, _ in nodes:
        await broker.subscribe([channel])
    positions = await asyncio.gather(
        *(b.publish(channel, pub(n), history) for b, _ in nodes for n in range(per_broker))
    )
    total = 4 * per_broker
    assert sorted(p.offset for p in positions) == list(range(1, total + 1))
    assert len({p.epoch for p in positions}) == 1
    page, top = await nodes[0][0].history(channel, since=None, limit=-1, reverse=False)
    assert offsets(page) == list(range(1, total + 1))
    assert top.offset == total
    await eventually(lambda: all(len(events.pubs(channel)) >= total for _, events in nodes))
    for _, events in nodes:
        assert offsets(events.pubs(channel)) == list(range(1, total + 1))
        assert [kind for kind, _, _ in events.events if kind == "gap"] == []


@needs_nats
async def test_a_foreign_stream_on_our_subjects_is_reported(brokers: Any, jetstream: Any) -> None:
    """Another stream holding a namespace's subjects is a conflict: the publish fails with
    JetStream's reason (a racing creation of our own stream is not; see the test above)."""
    broker, _ = await brokers()
    channel = "chat:clash"
    other = f"foreign-{secrets.token_hex(4)}"
    await jetstream.add_stream(name=other, subjects=[broker._names.stream_subjects(channel)])
    try:
        with pytest.raises(EngineError, match="subjects overlap"):
            await broker.publish(channel, pub(1), HistoryOptions(size=10, ttl=60.0))
    finally:
        await jetstream.delete_stream(other)


@needs_nats
async def test_subjects_keep_size_plus_one_messages(brokers: Any, jetstream: Any) -> None:
    """The stream keeps at most size + 1 messages per channel; history shows the newest size."""
    broker, _ = await brokers()
    channel = "chat:trim"
    await broker.publish(channel, pub(0), None)
    for n in range(1, 8):
        await broker.publish(channel, pub(n), HistoryOptions(size=3, ttl=60.0))
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert numbers(page) == [5, 6, 7]
    assert top.offset == 7
    stream = f"{broker.options.prefix}_history_chat"
    info = await jetstream.stream_info(stream, subjects_filter=">")
    assert info.config.max_msgs_per_subject == 4
    assert list(info.state.subjects.values()) == [4]


@needs_nats
async def test_the_live_subject_carries_the_message_history_stored(
    brokers: Any, jetstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publication with history goes live as the very bytes JetStream stored, encoded
    once for both."""
    broker, _ = await brokers()
    channel = "chat:same"
    encoded: list[object] = []
    for module in (nats_broker, nats_history):
        real = module.encode
        monkeypatch.setattr(module, "encode", lambda r, real=real: encoded.append(r) or real(r))
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        live = await nc.subscribe(broker._names.live(channel))
        await nc.flush()
        await broker.publish(channel, pub(1), HistoryOptions(size=10, ttl=60.0))
        sent = await live.next_msg(timeout=BOUND)
    finally:
        await nc.close()
    assert len(encoded) == 1
    names = broker._names
    stored = await jetstream.get_msg(names.stream(channel), subject=names.history(channel))
    assert sent.data == stored.data
    assert msgspec.msgpack.decode(sent.data, type=Record).offset == 1


@needs_nats
async def test_history_expires_after_a_real_ttl(brokers: Any, jetstream: Any) -> None:
    """Publications vanish ttl after the last one; the position stays, and a later
    publication starts a new window without bringing the expired ones back, and frees
    their storage."""
    broker, _ = await brokers()
    channel, history = "chat:ttl", HistoryOptions(size=10, ttl=0.3, meta_ttl=60.0)
    epoch = (await broker.publish(channel, pub(1), history)).epoch
    await broker.publish(channel, pub(2), history)

    async def expired() -> bool:
        page, _ = await broker.history(channel, since=None, limit=-1, reverse=False)
        return not page

    await eventually(expired)
    _, top = await broker.history(channel, since=None, limit=0, reverse=False)
    assert top == StreamPosition(offset=2, epoch=epoch)
    assert await broker.publish(channel, pub(3), history) == StreamPosition(offset=3, epoch=epoch)
    page, _ = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert numbers(page) == [3]

    async def stored() -> int:
        stream = f"{broker.options.prefix}_history_chat"
        info = await jetstream.stream_info(stream, subjects_filter=">")
        return int(info.state.messages)

    await eventually(lambda: _equals(stored(), 1))


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


@needs_nats
@pytest.mark.parametrize("first_call", ["history", "publish"])
async def test_a_lost_stream_starts_a_new_epoch(
    brokers: Any, jetstream: Any, first_call: str
) -> None:
    """When the stream is gone (deleted, server state lost) the channel gets a new epoch
    and offsets restart at 1, even on a broker that remembered the old tail."""
    broker, _ = await brokers()
    channel, history = "chat:lost", HistoryOptions(size=10, ttl=60.0)
    positions = [await broker.publish(channel, pub(n), history) for n in (1, 2, 3)]
    await jetstream.delete_stream(f"{broker.options.prefix}_history_chat")
    if first_call == "history":
        page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
        assert (page, top.offset) == ([], 0)
        assert top.epoch not in ("", positions[0].epoch)
    position = await broker.publish(channel, pub(4), history)
    assert position.offset == 1
    assert position.epoch not in ("", positions[0].epoch)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert numbers(page) == [4]
    assert top == position


@needs_nats
@pytest.mark.parametrize("count", [1, 3])
async def test_a_stream_made_again_by_another_node_is_not_written_over(
    brokers: Any, jetstream: Any, count: int
) -> None:
    """A node that published before the stream was lost, and made again by another node,
    appends after the new epoch's tail, not after the one it last wrote, whose sequence
    the new stream reuses: the other node's accepted publications stay in history."""
    (a, _), (b, _) = await brokers(), await brokers()
    channel, history = "chat:again", HistoryOptions(size=10, ttl=60.0)
    old = [await a.publish(channel, pub(n), history) for n in range(count)]
    await jetstream.delete_stream(f"{a.options.prefix}_history_chat")
    # A forgets the stream's tails when JetStream's stream-deleted advisory reaches it.
    await eventually(lambda: channel not in a._streams._tails)
    accepted = [await b.publish(channel, pub(10 + n), history) for n in range(count)]
    assert accepted[-1].offset == count and accepted[-1].epoch != old[-1].epoch
    position = await a.publish(channel, pub(99), history)
    assert position == StreamPosition(offset=count + 1, epoch=accepted[-1].epoch)
    for broker in (a, b):
        page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
        assert (numbers(page), top) == ([*range(10, 10 + count), 99], position)


@needs_nats
async def test_a_node_reads_a_channels_tail_once_for_its_publishes(brokers: Any) -> None:
    """The tail a node wrote is remembered: publishes after the first need no read of it
    (they still go through JetStream's expected-sequence check)."""
    broker, _ = await brokers()
    streams = broker._streams
    reads = 0
    read_tail = streams.read_tail

    async def counted(channel: str) -> Any:
        nonlocal reads
        reads += 1
        return await read_tail(channel)

    streams.read_tail = counted  # type: ignore[method-assign]
    history = HistoryOptions(size=10, ttl=60.0)
    positions = [await broker.publish("chat:often", pub(n), history) for n in range(5)]
    assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
    assert reads == 1


@needs_nats
async def test_history_meta_ttl_keeps_state_alive_from_any_node(
    brokers: Any, jetstream: Any
) -> None:
    """history(meta_ttl=...) on a node that never published to the namespace judges the
    tail's life by the stream's real max_age (set by another node's publications), so a
    tail that would expire within meta_ttl / 2 is rewritten: same position, new life."""
    (a, _), (b, _) = await brokers(), await brokers()
    channel = "chat:kept"
    position = await a.publish(channel, pub(1), HistoryOptions(size=5, ttl=60.0, meta_ttl=60.0))
    _, top = await b.history(channel, since=None, limit=0, reverse=False, meta_ttl=1000.0)
    assert top == position
    info = await jetstream.stream_info(f"{a.options.prefix}_history_chat")
    assert (info.config.max_age, info.state.messages) == (60.0, 2)  # the publication, a marker


@needs_nats
async def test_a_stream_made_by_history_lives_its_meta_ttl(brokers: Any, jetstream: Any) -> None:
    """A stream that history(meta_ttl=...) creates keeps its state meta_ttl, not 30 days."""
    broker, _ = await brokers()
    await broker.history("chat:new", since=None, limit=0, reverse=False, meta_ttl=120.0)
    info = await jetstream.stream_info(f"{broker.options.prefix}_history_chat")
    assert info.config.max_age == 120.0


@needs_nats
async def test_a_missed_live_publication_is_read_from_history(brokers: Any) -> None:
    """If a stored publication never arrives live, the next one brings it from history."""
    (a, a_events), (b, _) = await brokers(), await brokers()
    channel, history = "chat:fill", HistoryOptions(size=10, ttl=60.0)
    await a.subscribe([channel])
    drop_live_sends(b, 1)
    await b.publish(channel, pub(1), history)
    await b.publish(channel, pub(2), history)
    await eventually(lambda: len(a_events.pubs(channel)) == 2)
    assert numbers(a_events.pubs(channel)) == [1, 2]
    assert ("gap", channel) not in [(kind, ch) for kind, ch, _ in a_events.events]


@needs_nats
async def test_a_missed_publication_gone_from_history_is_a_gap(brokers: Any) -> None:
    """A missed publication already trimmed from history is reported as a gap."""
    (a, a_events), (b, _) = await brokers(), await brokers()
    channel, history = "chat:hole", HistoryOptions(size=1, ttl=60.0)
    await a.subscribe([channel])
    drop_live_sends(b, 2)
    for n in (1, 2, 3, 4):  # the subject keeps size + 1 = 2 messages: 3 and 4
        await b.publish(channel, pub(n), history)
    await eventually(lambda: len(a_events.pubs(channel)) == 2)
    assert numbers(a_events.pubs(channel)) == [3, 4]
    assert [kind for kind, ch, _ in a_events.events if ch == channel] == ["gap", "pub", "pub"]


def drop_live_sends(broker: NatsBroker, count: int) -> None:
    """Make ``broker`` lose its next ``count`` live sends, as if the network ate them."""
    nc = broker._link.nc
    real = nc.publish
    left = [count]

    async def lossy(subject: str, payload: bytes = b"", **kwargs: Any) -> None:
        if ".live." in subject and left[0] > 0:
            left[0] -= 1
            return
        await real(subject, payload, **kwargs)

    nc.publish = lossy  # type: ignore[method-assign,assignment]


@needs_nats
async def test_awkward_channel_names_work_end_to_end(brokers: Any, url: str) -> None:
    """Channels and client ids with spaces, dots and wildcards publish, deliver, keep
    history and presence like any other."""
    broker, events = await brokers()
    presence = ScratchPresenceStore.from_url(url)
    names = ["chat:a b", "chat:x.y", "chat:*", "chat:>", "no namespace", ":", "a.b:c"]
    await broker.subscribe(names)
    try:
        for n, channel in enumerate(names, 1):
            position = await broker.publish(channel, pub(n), HistoryOptions(size=5, ttl=60.0))
            page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
            assert (position.offset, numbers(page), top) == (1, [n], position)
            assert numbers(events.pubs(channel)) == [n]
            await presence.add(channel, "id *.>", client("u", "id *.>"), 60.0)
            assert list(await presence.presence(channel)) == ["id *.>"]
    finally:
        await presence.close()


@needs_nats
async def test_presence_entries_expire_after_a_real_ttl(url: str, jetstream: Any) -> None:
    """An entry disappears once its ttl has passed without a refresh; the bucket's own
    TTL covers the longest ttl asked for."""
    store = ScratchPresenceStore.from_url(url)
    channel = "chat:presence"
    try:
        await store.add(channel, "c1", client("u1", "c1"), 0.5)
        await store.add(channel + ":other", "c2", client("u2", "c2"), 30.0)
        assert list(await store.presence(channel)) == ["c1"]
        await eventually(lambda: _empty(store, channel))
        assert await store.stats(channel) == (0, 0)
        bucket = await jetstream.stream_info(f"KV_{store.options.prefix}_presence")
        assert bucket.config.max_age == 30.0
    finally:
        await store.close()


@needs_nats
async def test_a_lost_presence_bucket_is_made_again(url: str, jetstream: Any) -> None:
    """If the bucket disappears from the server, the next add creates it again."""
    store = ScratchPresenceStore.from_url(url)
    try:
        await store.add("chat:p", "c1", client("u1", "c1"), 30.0)
        await jetstream.delete_stream(f"KV_{store.options.prefix}_presence")
        assert await store.presence("chat:p") == {}
        await store.add("chat:p", "c2", client("u2", "c2"), 30.0)
        assert list(await store.presence("chat:p")) == ["c2"]
    finally:
        await store.close()


@needs_nats
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("c2", b"\xc1 not msgpack"),
        ("_41", msgspec.msgpack.encode([2**53, ["u2", "c2", b"", b""]])),  # never: "A" is "A"
    ],
    ids=["bad-value", "foreign-key"],
)
async def test_unreadable_presence_entries_are_skipped(
    url: str, jetstream: Any, key: str, value: bytes
) -> None:
    """An entry that does not decode, or whose key encode_token did not make, is left out
    of presence and stats: the channel's other clients are still listed."""
    store = ScratchPresenceStore.from_url(url)
    try:
        await store.add("chat:p", "c1", client("u1", "c1"), 30.0)
        channel_keys = f"$KV.{store.options.prefix}_presence.{encode_token('chat:p')}"
        await jetstream.publish(f"{channel_keys}.{key}", value)
        assert list(await store.presence("chat:p")) == ["c1"]
        assert await store.stats("chat:p") == (1, 1)
    finally:
        await store.close()


async def _empty(store: NatsPresenceStore, channel: str) -> bool:
    return await store.presence(channel) == {}


@needs_nats
async def test_drop_prefix_deletes_streams_and_bucket(url: str, jetstream: Any) -> None:
    """drop_prefix removes every stream and the bucket under the prefix, nothing else."""
    broker, store = NatsBroker.from_url(url), NatsPresenceStore.from_url(url)
    await broker.start(Recorder())
    await broker.publish("a:1", pub(1), HistoryOptions(size=5, ttl=60.0))
    await broker.publish("b:1", pub(1), HistoryOptions(size=5, ttl=60.0))
    await store.add("a:1", "c1", client("u", "c1"), 60.0)
    await broker.close()
    await store.close()
    prefix = broker.options.prefix
    dropped = await drop_prefix(url)
    assert sorted(dropped) == [
        f"KV_{prefix}_presence",
        f"{prefix}_history_a",
        f"{prefix}_history_b",
    ]
    left = [info.config.name for info in await jetstream.streams_info()]
    assert not [name for name in left if prefix in name]


async def test_start_fails_fast_without_a_server() -> None:
    """Starting against a port where nothing listens is an EngineError within the timeout."""
    broker = NatsBroker.from_url(f"nats://127.0.0.1:{free_port()}?timeout=0.5")
    with pytest.raises(EngineError, match="connect"):
        await asyncio.wait_for(broker.start(Recorder()), BOUND)
    with pytest.raises(EngineError):
        await broker.publish("chat:x", pub(1), None)


# ------------------------------------------- publishes started together (in flight together)


@needs_nats
async def test_live_publishes_started_together_arrive_in_order_and_share_pings(
    brokers: Any,
) -> None:
    """200 publishes without history started in one go: delivered in start order on this
    node and on another, every one confirmed, with a few PINGs, not one each."""
    here, here_events = await brokers()
    there, there_events = await brokers()
    for broker in (here, there):
        await broker.subscribe(["room"])
    pings = count_pings(here._link.nc)
    await asyncio.gather(*(here.publish("room", pub(n), None) for n in range(200)))
    assert numbers(here_events.pubs("room")) == list(range(200))
    await eventually(lambda: len(there_events.pubs("room")) >= 200)
    assert numbers(there_events.pubs("room")) == list(range(200))
    assert 1 <= pings[0] <= 3


@needs_nats
async def test_history_publishes_started_together_keep_their_order(brokers: Any) -> None:
    """150 publishes with history started in one go: offsets 1..150 in start order,
    delivered in that order on both nodes, and stored in it."""
    here, here_events = await brokers()
    there, there_events = await brokers()
    for broker in (here, there):
        await broker.subscribe(["chat:line"])
    history = HistoryOptions(size=200, ttl=60.0)
    positions = await asyncio.gather(
        *(here.publish("chat:line", pub(n), history) for n in range(150))
    )
    assert [p.offset for p in positions] == list(range(1, 151))
    for events in (here_events, there_events):
        await eventually(lambda events=events: len(events.pubs("chat:line")) >= 150)
        assert numbers(events.pubs("chat:line")) == list(range(150))
        assert offsets(events.pubs("chat:line")) == list(range(1, 151))
    page, _ = await there.history("chat:line", since=None, limit=-1, reverse=False)
    assert numbers(page) == list(range(150))
