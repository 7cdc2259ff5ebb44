"""CPU instructions per command or per delivery, counted by valgrind: repeatable on a
machine whose clock speed and neighbours are not.

    python benchmarks/instructions.py dispatch     # per publish command (inproc.py dispatch)
    python benchmarks/instructions.py rpc          # per RPC command (inproc.py dispatch --rpc)
    python benchmarks/instructions.py rpc16        # the same, 16 commands per frame
    python benchmarks/instructions.py fanout       # per delivery (inproc.py fanout, 1,000 subs)
    python benchmarks/instructions.py fanout20     # the same, 100 subs, 20 publications a turn

Runs ``benchmarks/inproc.py`` twice under ``valgrind --tool=callgrind`` with a small and
a larger amount of work and divides the difference in instructions by the difference
in work, so start-up (imports, node start) cancels out. The same code, inputs and
interpreter give the same count within a fraction of a percent, whatever else the
machine does: the figure to compare two versions of the hot path. It counts
instructions, not time (cache misses and syscalls cost more than their count says),
and covers hubbub's Python side only: ``inproc.py`` has no sockets. Each run takes
about a minute.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLLECTED = re.compile(rb"Collected : (\d+)")
WORK = {
    # mode: (inproc.py arguments for amount n, units of work per n, unit name)
    "dispatch": (lambda n: ["dispatch", "--commands", str(n)], 1, "publish command"),
    "rpc": (lambda n: ["dispatch", "--rpc", "--commands", str(n)], 1, "RPC command"),
    "rpc16": (
        lambda n: ["dispatch", "--rpc", "--per-frame", "16", "--commands", str(n)],
        1,
        "RPC command, 16 per frame",
    ),
    "fanout": (
        lambda n: ["fanout", "--subscribers", "1000", "--publications", str(n)],
        1000,
        "delivery",
    ),
    "fanout20": (
        lambda n: [
            "fanout", "--subscribers", "100", "--per-frame", "20", "--publications", str(n)
        ],
        100,
        "delivery, 20 publications per turn",
    ),
}
AMOUNTS = {
    "dispatch": (1_000, 4_000),
    "rpc": (1_600, 6_400),
    "rpc16": (1_600, 6_400),
    "fanout": (20, 80),
    "fanout20": (400, 1_600),
}


def instructions(args: list[str]) -> int:
    """Instructions one ``inproc.py`` run executes, start to exit."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, str(HERE / "inproc.py"), *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=True)
    found = COLLECTED.search(done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]!r}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(WORK))
    ns = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt install valgrind)")
    build, per_n, unit = WORK[ns.mode]
    small, large = AMOUNTS[ns.mode]
    low, high = instructions(build(small)), instructions(build(large))
    per_unit = (high - low) / ((large - small) * per_n)
    print(f"{ns.mode}: {per_unit:,.0f} instructions per {unit}")


if __name__ == "__main__":
    main()
