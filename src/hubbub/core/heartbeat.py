"""One timer wheel for the pings of every connection.

A timer or task per connection costs memory and scheduler work for every idle client.
Instead connections are spread over ``slots`` buckets; one periodic callback visits
one bucket per tick, so each connection is visited once per ``interval`` and the work
is spread evenly over time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class TimerWheel(Generic[T]):
    """Calls ``visit(item)`` for every registered item once per ``interval`` seconds."""

    def __init__(self, interval: float, visit: Callable[[T], None], *, slots: int = 32) -> None:
        self.interval = interval
        self._visit = visit
        self._slots: list[dict[T, None]] = [{} for _ in range(slots)]
        self._where: dict[T, int] = {}
        self._cursor = 0
        self._handle: asyncio.TimerHandle | None = None

    @property
    def tick(self) -> float:
        return self.interval / len(self._slots)

    def add(self, item: T) -> None:
        """Register ``item``; its first visit comes one full interval from now."""
        self.discard(item)
        slot = (self._cursor - 1) % len(self._slots)
        self._slots[slot][item] = None
        self._where[item] = slot

    def discard(self, item: T) -> None:
        slot = self._where.pop(item, None)
        if slot is not None:
            self._slots[slot].pop(item, None)

    def __len__(self) -> int:
        return len(self._where)

    def advance(self) -> None:
        """Visit the next bucket. The periodic callback calls this; tests call it directly."""
        bucket = self._slots[self._cursor]
        self._cursor = (self._cursor + 1) % len(self._slots)
        for item in list(bucket):
            if item in bucket:  # an earlier visit may have discarded it
                self._visit(item)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._schedule(loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = loop.call_later(self.tick, self._on_tick, loop)

    def _on_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._schedule(loop)
        self.advance()
