"""Run one scenario against hubbub and against peer servers, in one run; print ratios.

    .venv/bin/python benchmarks/compare.py fanout
    .venv/bin/python benchmarks/compare.py echo --targets hubbub,hubbub-rpc,picows,node-ws
    .venv/bin/python benchmarks/compare.py connect -- --connections 15000

Each target's server starts as a subprocess pinned to CPU 0 and the load generator
(``python -m hubbub.bench``) runs pinned to CPU 1 when ``taskset`` and two CPUs are
there. Servers get a free port on 127.0.0.1 and are stopped after their run. The
Node peer needs ``ws``: it is installed from the npm registry into a temporary
directory (``--node-dir``), never into the repository.

Writes ``<out>/<scenario>.json`` (every run's full result, the machine, the versions,
the exact commands and the ratios to the baseline) and ``<out>/<scenario>.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from hubbub.bench import report, results, system

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = HERE / "configs"
SCHEMA = "hubbub.bench.comparison/1"
console = Console()


@dataclass(frozen=True)
class Target:
    """A server to measure and how the bench talks to it."""

    name: str
    protocol: str
    describe: str
    bench_args: tuple[str, ...] = ()
    config: str = "hubbub-bench.yaml"

    def command(self, port: int, node_dir: Path) -> list[str]:
        py = sys.executable
        config = CONFIGS / self.config
        if self.name.startswith("hubbub-rpc"):
            return [
                py, "-m", "hubbub.bench.echo_server", "--config", str(config),
                "--port", str(port), "--internal-port", str(free_port()),
            ]  # fmt: skip
        if self.name.startswith("hubbub"):
            return [
                py, "-m", "hubbub.cli", "serve", "--config", str(config),
                "--port", str(port), "--internal-port", str(free_port()),
            ]  # fmt: skip
        if self.name == "picows":
            return [py, str(HERE / "peers" / "picows_broadcast.py"), "--port", str(port)]
        if self.name == "node-ws":
            return ["node", str(HERE / "peers" / "ws_broadcast.js"), "--port", str(port)]
        if self.name == "socketio":
            return [py, str(HERE / "peers" / "socketio_server.py"), "--port", str(port)]
        raise ValueError(self.name)


TARGETS = {
    t.name: t
    for t in (
        Target("hubbub", "centrifuge", "hubbub serve, Centrifuge v2 JSON"),
        Target(
            "hubbub-protobuf",
            "centrifuge",
            "hubbub serve, Centrifuge v2 Protobuf",
            ("--codec", "protobuf"),
        ),
        Target(
            "hubbub-history",
            "centrifuge",
            "hubbub serve, history (100 per channel) + recovery, JSON",
            config="hubbub-bench-history.yaml",
        ),
        Target(
            "hubbub-presence",
            "centrifuge",
            "hubbub serve, presence tracked, JSON",
            config="hubbub-bench-presence.yaml",
        ),
        Target(
            "hubbub-rpc",
            "centrifuge",
            "hubbub Server + RPC 'echo' handler, Centrifuge v2 JSON",
            ("--mode", "rpc"),
        ),
        Target("picows", "plain", "minimal picows broadcast server (baseline)"),
        Target("node-ws", "plain", "minimal Node ws broadcast server"),
        Target("socketio", "socketio", "python-socketio on uvicorn"),
    )
}

PRESETS: dict[str, dict[str, Any]] = {
    "fanout": {
        "targets": "hubbub,picows,node-ws,socketio",
        "args": [
            "--subscribers", "1000", "--payload-size", "64", "--rate", "8",
            "--step-factor", "1.6", "--max-steps", "12", "--duration", "4",
            "--p99-bound-ms", "1000",
        ],
        "metric": "max_deliveries_per_s",
        "higher": True,
    },
    "echo": {
        "targets": "hubbub,hubbub-rpc,picows,node-ws,socketio",
        "args": ["--connections", "100", "--payload-size", "64", "--duration", "5"],
        "metric": "round_trips_per_s",
        "higher": True,
    },
    "connect": {
        "targets": "hubbub,picows,node-ws,socketio",
        "args": ["--connections", "15000", "--hold", "3", "--concurrency", "300"],
        "metric": "rss_per_connection_bytes",
        "higher": False,
    },
    "rooms": {
        "targets": "hubbub,picows,node-ws,socketio",
        "args": [
            "--rooms", "100", "--members", "10", "--rate", "1", "--step-factor", "1.5",
            "--max-steps", "11", "--duration", "4",
        ],
        "metric": "max_deliveries_per_s",
        "higher": True,
    },
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f}s")


def pinning() -> tuple[list[str], list[str]]:
    """taskset prefixes: server on CPU 0, load generator on CPU 1 (when possible)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


def ensure_node_ws(node_dir: Path) -> str:
    """Install ``ws`` into ``node_dir`` (npm registry) unless it is there; its version."""
    package = node_dir / "node_modules" / "ws" / "package.json"
    if not package.exists():
        node_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(node_dir), "ws@8", "--no-audit", "--no-fund"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    version: str = json.loads(package.read_text())["version"]
    return version


