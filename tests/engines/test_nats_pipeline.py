"""Publishes of the NATS broker started together, against the real NATS server.

A session keeps several publishes in flight when the broker applies them in the order
they started (``pipelines_publishes``). Checked here for both kinds of NATS publish: live
only (written to the connection, confirmed by a PING shared by the loop turn) and with
history (JetStream appends, one channel's held in order). Each test has its own prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conformance.case_nats import ScratchBroker, scratch_url, unavailable
from conftest import eventually
from enginekit import Recorder, numbers, offsets, pub

from hubbub.engines.base import HistoryOptions
from hubbub.engines.nats import NatsBroker

from .conftest import StartBroker

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

Nodes = Callable[[], Awaitable[tuple[NatsBroker, Recorder]]]


@pytest.fixture
def nodes(start_broker: StartBroker) -> Nodes:
    """Started brokers sharing one prefix, each with its own recorder; closed after."""
    url = scratch_url()

    async def start() -> tuple[NatsBroker, Recorder]:
        events = Recorder()
        return await start_broker(ScratchBroker.from_url(url), events), events

    return start


def count_pings(broker: NatsBroker) -> list[int]:
    """Count the broker's confirming PINGs (nats-py's ``flush``) from now on."""
    nc = broker._link.nc
    flush = nc.flush
    pings = [0]

    async def counted(*args: Any, **kwargs: Any) -> None:
        pings[0] += 1
        await flush(*args, **kwargs)

    nc.flush = counted  # type: ignore[method-assign]
    return pings


async def test_the_nats_broker_lets_publishes_overlap() -> None:
    assert NatsBroker.pipelines_publishes


async def test_live_publishes_started_together_arrive_in_order_and_share_pings(
    nodes: Nodes,
) -> None:
    """200 publishes without history started in one go: delivered in start order on this
    node and on another, every one confirmed, with a few PINGs, not one each."""
    here, here_events = await nodes()
    there, there_events = await nodes()
    for broker in (here, there):
        await broker.subscribe(["room"])
    pings = count_pings(here)
    await asyncio.gather(*(here.publish("room", pub(n), None) for n in range(200)))
    assert numbers(here_events.pubs("room")) == list(range(200))
    await eventually(lambda: len(there_events.pubs("room")) >= 200)
    assert numbers(there_events.pubs("room")) == list(range(200))
    assert 1 <= pings[0] <= 3


async def test_history_publishes_started_together_keep_their_order(nodes: Nodes) -> None:
    """150 publishes with history started in one go: offsets 1..150 in start order,
    delivered in that order on both nodes, and stored in it."""
    here, here_events = await nodes()
    there, there_events = await nodes()
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
