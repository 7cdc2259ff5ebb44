"""Helpers for engine tests: a fake clock, an event recorder, numbered publications."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from msgspec import Raw

from hubbub.engines.base import Broker, BrokerEventHandler, HistoryOptions
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

    def on_gap(self, channels: Sequence[str]) -> None:
        self.events.extend(("gap", channel, ClientInfo(user="", client="")) for channel in channels)

    def pubs(self, channel: str) -> list[Publication]:
        return [e for _, ch, e in self.events if isinstance(e, Publication) and ch == channel]


_: type[BrokerEventHandler] = Recorder


def pub(n: int) -> Publication:
    return Publication(data=Raw(b'{"n":%d}' % n))


def numbers(pubs: list[Publication]) -> list[int]:
    """The ``n`` of each publication made by ``pub``, to compare pages at a glance."""
    return [int(bytes(p.data)[5:-1]) for p in pubs]


def offsets(pubs: list[Publication]) -> list[int]:
    return [p.offset for p in pubs]


def client(user: str, client_id: str) -> ClientInfo:
    return ClientInfo(user=user, client=client_id)


async def publish_many(
    broker: Broker, channel: str, count: int, history: HistoryOptions = HISTORY
) -> list[StreamPosition]:
    """Publish ``pub(1)`` .. ``pub(count)`` one after the other; their positions."""
    return [await broker.publish(channel, pub(n), history) for n in range(1, count + 1)]


def count_pings(nc: Any, hold: asyncio.Event | None = None) -> list[int]:
    """Count the PINGs the NATS engines send to confirm (nats-py ``flush``) on ``nc`` from
    now on; the count is the list's one item. With ``hold``, each waits for it to be set
    before it goes out: a confirmation stays pending until the test lets it go."""
    flush = nc.flush
    pings = [0]

    async def counted(*args: Any, **kwargs: Any) -> None:
        pings[0] += 1
        if hold is not None:
            await hold.wait()
        await flush(*args, **kwargs)

    nc.flush = counted
    return pings
