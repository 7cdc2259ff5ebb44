"""Live delivery of one channel, in offset order and at most once: the ``ChannelFeed``.

A publication goes out on the live subject only after JetStream acknowledged it, so
anything delivered is also in history. Publishers on different nodes race, so offset
n + 1 may arrive before n: the feed holds it back, waits ``reorder_wait`` for n, then
reads n from JetStream; what JetStream no longer has is reported to the sink as a gap.
Only the range read decides that: an offset that arrives live during the read is used,
and a hole that opens meanwhile gets its own ``reorder_wait``.
Offsets at or below the last one delivered are dropped, which makes delivery at most
once. The feed does no I/O itself: its ``FeedSink`` (the broker) delivers and reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Final, Protocol

import structlog

from hubbub.engines.nats.state import PUB, Record
from hubbub.errors import EngineError
from hubbub.tasks import start

_log = structlog.get_logger(__name__)

MAX_HELD: Final = 10_000
"""Out-of-order publications a feed holds before it stops waiting and reads history."""


class FeedSink(Protocol):
    """Where a ChannelFeed sends what it releases, and where it reads what went missing."""

    def deliver(self, channel: str, record: Record) -> None: ...

    def gap(self, channel: str) -> None: ...

    def fetch(self, channel: str, epoch: str, first: int, last: int) -> Awaitable[list[Record]]:
        """The stored publications of ``epoch`` with offsets first..last, in order."""
        ...


class ChannelFeed:
    """Hands one channel's live events to the sink in offset order, each at most once.

    Publications without an offset, joins and leaves pass straight through. Until
    ``begin`` gives the stream position at subscribe time everything waits, so nothing
    published after the subscription is missed and nothing before it is delivered.
    """

    def __init__(self, channel: str, sink: FeedSink, wait: float) -> None:
        self.channel = channel
        self._sink = sink
        self._wait = wait
        self._early: list[Record] | None = []
        self._epoch: str | None = None
        self._next: int | None = 1
        """The next offset to deliver; None: take it from the next publication (adopt)."""
        self._held: dict[int, Record] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._filler: asyncio.Task[None] | None = None

    def begin(self, tail: Record | None) -> None:
        """Start delivering after ``tail``, the stream's last record when subscribing."""
        self._epoch = None if tail is None else tail.epoch
        self._next = 1 if tail is None else tail.offset + 1
        early, self._early = self._early or [], None
        for record in early:
            self.accept(record)

    def adopt(self) -> None:
        """Forget the position (the connection was lost): the next publication sets it."""
        self._stop()
        self._early = None
        self._epoch, self._next = None, None

    def close(self) -> None:
        self._stop()

    def accept(self, record: Record) -> None:
        if self._early is not None:
            self._early.append(record)
        elif record.kind != PUB or not record.offset:
            self._sink.deliver(self.channel, record)
        else:
            self._accept_offset(record)

    def _accept_offset(self, record: Record) -> None:
        if self._next is None:
            self._epoch, self._next = record.epoch, record.offset
        elif record.epoch != self._epoch:
            if self._epoch is not None:  # the stream was lost and started again
                self._stop()
                self._next = 1
                self._sink.gap(self.channel)
            self._epoch = record.epoch
        if record.offset < self._next:
            return  # delivered already, or published before the subscription
        if record.offset > self._next:
            self._held[record.offset] = record
            self._arm()
            return
        self._deliver(record)
        self._drain()

    def _deliver(self, record: Record) -> None:
        self._next = record.offset + 1
        self._sink.deliver(self.channel, record)

    def _drain(self) -> None:
        while self._next in self._held:
            self._deliver(self._held.pop(self._next))
        if not self._held and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._filler is not None:
            return
        if len(self._held) > MAX_HELD:
            self._fill_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait, self._fill_now)

    def _fill_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._filler is None:
            self._filler = start(self._fill())

    async def _fill(self) -> None:
        """Read the offsets missing below the lowest held one from history; skip, reporting
        a gap, those history lacks too. A hole that opened meanwhile gets its own wait."""
        try:
            if not self._held or self._next is None or self._epoch is None:
                return
            epoch, first, last = self._epoch, self._next, min(self._held) - 1
            found = await self._fetch(epoch, first, last)
            if self._epoch == epoch:  # else the stream restarted meanwhile: they are moot
                for record in found:
                    self._accept_offset(record)
                # What arrived live during the read counts: only the range read decides.
                if self._next is not None and self._next <= last:
                    self._skip_through(last)
        finally:
            if self._filler is asyncio.current_task():
                self._filler = None
        if self._held:
            self._arm()

    def _skip_through(self, last: int) -> None:
        """Give up the offsets up to ``last`` still missing: report the gap, deliver what
        is held among them in order, and go on after them."""
        self._sink.gap(self.channel)
        for offset in sorted(offset for offset in self._held if offset <= last):
            self._deliver(self._held.pop(offset))
        self._next = last + 1
        self._drain()

    async def _fetch(self, epoch: str, first: int, last: int) -> list[Record]:
        try:
            return await self._sink.fetch(self.channel, epoch, first, last)
        except EngineError as exc:
            _log.warning("could not read missed publications", channel=self.channel, error=str(exc))
            return []

    def _stop(self) -> None:
        self._held.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._filler is not None:
            self._filler.cancel()
            self._filler = None
