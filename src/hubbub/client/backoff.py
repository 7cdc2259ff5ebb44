"""Reconnect delays: exponential back-off with jitter.

A server that restarts gets every client back at once unless each waits a different,
growing time. Attempt ``n`` (0-based) waits ``min(maximum, initial * factor**n)``,
shortened by up to ``jitter`` of itself at random, so the delays spread out but never
exceed the cap. The random source is injected, which makes the sequence testable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays before reconnect attempts: 1 s, times 1.5 per attempt, at most 30 s, jittered."""

    initial: float = 1.0
    """Seconds before the first retry (before jitter)."""
    factor: float = 1.5
    """Growth of the delay from one attempt to the next."""
    maximum: float = 30.0
    """No delay is longer than this."""
    jitter: float = 0.5
    """Fraction of a delay that may be taken off at random: 0 = none, 1 = full jitter."""
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)
    """A source of floats in [0, 1); tests pass a fixed one."""

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"initial must be > 0, got {self.initial}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum ({self.maximum}) must be >= initial ({self.initial})")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")

    def base(self, attempt: int) -> float:
        """The delay of ``attempt`` (0-based) before jitter."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if self.factor == 1 or self.initial == self.maximum:
            return self.initial
        # Past this attempt the cap applies; stopping there keeps factor**n from overflowing.
        capped_from = math.log(self.maximum / self.initial, self.factor)
        if attempt >= capped_from:
            return self.maximum
        return min(self.maximum, self.initial * self.factor**attempt)

    def delay(self, attempt: int) -> float:
        """The delay of ``attempt`` with jitter: within ``[base * (1 - jitter), base]``."""
        base = self.base(attempt)
        return base * (1.0 - self.jitter * self.rng())

    def after(self, failures: int) -> float:
        """The wait before the attempt that follows ``failures`` failed ones in a row:
        none before a first attempt, then ``delay(0)``, ``delay(1)``, ... The one rule
        for a client's reconnects and for a pool replacing clients that gave up."""
        return self.delay(failures - 1) if failures > 0 else 0.0

    def delays(self) -> Iterator[float]:
        """The delays of attempts 0, 1, 2, ... without end."""
        attempt = 0
        while True:
            yield self.delay(attempt)
            attempt += 1
