"""``--workers N``: N server processes sharing one port, supervised by the parent.

The kernel spreads new connections over the processes (SO_REUSEPORT). Processes
share nothing but the broker, so a memory broker is refused: a publication on one
worker would never reach the clients of another. Each worker gets its own internal
port (``internal_port + i``) so every worker's metrics can be scraped.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from urllib.parse import urlsplit

import structlog

from hubbub.config import Settings
from hubbub.errors import ConfigError

PR_SET_PDEATHSIG = 1
RESTART_DELAY = 1.0
"""Seconds before a worker that died on its own is started again."""
EARLY_DEATH = 5.0
"""A worker that dies within this many seconds of its start failed to start."""
MAX_EARLY_DEATHS = 3
"""Failed starts in a row after which the supervisor gives up (a port taken, a broker
that is not there: starting again would only fail again)."""

_log = structlog.get_logger(__name__)


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse a worker count the configuration cannot serve correctly."""
    if workers < 1:
        raise ConfigError(f"--workers: expected 1 or more (got {workers})")
    if workers <= 1:
        return
    engine = settings.engine
    if _in_process(engine.broker):
        raise ConfigError(
            f"--workers {workers} needs a broker the processes share: set engine.broker "
            "to a redis:// or nats:// URL in the config file (or HUBBUB_ENGINE_BROKER); "
            "with the memory broker a message published on one worker never reaches "
            "clients of another"
        )
    if _in_process(engine.presence_url):
        raise ConfigError(
            f"--workers {workers} needs presence the processes share: engine.presence "
            "(HUBBUB_ENGINE_PRESENCE) is memory://; drop it to keep presence with the "
            "broker, or give it a redis:// or nats:// URL"
        )
    server = settings.server
    shared = {"server.port": server.port, "server.tcp_port": server.tcp_port}
    for key, port in shared.items():
        if port == 0:
            raise ConfigError(
                f"--workers {workers} needs a fixed {key}: with 0 every worker would "
                "listen on a port of its own instead of sharing one"
            )
    if server.internal_port:
        internal = range(server.internal_port, server.internal_port + workers)
        for key, port in shared.items():
            if port in internal:
                raise ConfigError(
                    f"--workers {workers}: the workers' internal ports "
                    f"{internal.start}-{internal.stop - 1} (server.internal_port + worker) "
                    f"include {key} {port}; move one of them"
                )


def _in_process(url: str) -> bool:
    """Is ``url`` an engine that lives in one process only (the registry's own parsing)?"""
    return urlsplit(url).scheme == "memory"


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings of worker ``index``: its own internal port, unless ports are picked freely."""
    server = settings.server
    internal = server.internal_port + index if server.internal_port else 0
    return settings.model_copy(
        update={"server": server.model_copy(update={"internal_port": internal})}
    )


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the supervisor dies, so no worker outlives it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own handler must do
        pass


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _worker_main(settings: Settings, index: int, supervisor: int) -> None:
    # The supervisor's handlers came along with the fork, with the two signals blocked
    # (see Supervisor._start): until the server installs its own handlers they must
    # simply end this process, so the defaults go back before they are let through.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _die_with_parent()
    if os.getppid() != supervisor:  # it died before the death signal was armed
        os._exit(1)
    structlog.contextvars.bind_contextvars(worker=index)
    from hubbub.server import run

    run(settings, reuse_port=True)


class Supervisor:
    """Starts the workers, restarts one that dies, forwards SIGTERM/SIGINT to all."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.count = workers
        self._context = multiprocessing.get_context("fork")
        self._procs: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._early_deaths: dict[int, int] = {}
        self._stopping = False

    def _start(self, index: int) -> None:
        proc = self._context.Process(
            target=_worker_main,
            args=(worker_settings(self.settings, index), index, os.getpid()),
            name=f"hubbub-worker-{index}",
        )
        # Blocked across the fork: a stop signal arriving meanwhile waits until the new
        # worker is known (so it is told too), and the child cannot run the handler it
        # inherits before it has put the defaults back (_worker_main).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            proc.start()
            self._procs[index] = proc
            self._started[index] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _log.info("worker started", worker=index, pid=proc.pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for proc in self._procs.values():
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        """Run until a signal; the exit status is 0 when every worker stopped cleanly.

        A worker that dies is started again, unless it keeps dying at start
        (``MAX_EARLY_DEATHS`` in a row): then every worker is stopped and the status is 1.
        """
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for index in range(self.count):
            self._start(index)
        failed = False
        while not self._stopping:
            for index, proc in list(self._procs.items()):
                if proc.is_alive() or self._stopping:
                    continue
                _log.error("worker died", worker=index, exitcode=proc.exitcode)
                if time.monotonic() - self._started[index] < EARLY_DEATH:
                    self._early_deaths[index] = self._early_deaths.get(index, 0) + 1
                else:  # it ran a while: a crash, not a failed start
                    self._early_deaths[index] = 0
                if self._early_deaths[index] >= MAX_EARLY_DEATHS:
                    _log.error(
                        "worker keeps failing at start; stopping",
                        worker=index,
                        attempts=self._early_deaths[index],
                    )
                    failed = True
                    self._on_signal(signal.SIGTERM, None)
                    break
                time.sleep(RESTART_DELAY)
                if not self._stopping:
                    self._start(index)
            time.sleep(0.2)
        deadline = time.monotonic() + self.settings.server.shutdown_timeout + 5
        status = 1 if failed else 0
        for proc in self._procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
                status = 1
            elif proc.exitcode not in (0, None, -signal.SIGTERM):  # ended before serving
                status = 1
        return status
