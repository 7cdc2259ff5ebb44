"""`hubbub bench` arguments: a bad one is a usage error naming it, before any load starts.

No server is needed: every case here fails before a connection is tried. The last
tests check that a run whose load worker died exits non-zero.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from hubbub.bench import cli, runner
from hubbub.bench.plan import RunConfig

URL = "ws://127.0.0.1:1"
"""Nothing listens there; no case below gets as far as connecting."""
COMMON = ["--url", URL, "--deadline", "10"]
"""Given before a case's own options: for an option given twice the last one counts."""

BAD = [
    (["connect", "-n", "1", "--source-addrs", "300"], "--source-addrs"),
    (["connect", "-n", "1", "--source-addrs", "-1"], "--source-addrs"),
    (["connect", "-n", "2", "--codec", "nope"], "--codec"),
    (["connect", "-n", "0"], "--connections"),
    (["connect", "--hold", "-1"], "--hold"),
    (["connect", "--deadline", "0"], "--deadline"),
    (["connect", "--concurrency", "0"], "--concurrency"),
    (["connect", "-n", "7000000", "--source-addrs", "0"], "source addresses"),
    (["fanout", "-n", "3", "--duration", "0"], "--duration"),
    (["fanout", "-n", "3", "--duration", "-1"], "--duration"),
    (["fanout", "-n", "3", "--duration", "nan"], "--duration"),
    (["fanout", "-n", "3", "--publishers", "0"], "--publishers"),
    (["fanout", "-n", "0"], "--subscribers"),
    (["fanout", "-n", "3", "--rate", "0"], "--rate"),
    (["fanout", "-n", "3", "--rate", "-20"], "--rate"),
    (["fanout", "-n", "3", "--step-factor", "0.5"], "--step-factor"),
    (["fanout", "-n", "3", "--max-rate", "-1"], "--max-rate"),
    (["fanout", "-n", "3", "--max-steps", "0"], "--max-steps"),
    (["fanout", "-n", "3", "--p99-bound-ms", "0"], "--p99-bound-ms"),
    (["fanout", "-n", "3", "--min-keep-up", "0"], "--min-keep-up"),
    (["fanout", "-n", "3", "--min-keep-up", "1.5"], "--min-keep-up"),
    (["fanout", "-n", "3", "--max-pace-late-ms", "0"], "--max-pace-late-ms"),
    (["fanout", "-n", "3", "--payload-size", "-1"], "--payload-size"),
    (["fanout", "-n", "3", "--server-pid", "-5"], "--server-pid"),
    (["fanout", "-n", "3", "--publisher-cpus", "x"], "--publisher-cpus"),
    (["fanout", "-n", "3", "--publisher-cpus", "4096"], "--publisher-cpus"),
    (["rooms", "--members", "0"], "--members"),
    (["rooms", "--rooms", "0"], "--rooms"),
    (["rooms", "--rate", "0"], "--rate"),
    (["echo", "--pipeline", "0"], "--pipeline"),
    (["echo", "-n", "-3"], "--connections"),
    (["echo", "--procs", "-1"], "--procs"),
    (["echo", "--url", "ws://10.0.0.5:8000"], "--allow-remote"),
    (["echo", "--url", "ws://127.example.com:8000"], "--allow-remote"),
]


def invoke(args: list[str]) -> Any:
    """Run ``hubbub bench ARGS`` in this process, wide enough that messages stay whole."""
    return CliRunner().invoke(cli.app, args, env={"COLUMNS": "300", "NO_COLOR": "1"})


