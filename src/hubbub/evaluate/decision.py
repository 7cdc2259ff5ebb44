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

``load`` checks the whole shape and refuses unknown keys (a misspelt rating would
otherwise be silently ignored); each error names the file and the key path, such as
``decision.yaml: alternatives.engines.redis.operability: expected a number >= 0``.
"""

from __future__ import annotations

import math
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
    """group → alternative → its checked spec (ratings, ``results``); never None."""
    base: Path
    path: Path
    """The file itself, so later errors (a missing result file) can say where."""


TOP_LEVEL = ("criteria", "scenarios", "alternatives")
SCENARIO_KEYS = ("description", "judgements")
RESULTS = "results"


def _error(path: Path, key: str, problem: str) -> DecisionError:
    """``file: key.path: problem``: every message says where to look."""
    return DecisionError(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


def _shown(value: object) -> str:
    """A wrong value as the user wrote it, kept to one short line."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(path: Path, key: str, spec: Mapping[Any, Any], known: tuple[str, ...]) -> None:
    """Reject misspelt keys: they would otherwise be silently ignored."""
    for name in spec:
        if name not in known:
            where = f"{key}.{name}" if key else str(name)
            raise _error(path, where, f"unknown key (expected {', '.join(known)})")


def _read(path: Path) -> object:
    """The parsed YAML; unreadable files and syntax errors become one-line DecisionErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _error(path, "", exc.strerror or str(exc)) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise _error(path, "", f"invalid YAML: {where}{what}") from None
    except yaml.YAMLError as exc:
        raise _error(path, "", f"invalid YAML: {' '.join(str(exc).split())}") from None


def load(path: Path) -> Decision:
    """Read and check a decision file; every scenario's judgements must be consistent.

    Every shape mistake is found here, with its file and key path, so that ranking
    never meets a value of the wrong type.
    """
    data = _read(path)
    if data is None:
        raise _error(path, "", f"the file is empty; expected a mapping with {', '.join(TOP_LEVEL)}")
    if not isinstance(data, dict):
        raise _error(
            path, "", f"expected a mapping with {', '.join(TOP_LEVEL)}, got {_shown(data)}"
        )
    _check_keys(path, "", data, TOP_LEVEL)
    criteria = _criteria(path, data.get("criteria"))
    scenarios = [
        _scenario(path, criteria, name, spec) for name, spec in _scenario_specs(path, data)
    ]
    groups = _groups(path, data["alternatives"]) if "alternatives" in data else {}
    return Decision(criteria, scenarios, groups, path.parent, path)


def _criteria(path: Path, raw: object) -> list[str]:
    """Known criterion names, each once."""
    if not isinstance(raw, list) or not raw:
        raise _error(
            path, "criteria", f"expected a list such as [throughput, latency], got {_shown(raw)}"
        )
    names: list[str] = []
    for k, name in enumerate(raw):
        if not isinstance(name, str):
            raise _error(
                path,
                f"criteria[{k}]",
                f"expected a criterion name ({', '.join(CRITERIA)}), got {_shown(name)}",
            )
        if name in names:
            raise _error(path, "criteria", f"{name} is listed twice")
        names.append(name)
    unknown = [c for c in names if c not in CRITERIA]
    if unknown:
        raise _error(
            path, "criteria", f"unknown {', '.join(unknown)} (known: {', '.join(CRITERIA)})"
        )
    return names


def _scenario_specs(path: Path, data: Mapping[str, Any]) -> list[tuple[str, object]]:
    raw = data.get("scenarios")
    if not isinstance(raw, dict) or not raw:
        raise _error(
            path,
            "scenarios",
            f"expected a mapping of scenario names to judgements, got {_shown(raw)}",
        )
    return [(str(name), spec) for name, spec in raw.items()]


def _scenario(path: Path, criteria: list[str], name: str, spec: object) -> Scenario:
    """One scenario's weights; judgements are checked one by one so errors name the key."""
    key = f"scenarios.{name}"
    if not isinstance(spec, dict):
        raise _error(path, key, f"expected {{judgements: {{a: {{b: 3}}}}}}, got {_shown(spec)}")
    _check_keys(path, key, spec, SCENARIO_KEYS)
    judgements = spec.get("judgements")
    if not isinstance(judgements, dict):
        raise _error(
            path,
            f"{key}.judgements",
            f"expected a mapping such as {{a: {{b: 3}}}}, got {_shown(judgements)}",
        )
    for row, columns in judgements.items():
        row_key = f"{key}.judgements.{row}"
        if row not in criteria:
            raise _error(path, row_key, f"not one of the criteria ({', '.join(criteria)})")
        if not isinstance(columns, dict):
            raise _error(
                path, row_key, f"expected a mapping such as {{other: 3}}, got {_shown(columns)}"
            )
        for column, value in columns.items():
            if column not in criteria:
                raise _error(
                    path, f"{row_key}.{column}", f"not one of the criteria ({', '.join(criteria)})"
                )
            try:
                ahp.parse_judgement(value)
            except ahp.AHPError as exc:
                raise _error(path, f"{row_key}.{column}", str(exc)) from None
    try:
        weights = ahp.priorities(criteria, judgements)
    except ahp.AHPError as exc:  # a missing or twice-given pair, or inconsistency
        raise _error(path, f"{key}.judgements", str(exc)) from None
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise _error(path, f"{key}.description", f"expected text, got {_shown(description)}")
    return Scenario(name, description or "", weights)


