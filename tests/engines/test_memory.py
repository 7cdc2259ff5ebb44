"""What only the memory engines do: sweeps, background tasks, URLs."""

from __future__ import annotations

import asyncio

import pytest
from enginekit import HISTORY, FakeClock, Recorder, client, offsets, pub

from hubbub.engines.memory import MemoryBroker, MemoryPresenceStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def channel() -> str:
    return "test:memory"


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
