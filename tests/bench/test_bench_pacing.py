"""The publishers' pacer reports how far behind its schedule it sent.

Latency is measured from the actual send (publish → deliver), so a generator whose
event loop stalls does not show in it; the pacing lateness does, and the judge calls
such a step generator limited.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

from hubbub.bench import stats
from hubbub.bench.plan import Conn, RunConfig
from hubbub.bench.stepping import RateStepper, StepOutcome, StepPolicy
from hubbub.bench.worker import BenchListener, Worker

RATE = 1000.0
STALL = 0.06


class FakeWire:
    """Counts what the pacer publishes; nothing goes anywhere."""

    def __init__(self) -> None:
        self.published = 0

    def publish(self, channel: str, payloads: list[bytes]) -> None:
        self.published += len(payloads)


class FakePipe:
    """Keeps the worker's answers to the parent."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        self.sent.append(message)


async def paced_window(stall: float) -> tuple[Any, ...]:
    """One 0.6 s window at RATE/s; the event loop is blocked for ``stall`` s in the middle."""
    cfg = RunConfig(scenario="fanout", urls=("ws://127.0.0.1:1",), payload_size=64)
    pipe = FakePipe()
    worker = Worker(0, cfg, [], pipe=cast(Any, pipe))
    wire = FakeWire()
    conn = Conn(0, "pub", publish_to="bench:fanout")
    publisher = SimpleNamespace(conn=conn, closing=False, gone=False, wire=wire)
    worker.listeners = [cast(BenchListener, publisher)]

    async def staller() -> None:
        await asyncio.sleep(0.3)
        if stall:
            time.sleep(stall)  # the loop is busy elsewhere (e.g. reading frames)

    task = asyncio.create_task(staller())
    await worker._window(RATE, 0.6, True)
    await task
    (window,) = [m for m in pipe.sent if m[0] == "window"]
    assert window[2] == wire.published > 0  # what was sent is what the answer counts
    return window


def test_a_stalled_pacer_shows_its_lateness_in_the_window_figures() -> None:
    """A 60 ms stall: the window answer carries a lateness histogram reaching ≥ 50 ms."""
    window = asyncio.run(paced_window(STALL))
    late = stats.summarize(stats.merge([window[7]]))
    assert late.count > 0
    assert late.max_us >= 50_000, late


def test_lateness_merges_across_workers_like_latency() -> None:
    """Workers' histograms merge: every value counts once, the stalled one's maximum
    survives, and a worker that did not publish (b"") adds nothing."""
    stalled = asyncio.run(paced_window(STALL))[7]
    punctual = stats.encode_values([100, 200, 300])
    alone = stats.summarize(stats.merge([stalled]))
    merged = stats.summarize(stats.merge([stalled, punctual, b""]))
    assert merged.count == alone.count + 3
    assert merged.max_us == alone.max_us >= 50_000


def test_judge_calls_a_late_generator_generator_limited() -> None:
    """p99 pacing lateness over the bound: generator limited, and the reason says by how much."""
    policy = StepPolicy(start_rate=100, factor=2)
    late = StepOutcome(rate=100, keep_up=1.0, p99_ms=1.0, pace_late_p99_ms=62.5)
    verdict = policy.judge(late)
    assert not verdict.ok and verdict.generator_limited
    assert verdict.reason == "load generator fell behind its schedule by 62.5 ms (p99)"
    on_time = StepOutcome(rate=100, keep_up=1.0, p99_ms=1.0, pace_late_p99_ms=4.0)
    assert policy.judge(on_time).ok
    # The bound is the policy's: a looser one lets the same step pass.
    assert StepPolicy(start_rate=100, max_pace_late_ms=100).judge(late).ok


def test_a_late_generator_stops_the_stepping() -> None:
    """More load after a late step would measure the generator, not the server."""
    stepper = RateStepper(StepPolicy(start_rate=100, factor=2))
    assert stepper.next_rate() == 100
    stepper.record(StepOutcome(rate=100, keep_up=1.0, p99_ms=1.0, pace_late_p99_ms=20.0))
    assert stepper.next_rate() is None
