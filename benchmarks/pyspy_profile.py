"""Profile ``hubbub serve`` under a bench scenario with py-spy; say where the time goes.

    .venv/bin/python benchmarks/pyspy_profile.py fanout -- --subscribers 1000 --rate 150
    .venv/bin/python benchmarks/pyspy_profile.py echo -- --connections 100

The server runs pinned to CPU 0 and the load generator to CPU 1 (as in compare.py).
After ``--delay`` seconds of load, ``py-spy record`` samples the server for
``--seconds`` and writes ``<out>/<name>.svg`` (flame graph) and ``<out>/<name>.txt``:
the functions with the most samples on CPU, by own time and by inclusive time.
``--sample generator`` samples the busiest process of the load generator instead (the
worker that reads the subscribers' frames, in fan-out): what the instrument spends.
py-spy must be installed (``pip install py-spy``) and may need root or ptrace rights.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import (  # noqa: E402 - after the path tweak, compare is a sibling script
    CONFIGS,
    ROOT,
    free_port,
    pinning,
    stop,
    wait_for_port,
)

from hubbub.bench import system  # noqa: E402
from hubbub.bench.system import cpu_seconds, git_revision  # noqa: E402

_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """``name (file.py:123)`` → ``name (file.py)``: one row per function, not per line."""
    return _LINE.sub(")", frame.strip())


def aggregate(raw: str, top: int = 25) -> str:
    """Own and inclusive sample counts per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples on CPU (idle excluded)", "", "own time (where the CPU is):"]
    for frame, count in own.most_common(top):
        lines.append(f"{count / total:6.1%}  {frame}")
    lines += ["", "inclusive time (what it is spent for; frames in >= 90% of samples left out):"]
    shown = [(f, c) for f, c in inclusive.most_common() if c < 0.9 * total]
    for frame, count in shown[:top]:
        lines.append(f"{count / total:6.1%}  {frame}")
    return "\n".join(lines) + "\n"


def busiest_child(pid: int) -> int:
    """The child process of ``pid`` that has used the most CPU so far."""
    workers = system.children(pid)
    if not workers:
        raise SystemExit(f"the bench process {pid} has no worker processes")
    return max(workers, key=cpu_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenario", choices=["connect", "fanout", "rooms", "echo"])
    parser.add_argument("--config", default="hubbub-bench.yaml")
    parser.add_argument("--rpc", action="store_true", help="serve with the echo RPC handler")
    parser.add_argument("--delay", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--name")
    parser.add_argument(
        "--sample",
        choices=["server", "generator"],
        default="server",
        help="the process to profile: the server, or the busiest load generator worker",
    )
    parser.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include C frames (uvloop, picows, msgspec, the kernel calls)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "profiles")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ns = parser.parse_args(argv[:split])
    bench_args = argv[split + 1 :]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    server_pin, bench_pin = pinning()
    port = free_port()
    module = "hubbub.bench.echo_server" if ns.rpc else "hubbub.cli"
    serve = [] if ns.rpc else ["serve"]
    server_cmd = [
        *server_pin, sys.executable, "-m", module, *serve, "--config", str(CONFIGS / ns.config),
        "--port", str(port), "--internal-port", str(free_port()),
    ]  # fmt: skip
    server = subprocess.Popen(server_cmd, cwd=ROOT)
    name = ns.name or ns.scenario
    ns.out.mkdir(parents=True, exist_ok=True)
    try:
        wait_for_port(port, server)
        bench_cmd = [
            *bench_pin, sys.executable, "-m", "hubbub.bench", ns.scenario,
            "--url", f"ws://127.0.0.1:{port}", "--server-pid", str(server.pid), *bench_args,
        ]  # fmt: skip
        bench = subprocess.Popen(bench_cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        time.sleep(ns.delay)
        sampled = server.pid if ns.sample == "server" else busiest_child(bench.pid)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.txt"
            common = ["--pid", str(sampled), "--duration", str(int(ns.seconds))]
            # Native stacks need the process paused per sample (no --nonblocking).
            common += ["--native"] if ns.native else ["--nonblocking"]
            subprocess.run(
                [spy, "record", *common, "--rate", str(ns.rate), "--format", "raw",
                 "--output", str(raw)],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            summary = aggregate(raw.read_text())
        subprocess.run(
            [spy, "record", "--pid", str(sampled), "--duration", "4", "--rate", str(ns.rate),
             "--output", str(ns.out / f"{name}.svg"), "--nonblocking"],
            check=False, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        what = "`hubbub serve`" if ns.sample == "server" else "the busiest bench worker"
        header = (
            f"py-spy record of {what} ({ns.config}{', echo RPC' if ns.rpc else ''}, "
            f"git {git_revision() or 'unknown'}) "
            f"for {ns.seconds:g} s under:\n  python -m hubbub.bench {ns.scenario} "
            + " ".join(bench_args)
            + "\n\n"
        )
        (ns.out / f"{name}.txt").write_text(header + summary)
        print(header + summary)
        bench.wait(600)
    finally:
        stop(server)


if __name__ == "__main__":
    main()
