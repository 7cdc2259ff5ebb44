"""A NATS connection that goes silent (a blackholed route: the socket stays open, nothing
arrives either way) is found dead, reconnected and reported as a gap, and a publish
through it fails instead of being answered OK and lost.

NATS is never stopped (others share it): the broker talks through a ``FaultProxy`` whose
open connections are made to drop every byte. Each test deletes what it made.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from conformance.case_nats import scratch_url, unavailable
from conftest import eventually
from enginekit import HISTORY, Recorder, client, numbers, pub
from faultproxy import FaultProxy

from hubbub.engines.nats import NatsBroker, drop_prefix
from hubbub.errors import EngineError

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

BOUND = 10.0
"""Seconds a wait here may take: five times the 2 x timeout in which silence is found."""
QUICK = "&timeout=1&reconnect_wait=0.05&reconnect_max_wait=0.25"
CHANNEL = "chat:silent"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    url = scratch_url()
    yield url
    await drop_prefix(url)


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with FaultProxy(4222) as proxy:
        yield proxy


@contextlib.asynccontextmanager
async def started(url: str, events: Recorder) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker.from_url(url)
    await broker.start(events)
    try:
        yield broker
    finally:
        await broker.close()


def gaps(events: Recorder) -> list[str]:
    return [channel for kind, channel, _ in events.events if kind == "gap"]


async def test_a_silent_connection_is_reconnected_and_reported_as_a_gap(
    url: str, proxy: FaultProxy
) -> None:
    """Publications stored by another node while this one's connection is silent are
    reported as a gap (timeout=1: found within about 2 s), and delivery resumes."""
    events = Recorder()
    away_url = proxy.url("nats") + "?" + url.partition("?")[2] + QUICK
    async with started(away_url, events) as away, started(url, Recorder()) as direct:
        await away.subscribe([CHANNEL])
        await direct.publish(CHANNEL, pub(1), HISTORY)
        await eventually(lambda: numbers(events.pubs(CHANNEL)) == [1], BOUND)
        proxy.silence()
        await direct.publish(CHANNEL, pub(2), HISTORY)
        await direct.publish(CHANNEL, pub(3), HISTORY)
        await eventually(lambda: gaps(events) == [CHANNEL], BOUND)
        assert numbers(events.pubs(CHANNEL)) == [1]
        await direct.publish(CHANNEL, pub(4), HISTORY)
        await eventually(lambda: numbers(events.pubs(CHANNEL)) == [1, 4], BOUND)


async def test_a_send_through_a_silent_connection_fails(url: str, proxy: FaultProxy) -> None:
    """A publish without history and a join have no history to fall back on: through a
    silent connection they fail with EngineError, where they used to be answered OK and
    lost; once reconnected they go through again."""
    away_url = proxy.url("nats") + "?" + url.partition("?")[2] + QUICK
    async with started(away_url, Recorder()) as away:
        await away.publish(CHANNEL, pub(1), None)
        proxy.silence()
        with pytest.raises(EngineError):
            await away.publish(CHANNEL, pub(2), None)
        with pytest.raises(EngineError):
            await away.publish_join(CHANNEL, client("u1", "c1"))
        async with asyncio.timeout(BOUND):
            while True:
                with contextlib.suppress(EngineError):
                    await away.publish(CHANNEL, pub(3), None)
                    break
                await asyncio.sleep(0.05)
