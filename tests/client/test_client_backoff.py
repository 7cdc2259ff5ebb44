"""Reconnect back-off: 1 s, x1.5 per attempt, capped at 30 s, jitter within bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubbub.client import Backoff


def test_default_sequence_grows_by_half_and_caps_at_thirty_seconds() -> None:
    """Without jitter the defaults give 1, 1.5, 2.25, ... and then 30 s for ever."""
    backoff = Backoff(jitter=0)
    delays = [backoff.delay(n) for n in range(12)]
    expected = [min(30.0, 1.5**n) for n in range(12)]
    assert delays == pytest.approx(expected)
    assert delays[:4] == pytest.approx([1.0, 1.5, 2.25, 3.375])
    assert delays[-1] == 30.0


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    """Attempt 10 000 is the cap, not an overflow."""
    assert Backoff(jitter=0).delay(10_000) == 30.0


def test_jitter_takes_off_at_most_its_fraction() -> None:
    """With a random source at its extremes a delay spans [base * (1 - jitter), base]."""
    low = Backoff(jitter=0.5, rng=lambda: 0.999999)
    high = Backoff(jitter=0.5, rng=lambda: 0.0)
    for n in range(10):
        base = min(30.0, 1.5**n)
        assert high.delay(n) == pytest.approx(base)
        assert low.delay(n) == pytest.approx(base * 0.5, rel=1e-5)


@given(
    attempt=st.integers(min_value=0, max_value=200),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_jittered_delay_is_always_within_bounds(attempt: int, jitter: float, seed: int) -> None:
    """Any seed, any attempt: the delay is within [base * (1 - jitter), base] and <= the cap."""
    backoff = Backoff(jitter=jitter, rng=random.Random(seed).random)
    base = backoff.base(attempt)
    delay = backoff.delay(attempt)
    assert base * (1 - jitter) - 1e-9 <= delay <= base + 1e-9
    assert delay <= backoff.maximum


def test_injected_random_makes_the_sequence_repeatable() -> None:
    """Two back-offs with equally seeded random sources give the same delays."""
    first = Backoff(rng=random.Random(7).random).delays()
    second = Backoff(rng=random.Random(7).random).delays()
    assert [next(first) for _ in range(20)] == [next(second) for _ in range(20)]


def test_every_number_is_configurable() -> None:
    """initial, factor and maximum replace the defaults."""
    backoff = Backoff(initial=0.1, factor=2, maximum=0.5, jitter=0)
    assert [backoff.delay(n) for n in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_the_wait_after_failures_in_a_row() -> None:
    """No wait before a first attempt; after n failures, the delay of attempt n - 1."""
    backoff = Backoff(initial=0.1, factor=2, maximum=0.5, jitter=0)
    assert [backoff.after(n) for n in range(5)] == pytest.approx([0, 0.1, 0.2, 0.4, 0.5])


@pytest.mark.parametrize(
    "options",
    [{"initial": 0}, {"factor": 0.5}, {"initial": 2, "maximum": 1}, {"jitter": 1.5}],
    ids=["initial", "factor", "maximum", "jitter"],
)
def test_nonsense_settings_are_refused(options: dict[str, float]) -> None:
    """A back-off that would not grow, or shrink below zero, is a ValueError at once."""
    with pytest.raises(ValueError):
        Backoff(**options)