@pytest.mark.parametrize(("args", "named"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_argument_is_a_usage_error_naming_it(
    args: list[str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2 with the option in the message; no traceback, no run."""

    def no_run(*_: Any, **__: Any) -> None:
        raise AssertionError("a worker was started")

    monkeypatch.setattr(runner.Fleet, "start", no_run)
    command, *options = args
    result = invoke([command, *COMMON, *options])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert named in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("url", ["ws://LOCALHOST:1", "ws://[::1]:1", "ws://127.0.0.5:1"])
def test_a_loopback_url_in_any_spelling_is_taken_without_allow_remote(url: str) -> None:
    assert cli._url(url, "centrifuge", allow_remote=False) == f"{url}/connection/websocket"


def test_plot_of_a_missing_file_names_it(tmp_path: Path) -> None:
    """A file that is not there: one line naming it, exit 2."""
    missing = tmp_path / "nope.json"
    result = invoke(["plot", str(missing), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert str(missing) in line
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("content", ['{"a": 1}', "[1, 2]", "not json", ""])
def test_plot_of_a_file_that_is_no_result_names_it(tmp_path: Path, content: str) -> None:
    """JSON that is not a bench result, or not JSON at all: one line naming the file."""
    path = tmp_path / "other.json"
    path.write_text(content)
    result = invoke(["plot", str(path), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert str(path) in line and "not a hubbub bench result" in line


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_run_whose_worker_died_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load process is killed as soon as it starts: the run stops early, says why
    in its notes and exits 1 (not a traceback, not 0)."""
    start = runner.Fleet.start

    def start_and_kill(cfg: RunConfig, shares: list[Any]) -> runner.Fleet:
        fleet = start(cfg, shares)
        for proc in fleet.procs:
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)
        return fleet

    monkeypatch.setattr(runner.Fleet, "start", start_and_kill)
    out = tmp_path / "r.json"
    url = f"ws://127.0.0.1:{closed_port()}"
    result = invoke(["connect", "-n", "1", "--hold", "0", "--url", url, "--deadline", "20",
                     "--json", str(out)])  # fmt: skip
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    notes = json.loads(out.read_text())["notes"]
    assert any("WorkerDied" in note for note in notes), notes


def test_a_run_stopped_by_its_deadline_exits_non_zero(tmp_path: Path) -> None:
    """A server that accepts but never answers the handshake: the run stops at its
    deadline with the partial results written, and exits 1, not 0."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        out = tmp_path / "r.json"
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        result = invoke(["connect", "-n", "1", "--hold", "0", "--url", url, "--deadline", "1",
                         "--json", str(out)])  # fmt: skip
    assert result.exit_code == 1, result.output
    notes = json.loads(out.read_text())["notes"]
    assert any("RunTimeout" in note for note in notes), notes


def test_a_server_pid_that_is_gone_gives_no_rss_per_connection(tmp_path: Path) -> None:
    """RSS read from a process that is gone would make a nonsense per-connection figure
    (after - before over connections); the run says so instead."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    out = tmp_path / "r.json"
    url = f"ws://127.0.0.1:{closed_port()}"
    invoke(["connect", "-n", "1", "--hold", "0", "--url", url, "--deadline", "20",
            "--server-pid", str(gone.pid), "--json", str(out)])  # fmt: skip
    written = json.loads(out.read_text())
    assert any(f"server process {gone.pid} gone" in note for note in written["notes"])
    assert written["connect"]["rss_per_connection_bytes"] == 0.0


@pytest.mark.parametrize("scenario", ["connect", "fanout", "rooms", "echo"])
def test_every_scenario_takes_several_urls_and_server_pids(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes of a cluster, or workers of one ``hubbub serve --workers N``: every scenario
    deals its connections over the URLs and counts every server process, not the last."""
    seen: list[RunConfig] = []

    def keep(cfg: RunConfig, *_: Any, **__: Any) -> None:
        seen.append(cfg)

    monkeypatch.setattr(cli, "_run", keep)
    result = invoke([scenario, "--url", "ws://127.0.0.1:1", "--url", "ws://127.0.0.1:2",
                     "--server-pid", "11", "--server-pid", "12"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (cfg,) = seen
    assert [urlsplit(u).port for u in cfg.urls] == [1, 2]
    assert cfg.server_pids == (11, 12)


def test_a_server_pid_of_zero_means_no_server_is_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[RunConfig] = []
    monkeypatch.setattr(cli, "_run", lambda cfg, *_, **__: seen.append(cfg))
    result = invoke(["connect", "--server-pid", "0"])
    assert result.exit_code == 0, result.output
    assert seen[0].server_pids == ()


def test_rss_per_connection_counts_every_server_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers hold the connections between them: their RSS is summed; with one of
    them gone there is no figure (its share would be missing)."""
    sizes = {11: 1_000, 12: 2_000}
    monkeypatch.setattr(runner.system, "rss_bytes", lambda pid: sizes.get(pid, 0))
    cfg = RunConfig(scenario="connect", urls=(URL,), server_pids=(11, 12))
    assert runner._server_rss(cfg) == 3_000
    del sizes[12]
    assert runner._server_rss(cfg) is None
    assert runner._server_rss(RunConfig(scenario="connect", urls=(URL,))) is None


def test_only_a_worker_that_only_publishes_moves_to_the_publisher_cpus() -> None:
    """``--publisher-cpus``: the publish-only worker moves; a subscribers' worker, one
    that also publishes, one with no connections, or any worker when none are given,
    stays where it was started."""
    from hubbub.bench.plan import Conn
    from hubbub.bench.worker import place

    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("one CPU allowed here: a move could not be told from staying")
    target = min(before)
    cfg = RunConfig(scenario="fanout", urls=(URL,), publisher_cpus=(target,))
    publisher = [Conn(3, "pub", publish_to="bench:x")]
    subscribers = [Conn(0, "sub", channel="bench:x"), Conn(1, "sub", channel="bench:x")]
    try:
        for mixed in (subscribers, [*publisher, *subscribers], []):
            place(cfg, mixed)
            assert os.sched_getaffinity(0) == before
        place(RunConfig(scenario="fanout", urls=(URL,)), publisher)
        assert os.sched_getaffinity(0) == before
        place(cfg, publisher)
        assert os.sched_getaffinity(0) == {target}
    finally:
        os.sched_setaffinity(0, before)
