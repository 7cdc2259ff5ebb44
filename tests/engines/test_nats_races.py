"""NatsBroker's subscribe and unsubscribe of one channel, racing each other.

No server: ``FakeNats`` stands in for nats-py's client and each call yields to the event
loop like a real send, so every interleaving is reproducible. Each call is started after
a given number of loop iterations; trying every count up to a bound tries every
interleaving of the calls' steps.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import nats.errors
import pytest
from enginekit import Recorder

from hubbub.engines.nats import JOIN, PUB, NatsBroker, NatsOptions, Record
from hubbub.engines.nats.names import Names
from hubbub.engines.nats.state import encode
from hubbub.errors import EngineError

CHANNEL = "chat:x"
SUBJECT = Names("hubbub").live(CHANNEL)
STEPS = 8
"""Loop iterations tried between two calls: more than any one call takes here."""


class FakeSub:
    def __init__(self, nc: FakeNats, subject: str, cb: Callable[[Any], Awaitable[None]]) -> None:
        self.nc, self.subject, self.cb = nc, subject, cb

    async def unsubscribe(self) -> None:
        if self not in self.nc.subs:
            raise nats.errors.BadSubscriptionError
        self.nc.subs.remove(self)
        await asyncio.sleep(0)


class FakeNats:
    """nats-py's Client as far as subscriptions go; ``fail`` makes the next call fail."""

    def __init__(self) -> None:
        self.subs: list[FakeSub] = []
        self.fail = {"subscribe": 0, "tail": 0}
        self.gate: asyncio.Event | None = None
        """When set, reading a tail waits for it."""
        self.tails_reading = 0

    async def subscribe(self, subject: str, cb: Callable[[Any], Awaitable[None]]) -> FakeSub:
        if self._failing("subscribe"):
            raise nats.errors.ConnectionClosedError
        sub = FakeSub(self, subject, cb)
        self.subs.append(sub)  # nats-py registers the subscription before it sends SUB
        await asyncio.sleep(0)
        return sub

    async def read_tail(self, channel: str) -> None:
        self.tails_reading += 1
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self._failing("tail"):
            raise nats.errors.TimeoutError

    async def send(self, record: Record, subject: str = SUBJECT) -> None:
        """Hand ``record`` to every open subscription of ``subject``, as the server would."""
        msg = SimpleNamespace(subject=subject, data=encode(record), headers=None)
        for sub in [s for s in self.subs if s.subject == subject]:
            await sub.cb(msg)

    def _failing(self, call: str) -> bool:
        if self.fail[call]:
            self.fail[call] -= 1
            return True
        return False


def fake_broker(monkeypatch: pytest.MonkeyPatch) -> tuple[NatsBroker, FakeNats, Recorder]:
    """A started NatsBroker whose NATS is a FakeNats (no history: every tail is empty)."""
    broker, nc, events = NatsBroker(NatsOptions(prefix="hubbub")), FakeNats(), Recorder()
    monkeypatch.setattr(broker._link, "_nc", nc)
    monkeypatch.setattr(broker._streams, "read_tail", nc.read_tail)
    broker._handler = events
    return broker, nc, events


async def delivered_once(nc: FakeNats, events: Recorder) -> bool:
    """Does a publication and a join sent now reach the handler exactly once each?"""
    await nc.send(Record(kind=PUB, epoch="e", offset=1))
    await nc.send(Record(kind=JOIN))
    return [kind for kind, _, _ in events.events] == ["pub", "join"]


