"""Conformance suite of the engine interfaces, run here against the memory engines.

An engine joins by adding a case to ``BROKERS`` / ``PRESENCE_STORES`` and gets every
test of the suite. Tests that move time use ``broker_clock`` / ``presence_clock``; they
are skipped for an engine that keeps its own time (a server's TTLs) and so cannot take
the injected clock. The last section pins what only the memory engines do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pytest
from msgspec import Raw

from hubbub.engines.base import (
    Broker,
    BrokerEventHandler,
    HistoryOptions,
    PresenceStore,
)
from hubbub.engines.memory import MemoryBroker, MemoryPresenceStore
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

HISTORY = HistoryOptions(size=10, ttl=60.0, meta_ttl=3600.0)


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A BrokerEventHandler that remembers every event in arrival order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Publication | ClientInfo]] = []

    def on_publication(self, channel: str, pub: Publication) -> None:
        self.events.append(("pub", channel, pub))

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self.events.append(("join", channel, info))

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self.events.append(("leave", channel, info))

    def pubs(self, channel: str) -> list[Publication]:
        return [e for _, ch, e in self.events if isinstance(e, Publication) and ch == channel]


_: type[BrokerEventHandler] = Recorder


E = TypeVar("E", Broker, PresenceStore)


@dataclass(frozen=True)
class Case(Generic[E]):
    """How to build one engine for the suite."""

    make: Callable[[FakeClock], E]
    fake_time: bool = True
    """False when the engine keeps its own time, so tests that move time are skipped."""


BROKERS: dict[str, Case[Broker]] = {
    "memory": Case(lambda clock: MemoryBroker(clock=clock)),
}
PRESENCE_STORES: dict[str, Case[PresenceStore]] = {
    "memory": Case(lambda clock: MemoryPresenceStore(clock=clock)),
}


def pub(n: int) -> Publication:
    return Publication(data=Raw(b'{"n":%d}' % n))


def numbers(pubs: list[Publication]) -> list[int]:
    """The ``n`` of each publication made by ``pub``, to compare pages at a glance."""
    return [int(bytes(p.data)[5:-1]) for p in pubs]


def offsets(pubs: list[Publication]) -> list[int]:
    return [p.offset for p in pubs]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def channel() -> str:
    """A fresh channel name, so engines with shared state never see another test's data."""
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=sorted(BROKERS))
def broker_case(request: pytest.FixtureRequest) -> Case[Broker]:
    return BROKERS[request.param]


@pytest.fixture
async def broker(
    broker_case: Case[Broker], clock: FakeClock, events: Recorder
) -> AsyncIterator[Broker]:
    engine = broker_case.make(clock)
    await engine.start(events)
    yield engine
    await engine.close()


@pytest.fixture
def broker_clock(broker_case: Case[Broker], clock: FakeClock) -> FakeClock:
    if not broker_case.fake_time:
        pytest.skip("the engine keeps its own time")
    return clock


@pytest.fixture(params=sorted(PRESENCE_STORES))
def presence_case(request: pytest.FixtureRequest) -> Case[PresenceStore]:
    return PRESENCE_STORES[request.param]


@pytest.fixture
async def presence(
    presence_case: Case[PresenceStore], clock: FakeClock
) -> AsyncIterator[PresenceStore]:
    store = presence_case.make(clock)
    yield store
    await store.close()


@pytest.fixture
def presence_clock(presence_case: Case[PresenceStore], clock: FakeClock) -> FakeClock:
    if not presence_case.fake_time:
        pytest.skip("the engine keeps its own time")
    return clock


async def publish_many(
    broker: Broker, channel: str, count: int, history: HistoryOptions = HISTORY
) -> list[StreamPosition]:
    """Publish ``pub(1)`` .. ``pub(count)`` one after the other; their positions."""
    return [await broker.publish(channel, pub(n), history) for n in range(1, count + 1)]


# ---------------------------------------------------------------------------- delivery


