"""The event loop lag watcher: a loop kept busy shows as lag, and the node runs one."""

from __future__ import annotations

import asyncio
import time

from conftest import chat_settings, eventually

from hubbub.core.node import Node
from hubbub.observability.looplag import watch_loop_lag
from hubbub.observability.metrics import LOOP_LAG_BUCKETS, Metrics


def _counts_at_least(metrics: Metrics, seconds: float) -> int:
    """Observations above ``seconds`` (one of the bucket bounds)."""
    first = LOOP_LAG_BUCKETS.index(seconds) + 1
    return sum(metrics.loop_lag.counts[first:])


async def test_a_loop_blocked_for_a_while_shows_that_lag() -> None:
    """A callback holding the loop 60 ms makes the sample waiting behind it at least
    50 ms late (it cannot wake before the block ends); the samples are counted."""
    metrics = Metrics()
    watcher = asyncio.get_running_loop().create_task(watch_loop_lag(metrics, interval=0.01))
    await asyncio.sleep(0.03)
    before = _counts_at_least(metrics, 0.025)  # a busy machine may have made some already
    time.sleep(0.06)  # the loop is blocked: nothing else runs
    await asyncio.sleep(0.03)
    watcher.cancel()
    assert _counts_at_least(metrics, 0.025) >= before + 1
    # and the node's collector exposes it
    assert b"hubbub_event_loop_lag_seconds_bucket" in metrics.render()[0]


async def test_the_node_watches_its_loop_while_started() -> None:
    node = Node(chat_settings())
    await node.start()
    try:
        await eventually(lambda: sum(node.metrics.loop_lag.counts))
    finally:
        await node.shutdown(0)
    assert node._loop_lag is not None
    await asyncio.wait([node._loop_lag], timeout=5)
    assert node._loop_lag.cancelled()
