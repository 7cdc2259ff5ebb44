"""End to end: `hubbub bench fanout` against a real `hubbub serve`, a few connections."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import eventually, free_port
from faultproxy import FaultProxy
from integration.wsclient import http_get

from hubbub.bench import results

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "benchmarks" / "configs" / "hubbub-bench.yaml"


class Served(NamedTuple):
    port: int
    pid: int
    internal_port: int


@pytest.fixture
def server() -> Iterator[Served]:
    """`hubbub serve` on the bench config and free ports."""
    port, internal = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubbub.cli", "serve", "--config", str(CONFIG),
         "--port", str(port), "--internal-port", str(internal)],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield Served(port, proc.pid, internal)
    finally:
        proc.terminate()
        proc.wait(15)


def test_fanout_smoke_run(server: Served, tmp_path: Path) -> None:
    """A one-step fan-out to 5 subscribers delivers everything and writes valid JSON."""
    # --drain 3: an upper bound; draining ends as soon as deliveries stop arriving.
    port, pid, _ = server
    out = tmp_path / "fanout.json"
    plot = tmp_path / "fanout.png"
    completed = subprocess.run(
        [sys.executable, "-m", "hubbub.bench", "fanout", "-n", "5", "--rate", "50",
         "--step-factor", "1", "--duration", "1", "--warmup", "0", "--drain", "3",
         "--url", f"ws://127.0.0.1:{port}", "--server-pid", str(pid),
         "--json", str(out), "--plot", str(plot), "--deadline", "30"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    result = results.read(out)
    assert result.scenario == "fanout" and result.protocol == "centrifuge"
    assert result.connect is not None and result.connect.connected == 6
    (step,) = [s for s in result.steps if not s.label.startswith("half")]
    # Every publication reaches all five subscribers (counts, not timings: a loaded
    # machine may send fewer than rate x duration).
    assert 0 < step.sent <= 50
    assert step.expected == 5 * step.sent
    assert step.delivered_total == step.expected
    assert step.latency.count == step.delivered_total
    # The publisher's pacing lateness came back from its worker (its size is timing).
    assert step.pace_late_p99_ms is not None and step.pace_late_max_ms is not None
    assert 0 <= step.pace_late_p99_ms <= step.pace_late_max_ms
    # server_cpu_s is not asserted: /proc counts 10 ms ticks, and 250 small deliveries
    # may round to zero; the larger runs in benchmarks/ show it.
    assert plot.stat().st_size > 0


def test_localhost_with_source_addresses(server: Served, tmp_path: Path) -> None:
    """ws://localhost with --source-addrs 2 binds 127.0.0.2 and .3, as 127.0.0.1 would."""
    port = server.port
    out = tmp_path / "connect.json"
    completed = subprocess.run(
        [sys.executable, "-m", "hubbub.bench", "connect", "-n", "4", "--source-addrs", "2",
         "--hold", "0", "--url", f"ws://localhost:{port}", "--json", str(out),
         "--deadline", "30"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    result = results.read(out)
    assert result.params["source_addresses"] == ["127.0.0.2", "127.0.0.3"]
    assert result.connect is not None and result.connect.connected == 4


async def _publishing(internal_port: int) -> bool:
    """Has the server received a publish command yet (from its /metrics)?"""
    try:
        _, body = await http_get(internal_port, "/metrics")
    except OSError:
        return False  # the internal listener opens after the public one
    found = re.search(rb'^hubbub_commands_total\{method="publish"\} (\S+)$', body, re.M)
    return found is not None and float(found.group(1)) > 0


async def test_connections_the_server_ended_are_opened_again_for_the_next_step(
    server: Served, tmp_path: Path
) -> None:
    """Every connection is cut during the run (a server that kicked its clients, or
    restarted): the next step opens them again and delivers everything, instead of
    running every later step with the publisher gone."""
    port = server.port
    out = tmp_path / "fanout.json"
    async with FaultProxy(port) as proxy:
        bench = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hubbub.bench", "fanout", "-n", "5", "--rate", "50",
            "--step-factor", "1.2", "--max-steps", "3", "--duration", "1", "--warmup", "0",
            "--drain", "3", "--no-half-rate", "--url", proxy.url("ws"),
            "--json", str(out), "--deadline", "40",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            # Publishing has started: every connection is open and a step is running.
            await eventually(lambda: _publishing(server.internal_port))
            assert proxy.connections == 6
            await proxy.cut()
            _, stderr = await asyncio.wait_for(bench.communicate(), 50)
        finally:
            if bench.returncode is None:
                bench.kill()
                await bench.wait()
    assert bench.returncode == 0, stderr.decode()
    result = results.read(out)
    assert any("6 connections the server had ended were opened again" in n for n in result.notes)
    last = result.steps[-1]
    assert last.lost_connections == 0
    assert last.sent > 0 and last.delivered_total == last.expected == 5 * last.sent
