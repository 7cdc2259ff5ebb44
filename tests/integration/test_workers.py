"""``hubbub serve --workers N``: processes sharing one port through a real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import EXAMPLE, UNIT, free_port

from hubbub.bench import system
from integration.wsclient import WsClient, http_get, open_client

START_TIMEOUT = 600 * UNIT  # two cold interpreters on a loaded 2-core machine
REDIS = ("127.0.0.1", 6379)


def _free_port_pair() -> int:
    """A port p with p and p + 1 both free: the workers' internal ports."""
    for _ in range(100):
        base = free_port()
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two consecutive free ports")


def _redis_down() -> str | None:
    try:
        socket.create_connection(REDIS, timeout=1).close()
    except OSError:
        return "no Redis on 127.0.0.1:6379 (install redis-server; make test starts it)"
    return None


async def _spawn(
    config: Path, *args: str, broker: str | None, log: Path | None = None
) -> asyncio.subprocess.Process:
    """``hubbub serve`` with ``args``; its output goes to ``log`` when given (a pipe that
    nobody reads could fill up and stall the workers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    if broker:
        env["HUBBUB_ENGINE_BROKER"] = broker
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hubbub.cli",
        "serve",
        "--config",
        str(config),
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL if log else asyncio.subprocess.PIPE,
        stderr=log.open("ab") if log else asyncio.subprocess.PIPE,
    )


async def _metric(port: int, name: str) -> float:
    status, body = await http_get(port, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics on port {port}")


@asynccontextmanager
async def _explained(log: Path) -> AsyncIterator[None]:
    """A start-up that times out fails with the workers' own log lines."""
    try:
        yield
    except (TimeoutError, AssertionError) as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        raise AssertionError(f"workers did not become ready: {exc!r}\n{tail}") from exc


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, int]]:
    """Two workers on Redis with a random channel namespace prefix; (process, port, internal)."""
    reason = _redis_down()
    if reason:
        pytest.skip(reason)
    internal = _free_port_pair()
    port = free_port()
    while port in (internal, internal + 1):
        port = free_port()
    prefix = f"hubbubtest{os.getpid()}{port}"
    proc = await _spawn(
        EXAMPLE,
        "--workers",
        "2",
        "--port",
        str(port),
        "--internal-port",
        str(internal),
        broker=f"redis://127.0.0.1:6379/0?prefix={prefix}",
        log=tmp_path / "workers.log",
    )
    try:
        async with _explained(tmp_path / "workers.log"), asyncio.timeout(START_TIMEOUT):
            for worker_port in (internal, internal + 1):
                while True:
                    assert proc.returncode is None, "the supervisor exited"
                    try:
                        status, _ = await http_get(worker_port, "/readyz")
                    except OSError:
                        status = 0
                    if status == 200:
                        break
                    await asyncio.sleep(2 * UNIT)
        yield proc, port, internal
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), START_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_workers_share_the_port_and_deliver_across_processes(
    workers: tuple[asyncio.subprocess.Process, int, int],
) -> None:
    """Connections spread over both workers; a publication reaches subscribers on each."""
    _, port, internal = workers
    url = f"ws://127.0.0.1:{port}/connection/websocket"
    clients: list[WsClient] = [await open_client(url) for _ in range(16)]
    counts = [await _metric(p, "hubbub_connections") for p in (internal, internal + 1)]
    assert sum(counts) == 16
    assert all(count > 0 for count in counts), counts  # 2^-15 odds of a false failure
    for client in clients:
        await client.subscribe("chat:workers")
    await clients[0].publish("chat:workers", {"n": 1})
    for client in clients:
        pubs = await client.pubs(1)
        assert pubs[0]["data"] == {"n": 1}
    for client in clients:
        await client.close()


async def test_workers_stop_together_on_sigterm(
    workers: tuple[asyncio.subprocess.Process, int, int],
) -> None:
    """SIGTERM to the supervisor stops every worker gracefully; the exit status is 0."""
    proc, port, _ = workers
    client = await open_client(f"ws://127.0.0.1:{port}/connection/websocket")
    proc.send_signal(signal.SIGTERM)
    assert await client.closed() == (3001, "shutdown, reconnect")
    assert await asyncio.wait_for(proc.wait(), START_TIMEOUT) == 0


async def test_a_worker_that_dies_is_started_again(
    workers: tuple[asyncio.subprocess.Process, int, int],
) -> None:
    """Killing one worker process: the supervisor starts a new one on the same ports."""
    proc, _, internal = workers
    victim = _worker_pids(proc.pid)[1]
    os.kill(victim, signal.SIGKILL)
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            pids = _worker_pids(proc.pid)
            if len(pids) == 2 and victim not in pids:
                try:
                    status, _ = await http_get(internal + 1, "/readyz")
                except OSError:
                    status = 0
                if status == 200:
                    break
            await asyncio.sleep(2 * UNIT)


def _worker_pids(parent: int) -> list[int]:
    """The children of the supervisor, oldest first (from /proc)."""
    return system.children(parent)


async def test_workers_without_a_broker_exit_2_naming_the_setting(tmp_path: Path) -> None:
    """--workers 2 on the memory broker refuses to start and says which setting to add."""
    proc = await _spawn(EXAMPLE, "--workers", "2", "--port", str(free_port()), broker=None)
    code = await asyncio.wait_for(proc.wait(), START_TIMEOUT)
    err = (await proc.stderr.read()).decode()  # type: ignore[union-attr]
    assert code == 2
    assert "engine.broker" in err and "HUBBUB_ENGINE_BROKER" in err


async def test_workers_that_cannot_start_make_the_supervisor_give_up(tmp_path: Path) -> None:
    """Their port is taken: each start fails at once, and after a few in a row the
    supervisor stops and exits 1 with a reason, instead of restarting them for good."""
    reason = _redis_down()
    if reason:
        pytest.skip(reason)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        internal = _free_port_pair()
        log = tmp_path / "workers.log"
        proc = await _spawn(
            EXAMPLE,
            "--workers", "2", "--port", str(port), "--internal-port", str(internal),
            broker=f"redis://127.0.0.1:6379/0?prefix=hubbubtest{os.getpid()}{port}",
            log=log,
        )  # fmt: skip
        try:
            status = await asyncio.wait_for(proc.wait(), START_TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert status == 1
    assert "keeps failing at start" in log.read_text(errors="replace")
