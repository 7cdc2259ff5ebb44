"""The retry timer that token refreshes and subscribe retries share (no loop)."""

from __future__ import annotations

from collections.abc import Callable

from hubbub.client.backoff import Backoff
from hubbub.client.retry_timer import RetryTimer

NO_JITTER = Backoff(initial=1.0, factor=2.0, maximum=8.0, jitter=0.0)


class _Handle:
    def __init__(self, delay: float, run: Callable[[], None]) -> None:
        self.delay = delay
        self.run = run
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Clock:
    """Records what the timer asked to run, and when; runs it on demand."""

    def __init__(self) -> None:
        self.handles: list[_Handle] = []

    def schedule(self, delay: float, run: Callable[[], None]) -> _Handle:
        handle = _Handle(delay, run)
        self.handles.append(handle)
        return handle

    def live(self) -> list[_Handle]:
        return [h for h in self.handles if not h.cancelled]

    def fire(self) -> None:
        (handle,) = self.live()
        handle.cancelled = True  # a fired call_later handle is spent
        handle.run()


def test_refreshes_when_the_server_says_the_token_runs_out() -> None:
    clock, ran = _Clock(), []
    timer = RetryTimer(clock.schedule)
    timer.expires_in(30, lambda: ran.append("refresh"))
    assert [h.delay for h in clock.live()] == [30]
    clock.fire()
    assert ran == ["refresh"]


def test_a_ttl_of_zero_waits_a_second_rather_than_spinning() -> None:
    clock = _Clock()
    RetryTimer(clock.schedule).expires_in(0, lambda: None)
    assert [h.delay for h in clock.live()] == [1]


def test_failures_back_off_and_a_success_starts_the_back_off_again() -> None:
    clock = _Clock()
    timer = RetryTimer(clock.schedule)
    for _ in range(4):
        timer.failed(NO_JITTER, lambda: None)
        clock.fire()
    timer.expires_in(60, lambda: None)
    clock.fire()
    timer.failed(NO_JITTER, lambda: None)
    assert [h.delay for h in clock.handles] == [1.0, 2.0, 4.0, 8.0, 60, 1.0]


def test_at_most_one_refresh_is_pending() -> None:
    clock, ran = _Clock(), []
    timer = RetryTimer(clock.schedule)
    timer.expires_in(30, lambda: ran.append("first"))
    timer.failed(NO_JITTER, lambda: ran.append("second"))
    assert [h.delay for h in clock.live()] == [1.0]
    clock.fire()
    assert ran == ["second"]


def test_cancel_drops_the_pending_refresh() -> None:
    clock = _Clock()
    timer = RetryTimer(clock.schedule)
    timer.expires_in(30, lambda: None)
    timer.cancel()
    timer.cancel()  # nothing pending: still fine
    assert clock.live() == []


def test_reset_starts_the_back_off_again_without_scheduling() -> None:
    clock = _Clock()
    timer = RetryTimer(clock.schedule)
    timer.failed(NO_JITTER, lambda: None)
    timer.failed(NO_JITTER, lambda: None)
    timer.reset()
    assert [h.delay for h in clock.live()] == [2.0]  # the pending one stays
    timer.failed(NO_JITTER, lambda: None)
    assert [h.delay for h in clock.live()] == [1.0]