def peer_versions(targets: list[str], node_dir: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if "node-ws" in targets:
        found["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        found["ws"] = ensure_node_ws(node_dir)
    if "socketio" in targets:
        for name in ("python-socketio", "python-engineio", "uvicorn", "websockets"):
            try:
                found[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                found[name] = "missing"
    return found


def wait_quiet(max_wait: float = 90.0, threshold: float = 0.25) -> float:
    """Wait until the machine is nearly idle (other sessions' tests share these CPUs).

    Returns the CPU share other programs were using when we went ahead.
    """
    end = time.monotonic() + max_wait
    while True:
        busy0 = system.busy_seconds()
        time.sleep(1.0)
        share = system.busy_seconds() - busy0
        if share < threshold or time.monotonic() >= end:
            return round(share, 2)
        console.print(f"[yellow]machine busy ({share:.2f} CPU in use by others); waiting[/]")
        time.sleep(4.0)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_target(
    target: Target, scenario: str, args: list[str], node_dir: Path, work: Path
) -> tuple[results.Result | None, dict[str, Any]]:
    server_pin, bench_pin = pinning()
    port = free_port()
    server_cmd = [*server_pin, *target.command(port, node_dir)]
    env = dict(os.environ, NODE_PATH=str(node_dir / "node_modules"))
    out = work / f"{scenario}-{target.name}.json"
    bench_cmd = [
        *bench_pin, sys.executable, "-m", "hubbub.bench", scenario,
        "--url", f"ws://127.0.0.1:{port}", "--protocol", target.protocol,
        "--label", target.name, "--json", str(out), *target.bench_args, *args,
    ]  # fmt: skip
    console.rule(f"[bold]{scenario}: {target.name}[/] — {target.describe}")
    record: dict[str, Any] = {"target": target.name, "describe": target.describe}
    record["cpu_in_use_by_others_at_start"] = wait_quiet()
    server = subprocess.Popen(server_cmd, env=env, cwd=ROOT)
    try:
        wait_for_port(port, server)
        time.sleep(0.5)  # let the server settle before measuring its RSS
        bench_cmd[bench_cmd.index("--json") : bench_cmd.index("--json")] = [
            "--server-pid",
            str(server.pid),
        ]
        record.update(server_command=_show(server_cmd), bench_command=_show(bench_cmd))
        completed = subprocess.run(bench_cmd, env=env, cwd=ROOT, check=False)
        record["bench_exit"] = completed.returncode
    finally:
        stop(server)
    return (results.read(out) if out.exists() else None), record


def _show(cmd: list[str]) -> str:
    """A command as a reader would type it: paths relative to the repository."""
    shown = []
    for part in cmd:
        if part == sys.executable:
            part = "python"
        elif part.startswith(str(ROOT)):
            part = os.path.relpath(part, ROOT)
        shown.append(part)
    return " ".join(shown)


def ratio_table(
    scenario: str, runs: list[results.Result], metric: str, higher: bool, baseline: str
) -> tuple[Table, dict[str, float]]:
    base = next((r for r in runs if r.label == baseline), None)
    base_value = base.summary.get(metric, 0.0) if base is not None else 0.0
    table = Table(title=f"{scenario}: {metric} ({'higher' if higher else 'lower'} is better)")
    for name in ("target", metric, f"÷ {baseline}", "p50 ms", "p99 ms", "p99 @½ ms", "srv µs/msg"):
        table.add_column(name, justify="left" if name == "target" else "right")
    ratios: dict[str, float] = {}
    for run in runs:
        value = run.summary.get(metric, 0.0)
        ratio = value / base_value if base_value else 0.0
        ratios[run.label] = round(ratio, 3)
        p50 = run.summary.get("p50_at_max_us", run.summary.get("p50_us", 0.0))
        p99 = run.summary.get("p99_at_max_us", run.summary.get("p99_us", 0.0))
        half = run.summary.get("p99_at_half_us", 0.0)
        cpu = run.summary.get(
            "server_cpu_us_per_delivery", run.summary.get("server_cpu_us_per_round_trip", 0.0)
        )
        table.add_row(
            run.label,
            f"{value:,.1f}",
            f"{ratio:.2f}x" if ratio else "-",
            f"{p50 / 1000:.2f}" if p50 else "-",
            f"{p99 / 1000:.2f}" if p99 else "-",
            f"{half / 1000:.2f}" if half else "-",
            f"{cpu:.2f}" if cpu else "-",
        )
    return table, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenario", choices=sorted(PRESETS))
    parser.add_argument("--targets", help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--baseline", default="picows")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", help="file name stem (default: the scenario)")
    parser.add_argument(
        "--node-dir", type=Path, default=Path(tempfile.gettempdir()) / "hubbub-bench-node"
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ns = parser.parse_args(argv[:split])
    extra = argv[split + 1 :]  # after "--": passed to `hubbub bench` as they are
    preset = PRESETS[ns.scenario]
    names = (ns.targets or preset["targets"]).split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    args = [*preset["args"], *extra]
    versions = peer_versions(names, ns.node_dir)
    runs: list[results.Result] = []
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hubbub-compare-") as tmp:
        for name in names:
            result, record = run_target(TARGETS[name], ns.scenario, args, ns.node_dir, Path(tmp))
            records.append(record)
            if result is not None:
                runs.append(result)
    if not runs:
        sys.exit("no run produced results")
    table, ratios = ratio_table(ns.scenario, runs, preset["metric"], preset["higher"], ns.baseline)
    console.print(table)
    stem = ns.name or ns.scenario
    server_pin, bench_pin = pinning()
    document = {
        "schema": SCHEMA,
        "scenario": ns.scenario,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": msgspec.to_builtins(runs[0].machine),
        "pinning": {"server": " ".join(server_pin), "generator": " ".join(bench_pin)},
        "versions": {**system.versions(), **versions},
        "metric": preset["metric"],
        "higher_is_better": preset["higher"],
        "baseline": ns.baseline,
        "ratios": ratios,
        "targets": records,
        "results": [json.loads(results.dumps(r)) for r in runs],
    }
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    report.plot(runs, ns.out / f"{stem}.png", title=f"{ns.scenario}: hubbub vs peers")
    console.print(f"wrote {ns.out / f'{stem}.json'} and {ns.out / f'{stem}.png'}")


if __name__ == "__main__":
    main()