async def test_unsubscribe_while_subscribing_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unsubscribing while the subscribe reads the tail ends the subscribe quietly, with
    no NATS subscription left and nothing delivered."""
    broker, nc, events = fake_broker(monkeypatch)
    nc.gate = asyncio.Event()
    subscribing = asyncio.create_task(broker.subscribe([CHANNEL]))
    await wait_for(lambda: nc.tails_reading == 1)
    await broker.unsubscribe([CHANNEL])
    nc.gate.set()
    await subscribing
    assert nc.subs == []
    await nc.send(Record(kind=PUB, epoch="e", offset=1))
    assert events.events == []


async def test_subscribe_again_while_the_first_subscribe_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """subscribe, unsubscribe, subscribe while the first still reads its tail: one NATS
    subscription is left and every event is delivered once."""
    broker, nc, events = fake_broker(monkeypatch)
    nc.gate = asyncio.Event()
    first = asyncio.create_task(broker.subscribe([CHANNEL]))
    await wait_for(lambda: nc.tails_reading == 1)
    await broker.unsubscribe([CHANNEL])
    second = asyncio.create_task(broker.subscribe([CHANNEL]))
    await wait_for(lambda: nc.tails_reading == 2)
    nc.gate.set()
    await asyncio.gather(first, second)
    assert len(nc.subs) == 1
    assert await delivered_once(nc, events)


async def test_unsubscribing_one_channel_of_a_batch_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unsubscribing one channel of a subscribe still running leaves the others subscribed."""
    broker, nc, events = fake_broker(monkeypatch)
    nc.gate = asyncio.Event()
    subscribing = asyncio.create_task(broker.subscribe([CHANNEL, "chat:y"]))
    await wait_for(lambda: nc.tails_reading == 2)
    await broker.unsubscribe(["chat:y"])
    nc.gate.set()
    await subscribing
    assert [sub.subject for sub in nc.subs] == [SUBJECT]
    assert await delivered_once(nc, events)


async def test_steps_outlast_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call is over within STEPS loop iterations, so the interleavings below try
    every point of one call at which the next can start."""
    broker, _, _ = fake_broker(monkeypatch)
    for method in (broker.subscribe, broker.unsubscribe):
        call = asyncio.create_task(method([CHANNEL]))
        for _ in range(STEPS):
            await asyncio.sleep(0)
        assert call.done()


def interleavings() -> Iterator[tuple[tuple[str, ...], tuple[int, ...]]]:
    """Every sequence of up to 3 calls, each started 0..STEPS-1 iterations after the last."""
    for length in (1, 2, 3):
        for calls in itertools.product(("subscribe", "unsubscribe"), repeat=length):
            for steps in itertools.product(range(STEPS), repeat=length - 1):
                yield calls, steps


@pytest.mark.parametrize("failing", [None, "subscribe", "tail"])
async def test_any_interleaving_ends_as_the_last_call_says(failing: str | None) -> None:
    """However subscribe and unsubscribe calls interleave (and if one NATS call fails):
    only EngineError is raised, and the channel ends subscribed, with exactly one NATS
    subscription delivering each event once, iff the last call was a subscribe that
    succeeded; otherwise with no subscription."""
    for calls, steps in interleavings():
        with pytest.MonkeyPatch.context() as monkeypatch:
            broker, nc, events = fake_broker(monkeypatch)
            if failing:
                nc.fail[failing] = 1
            outcomes = await run(broker, calls, steps)
            case = f"{calls} {steps} failing={failing}: {outcomes}"
            assert all(o is None or isinstance(o, EngineError) for o in outcomes), case
            assert failing or all(o is None for o in outcomes), case
            subscribed = calls[-1] == "subscribe" and outcomes[-1] is None
            assert len(nc.subs) == subscribed, case
            assert (CHANNEL in broker._channels) == subscribed, case
            if subscribed:
                assert await delivered_once(nc, events), case
            else:
                await nc.send(Record(kind=PUB, epoch="e", offset=1))
                assert events.events == [], case


async def run(
    broker: NatsBroker, calls: tuple[str, ...], steps: tuple[int, ...]
) -> list[BaseException | None]:
    """Start ``calls`` on CHANNEL, ``steps`` loop iterations apart; what each returned."""
    tasks = []
    for n, call in enumerate(calls):
        for _ in range(steps[n - 1] if n else 0):
            await asyncio.sleep(0)
        method = broker.subscribe if call == "subscribe" else broker.unsubscribe
        tasks.append(asyncio.create_task(method([CHANNEL])))
    return await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for(check: Callable[[], bool]) -> None:
    """Let the loop run until ``check`` holds (bounded)."""
    async with asyncio.timeout(10.0):
        while not check():
            await asyncio.sleep(0)
