"""The parent's side of the worker pipes: answers are matched to the gather that wants them.

A worker may send two answers back to back ("started", then "window" when its window
is short); one read takes both, and the second must still reach the next gather.
Pipes only, no worker processes: the order of arrival is fixed by the test.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import Connection

import pytest

from hubbub.bench.runner import Fleet, RunTimeout, WorkerDied


def fleet_of(n: int) -> tuple[Fleet, list[Connection]]:
    """A fleet over ``n`` pipes; the other ends play the workers."""
    ours, theirs = zip(*(mp.Pipe() for _ in range(n)), strict=True)
    return Fleet(list(ours), [], [0] * n), list(theirs)


def settle(fleet: Fleet) -> None:
    """Wait until everything sent is readable on the parent's ends."""
    deadline = time.monotonic() + 5
    while not all(p.poll() for p in fleet.pipes) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_an_answer_behind_the_awaited_one_is_kept_for_the_next_gather() -> None:
    """'window' read together with 'started' is there for gather('window')."""
    fleet, workers = fleet_of(1)
    workers[0].send(("started", 0))
    workers[0].send(("window", 0, 0, 0, 0, 0, 0.0, b""))
    settle(fleet)
    assert fleet.gather("started", time.monotonic() + 1, workers=[0]) == {0: ()}
    try:
        answers = fleet.gather("window", time.monotonic() + 1)
    except RunTimeout as exc:
        raise AssertionError(f"the 'window' answer was dropped: {exc}") from None
    assert answers == {0: (0, 0, 0, 0, 0.0, b"")}


def test_gather_for_some_workers_leaves_the_others_answers() -> None:
    """An answer of the awaited kind from a worker not asked for is kept too."""
    fleet, workers = fleet_of(2)
    workers[1].send(("started", 1))
    workers[0].send(("started", 0))
    settle(fleet)
    assert set(fleet.gather("started", time.monotonic() + 1, workers=[0])) == {0}
    assert set(fleet.gather("started", time.monotonic() + 1, workers=[1])) == {1}


def test_progress_is_absorbed_and_a_closed_pipe_is_a_dead_worker() -> None:
    """Progress updates the totals, not the answers; EOF means the worker is gone."""
    fleet, workers = fleet_of(1)
    workers[0].send(("progress", 0, 3, 1, 20, 5))
    workers[0].send(("opened", 0, {"sub": 3}, 1, {}, 0.1))
    settle(fleet)
    assert fleet.gather("opened", time.monotonic() + 1) == {0: ({"sub": 3}, 1, {}, 0.1)}
    assert fleet.totals() == (3, 1, 20, 5)
    workers[0].close()
    with pytest.raises(WorkerDied):
        fleet.gather("window", time.monotonic() + 1)
