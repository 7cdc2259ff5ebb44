"""check_workers: which configurations --workers N refuses, without starting processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from conftest import chat_settings

import hubbub.server
from hubbub.errors import ConfigError
from hubbub.workers import Supervisor, _worker_main, check_workers

REDIS = "redis://127.0.0.1:6379/0"


def test_one_worker_runs_on_anything() -> None:
    check_workers(chat_settings(), 1)


@pytest.mark.parametrize("broker", ["memory://", "MEMORY://"])
def test_several_workers_refuse_an_in_process_broker(broker: str) -> None:
    with pytest.raises(ConfigError, match=r"engine\.broker"):
        check_workers(chat_settings(**{"engine.broker": broker}), 2)


def test_several_workers_refuse_in_process_presence() -> None:
    settings = chat_settings(**{"engine.broker": REDIS, "engine.presence": "memory://"})
    with pytest.raises(ConfigError, match=r"engine\.presence"):
        check_workers(settings, 2)


def shared(**overrides: object) -> dict[str, object]:
    """A shared broker and fixed ports, as several workers need."""
    return {
        "engine.broker": REDIS,
        "server.port": 9000,
        "server.internal_port": 9100,
        **overrides,
    }


def test_several_workers_on_a_shared_broker_pass() -> None:
    check_workers(chat_settings(**shared()), 2)


@pytest.mark.parametrize("key", ["server.port", "server.tcp_port"])
def test_several_workers_refuse_a_port_picked_freely(key: str) -> None:
    """With 0 each worker would listen on a port of its own, sharing nothing."""
    with pytest.raises(ConfigError, match=rf"fixed {key}"):
        check_workers(chat_settings(**shared(**{key: 0})), 2)


@pytest.mark.parametrize(("key", "port"), [("server.port", 9101), ("server.tcp_port", 9102)])
def test_several_workers_refuse_internal_ports_that_reach_a_public_one(key: str, port: int) -> None:
    """Worker i listens on internal_port + i: 9100-9102 for three workers."""
    with pytest.raises(ConfigError, match=rf"9100-9102 .* include {key} {port}"):
        check_workers(chat_settings(**shared(**{key: port})), 3)


def test_a_worker_starts_with_the_default_signal_handling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The supervisor's SIGTERM handler is not inherited: a SIGTERM before the server
    installs its own must end the worker, not run the supervisor's copy."""
    seen_r, seen_w = os.pipe()

    def report(settings: object, reuse_port: bool) -> None:
        handler = signal.getsignal(signal.SIGTERM)
        os.write(seen_w, b"default" if handler is signal.SIG_DFL else b"inherited")

    monkeypatch.setattr(hubbub.server, "run", report)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        proc = multiprocessing.get_context("fork").Process(
            target=_worker_main, args=(chat_settings(), 0, os.getpid())
        )
        proc.start()
        proc.join(30)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert proc.exitcode == 0
    assert os.read(seen_r, 16) == b"default"


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ConfigError, match="--workers"):
        check_workers(chat_settings(), 0)


def _until_sigterm(settings: object, reuse_port: bool) -> None:
    """A stand-in server: serves nothing, leaves cleanly on SIGTERM, else after 30 s."""
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    time.sleep(30)
    os._exit(3)


def test_a_sigterm_while_a_worker_is_forked_still_reaches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop signal that comes while a worker is being forked waits until that worker
    is known, and the worker does not run the supervisor's handler it inherited: it is
    told, and the supervisor ends promptly with 0, not by killing it after
    shutdown_timeout + 5 s with 1."""
    monkeypatch.setattr(hubbub.server, "run", _until_sigterm)
    supervisor = Supervisor(chat_settings(**shared(**{"server.shutdown_timeout": 1})), 1)
    fork = supervisor._start

    def signalled_while_forking(index: int) -> None:
        real_start = supervisor._context.Process.start

        def start(proc: Any) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives during the fork
            real_start(proc)

        monkeypatch.setattr(supervisor._context.Process, "start", start)
        fork(index)

    monkeypatch.setattr(supervisor, "_start", signalled_while_forking)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        assert supervisor.run() == 0
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
