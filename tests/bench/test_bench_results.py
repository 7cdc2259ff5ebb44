"""The results JSON: one schema for writer and readers, validated on read."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from hubbub.bench import results
from hubbub.bench.runner import summarize
from hubbub.bench.stats import Latency


def sample() -> results.Result:
    machine = results.Machine(
        hostname="h",
        cpu_model="cpu",
        cpus=2,
        memory_bytes=1,
        kernel="k",
        python="3.11",
        fd_limit=20000,
    )
    step = results.Step(
        index=0,
        label="step 0",
        offered_rate=100,
        duration_s=5,
        sent=500,
        expected=50_000,
        delivered=50_000,
        delivered_total=50_000,
        throughput=10_000,
        keep_up=1.0,
        latency=Latency(count=50_000, p50_us=800, p99_us=2400),
    )
    half = msgspec.structs.replace(
        step,
        index=1,
        label="half max",
        offered_rate=50,
        latency=Latency(count=25_000, p50_us=600, p99_us=1500),
    )
    return results.Result(
        scenario="fanout",
        protocol="centrifuge",
        label="hubbub json",
        url="ws://127.0.0.1:8000/connection/websocket",
        codec="json",
        started_at="2026-01-01T00:00:00+00:00",
        params={"connections": 100},
        machine=machine,
        versions={"python": "3.11"},
        steps=[step, half],
    )


def test_round_trip(tmp_path: Path) -> None:
    """What is written reads back equal, with the schema tag."""
    result = sample()
    path = tmp_path / "r.json"
    results.write(result, path)
    assert json.loads(path.read_text())["schema"] == results.SCHEMA
    assert results.read(path) == result


def test_bad_documents_are_rejected_naming_the_field() -> None:
    """A wrong type or an unknown scenario fails validation with the field's path."""
    data = json.loads(results.dumps(sample()))
    data["steps"][0]["delivered"] = "many"
    with pytest.raises(msgspec.ValidationError, match=r"steps\[0\].delivered"):
        results.loads(json.dumps(data))
    data = json.loads(results.dumps(sample()))
    data["scenario"] = "stampede"
    with pytest.raises(msgspec.ValidationError, match="scenario"):
        results.loads(json.dumps(data))


def test_json_schema_lists_the_required_fields() -> None:
    """The published JSON Schema requires what every reader relies on."""
    schema = results.json_schema()
    result = schema["$defs"]["Result"]
    assert {"scenario", "protocol", "label", "machine", "versions", "params"} <= set(
        result["required"]
    )
    assert "Step" in schema["$defs"] and "Latency" in schema["$defs"]


def test_summary_headlines_of_a_fanout() -> None:
    """The summary carries the best passing step and the half-rate latency."""
    summary = summarize(sample())
    assert summary["max_rate"] == 100
    assert summary["max_deliveries_per_s"] == 10_000
    assert summary["p99_at_max_us"] == 2400
    assert summary["half_rate"] == 50
    assert summary["p99_at_half_us"] == 1500  # the half step's own, not the max step's


def test_proc_parsers() -> None:
    """/proc/PID/stat, /proc/PID/status and /proc/stat lines are read as documented."""
    from hubbub.bench import system

    stat = "42 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0"
    assert system.parse_stat_cpu(stat) == 300
    assert system.parse_status_kb("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS") == 1234
    assert system.parse_status_kb("Name:\tx\n", "VmRSS") == 0
    assert system.parse_busy_ticks("cpu  100 0 50 1000 20 0 5 3 0 0") == 158


def test_children_of_a_process_oldest_first(tmp_path: Path) -> None:
    """The workers of a node or of the bench, from /proc; none for a process gone."""
    from hubbub.bench import system

    task = tmp_path / "7" / "task" / "7"
    task.mkdir(parents=True)
    (task / "children").write_text("31 9 12 ")
    assert system.children(7, proc=tmp_path) == [9, 12, 31]
    assert system.children(8, proc=tmp_path) == []


def test_results_written_before_pacing_lateness_still_read() -> None:
    """Every run kept in benchmarks/results/ reads back: steps written before the pacing
    lateness was measured have none (None), later ones keep theirs."""
    root = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    runs = [
        run
        for path in sorted(root.glob("*.json"))
        for run in json.loads(path.read_text()).get("results", [])
        if isinstance(run, dict) and run.get("schema") == results.SCHEMA
    ]
    older = [r for r in runs if all("pace_late_p99_ms" not in s for s in r["steps"])]
    assert older, "no stored result from before the lateness fields: nothing old to read"
    for run in runs:
        result = results.loads(json.dumps(run))
        for stored, step in zip(run["steps"], result.steps, strict=True):
            assert step.pace_late_p99_ms == stored.get("pace_late_p99_ms")
            assert step.pace_late_max_ms == stored.get("pace_late_max_ms")


def test_table_shows_the_pacing_lateness() -> None:
    """The summary table has a lateness column: the figure when measured, '-' when not."""
    from rich.console import Console

    from hubbub.bench import report

    result = sample()
    result.steps[0].pace_late_p99_ms = 12.345
    console = Console(width=250, record=True)
    report.show(result, console)
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "verdict" in line)
    column = [c.strip() for c in header.split("┃")].index("gen late p99 ms")

    def cell(label: str) -> str:
        row = next(line for line in lines if line.startswith(f"│ {label}"))
        return row.split("│")[column].strip()

    assert cell("step 0") == "12.35"
    assert cell("half max") == "-"
