"""The decision matrix: scenario weights, measured values, scores; the codec figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub.evaluate import codecs, decision

DECISION = """
criteria: [throughput, latency, memory, operability]
scenarios:
  chat:
    judgements:
      memory: {throughput: 2, latency: 2, operability: 1}
      throughput: {latency: 1, operability: 1/2}
      latency: {operability: 1/2}
  broken:
    judgements:
      throughput: {latency: 9, memory: 9, operability: 9}
      latency: {memory: 9, operability: 9}
      memory: {operability: 9}
      # … and operability is said to matter most of all: not credible
alternatives: {}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "decision.yaml"
    path.write_text(text)
    return path


def test_an_inconsistent_scenario_is_named(tmp_path: Path) -> None:
    """CR ≥ 0.1 in one scenario: the error names the file, the scenario and the pair."""
    text = DECISION.replace(
        "memory: {operability: 9}", "memory: {operability: 9}\n      operability: {}"
    )
    text = text.replace(
        "throughput: {latency: 9, memory: 9, operability: 9}",
        "throughput: {latency: 9, memory: 9, operability: 1/9}",
    )
    with pytest.raises(decision.DecisionError) as caught:
        decision.load(write(tmp_path, text))
    message = str(caught.value)
    assert "scenarios.broken" in message
    assert "throughput vs operability = 1/9" in message


def test_rank_weights_measured_values(tmp_path: Path) -> None:
    """Cheaper memory wins where memory weighs most; totals sum to 1."""
    text = DECISION.split("  broken:")[0] + "alternatives: {}\n"
    loaded = decision.load(write(tmp_path, text))
    (chat,) = loaded.scenarios
    values = {
        "lean": {"throughput": 100.0, "latency": 10.0, "memory": 1000.0, "operability": 5.0},
        "fat": {"throughput": 120.0, "latency": 10.0, "memory": 4000.0, "operability": 5.0},
    }
    ranking = decision.rank(chat, "engines", values)
    assert ranking.ordered() == ["lean", "fat"]
    assert sum(ranking.totals.values()) == pytest.approx(1.0)
    partial = decision.rank(chat, "engines", {"a": {"throughput": 1.0}, "b": {"throughput": 3.0}})
    assert partial.left_out == ["latency", "memory", "operability"]
    assert partial.totals["b"] == pytest.approx(0.75)


def test_unknown_criterion_is_rejected(tmp_path: Path) -> None:
    """Only the four known criteria may be used."""
    with pytest.raises(decision.DecisionError, match="unknown beauty"):
        decision.load(write(tmp_path, DECISION.replace("operability]", "beauty]")))


def test_codec_figures_for_every_registered_codec() -> None:
    """Each codec gets encode/decode times and sizes on every sample payload."""
    figures = codecs.measure(budget_s=0.0005)
    names = {f.codec for f in figures}
    assert {"json", "protobuf"} <= names
    assert all(
        f.encode_ns > 0 and f.decode_ns > 0 and f.push_bytes > f.payload_bytes for f in figures
    )
    means = codecs.per_codec(figures)
    values = decision.codec_values(means["json"], {"operability": 9})
    assert values["operability"] == 9.0
    assert values["throughput"] == pytest.approx(1e9 / values["latency"])
