"""When to try again: after a growing back-off while attempts fail, and, for a token,
once shortly before it runs out.

The connection's token, each subscription's token and each subscription's subscribe
retries keep one timer each. Sharing the rule keeps them from drifting apart: at most
one attempt is pending per timer, the back-off restarts once an attempt has worked,
and a server's ``ttl`` is honoured with a floor of one second (a ``ttl`` of 0 must not
make a client spin).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from hubbub.client.backoff import Backoff


class _Handle(Protocol):
    def cancel(self) -> None: ...


Schedule = Callable[[float, Callable[[], None]], _Handle]
"""``loop.call_later`` without its extra arguments; tests pass one that records."""


def _call_later(delay: float, run: Callable[[], None]) -> _Handle:
    return asyncio.get_running_loop().call_later(delay, run)


class RetryTimer:
    """At most one pending attempt, and the count of attempts that failed in a row."""

    __slots__ = ("_failures", "_handle", "_schedule")

    def __init__(self, schedule: Schedule = _call_later) -> None:
        self._schedule = schedule
        self._handle: _Handle | None = None
        self._failures = 0

    def expires_in(self, ttl: int, run: Callable[[], None]) -> None:
        """The server said the token runs out in ``ttl`` seconds: ``run`` then."""
        self._failures = 0
        self._start(max(ttl, 1), run)

    def failed(self, backoff: Backoff, run: Callable[[], None]) -> None:
        """An attempt failed: ``run`` again after a delay that grows with each failure."""
        self._start(backoff.delay(self._failures), run)
        self._failures += 1

    def reset(self) -> None:
        """An attempt worked (or a new series starts): the next failure waits the least."""
        self._failures = 0

    def cancel(self) -> None:
        """Drop the pending attempt, if any (what it was for is gone)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _start(self, delay: float, run: Callable[[], None]) -> None:
        self.cancel()
        self._handle = self._schedule(delay, lambda: self._fire(run))

    def _fire(self, run: Callable[[], None]) -> None:
        self._handle = None
        run()
