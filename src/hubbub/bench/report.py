"""Showing results: the summary table on the terminal and the PNG chart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hubbub.bench.results import Result


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f}"  # pragma: no cover


def table(result: Result) -> Table:
    """One row per step (or the connect figures), and the headline summary."""
    title = f"hubbub bench {result.scenario} — {result.label}"
    if result.scenario == "connect" and result.connect is not None:
        c = result.connect
        t = Table(title=title)
        for name in ("connected", "failed", "seconds", "connects/s", "server RSS", "RSS/conn"):
            t.add_column(name, justify="right")
        t.add_row(
            f"{c.connected:,}/{c.target:,}",
            f"{c.failed:,}",
            f"{c.elapsed_s:.2f}",
            f"{c.connects_per_s:,.0f}",
            _bytes(c.server_rss_after_bytes) if c.server_rss_after_bytes else "-",
            _bytes(c.rss_per_connection_bytes) if c.rss_per_connection_bytes else "-",
        )
        return t
    unit = "round trips/s" if result.scenario == "echo" else "deliveries/s"
    t = Table(title=title)
    for name, justify in (
        ("step", "left"),
        ("pub/s", "right"),
        (unit, "right"),
        ("keep-up", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("p99.9 ms", "right"),
        ("max ms", "right"),
        ("srv µs/msg", "right"),
        ("gen late p99 ms", "right"),
        ("verdict", "left"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in result.steps:
        t.add_row(
            s.label or str(s.index),
            f"{s.offered_rate:,.0f}" if s.offered_rate else "-",
            f"{s.throughput:,.0f}",
            f"{s.keep_up:.1%}",
            _ms(s.latency.p50_us),
            _ms(s.latency.p99_us),
            _ms(s.latency.p999_us),
            _ms(s.latency.max_us),
            f"{s.server_cpu_us_per_delivery:.2f}" if s.server_cpu_us_per_delivery else "-",
            f"{s.pace_late_p99_ms:.2f}" if s.pace_late_p99_ms is not None else "-",
            "ok" if s.ok else f"[red]{s.reason}",
        )
    return t


def show(result: Result, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=150)
    console.print(table(result))
    if result.summary:
        parts = [
            f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in result.summary.items()
        ]
        console.print("summary: " + "  ".join(parts))
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    errors: dict[str, int] = {}
    if result.connect is not None:
        errors.update(result.connect.errors)
    for step in result.steps:
        for key, count in step.errors.items():
            errors[key] = errors.get(key, 0) + count
    for key, count in sorted(errors.items(), key=lambda kv: -kv[1])[:8]:
        console.print(f"[red]errors:[/] {count:,} x {key}")


def plot(results: Sequence[Result], path: Path, title: str = "") -> None:
    """A latency/throughput chart of one or more runs of the same scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario = results[0].scenario
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    if scenario == "connect":
        for r in results:
            if r.connect is not None and r.connect.timeline:
                times, counts = zip(*r.connect.timeline, strict=True)
                rss = r.connect.rss_per_connection_bytes
                extra = f", {rss / 1024:.1f} KiB/conn" if rss else ""
                left.plot(
                    times, counts, label=f"{r.label} ({r.connect.connects_per_s:,.0f}/s{extra})"
                )
        left.set_xlabel("seconds")
        left.set_ylabel("connections ready")
        left.set_title("connect ramp")
        names = [r.label for r in results]
        values = [(r.connect.rss_per_connection_bytes / 1024) if r.connect else 0 for r in results]
        right.bar(names, values, color="tab:purple")
        right.set_ylabel("server RSS per connection (KiB)")
        right.set_title("memory per connected + subscribed connection")
        right.tick_params(axis="x", rotation=15)
    elif scenario == "echo":
        names = [r.label for r in results]
        rts = [r.steps[0].throughput if r.steps else 0 for r in results]
        left.bar(names, rts, color="tab:blue")
        left.set_ylabel("round trips/s")
        left.set_title("echo throughput")
        left.tick_params(axis="x", rotation=15)
        width = 0.25
        for offset, (key, name) in enumerate(
            (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))
        ):
            values = [getattr(r.steps[0].latency, key) / 1000 if r.steps else 0 for r in results]
            right.bar(
                [i + (offset - 1) * width for i in range(len(results))], values, width, label=name
            )
        right.set_xticks(range(len(results)), names, rotation=15)
        right.set_ylabel("round trip (ms)")
        right.set_title("echo latency")
    else:
        for r in results:
            steps = sorted(
                (s for s in r.steps if not s.label.startswith("half")), key=lambda s: s.offered_rate
            )
            if not steps:
                continue
            xs = [s.offered_rate for s in steps]
            (line,) = left.plot(xs, [s.throughput for s in steps], marker="o", label=r.label)
            left.plot(
                xs,
                [s.expected / s.duration_s for s in steps],
                linestyle=":",
                color=line.get_color(),
                alpha=0.5,
            )
            right.plot(
                xs,
                [s.latency.p99_us / 1000 for s in steps],
                marker="o",
                color=line.get_color(),
                label=f"{r.label} p99",
            )
            right.plot(
                xs,
                [s.latency.p50_us / 1000 for s in steps],
                linestyle="--",
                color=line.get_color(),
                alpha=0.6,
                label=f"{r.label} p50",
            )
        left.set_xlabel("offered publications/s")
        left.set_ylabel("deliveries/s (dotted: offered)")
        left.set_title("throughput")
        right.set_xlabel("offered publications/s")
        right.set_ylabel("publish → deliver latency (ms)")
        right.set_yscale("log")
        right.set_title("latency")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    first = results[0]
    machine = first.machine
    where = f"{machine.cpu_model}, {machine.cpus} CPUs, Python {machine.python}"
    fig.suptitle(title or f"{scenario} — {where}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
