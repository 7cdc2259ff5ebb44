"""Tests for hubbub.core.heartbeat: the TimerWheel, driven by advance() without a clock."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from hubbub.core.heartbeat import TimerWheel

SLOTS = 8


class Recorder:
    """A visit callback that remembers which items it saw, advance by advance."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.seen: list[str] = []

    def __call__(self, item: str) -> None:
        """Record one visit."""
        self.seen.append(item)


@pytest.fixture
def recorder() -> Recorder:
    """A fresh visit recorder."""
    return Recorder()


@pytest.fixture
def wheel(recorder: Recorder) -> TimerWheel[str]:
    """A wheel of SLOTS buckets over 8 s that records its visits."""
    return TimerWheel(8.0, recorder, slots=SLOTS)


def advance(wheel: TimerWheel[str], n: int) -> None:
    """Call advance() n times: n ticks of interval / slots."""
    for _ in range(n):
        wheel.advance()


def test_tick_is_interval_over_slots(wheel: TimerWheel[str]) -> None:
    """The periodic callback runs slots times per interval."""
    assert wheel.tick == pytest.approx(1.0)


def test_each_item_is_visited_once_per_interval(wheel: TimerWheel[str], recorder: Recorder) -> None:
    """Over `slots` advances every item is visited exactly once, wherever it was added."""
    for i in range(20):
        wheel.add(f"c{i}")
        advance(wheel, i % 3)  # spread the items over different buckets
    recorder.seen.clear()
    for _ in range(3):
        advance(wheel, SLOTS)
        assert Counter(recorder.seen) == {f"c{i}": 1 for i in range(20)}
        recorder.seen.clear()


def test_first_visit_comes_one_full_interval_after_add(
    wheel: TimerWheel[str], recorder: Recorder
) -> None:
    """A new item is not visited before `slots` advances, and is on the slots-th."""
    advance(wheel, 3)  # the cursor is somewhere in the middle
    wheel.add("a")
    advance(wheel, SLOTS - 1)
    assert recorder.seen == []
    wheel.advance()
    assert recorder.seen == ["a"]


def test_discarded_item_is_not_visited(wheel: TimerWheel[str], recorder: Recorder) -> None:
    """discard() removes the item from its bucket and from the count."""
    wheel.add("a")
    wheel.add("b")
    wheel.discard("a")
    advance(wheel, 2 * SLOTS)
    assert recorder.seen == ["b", "b"]
    assert len(wheel) == 1


def test_discarding_an_unknown_item_is_a_no_op(wheel: TimerWheel[str]) -> None:
    """discard() of an item never added (or already discarded) does nothing."""
    wheel.add("a")
    wheel.discard("zzz")
    wheel.discard("a")
    wheel.discard("a")
    assert len(wheel) == 0


def test_len_counts_registered_items(wheel: TimerWheel[str]) -> None:
    """len() is the number of registered items across buckets."""
    for name in "abc":
        wheel.add(name)
        wheel.advance()
    assert len(wheel) == 3


def test_item_added_during_a_visit_waits_a_full_interval(recorder: Recorder) -> None:
    """An item added inside visit() waits one full interval, not visited in the same advance."""

    def visit(item: str) -> None:
        recorder(item)
        if item == "a":
            timer.add("late")

    timer: TimerWheel[str] = TimerWheel(8.0, visit, slots=SLOTS)
    timer.add("a")
    advance(timer, SLOTS)
    assert recorder.seen == ["a"]
    recorder.seen.clear()
    advance(timer, SLOTS - 1)
    assert "late" not in recorder.seen
    timer.advance()
    assert recorder.seen.count("late") == 1


def test_item_discarding_itself_during_its_visit() -> None:
    """A visit may discard its own item (a session closing on a missed pong)."""
    seen: list[str] = []

    def visit(item: str) -> None:
        seen.append(item)
        timer.discard(item)

    timer: TimerWheel[str] = TimerWheel(8.0, visit, slots=SLOTS)
    timer.add("a")
    advance(timer, 3 * SLOTS)
    assert seen == ["a"]
    assert len(timer) == 0


def test_item_discarded_by_a_sibling_visit_is_not_visited() -> None:
    """An item discarded during the visit of another item of its bucket is not visited."""
    seen: list[str] = []

    def visit(item: str) -> None:
        seen.append(item)
        timer.discard("b" if item == "a" else "a")

    timer: TimerWheel[str] = TimerWheel(8.0, visit, slots=SLOTS)
    timer.add("a")
    timer.add("b")  # same bucket: no advance in between
    advance(timer, SLOTS)
    assert len(seen) == 1


def test_adding_an_item_twice_keeps_one_registration(
    wheel: TimerWheel[str], recorder: Recorder
) -> None:
    """Re-adding moves the item: one visit per interval, and discard removes it for good."""
    wheel.add("a")
    wheel.advance()
    wheel.add("a")
    advance(wheel, SLOTS)
    assert recorder.seen == ["a"]
    wheel.discard("a")
    recorder.seen.clear()
    advance(wheel, SLOTS)
    assert recorder.seen == []


async def test_start_schedules_ticks_on_the_loop_and_stop_cancels_them(
    wheel: TimerWheel[str],
) -> None:
    """start() arms one timer on the running loop; stop() cancels it and is idempotent."""
    wheel.start()
    handle = wheel._handle
    assert isinstance(handle, asyncio.TimerHandle)
    assert not handle.cancelled()
    wheel.stop()
    assert handle.cancelled()
    wheel.stop()


async def test_a_tick_advances_and_rearms(wheel: TimerWheel[str], recorder: Recorder) -> None:
    """The periodic callback visits the next bucket and schedules the following tick."""
    wheel.add("a")
    loop = asyncio.get_running_loop()
    for _ in range(SLOTS):
        wheel._on_tick(loop)  # what the timer does, without waiting for it
    assert recorder.seen == ["a"]
    assert wheel._handle is not None
    wheel.stop()
