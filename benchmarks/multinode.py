"""Two hubbub nodes (or workers) on Redis and on NATS, against one node, in one run.

    .venv/bin/python benchmarks/multinode.py
    .venv/bin/python benchmarks/multinode.py --targets memory-1,redis-2 -- --max-steps 6

Targets, measured one after the other in one run, with the same ``hubbub bench
fanout`` scenario as ``compare.py fanout`` (1,000 subscribers, 64-byte payloads, rate
stepped x1.6 from 8/s, p99 bound 1 s), or with ``--scenario rooms`` its ``rooms`` preset
(100 rooms of 10 members who all publish):

* ``memory-1`` — one ``hubbub serve`` node, ``engine.broker = memory://`` (the baseline);
* ``redis-2`` — two nodes, ``HUBBUB_ENGINE_BROKER=redis://127.0.0.1:6379/0?prefix=…``;
* ``nats-2`` — two nodes, ``HUBBUB_ENGINE_BROKER=nats://127.0.0.1:4222?prefix=…``;
* ``redis-w1`` / ``redis-w2`` — one ``hubbub serve --workers 1`` / ``--workers 2`` on
  Redis: one port, the kernel spreading connections over the worker processes.

``--workers 2 ≥ 1.7x one worker`` needs a core per worker plus the generator's. On two
cores, ``--cpu-quota F`` gives every server process (each node, each worker) a cgroup of
its own limited to F of one CPU (``cpuquota.py``), all on the server's core: one worker
gets one budget, two get two, as one core each would give them::

    .venv/bin/python benchmarks/multinode.py --targets redis-w1,redis-w2 --baseline redis-w1 \
        --cpu-quota 0.15 --name workers-scaling -- --rate 50 --step-factor 1.25 --max-steps 20

With two nodes, subscribers are dealt round-robin over both (``--url`` twice) and the
publisher talks to the first: half the deliveries cross the broker to the other node.
Every hubbub node runs under ``taskset -c 0`` and the generator under ``taskset -c 1``;
Redis and NATS are the machine's shared services and run where the kernel puts them
(they are not ours to restart or pin). Their CPU time over each run is read from
``/proc`` and recorded (``broker_cpu_s``), with the caveat that other sessions may use
them too. Every run uses a fresh key/subject prefix, so nothing is shared or flushed.

Writes ``<out>/multinode-<scenario>.json`` and ``.png`` (``--name`` to change it) and
prints ratios to ``--baseline`` (``memory-1`` unless given).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (
    CONFIGS,
    PRESETS,
    ROOT,
    _show,
    console,
    free_port,
    pinning,
    ratio_table,
    stop,
    wait_for_port,
    wait_quiet,
)
from cpuquota import CpuQuota, QuotaUnavailable

from hubbub.bench import report, results, system

HERE = Path(__file__).resolve().parent
SCHEMA = "hubbub.bench.multinode/1"
REDIS = "redis://127.0.0.1:6379/0"
NATS = "nats://127.0.0.1:4222"
TARGETS: dict[str, tuple[int, int, str, str]] = {
    # name: (nodes, --workers per node, broker URL without prefix, description)
    "memory-1": (1, 1, "memory://", "1 hubbub node, memory engine (baseline)"),
    "redis-2": (2, 1, REDIS, "2 hubbub nodes, Redis broker (Pub/Sub)"),
    "nats-2": (2, 1, NATS, "2 hubbub nodes, NATS broker"),
    "redis-w1": (1, 1, REDIS, "hubbub serve --workers 1, Redis broker"),
    "redis-w2": (1, 2, REDIS, "hubbub serve --workers 2, Redis broker"),
}


def broker_url(base: str, prefix: str) -> str:
    if base.startswith("memory"):
        return base
    return f"{base}{'&' if '?' in base else '?'}prefix={prefix}"


def service_pid(name: str) -> int:
    """PID of a running service (redis-server, nats-server), 0 when not found."""
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    pids = found.stdout.split()
    return int(pids[0]) if pids else 0


def service_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for key, cmd in (
        ("redis_server", ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "INFO", "server"]),
        ("nats_server", ["nats-server", "--version"]),
    ):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            found[key] = "unknown"
            continue
        if key == "redis_server":
            line = next((x for x in out.splitlines() if x.startswith("redis_version:")), "")
            found[key] = line.partition(":")[2].strip() or "unknown"
        else:
            found[key] = out.strip().split()[-1] if out.strip() else "unknown"
    for package in ("redis", "nats-py"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def worker_pids(node: subprocess.Popen[bytes], workers: int, timeout: float = 30.0) -> list[int]:
    """The processes that serve a node: itself, or its ``workers`` forked children."""
    if workers == 1:
        return [node.pid]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = system.children(node.pid)
        if len(found) >= workers:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"node {node.pid} did not start {workers} workers in {timeout:.0f} s")


def run_target(
    name: str,
    args: list[str],
    prefix: str,
    work: Path,
    deadline: float,
    cpu_quota: float,
    scenario: str,
) -> tuple[results.Result | None, dict[str, Any]]:
    nodes, workers, base, describe = TARGETS[name]
    server_pin, bench_pin = pinning()
    broker = broker_url(base, prefix)
    env = dict(os.environ, HUBBUB_ENGINE_BROKER=broker)
    console.rule(f"[bold]{scenario}: {name}[/] — {describe}")
    record: dict[str, Any] = {
        "target": name,
        "describe": describe,
        "nodes": nodes,
        "engine_broker": broker,
    }
    record["cpu_in_use_by_others_at_start"] = wait_quiet(max_wait=30.0)
    servers: list[subprocess.Popen[bytes]] = []
    quotas: list[CpuQuota] = []
    commands: list[list[str]] = []
    ports: list[int] = []
    out = work / f"{name}.json"
    service = {"redis": "redis-server", "nats": "nats-server"}.get(base.split(":")[0], "")
    spid = service_pid(service) if service else 0
    try:
        for _ in range(nodes):
            port = free_port()
            cmd = [
                *server_pin, sys.executable, "-m", "hubbub.cli", "serve",
                "--config", str(CONFIGS / "hubbub-bench.yaml"),
                "--port", str(port), "--internal-port", str(free_port()),
                *(["--workers", str(workers)] if workers > 1 else []),
            ]  # fmt: skip
            servers.append(subprocess.Popen(cmd, env=env, cwd=ROOT))
            commands.append(cmd)
            ports.append(port)
        for port, server in zip(ports, servers, strict=True):
            wait_for_port(port, server)
        pids = [pid for server in servers for pid in worker_pids(server, workers)]
        for pid in pids if cpu_quota else []:
            quota = CpuQuota(f"hubbub-bench-{pid}", cpu_quota)
            quotas.append(quota)
            quota.add(pid)
        if quotas:
            record["cpu_quota"] = f"{cpu_quota:g} CPU per server process ({len(quotas)})"
        time.sleep(1.0)  # let the nodes settle (and the broker subscriptions come up)
        bench_cmd = [*bench_pin, sys.executable, "-m", "hubbub.bench", scenario]
        for port in ports:
            bench_cmd += ["--url", f"ws://127.0.0.1:{port}"]
        for pid in pids:
            bench_cmd += ["--server-pid", str(pid)]
        bench_cmd += [
            "--protocol", "centrifuge", "--label", name, "--deadline", str(deadline),
            "--json", str(out), *args,
        ]  # fmt: skip
        record["server_commands"] = [
            f"HUBBUB_ENGINE_BROKER='{broker}' {_show(c)}" if nodes > 1 else _show(c)
            for c in commands
        ]
        record["bench_command"] = _show(bench_cmd)
        cpu0 = system.cpu_seconds(spid) if spid else 0.0
        served0 = [system.cpu_seconds(pid) for pid in pids]
        t0 = time.monotonic()
        completed = subprocess.run(bench_cmd, cwd=ROOT, check=False)
        record["bench_exit"] = completed.returncode
        record["bench_wall_s"] = round(time.monotonic() - t0, 1)
        if spid:
            record["broker_service"] = service
            record["broker_cpu_s"] = round(system.cpu_seconds(spid) - cpu0, 2)
        # Per server process (node or worker), over the whole bench run: how the load split.
        record["server_cpu_s"] = [
            round(system.cpu_seconds(pid) - before, 2)
            for pid, before in zip(pids, served0, strict=True)
        ]
        record["nodes_alive_at_end"] = sum(1 for s in servers if s.poll() is None)
        if quotas:
            record["cpu_throttled"] = [quota.stats() for quota in quotas]
    finally:
        for server in servers:
            stop(server)
        for quota in quotas:
            quota.remove()
    return (results.read(out) if out.exists() else None), record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", help="file name stem (default: multinode-<scenario>)")
    parser.add_argument("--deadline", type=float, default=300.0, help="per target, seconds")
    parser.add_argument("--baseline", default="memory-1", help="the target ratios divide by")
    parser.add_argument(
        "--scenario",
        choices=("fanout", "rooms"),
        default="fanout",
        help="compare.py's preset of that name: one publisher to 1,000 subscribers, or "
        "100 rooms of 10 members who all publish",
    )
    parser.add_argument(
        "--cpu-quota",
        type=float,
        default=0.0,
        help="limit every server process to this share of one CPU (a cgroup each; root "
        "only): scaling with --workers on a machine without a core per worker",
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ns = parser.parse_args(argv[:split])
    extra = argv[split + 1 :]
    names = ns.targets.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    if ns.baseline not in names:
        parser.error(f"--baseline {ns.baseline} is not among the targets")
    if ns.cpu_quota:
        try:
            CpuQuota("hubbub-bench-probe", ns.cpu_quota).remove()
        except (QuotaUnavailable, ValueError) as exc:
            parser.error(f"--cpu-quota: {exc}")
    args = [*PRESETS[ns.scenario]["args"], *extra]
    prefix = f"benchmn{secrets.token_hex(4)}"
    runs: list[results.Result] = []
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hubbub-multinode-") as tmp:
        for name in names:
            result, record = run_target(
                name,
                args,
                prefix,
                Path(tmp),
                ns.deadline,
                cpu_quota=ns.cpu_quota,
                scenario=ns.scenario,
            )
            records.append(record)
            if result is not None:
                runs.append(result)
    if not runs:
        sys.exit("no run produced results")
    metric = PRESETS[ns.scenario]["metric"]
    higher = PRESETS[ns.scenario]["higher"]
    table, ratios = ratio_table(f"multinode {ns.scenario}", runs, metric, higher, ns.baseline)
    console.print(table)
    # CPU ratios too (lower is better): server µs per delivery vs the baseline.
    base = next((r for r in runs if r.label == ns.baseline), None)
    base_cpu = base.summary.get("server_cpu_us_per_delivery", 0.0) if base else 0.0
    cpu_ratios = {
        r.label: round(r.summary.get("server_cpu_us_per_delivery", 0.0) / base_cpu, 3)
        for r in runs
        if base_cpu
    }
    console.print(f"server CPU per delivery ÷ {ns.baseline}: {cpu_ratios}")
    server_pin, bench_pin = pinning()
    document = {
        "schema": SCHEMA,
        "scenario": ns.scenario,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/multinode.py " + " ".join(sys.argv[1:]),
        "machine": msgspec.to_builtins(runs[0].machine),
        "pinning": {
            "servers": f"{' '.join(server_pin)} (every hubbub node)"
            + (f", each process limited to {ns.cpu_quota:g} CPU" if ns.cpu_quota else ""),
            "generator": " ".join(bench_pin),
            "brokers": "not pinned (shared system services)",
        },
        "versions": {**system.versions(), **service_versions()},
        "key_prefix": prefix,
        "metric": metric,
        "higher_is_better": higher,
        "baseline": ns.baseline,
        "ratios": ratios,
        "cpu_per_delivery_ratios": cpu_ratios,
        "targets": records,
        "results": [json.loads(results.dumps(r)) for r in runs],
    }
    ns.out.mkdir(parents=True, exist_ok=True)
    name = ns.name or f"multinode-{ns.scenario}"
    (ns.out / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    report.plot(runs, ns.out / f"{name}.png", title=f"{ns.scenario}: {', '.join(names)}")
    console.print(f"wrote {ns.out / f'{name}.json'} and {ns.out / f'{name}.png'}")


if __name__ == "__main__":
    main()
