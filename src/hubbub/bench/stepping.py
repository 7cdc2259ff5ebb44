"""Rate stepping: raise the offered rate until the server stops keeping up.

Each step runs at one rate and is judged: deliveries must keep up with what was
published, p99 must stay under a bound, no connection may be lost, and the load
generator itself must have managed to send at the rate, on schedule (else the run
measured the generator, not the server). Rates grow by a factor until a step fails;
then a few bisection steps narrow the gap between the last good rate and the first
bad one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one step measured, as far as judging it goes."""

    rate: float
    """Offered publish rate (messages/s, all publishers together)."""
    keep_up: float
    """Deliveries received during the step ÷ deliveries expected (1.0 = all)."""
    p99_ms: float
    lost_connections: int = 0
    send_ratio: float = 1.0
    """Messages the generator did send ÷ messages it should have sent."""
    generator_busy: float = 0.0
    """CPU the load processes used ÷ the CPU they had (1.0 = saturated)."""
    pace_late_p99_ms: float = 0.0
    """p99 of how late the pacer sent each batch against its schedule."""


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""
    generator_limited: bool = False


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """How to step and what counts as keeping up."""

    start_rate: float
    factor: float = 1.5
    max_rate: float = math.inf
    max_steps: int = 12
    refine_steps: int = 2
    p99_bound_ms: float = 50.0
    min_keep_up: float = 0.95
    min_send_ratio: float = 0.95
    max_generator_busy: float = 0.9
    max_pace_late_ms: float = 10.0
    """Pacing lateness (p99) above this means the generator could not keep its schedule."""

    def __post_init__(self) -> None:
        if self.start_rate <= 0:
            raise ValueError("start rate must be > 0")
        if self.factor < 1:
            raise ValueError("step factor must be >= 1")
        if self.max_steps < 1:
            raise ValueError("max steps must be >= 1")
        if not self.max_pace_late_ms > 0:
            raise ValueError("max pace lateness must be > 0")

    def judge(self, step: StepOutcome) -> Verdict:
        """Did ``step`` keep up? The reason names the first rule it broke."""
        if step.send_ratio < self.min_send_ratio:
            return Verdict(
                False,
                f"load generator sent only {step.send_ratio:.0%} of the offered rate",
                generator_limited=True,
            )
        if step.pace_late_p99_ms > self.max_pace_late_ms:
            return Verdict(
                False,
                f"load generator fell behind its schedule by {step.pace_late_p99_ms:.1f} ms (p99)",
                generator_limited=True,
            )
        if step.lost_connections:
            return Verdict(False, f"{step.lost_connections} connections lost")
        if step.keep_up < self.min_keep_up:
            if step.generator_busy >= self.max_generator_busy:
                return Verdict(
                    False,
                    f"deliveries fell behind ({step.keep_up:.1%}) with the load generator "
                    f"saturated ({step.generator_busy:.0%} CPU)",
                    generator_limited=True,
                )
            return Verdict(False, f"deliveries fell behind ({step.keep_up:.1%} of expected)")
        if step.p99_ms > self.p99_bound_ms:
            return Verdict(False, f"p99 {step.p99_ms:.1f} ms > bound {self.p99_bound_ms:g} ms")
        return Verdict(True)


class RateStepper:
    """Yields the next rate to try from the outcomes so far; None when done.

    Geometric growth from ``start_rate`` by ``factor`` while steps pass; after the
    first failure, ``refine_steps`` bisections between the best passing rate and the
    lowest failing one. When nothing has passed yet the rate comes down by
    ``factor²`` per step instead. A factor of 1 means a single fixed-rate step.
    """

    def __init__(self, policy: StepPolicy) -> None:
        self.policy = policy
        self.outcomes: list[tuple[StepOutcome, Verdict]] = []
        self._refined = 0

    def record(self, step: StepOutcome) -> Verdict:
        verdict = self.policy.judge(step)
        self.outcomes.append((step, verdict))
        return verdict

    @property
    def best(self) -> StepOutcome | None:
        """The highest rate that passed."""
        passed = [s for s, v in self.outcomes if v.ok]
        return max(passed, key=lambda s: s.rate) if passed else None

    @property
    def lowest_failure(self) -> StepOutcome | None:
        failed = [s for s, v in self.outcomes if not v.ok]
        return min(failed, key=lambda s: s.rate) if failed else None

    def next_rate(self) -> float | None:
        policy = self.policy
        if not self.outcomes:
            return policy.start_rate
        if len(self.outcomes) >= policy.max_steps or policy.factor == 1:
            return None
        last, verdict = self.outcomes[-1]
        if verdict.generator_limited:
            return None  # more load would measure the generator, not the server
        failure = self.lowest_failure
        if failure is None:
            if last.rate >= policy.max_rate:
                return None
            return min(last.rate * policy.factor, policy.max_rate)
        best = self.best
        if best is None:
            # Even the first rate was too much: come down until something passes.
            if failure.rate <= policy.start_rate / policy.factor**6:
                return None
            return failure.rate / policy.factor**2
        if self._refined >= policy.refine_steps:
            return None
        middle = (best.rate + failure.rate) / 2
        if failure.rate - best.rate < 0.05 * best.rate:
            return None  # close enough
        self._refined += 1
        return middle
