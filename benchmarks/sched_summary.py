"""Per process: how busy it was, its longest stretch on a CPU, its longest wait for one.

Tells a server that stalls (long runs) from one kept off its CPU (long scheduling
delays) and shows which process was busy on the generator's core. Record while a
fixed-rate run is going, then summarise:

    perf sched record -a -o sched.data -- sleep 7
    perf sched timehist -i sched.data > sched.txt
    .venv/bin/python benchmarks/sched_summary.py sched.txt [--top 8]

``perf sched timehist`` prints, per switch: time, [cpu], task[pid/tid], wait time, sch
delay and run time (ms). The share is the task's run time over the trace's span.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path


def summarise(lines: list[str]) -> tuple[float, dict[str, list[float]]]:
    """The trace's span (s), and per task [run ms, longest run ms, longest delay ms]."""
    tasks: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    first = last = None
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or not fields[1].startswith("["):
            continue
        try:
            when, delay, run = float(fields[0]), float(fields[-2]), float(fields[-1])
        except ValueError:
            continue  # the header
        first = when if first is None else first
        last = when
        name = fields[2] if len(fields) == 6 else " ".join(fields[2:-3])
        task = tasks[name]
        task[0] += run
        task[1] = max(task[1], run)
        task[2] = max(task[2], delay)
    span = (last - first) if first is not None and last is not None else 0.0
    return span, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timehist", type=Path)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    span, tasks = summarise(args.timehist.read_text().splitlines())
    print(f"trace span {span:.2f} s")
    print(f"{'task':32s}  {'share':>6s}  {'longest run ms':>14s}  {'longest delay ms':>16s}")
    ranked = sorted(tasks.items(), key=lambda item: -item[1][0])[: args.top]
    for name, (run, longest, delay) in ranked:
        share = run / (span * 1000) if span else 0.0
        print(f"{name:32s}  {share:6.1%}  {longest:14.2f}  {delay:16.2f}")


if __name__ == "__main__":
    main()
