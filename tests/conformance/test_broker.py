"""Conformance: every Broker keeps these promises (delivery, offsets, history, expiry)."""

from __future__ import annotations

import asyncio

import pytest
from enginekit import HISTORY, FakeClock, Recorder, numbers, offsets, pub, publish_many
from msgspec import Raw

from hubbub.engines.base import Broker, HistoryOptions
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

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
