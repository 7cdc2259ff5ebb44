"""Event loop lag: how late the loop runs a timer it was given.

Every connection of a node shares one event loop, so a loop busy with something else
(a long callback, a round of writes to thousands of sockets) delays every client at
once. A timer's lateness measures that directly, in ``hubbub_event_loop_lag_seconds``.
libuv's timers have a resolution of one millisecond, so an idle loop shows 0-1 ms.
"""

from __future__ import annotations

import asyncio
import time

from hubbub.observability.metrics import LOOP_LAG_INTERVAL, Metrics


async def watch_loop_lag(metrics: Metrics, interval: float = LOOP_LAG_INTERVAL) -> None:
    """Record, until cancelled, how late each ``interval`` sleep ends."""
    while True:
        due = time.monotonic() + interval
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, time.monotonic() - due))
