"""How often this machine takes a CPU away from a busy process, and for how long.

A latency tail of a few milliseconds can be the machine's: a vCPU descheduled by the
host, another process, an interrupt storm. This spins on ``time.monotonic_ns()`` on each
CPU at once (one process per CPU, pinned) and counts the gaps in which it did not run:

    .venv/bin/python benchmarks/cpu_gaps.py [--seconds 20] [--min-ms 0.5]

Run it with nothing else running; the figure to compare is gaps per second over 2 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

LIMITS_MS = (1, 2, 5, 10, 20, 50)


def spin(cpu: int, seconds: float, min_ms: float) -> tuple[int, list[float]]:
    """On ``cpu``, the gaps (ms) longer than ``min_ms`` seen in ``seconds`` of spinning."""
    os.sched_setaffinity(0, {cpu})
    threshold = int(min_ms * 1e6)
    gaps: list[float] = []
    last = time.monotonic_ns()
    end = last + int(seconds * 1e9)
    while last < end:
        now = time.monotonic_ns()
        if now - last > threshold:
            gaps.append((now - last) / 1e6)
        last = now
    return cpu, gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--min-ms", type=float, default=0.5)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    with multiprocessing.Pool(len(cpus)) as pool:
        found = pool.starmap(spin, [(cpu, args.seconds, args.min_ms) for cpu in cpus])
    head = "  ".join(f"<={limit}ms" for limit in LIMITS_MS)
    print(f"cpu  gaps/s>2ms  worst ms  {head}  longer")
    for cpu, gaps in found:
        counts = [0] * (len(LIMITS_MS) + 1)
        for gap in gaps:
            counts[next((i for i, lim in enumerate(LIMITS_MS) if gap <= lim), -1)] += 1
        over_2 = sum(1 for gap in gaps if gap > 2) / args.seconds
        worst = max(gaps, default=0.0)
        pairs = zip(counts[:-1], LIMITS_MS, strict=True)
        cells = "  ".join(f"{n:>{len(f'<={lim}ms')}}" for n, lim in pairs)
        print(f"{cpu:3d}  {over_2:10.1f}  {worst:8.1f}  {cells}  {counts[-1]:6d}")


if __name__ == "__main__":
    main()
