"""Markdown tables from the comparison results, for benchmarks/README.md.

.venv/bin/python benchmarks/summarize.py [benchmarks/results]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _best(run: dict[str, Any]) -> dict[str, Any] | None:
    passed = [s for s in run["steps"] if s["ok"] and not s["label"].startswith("half")]
    return max(passed, key=lambda s: s["offered_rate"]) if passed else None


def _other(step: dict[str, Any]) -> str:
    return f"{step.get('other_cpu_s', 0.0) / step['duration_s']:.0%}"


def rate_table(doc: dict[str, Any]) -> str:
    """fanout / rooms: best passing step per target."""
    base = doc["baseline"]
    rows = [
        "| target | max deliveries/s | ÷ " + base + " | server CPU µs/delivery | ÷ " + base
        + " (CPU) | p50 / p99 at max (ms) | p99 at ½ max (ms) | generator CPU at max "
        "| other CPU at max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    base_run = next((r for r in doc["results"] if r["label"] == base), None)
    base_best = _best(base_run) if base_run else None
    for run in doc["results"]:
        best = _best(run)
        s = run["summary"]
        if best is None:
            rows.append(f"| {run['label']} | none kept up | | | | | | |")
            continue
        ratio = doc["ratios"].get(run["label"], 0)
        cpu = best["server_cpu_us_per_delivery"]
        base_cpu = base_best["server_cpu_us_per_delivery"] if base_best else 0
        cpu_ratio = f"{base_cpu / cpu:.2f}x" if cpu and base_cpu else "-"
        half = s.get("p99_at_half_us")
        rows.append(
            f"| {run['label']} | {best['throughput']:,.0f} | {ratio:.2f}x | {cpu:.2f} | {cpu_ratio}"
            f" | {best['latency']['p50_us'] / 1000:.1f} / {best['latency']['p99_us'] / 1000:.1f}"
            f" | {half / 1000:.1f} | {best['generator_cpu_s'] / best['duration_s']:.0%}"
            f" | {_other(best)} |"
            if half
            else f"| {run['label']} | {best['throughput']:,.0f} | {ratio:.2f}x | {cpu:.2f} "
            f"| {cpu_ratio} | {best['latency']['p50_us'] / 1000:.1f} / "
            f"{best['latency']['p99_us'] / 1000:.1f} | - "
            f"| {best['generator_cpu_s'] / best['duration_s']:.0%} | {_other(best)} |"
        )
    return "\n".join(rows)


def echo_table(doc: dict[str, Any]) -> str:
    base = doc["baseline"]
    rows = [
        f"| target | round trips/s | ÷ {base} | p50 / p99 (ms) | server CPU µs/round trip "
        "| server CPU | generator CPU | other CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in doc["results"]:
        step = run["steps"][0]
        rows.append(
            f"| {run['label']} | {step['throughput']:,.0f} | {doc['ratios'][run['label']]:.2f}x"
            f" | {step['latency']['p50_us'] / 1000:.2f} / {step['latency']['p99_us'] / 1000:.2f}"
            f" | {step['server_cpu_us_per_delivery']:.1f}"
            f" | {step['server_cpu_s'] / step['duration_s']:.0%}"
            f" | {step['generator_cpu_s'] / step['duration_s']:.0%} | {_other(step)} |"
        )
    return "\n".join(rows)


def connect_table(doc: dict[str, Any]) -> str:
    base = doc["baseline"]
    rows = [
        f"| target | connected | connects/s | server RSS | RSS per connection | ÷ {base} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in doc["results"]:
        c = run["connect"]
        rows.append(
            f"| {run['label']} | {c['connected']:,}/{c['target']:,} | {c['connects_per_s']:,.0f}"
            f" | {c['server_rss_after_bytes'] / 2**20:,.0f} MiB"
            f" | {c['rss_per_connection_bytes'] / 1024:.1f} KiB"
            f" | {doc['ratios'][run['label']]:.2f}x |"
        )
    return "\n".join(rows)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results"
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("schema") != "hubbub.bench.comparison/1":
            continue
        print(f"### {path.stem}\n")
        scenario = doc["scenario"]
        if scenario in ("fanout", "rooms"):
            print(rate_table(doc))
        elif scenario == "echo":
            print(echo_table(doc))
        else:
            print(connect_table(doc))
        print()


if __name__ == "__main__":
    main()