def _groups(path: Path, raw: object) -> dict[str, dict[str, dict[str, Any]]]:
    """group → alternative → spec, every rating and result reference checked."""
    if not isinstance(raw, dict):
        raise _error(
            path,
            "alternatives",
            f"expected groups such as {{engines: {{name: {{operability: 7}}}}}}, got {_shown(raw)}",
        )
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for group, alternatives in raw.items():
        group_key = f"alternatives.{group}"
        if not isinstance(alternatives, dict):
            raise _error(
                path,
                group_key,
                f"expected a mapping of alternatives such as {{name: {{operability: 7}}}}, "
                f"got {_shown(alternatives)}",
            )
        # codecs are measured by the micro-benchmark; engines by the result files given
        known = tuple(CRITERIA) if group == "codecs" else (RESULTS, *CRITERIA)
        example = (
            "{operability: 7}" if group == "codecs" else "{results: [run.json], operability: 7}"
        )
        checked: dict[str, dict[str, Any]] = {}
        for name, spec in alternatives.items():
            key = f"{group_key}.{name}"
            if spec is None:  # "json:" alone: measured values only
                spec = {}
            if not isinstance(spec, dict):
                raise _error(path, key, f"expected a mapping such as {example}, got {_shown(spec)}")
            _check_keys(path, key, spec, known)
            try:
                _explicit(spec)
            except _BadRating as exc:
                raise _error(path, f"{key}.{exc.criterion}", exc.problem) from None
            if RESULTS in spec:
                _check_results(path, f"{key}.{RESULTS}", spec[RESULTS])
            checked[str(name)] = dict(spec)
        groups[str(group)] = checked
    return groups


def _check_results(path: Path, key: str, references: object) -> None:
    """``results`` is a list of ``file.json`` or ``file.json#label`` strings."""
    if not isinstance(references, list):
        raise _error(
            path, key, f"expected a list such as [results/run.json#label], got {_shown(references)}"
        )
    for k, reference in enumerate(references):
        if not isinstance(reference, str) or not reference.partition("#")[0]:
            raise _error(
                path,
                f"{key}[{k}]",
                f"expected a file.json or file.json#label, got {_shown(reference)}",
            )


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
    runs: object = raw["results"] if isinstance(raw, dict) and "results" in raw else [raw]
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise DecisionError(f"{reference}: not a bench result or comparison")
    for run in runs:
        if not label or run.get("label") == label:
            try:
                return msgspec.convert(run, results.Result)
            except msgspec.ValidationError as exc:
                raise DecisionError(f"{reference}: not a bench result: {exc}") from None
    raise DecisionError(f"{reference}: no run labelled {label!r}")


def engine_values(spec: Mapping[str, Any], base: Path, *, where: str = "") -> dict[str, float]:
    """An engine configuration's values: from its results, then explicit overrides.

    ``where`` (``file: alternatives.group.name``) prefixes errors about a result file,
    which only show up here, after ``load`` has checked the decision file itself.
    """
    values: dict[str, float] = {}
    references = spec.get(RESULTS) or []
    if not isinstance(references, list):  # a lone string would be read letter by letter
        raise DecisionError(f"{where or 'alternative'}.{RESULTS}: expected a list of result files")
    for k, reference in enumerate(references):
        try:
            found = result_values(load_result(str(reference), base))
        except DecisionError as exc:
            if not where:
                raise
            raise DecisionError(f"{where}.{RESULTS}[{k}]: {exc}") from None
        for key, value in found.items():
            values.setdefault(key, value)  # the first result that has a figure wins
    return values | _explicit(spec)


def codec_values(figures: Mapping[str, float], spec: Mapping[str, Any]) -> dict[str, float]:
    """A codec's values from the micro-benchmark (mean over samples), then overrides."""
    cost = figures["encode_ns"] + figures["decode_ns"]
    values = {"throughput": 1e9 / cost, "latency": cost, "memory": figures["push_bytes"]}
    return values | _explicit(spec)


class _BadRating(DecisionError):
    """A rating that is not a number >= 0; ``load`` adds the file and key path."""

    def __init__(self, criterion: str, problem: str) -> None:
        super().__init__(f"{criterion}: {problem}")
        self.criterion = criterion
        self.problem = problem


def _explicit(spec: Mapping[str, Any]) -> dict[str, float]:
    """The criteria given by hand (ratings, overrides of measured values)."""
    values: dict[str, float] = {}
    for criterion in CRITERIA:
        if criterion in spec:
            value = spec[criterion]
            number = math.nan
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:  # an integer too large for a float
                    number = math.inf
            if not (math.isfinite(number) and number >= 0):
                raise _BadRating(criterion, f"expected a number >= 0, got {_shown(value)}")
            values[criterion] = number
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
