"""The decision matrix: alternatives scored on weighted criteria, per deployment scenario.

A decision file (YAML) names the criteria, one pairwise-judgement matrix per
deployment scenario and the alternatives in groups::

    criteria: [throughput, latency, memory, operability]
    scenarios:
      public-chat:
        description: many idle browser tabs, modest traffic
        judgements:               # "a: {b: 3}" = a is 3 times as important as b
          memory: {throughput: 3, latency: 2, operability: 1}
          ...
    alternatives:
      engines:                    # measured by `hubbub bench`
        memory:
          results: [results/engines-fanout.json#hubbub, results/engines-connect.json#hubbub]
          operability: 9          # a rating from 1 to 9 for what is not measured
      codecs:                     # measured by the codec micro-benchmark
        json: {operability: 9}

Measured values become local priorities in distributive mode (``ahp.local_priorities``);
a criterion no alternative of a group has a value for is left out of that group's
table, and the remaining weights are scaled back to 1 (the table says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from hubbub.bench import results
from hubbub.evaluate import ahp

CRITERIA: dict[str, bool] = {
    "throughput": True,
    "latency": False,
    "memory": False,
    "operability": True,
}
"""Known criteria → True when more is better (benefit), False when less is (cost)."""

UNITS = {
    "throughput": "msg/s",
    "latency": "µs",
    "memory": "B",
    "operability": "1-9",
}


class DecisionError(ValueError):
    """The decision file is wrong; the message says where."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    priorities: ahp.Priorities


@dataclass
class Ranking:
    """One group of alternatives scored under one scenario's weights."""

    scenario: str
    group: str
    criteria: list[str]
    weights: dict[str, float]
    values: dict[str, dict[str, float]]
    """alternative → criterion → measured value (or rating)."""
    scores: dict[str, dict[str, float]]
    """alternative → criterion → weighted local priority."""
    totals: dict[str, float]
    left_out: list[str] = field(default_factory=list)

    def ordered(self) -> list[str]:
        return sorted(self.totals, key=lambda name: -self.totals[name])


@dataclass(frozen=True)
class Decision:
    criteria: list[str]
    scenarios: list[Scenario]
    groups: dict[str, dict[str, dict[str, Any]]]
    base: Path


def load(path: Path) -> Decision:
    """Read and check a decision file; every scenario's judgements must be consistent."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DecisionError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise DecisionError(f"{path}: expected a mapping with criteria, scenarios, alternatives")
    criteria = data.get("criteria")
    if not isinstance(criteria, list) or not criteria:
        raise DecisionError(f"{path}: criteria: expected a list such as [throughput, latency]")
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown:
        raise DecisionError(
            f"{path}: criteria: unknown {', '.join(map(str, unknown))} "
            f"(known: {', '.join(CRITERIA)})"
        )
    scenarios = []
    raw_scenarios = data.get("scenarios")
    if not isinstance(raw_scenarios, dict) or not raw_scenarios:
        raise DecisionError(f"{path}: scenarios: expected a mapping of scenario names")
    for name, spec in raw_scenarios.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("judgements"), dict):
            raise DecisionError(f"{path}: scenarios.{name}: expected judgements: {{a: {{b: 3}}}}")
        try:
            weights = ahp.priorities(criteria, spec["judgements"])
        except ahp.AHPError as exc:
            raise DecisionError(f"{path}: scenarios.{name}: {exc}") from None
        scenarios.append(Scenario(str(name), str(spec.get("description", "")), weights))
    groups = data.get("alternatives") or {}
    if not isinstance(groups, dict):
        raise DecisionError(f"{path}: alternatives: expected groups of alternatives")
    return Decision(criteria, scenarios, groups, path.parent)


# ------------------------------------------------------------------ measured values


def result_values(result: results.Result) -> dict[str, float]:
    """Criteria values one bench result gives (throughput, latency, memory)."""
    s = result.summary
    found: dict[str, float] = {}
    for key in ("max_deliveries_per_s", "round_trips_per_s"):
        if s.get(key):
            found["throughput"] = s[key]
            break
    for key in ("p99_at_half_us", "p99_at_max_us", "p99_us"):
        if s.get(key):
            found["latency"] = s[key]
            break
    if s.get("rss_per_connection_bytes"):
        found["memory"] = s["rss_per_connection_bytes"]
    return found


def load_result(reference: str, base: Path) -> results.Result:
    """``file.json`` (a bench result) or ``file.json#label`` (one run of a comparison)."""
    file, _, label = reference.partition("#")
    path = (base / file) if not Path(file).is_absolute() else Path(file)
    try:
        raw = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise DecisionError(f"{reference}: {exc}") from None
    runs: list[Any] = raw["results"] if isinstance(raw, dict) and "results" in raw else [raw]
    for run in runs:
        if not label or run.get("label") == label:
            try:
                return msgspec.convert(run, results.Result)
            except msgspec.ValidationError as exc:
                raise DecisionError(f"{reference}: not a bench result: {exc}") from None
    raise DecisionError(f"{reference}: no run labelled {label!r}")


def engine_values(spec: Mapping[str, Any], base: Path) -> dict[str, float]:
    """An engine configuration's values: from its results, then explicit overrides."""
    values: dict[str, float] = {}
    for reference in spec.get("results", []) or []:
        for key, value in result_values(load_result(str(reference), base)).items():
            values.setdefault(key, value)  # the first result that has a figure wins
    return values | _explicit(spec)


def codec_values(figures: Mapping[str, float], spec: Mapping[str, Any]) -> dict[str, float]:
    """A codec's values from the micro-benchmark (mean over samples), then overrides."""
    cost = figures["encode_ns"] + figures["decode_ns"]
    values = {"throughput": 1e9 / cost, "latency": cost, "memory": figures["push_bytes"]}
    return values | _explicit(spec)


def _explicit(spec: Mapping[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for criterion in CRITERIA:
        if criterion in spec:
            value = spec[criterion]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise DecisionError(f"{criterion}: expected a number >= 0, got {value!r}")
            values[criterion] = float(value)
    return values


# ------------------------------------------------------------------------- scoring


def rank(scenario: Scenario, group: str, values: Mapping[str, Mapping[str, float]]) -> Ranking:
    """Weighted scores of every alternative in ``values`` under ``scenario``'s weights."""
    names = list(values)
    weights = dict(zip(scenario.priorities.names, scenario.priorities.weights, strict=True))
    used = [c for c in weights if all(c in values[n] for n in names)]
    left_out = [c for c in weights if c not in used]
    total_weight = sum(weights[c] for c in used) or 1.0
    scaled = {c: weights[c] / total_weight for c in used}
    scores: dict[str, dict[str, float]] = {n: {} for n in names}
    for criterion in used:
        local = ahp.local_priorities(
            [values[n][criterion] for n in names], benefit=CRITERIA[criterion]
        )
        for name, priority in zip(names, local, strict=True):
            scores[name][criterion] = scaled[criterion] * priority
    totals = {n: sum(scores[n].values()) for n in names}
    return Ranking(
        scenario=scenario.name,
        group=group,
        criteria=used,
        weights=scaled,
        values={n: dict(values[n]) for n in names},
        scores=scores,
        totals=totals,
        left_out=left_out,
    )