async def test_publish_delivers_only_on_subscribed_channels(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """A publication reaches the handler only for channels passed to subscribe()."""
    other = channel + ":other"
    await broker.subscribe([channel])
    await broker.publish(channel, pub(1), None)
    await broker.publish(other, pub(2), None)
    assert numbers(events.pubs(channel)) == [1]
    assert events.pubs(other) == []


async def test_subscribe_takes_several_channels(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """One subscribe() call starts delivery for every channel it names."""
    a, b = channel + ":a", channel + ":b"
    await broker.subscribe([a, b])
    await broker.publish(a, pub(1), None)
    await broker.publish(b, pub(2), None)
    assert [(kind, ch) for kind, ch, _ in events.events] == [("pub", a), ("pub", b)]


async def test_unsubscribe_stops_delivery(broker: Broker, events: Recorder, channel: str) -> None:
    """After unsubscribe() a channel's publications no longer reach the handler."""
    await broker.subscribe([channel])
    await broker.publish(channel, pub(1), HISTORY)
    await broker.unsubscribe([channel])
    await broker.publish(channel, pub(2), HISTORY)
    assert numbers(events.pubs(channel)) == [1]


async def test_history_is_kept_for_unsubscribed_channels(broker: Broker, channel: str) -> None:
    """Publishing with history appends to the stream whether or not anyone subscribed."""
    position = await broker.publish(channel, pub(1), HISTORY)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert position.offset == 1
    assert numbers(page) == [1]
    assert top == position


async def test_delivery_keeps_publish_order(broker: Broker, events: Recorder, channel: str) -> None:
    """Publications arrive in the order they were published, with and without history."""
    await broker.subscribe([channel])
    for n in range(1, 6):
        await broker.publish(channel, pub(n), None)
    for n in range(6, 11):
        await broker.publish(channel, pub(n), HISTORY)
    assert numbers(events.pubs(channel)) == list(range(1, 11))
    assert offsets(events.pubs(channel)) == [0] * 5 + [1, 2, 3, 4, 5]


async def test_publication_content_is_delivered_unchanged(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """Data, info and tags reach the handler as published; only the offset is added."""
    info = ClientInfo(user="42", client="c1", conn_info=Raw(b'{"a":1}'))
    sent = Publication(data=Raw(b'{"text":"hi"}'), info=info, tags={"k": "v"}, time=7)
    await broker.subscribe([channel])
    await broker.publish(channel, sent, HISTORY)
    [got] = events.pubs(channel)
    assert bytes(got.data) == b'{"text":"hi"}'
    assert got.info == info
    assert got.tags == {"k": "v"}
    assert got.time == 7
    assert got.offset == 1


async def test_publish_leaves_the_callers_publication_untouched(
    broker: Broker, channel: str
) -> None:
    """The offset is stamped on the stored copy, not on the object the caller passed."""
    sent = pub(1)
    await broker.publish(channel, sent, HISTORY)
    assert sent.offset == 0


async def test_publish_without_history_has_no_position(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """With history off, publish returns offset 0 and epoch "", and keeps nothing."""
    await broker.subscribe([channel])
    position = await broker.publish(channel, pub(1), None)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert position == StreamPosition(offset=0, epoch="")
    assert offsets(events.pubs(channel)) == [0]
    assert page == []
    assert top.offset == 0


@pytest.mark.parametrize(
    "options",
    [HistoryOptions(size=0, ttl=60.0), HistoryOptions(size=10, ttl=0.0)],
    ids=["size 0", "ttl 0"],
)
async def test_history_needs_both_size_and_ttl(
    broker: Broker, channel: str, options: HistoryOptions
) -> None:
    """History is off unless size > 0 and ttl > 0."""
    assert not options.enabled
    position = await broker.publish(channel, pub(1), options)
    page, _ = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert position == StreamPosition()
    assert page == []


async def test_join_and_leave_reach_subscribed_channels_only(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """Join and leave events are delivered like publications: only on subscribed channels."""
    other = channel + ":other"
    info = ClientInfo(user="u1", client="c1")
    await broker.subscribe([channel])
    await broker.publish_join(channel, info)
    await broker.publish_join(other, info)
    await broker.publish_leave(channel, info)
    await broker.publish_leave(other, info)
    assert events.events == [("join", channel, info), ("leave", channel, info)]


async def test_events_of_all_kinds_keep_their_order(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """Joins, publications and leaves of one channel arrive in the order they were sent."""
    info = ClientInfo(user="u1", client="c1")
    await broker.subscribe([channel])
    await broker.publish_join(channel, info)
    await broker.publish(channel, pub(1), HISTORY)
    await broker.publish_leave(channel, info)
    assert [kind for kind, _, _ in events.events] == ["join", "pub", "leave"]


# ----------------------------------------------------------------------------- offsets


async def test_offsets_increase_by_one_from_one(broker: Broker, channel: str) -> None:
    """Each publication gets the next offset, starting at 1, all within one epoch."""
    positions = await publish_many(broker, channel, 25)
    assert [p.offset for p in positions] == list(range(1, 26))
    assert len({p.epoch for p in positions}) == 1
    assert positions[0].epoch != ""


async def test_delivered_offsets_match_returned_positions(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """The offset a handler sees is the one publish() returned."""
    await broker.subscribe([channel])
    positions = await publish_many(broker, channel, 5)
    assert offsets(events.pubs(channel)) == [p.offset for p in positions]


async def test_concurrent_publishes_get_contiguous_offsets_in_order(
    broker: Broker, events: Recorder, channel: str
) -> None:
    """Concurrent publishes to one channel get distinct offsets with no gap, delivered in order."""
    await broker.subscribe([channel])
    positions = await asyncio.gather(*(broker.publish(channel, pub(n), HISTORY) for n in range(50)))
    assert sorted(p.offset for p in positions) == list(range(1, 51))
    assert offsets(events.pubs(channel)) == list(range(1, 51))


async def test_channels_have_separate_streams(broker: Broker, channel: str) -> None:
    """Offsets count per channel, and each channel has its own epoch."""
    other = channel + ":other"
    a = await publish_many(broker, channel, 3)
    b = await publish_many(broker, other, 1)
    assert [p.offset for p in a] == [1, 2, 3]
    assert b[0].offset == 1
    assert a[0].epoch != b[0].epoch


async def test_publish_position_is_the_history_top(broker: Broker, channel: str) -> None:
    """The position publish() returns is what history() then reports as the top."""
    position = (await publish_many(broker, channel, 3))[-1]
    _, top = await broker.history(channel, since=None, limit=0, reverse=False)
    assert top == position == StreamPosition(offset=3, epoch=position.epoch)


# ----------------------------------------------------------------------------- history


@pytest.mark.parametrize(
    ("since", "limit", "reverse", "expected"),
    [
        pytest.param(None, 0, False, [], id="limit 0: position only"),
        pytest.param(None, -1, False, [1, 2, 3, 4, 5], id="limit -1: all retained"),
        pytest.param(None, 2, False, [1, 2], id="limit N: oldest N"),
        pytest.param(None, 2, True, [5, 4], id="limit N reverse: newest N, newest first"),
        pytest.param(None, -1, True, [5, 4, 3, 2, 1], id="limit -1 reverse: all, newest first"),
        pytest.param(2, 2, False, [3, 4], id="since: N after since"),
        pytest.param(2, -1, False, [3, 4, 5], id="since limit -1: all after since"),
        pytest.param(4, 2, True, [3, 2], id="since reverse: N before since, newest first"),
        pytest.param(2, 0, False, [], id="since with limit 0: none"),
        pytest.param(5, -1, False, [], id="since the top: none"),
        pytest.param(9, -1, False, [], id="since beyond the top: none"),
    ],
)
async def test_history_follows_the_protocol_table(
    broker: Broker,
    channel: str,
    since: int | None,
    limit: int,
    reverse: bool,
    expected: list[int],
) -> None:
    """history() pages as PROTOCOL.md §7.4 says, and always reports the current top."""
    epoch = (await publish_many(broker, channel, 5))[0].epoch
    position = None if since is None else StreamPosition(offset=since, epoch=epoch)
    page, top = await broker.history(channel, since=position, limit=limit, reverse=reverse)
    assert offsets(page) == expected
    assert numbers(page) == expected
    assert top == StreamPosition(offset=5, epoch=epoch)


async def test_history_pages_match_a_reference_model(broker: Broker, channel: str) -> None:
    """Every since/limit/reverse combination over a trimmed stream matches a list model."""
    await publish_many(broker, channel, 8, HistoryOptions(size=5, ttl=60.0))
    retained = [4, 5, 6, 7, 8]
    for since in [None, *range(11)]:
        for limit in [-1, 0, 1, 2, 3, 5, 6, 100]:
            for reverse in (False, True):
                model = retained
                if since is not None:
                    model = [o for o in model if (o < since if reverse else o > since)]
                if reverse:
                    model = model[::-1]
                if limit >= 0:
                    model = model[:limit]
                position = None if since is None else StreamPosition(offset=since)
                page, top = await broker.history(
                    channel, since=position, limit=limit, reverse=reverse
                )
                assert offsets(page) == model, (since, limit, reverse)
                assert top.offset == 8


async def test_history_does_not_judge_the_since_epoch(broker: Broker, channel: str) -> None:
    """A since position from another epoch still pages by offset; the caller compares epochs."""
    epoch = (await publish_many(broker, channel, 3))[0].epoch
    since = StreamPosition(offset=1, epoch="not-" + epoch)
    page, top = await broker.history(channel, since=since, limit=-1, reverse=False)
    assert offsets(page) == [2, 3]
    assert top.epoch == epoch


async def test_history_after_a_trimmed_since_returns_what_is_retained(
    broker: Broker, channel: str
) -> None:
    """A since offset older than the oldest retained publication pages from the oldest one."""
    await publish_many(broker, channel, 6, HistoryOptions(size=3, ttl=60.0))
    page, _ = await broker.history(channel, since=StreamPosition(offset=1), limit=-1, reverse=False)
    assert offsets(page) == [4, 5, 6]


async def test_history_creates_the_stream_metadata(broker: Broker, channel: str) -> None:
    """history() on an unknown channel fixes an epoch at top 0 that later publishes keep."""
    page, first = await broker.history(channel, since=None, limit=-1, reverse=False)
    _, again = await broker.history(channel, since=None, limit=0, reverse=False)
    position = await broker.publish(channel, pub(1), HISTORY)
    assert page == []
    assert first.offset == 0
    assert first.epoch != ""
    assert again == first
    assert position == StreamPosition(offset=1, epoch=first.epoch)


async def test_ring_buffer_keeps_the_newest_size_publications(broker: Broker, channel: str) -> None:
    """Only the newest ``size`` publications are retained; the top keeps counting."""
    await publish_many(broker, channel, 7, HistoryOptions(size=3, ttl=60.0))
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert offsets(page) == [5, 6, 7]
    assert numbers(page) == [5, 6, 7]
    assert top.offset == 7


async def test_a_smaller_size_trims_on_the_next_publish(broker: Broker, channel: str) -> None:
    """Publishing with a smaller size keeps only that many of the newest publications."""
    await publish_many(broker, channel, 5, HistoryOptions(size=10, ttl=60.0))
    await broker.publish(channel, pub(6), HistoryOptions(size=2, ttl=60.0))
    page, _ = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert offsets(page) == [5, 6]


async def test_remove_history_keeps_epoch_and_top(broker: Broker, channel: str) -> None:
    """remove_history() drops the publications; the position goes on where it was."""
    epoch = (await publish_many(broker, channel, 3))[0].epoch
    await broker.remove_history(channel)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    position = await broker.publish(channel, pub(4), HISTORY)
    assert page == []
    assert top == StreamPosition(offset=3, epoch=epoch)
    assert position == StreamPosition(offset=4, epoch=epoch)


async def test_remove_history_of_an_unknown_channel_is_harmless(
    broker: Broker, channel: str
) -> None:
    """Removing the history of a channel that never had one does nothing and raises nothing."""
    await broker.remove_history(channel)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert page == []
    assert top.offset == 0


# ---------------------------------------------------------------------------- expiry


async def test_stream_expires_ttl_after_the_last_publication(
    broker: Broker, broker_clock: FakeClock, channel: str
) -> None:
    """Publications live ttl seconds after the latest one; epoch and top outlive them."""
    epoch = (await publish_many(broker, channel, 2))[0].epoch
    broker_clock.advance(HISTORY.ttl - 1)
    await broker.publish(channel, pub(3), HISTORY)  # restarts the ttl for all of them
    broker_clock.advance(HISTORY.ttl - 1)
    page, _ = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert offsets(page) == [1, 2, 3]
    broker_clock.advance(1)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert page == []
    assert top == StreamPosition(offset=3, epoch=epoch)
    assert await broker.publish(channel, pub(4), HISTORY) == StreamPosition(offset=4, epoch=epoch)


async def test_new_epoch_after_meta_ttl(
    broker: Broker, broker_clock: FakeClock, channel: str
) -> None:
    """Once the metadata outlives meta_ttl, the stream restarts: new epoch, offsets from 1."""
    old = (await publish_many(broker, channel, 3))[0].epoch
    broker_clock.advance(HISTORY.meta_ttl)
    page, top = await broker.history(channel, since=None, limit=-1, reverse=False)
    position = await broker.publish(channel, pub(1), HISTORY)
    assert page == []
    assert top.offset == 0
    assert top.epoch not in ("", old)
    assert position == StreamPosition(offset=1, epoch=top.epoch)


async def test_metadata_lives_meta_ttl_after_the_last_publication(
    broker: Broker, broker_clock: FakeClock, channel: str
) -> None:
    """Each publication restarts the meta_ttl, so an active channel keeps its epoch."""
    epoch = (await publish_many(broker, channel, 1))[0].epoch
    broker_clock.advance(HISTORY.meta_ttl - 1)
    await broker.publish(channel, pub(2), HISTORY)
    broker_clock.advance(HISTORY.meta_ttl - 1)
    _, top = await broker.history(channel, since=None, limit=0, reverse=False)
    assert top == StreamPosition(offset=2, epoch=epoch)


async def test_history_meta_ttl_extends_the_metadata(
    broker: Broker, broker_clock: FakeClock, channel: str
) -> None:
    """history(meta_ttl=...) keeps the epoch alive that long from the call."""
    epoch = (await publish_many(broker, channel, 1))[0].epoch
    broker_clock.advance(HISTORY.meta_ttl - 1)
    await broker.history(channel, since=None, limit=0, reverse=False, meta_ttl=100.0)
    broker_clock.advance(99)
    _, top = await broker.history(channel, since=None, limit=0, reverse=False)
    assert top == StreamPosition(offset=1, epoch=epoch)
    broker_clock.advance(1)
    _, top = await broker.history(channel, since=None, limit=0, reverse=False)
    assert top.epoch != epoch
    assert top.offset == 0


async def test_metadata_created_by_history_expires_after_its_meta_ttl(
    broker: Broker, broker_clock: FakeClock, channel: str
) -> None:
    """An epoch that history() created with a meta_ttl is replaced once that has passed."""
    _, first = await broker.history(channel, since=None, limit=0, reverse=False, meta_ttl=10.0)
    broker_clock.advance(10)
    _, second = await broker.history(channel, since=None, limit=0, reverse=False)
    assert second.epoch != first.epoch


# ---------------------------------------------------------------------------- presence


def client(user: str, client_id: str) -> ClientInfo:
    return ClientInfo(user=user, client=client_id)


async def test_presence_lists_added_clients(presence: PresenceStore, channel: str) -> None:
    """presence() maps each added client id to the ClientInfo it was added with."""
    a = ClientInfo(user="u1", client="c1", chan_info=Raw(b'{"role":"admin"}'))
    b = client("u2", "c2")
    await presence.add(channel, "c1", a, 60.0)
    await presence.add(channel, "c2", b, 60.0)
    assert await presence.presence(channel) == {"c1": a, "c2": b}


async def test_presence_of_an_empty_channel(presence: PresenceStore, channel: str) -> None:
    """A channel nobody joined has no presence and zero stats."""
    assert await presence.presence(channel) == {}
    assert await presence.stats(channel) == (0, 0)


async def test_presence_remove(presence: PresenceStore, channel: str) -> None:
    """remove() takes a client out; removing an absent one is not an error."""
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    await presence.add(channel, "c2", client("u2", "c2"), 60.0)
    await presence.remove(channel, "c1")
    await presence.remove(channel, "c1")
    await presence.remove(channel + ":other", "c9")
    assert list(await presence.presence(channel)) == ["c2"]


async def test_presence_re_add_replaces_the_info(presence: PresenceStore, channel: str) -> None:
    """Adding a client again updates its entry instead of adding a second one."""
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    newer = ClientInfo(user="u1", client="c1", conn_info=Raw(b'{"v":2}'))
    await presence.add(channel, "c1", newer, 60.0)
    assert await presence.presence(channel) == {"c1": newer}
    assert await presence.stats(channel) == (1, 1)


async def test_presence_channels_are_separate(presence: PresenceStore, channel: str) -> None:
    """A client added to one channel is not present in another."""
    other = channel + ":other"
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    assert await presence.presence(other) == {}
    assert await presence.stats(other) == (0, 0)


async def test_presence_stats_count_unique_users(presence: PresenceStore, channel: str) -> None:
    """stats() counts clients, and users once however many connections they have."""
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    await presence.add(channel, "c2", client("u1", "c2"), 60.0)
    await presence.add(channel, "c3", client("u2", "c3"), 60.0)
    await presence.add(channel, "c4", client("", "c4"), 60.0)
    await presence.add(channel, "c5", client("", "c5"), 60.0)
    assert await presence.stats(channel) == (5, 3)


async def test_presence_expires_ttl_after_the_last_add(
    presence: PresenceStore, presence_clock: FakeClock, channel: str
) -> None:
    """An entry disappears ttl seconds after it was last added; re-adding refreshes it."""
    await presence.add(channel, "c1", client("u1", "c1"), 10.0)
    await presence.add(channel, "c2", client("u2", "c2"), 10.0)
    presence_clock.advance(9)
    await presence.add(channel, "c1", client("u1", "c1"), 10.0)
    presence_clock.advance(1)
    assert list(await presence.presence(channel)) == ["c1"]
    assert await presence.stats(channel) == (1, 1)
    presence_clock.advance(9)
    assert await presence.presence(channel) == {}
    assert await presence.stats(channel) == (0, 0)


# ------------------------------------------------------------------ memory engine only


async def test_memory_broker_sweep_frees_idle_streams(clock: FakeClock, channel: str) -> None:
    """The sweep empties streams past their ttl and drops metadata past its meta_ttl."""
    broker = MemoryBroker(clock=clock)
    for name in ("a", "b", "c"):
        await broker.publish(f"{channel}:{name}", pub(1), HISTORY)
    await broker.history(f"{channel}:d", since=None, limit=0, reverse=False, meta_ttl=30.0)
    assert broker.sweep() == 0
    clock.advance(30)
    assert broker.sweep() == 1  # d's metadata
    clock.advance(HISTORY.ttl - 30)
    assert broker.sweep() == 3  # a, b, c emptied
    assert broker.sweep() == 0
    clock.advance(HISTORY.meta_ttl)
    assert broker.sweep() == 3  # a, b, c dropped
    _, top = await broker.history(f"{channel}:a", since=None, limit=0, reverse=False)
    assert top.offset == 0


async def test_memory_broker_sweep_spares_refreshed_streams(clock: FakeClock, channel: str) -> None:
    """A stream published to again after the sweep was scheduled is not emptied early."""
    broker = MemoryBroker(clock=clock)
    await broker.publish(channel, pub(1), HISTORY)
    clock.advance(HISTORY.ttl / 2)
    await broker.publish(channel, pub(2), HISTORY)
    clock.advance(HISTORY.ttl / 2)
    assert broker.sweep() == 0
    page, _ = await broker.history(channel, since=None, limit=-1, reverse=False)
    assert offsets(page) == [1, 2]
    clock.advance(HISTORY.ttl / 2)
    assert broker.sweep() == 1


async def test_memory_broker_sweep_follows_a_shorter_ttl(clock: FakeClock, channel: str) -> None:
    """A stream created by history() and then published to is swept at the publication ttl."""
    broker = MemoryBroker(clock=clock)
    await broker.history(channel, since=None, limit=0, reverse=False)
    await broker.publish(channel, pub(1), HISTORY)
    clock.advance(HISTORY.ttl)
    assert broker.sweep() == 1


async def test_memory_presence_sweep_drops_expired_entries(clock: FakeClock, channel: str) -> None:
    """The presence sweep drops expired entries and keeps the refreshed ones."""
    store = MemoryPresenceStore(clock=clock)
    await store.add(channel, "c1", client("u1", "c1"), 10.0)
    await store.add(channel, "c2", client("u2", "c2"), 10.0)
    await store.add(channel, "c3", client("u3", "c3"), 10.0)
    await store.remove(channel, "c3")
    clock.advance(5)
    await store.add(channel, "c1", client("u1", "c1"), 10.0)
    clock.advance(5)
    assert store.sweep() == 1
    assert list(await store.presence(channel)) == ["c1"]
    clock.advance(5)
    assert store.sweep() == 1
    await store.close()


async def test_memory_engines_stop_their_sweeper_on_close(clock: FakeClock) -> None:
    """start()/the first add() start one background task each, and close() ends it."""
    before = asyncio.all_tasks()
    broker = MemoryBroker(clock=clock)
    store = MemoryPresenceStore(clock=clock)
    await broker.start(Recorder())
    await store.add("ch", "c1", client("u1", "c1"), 10.0)
    await store.add("ch", "c2", client("u2", "c2"), 10.0)
    sweepers = asyncio.all_tasks() - before
    assert len(sweepers) == 2
    await broker.close()
    await store.close()
    assert all(task.done() for task in sweepers)


async def test_memory_broker_stops_delivering_after_close(clock: FakeClock, channel: str) -> None:
    """After close() the handler hears nothing more."""
    events = Recorder()
    broker = MemoryBroker(clock=clock)
    await broker.start(events)
    await broker.subscribe([channel])
    await broker.close()
    await broker.publish(channel, pub(1), None)
    assert events.events == []


@pytest.mark.parametrize("url", ["memory://", "memory:"])
def test_memory_engines_from_a_plain_url(url: str) -> None:
    """memory:// builds both memory engines."""
    assert isinstance(MemoryBroker.from_url(url), MemoryBroker)
    assert isinstance(MemoryPresenceStore.from_url(url), MemoryPresenceStore)


@pytest.mark.parametrize("url", ["memory://localhost", "memory:///x", "memory://?size=3"])
def test_memory_engines_reject_options(url: str) -> None:
    """memory:// with a host, path or query is a configuration mistake, not silently ignored."""
    with pytest.raises(ValueError, match="memory://"):
        MemoryBroker.from_url(url)
    with pytest.raises(ValueError, match="memory://"):
        MemoryPresenceStore.from_url(url)
