"""The order of a stepped run's windows: warm-ups, steps and the half-rate step."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.bench.plan import RunConfig
from hubbub.bench.results import Step
from hubbub.bench.runner import Runner
from hubbub.bench.stats import Latency
from hubbub.bench.stepping import StepPolicy

CAPACITY = 30.0
"""The fake server keeps up below this rate and falls behind above it."""


def stepped_windows(monkeypatch: pytest.MonkeyPatch, warmup: float) -> list[tuple[str, float]]:
    """Run the stepping of a fan-out against a fake fleet; return (label, rate) of every
    window in the order the runner asked for them."""
    cfg = RunConfig(scenario="fanout", urls=("ws://127.0.0.1:1",), connections=2, warmup=warmup)
    runner = Runner(cfg, policy=StepPolicy(start_rate=10.0, factor=2.0, max_steps=4))
    windows: list[tuple[str, float]] = []

    def window(_fleet: Any, _progress: Any, *, rate: float, label: str, **_: Any) -> Step:
        windows.append((label, rate))
        expected = round(rate * cfg.duration) * cfg.connections
        delivered = expected if rate < CAPACITY else expected // 2
        return Step(
            index=len(windows),
            label=label,
            offered_rate=rate,
            duration_s=cfg.duration,
            sent=round(rate * cfg.duration),
            expected=expected,
            delivered=delivered,
            delivered_total=delivered,
            throughput=delivered / cfg.duration,
            keep_up=delivered / expected,
            latency=Latency(count=delivered, p50_us=500, p99_us=900),
        )

    monkeypatch.setattr(runner, "_window", window)
    monkeypatch.setattr(runner, "_recover", lambda _fleet: None)
    runner._stepped(None, None)  # type: ignore[arg-type]
    return windows


def test_the_half_rate_step_warms_up_at_its_own_rate_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It comes after the steps that overloaded the server: like the first step, it is
    measured after a warm-up at its rate, not straight after the overload."""
    windows = stepped_windows(monkeypatch, warmup=1.0)
    labels = [label for label, _ in windows]
    assert labels[0] == "warm-up" and labels[1] == "step 0"
    assert labels[-2:] == ["warm-up", "half max"]
    best = max(rate for label, rate in windows if label.startswith("step") and rate < CAPACITY)
    assert windows[-2][1] == windows[-1][1] == best / 2


def test_no_warm_up_when_none_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = [label for label, _ in stepped_windows(monkeypatch, warmup=0.0)]
    assert "warm-up" not in labels
    assert labels[-1] == "half max"
