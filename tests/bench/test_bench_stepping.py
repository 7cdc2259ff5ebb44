"""Rate stepping: grow while steps pass, bisect after the first failure, stop on limits."""

from __future__ import annotations

import math

import pytest

from hubbub.bench.stepping import RateStepper, StepOutcome, StepPolicy


def outcome(rate: float, *, ok: bool = True, **extra: float) -> StepOutcome:
    values: dict[str, float] = {"keep_up": 1.0 if ok else 0.5, "p99_ms": 1.0}
    values.update(extra)
    return StepOutcome(rate=rate, **values)  # type: ignore[arg-type]


def drive(stepper: RateStepper, capacity: float) -> list[float]:
    """Run the stepper against a server that keeps up below ``capacity``."""
    rates = []
    while (rate := stepper.next_rate()) is not None:
        rates.append(rate)
        stepper.record(outcome(rate, ok=rate <= capacity))
    return rates


def test_geometric_growth_then_bisection() -> None:
    """100, 200, 400 pass; 800 fails; bisect 600 (fail), then 500 (pass)."""
    stepper = RateStepper(StepPolicy(start_rate=100, factor=2, refine_steps=2))
    assert drive(stepper, capacity=550) == [100, 200, 400, 800, 600, 500]
    assert stepper.best is not None and stepper.best.rate == 500
    assert stepper.lowest_failure is not None and stepper.lowest_failure.rate == 600


def test_factor_one_is_a_single_step() -> None:
    """A fixed-rate run measures once."""
    assert drive(RateStepper(StepPolicy(start_rate=50, factor=1)), capacity=math.inf) == [50]


def test_max_rate_and_max_steps_bound_the_run() -> None:
    """The rate never exceeds max_rate and the run never exceeds max_steps."""
    capped = RateStepper(StepPolicy(start_rate=100, factor=3, max_rate=500))
    assert drive(capped, capacity=math.inf) == [100, 300, 500]
    short = RateStepper(StepPolicy(start_rate=1, factor=2, max_steps=4))
    assert drive(short, capacity=math.inf) == [1, 2, 4, 8]


def test_generator_limit_stops_stepping() -> None:
    """When the generator could not send the rate, more load would measure the generator."""
    stepper = RateStepper(StepPolicy(start_rate=100, factor=2))
    assert stepper.next_rate() == 100
    verdict = stepper.record(outcome(100, send_ratio=0.5))
    assert not verdict.ok and verdict.generator_limited
    assert "load generator" in verdict.reason
    assert stepper.next_rate() is None


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (StepOutcome(rate=1, keep_up=0.9, p99_ms=1), "deliveries fell behind (90.0% of expected)"),
        (StepOutcome(rate=1, keep_up=1.0, p99_ms=75), "p99 75.0 ms > bound 50 ms"),
        (StepOutcome(rate=1, keep_up=1.0, p99_ms=1, lost_connections=3), "3 connections lost"),
        (
            StepOutcome(rate=1, keep_up=0.5, p99_ms=1, generator_busy=0.97),
            "deliveries fell behind (50.0%) with the load generator saturated (97% CPU)",
        ),
    ],
)
def test_verdict_names_the_rule_broken(step: StepOutcome, reason: str) -> None:
    """Each failure says which rule it broke."""
    verdict = StepPolicy(start_rate=1, p99_bound_ms=50).judge(step)
    assert not verdict.ok
    assert verdict.reason == reason


def test_policy_rejects_nonsense() -> None:
    """A zero start rate or a shrinking factor is a usage error."""
    with pytest.raises(ValueError):
        StepPolicy(start_rate=0)
    with pytest.raises(ValueError):
        StepPolicy(start_rate=1, factor=0.5)


def test_a_failing_first_step_steps_down() -> None:
    """Nothing passes at the start rate: divide by factor² until something does."""
    stepper = RateStepper(StepPolicy(start_rate=100, factor=2, refine_steps=1))
    assert drive(stepper, capacity=10) == [100, 25, 6.25, 15.625]
