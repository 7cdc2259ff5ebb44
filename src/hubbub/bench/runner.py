"""The parent process of a run: starts the workers, drives the phases, shows progress.

Phases: *open* (every worker opens its connections), then per step a *window*
(publish at a rate, or closed-loop round trips), a *drain* (wait until deliveries
stop arriving, at most ``drain`` seconds) and a *collect* (latency histograms come
back and are merged). The server's CPU time is read from ``/proc`` over each
window and its RSS around the connect ramp, summed over every ``--server-pid`` given.
Everything is bounded by the run's deadline; a run that hits it reports what it has.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from hubbub.bench import stats, system
from hubbub.bench.plan import (
    Conn,
    RunConfig,
    connections_for,
    ephemeral_ports,
    fd_limit,
    layout,
    procs_needed,
    source_addresses,
)
from hubbub.bench.results import ConnectStats, Result, Step
from hubbub.bench.stepping import RateStepper, StepOutcome, StepPolicy
from hubbub.bench.worker import run_worker

STABLE_FOR = 0.3
"""Draining ends once no delivery arrived for this long."""
RECOVER_QUIET = 1.0
RECOVER_MAX = 30.0
"""After an overloaded step, wait until nothing arrived for RECOVER_QUIET seconds
(at most RECOVER_MAX) so its backlog does not spill into the next step."""


class RunTimeout(Exception):
    """A phase did not finish before the run's deadline."""


class WorkerDied(Exception):
    """A worker process ended without being told to."""


class Fleet:
    """The worker processes of one run and the pipes to them."""

    def __init__(self, pipes: list[Connection], procs: list[Any], publishers: list[int]) -> None:
        self.pipes = pipes
        self.procs = procs
        self.publishers = publishers
        """Publishing connections per worker."""
        self.progress: dict[int, tuple[int, int, int, int]] = {
            i: (0, 0, 0, 0) for i in range(len(pipes))
        }
        self.reports: dict[int, int] = {i: 0 for i in range(len(pipes))}
        """Progress reports received per worker: a quiet count only counts once heard."""
        self.held: list[tuple[Any, ...]] = []
        """Answers read but not yet asked for: a pipe may hold a worker's next answer
        right behind the one awaited, and it must wait for its own ``gather``."""

    @classmethod
    def start(cls, cfg: RunConfig, shares: list[list[Conn]]) -> Fleet:
        """One worker process per share of the connections."""
        ctx = mp.get_context("spawn")  # no inherited event loop, threads or sockets
        pipes: list[Connection] = []
        procs: list[Any] = []
        for index, share in enumerate(shares):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=run_worker,
                args=(index, cfg, share, theirs),
                daemon=True,
                name=f"bench-{index}",
            )
            proc.start()
            theirs.close()
            pipes.append(ours)
            procs.append(proc)
        return cls(pipes, procs, [sum(1 for c in share if c.publish_to) for share in shares])

    def send(self, index: int, *order: Any) -> None:
        try:
            self.pipes[index].send(order)
        except OSError as exc:  # the worker's end is closed: it is gone
            raise WorkerDied(f"load worker {index} exited unexpectedly") from exc

    def broadcast(self, *order: Any) -> None:
        for index in range(len(self.pipes)):
            self.send(index, *order)

    def totals(self) -> tuple[int, int, int, int]:
        """(ready, failed, delivered, sent) over all workers, as last reported."""
        ready = failed = delivered = sent = 0
        for r, f, d, s in self.progress.values():
            ready, failed, delivered, sent = ready + r, failed + f, delivered + d, sent + s
        return ready, failed, delivered, sent

    def pump(self, timeout: float) -> None:
        """Read what the workers sent within ``timeout``: progress is absorbed, answers
        are held for ``gather``."""
        for pipe in wait(self.pipes, timeout=timeout):
            assert isinstance(pipe, Connection)
            try:
                while pipe.poll():
                    message = pipe.recv()
                    if message[0] == "progress":
                        self.progress[message[1]] = tuple(message[2:])
                        self.reports[message[1]] += 1
                    elif message[0] == "failed":
                        raise WorkerDied(f"load worker {message[1]} failed:\n{message[2]}")
                    else:
                        self.held.append(message)
            except (EOFError, OSError) as exc:
                raise WorkerDied("a load worker exited unexpectedly") from exc

    def gather(
        self,
        kind: str,
        deadline: float,
        tick: Callable[[], None] | None = None,
        workers: Collection[int] | None = None,
    ) -> dict[int, tuple[Any, ...]]:
        """Wait for the ``kind`` answer of every worker (or of ``workers``), calling
        ``tick`` as progress comes. Answers of other kinds stay held for later."""
        answers: dict[int, tuple[Any, ...]] = {}
        wanted = set(range(len(self.pipes)) if workers is None else workers)
        while True:
            kept: list[tuple[Any, ...]] = []
            for message in self.held:
                if message[0] == kind and message[1] in wanted and message[1] not in answers:
                    answers[message[1]] = message[2:]
                else:
                    kept.append(message)
            self.held = kept
            if len(answers) >= len(wanted):
                return answers
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunTimeout(f"workers did not finish '{kind}' before the deadline")
            self.pump(min(0.1, remaining))
            if tick is not None:
                tick()

    def close(self) -> None:
        for index in range(len(self.pipes)):
            try:
                self.send(index, "close")
            except WorkerDied:
                continue
        end = time.monotonic() + 5
        for proc in self.procs:
            proc.join(max(0.0, end - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(1)
        for pipe in self.pipes:
            pipe.close()


class Runner:
    """Runs one scenario and builds its ``Result``."""

    def __init__(
        self,
        cfg: RunConfig,
        *,
        policy: StepPolicy | None = None,
        half_rate: bool = True,
        console: Console | None = None,
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.half_rate = half_rate
        self.console = console or Console(stderr=True)
        self.deadline = time.monotonic() + cfg.deadline
        self.notes: list[str] = []
        self.interrupted = False
        """Stopped early by a deadline, a dead worker or Ctrl-C: the results are partial."""
        self.roles: Counter[str] = Counter()
        self._errors_seen: Counter[str] = Counter()
        fds = fd_limit()
        # Sources first: too many connections for the addresses fails before listing them.
        sources = source_addresses(
            cfg.total_connections, cfg.url, ephemeral_ports(), cfg.source_addrs
        )
        conns = connections_for(cfg)
        apart = cfg.scenario == "fanout"
        self.procs = procs_needed(len(conns), fds, cfg.procs) + (
            1 if apart and not cfg.procs else 0
        )
        self.shares = layout(conns, self.procs, sources, publisher_process=apart)
        self.sources = sources
        self.fds = fds
        self.generator_cpus = max(1, min(self.procs, len(os.sched_getaffinity(0))))

    # --------------------------------------------------------------------- driving

    def run(self) -> Result:
        cfg = self.cfg
        result = Result(
            scenario=cfg.scenario,
            protocol=cfg.protocol,
            label=cfg.label
            or (f"hubbub {cfg.codec}" if cfg.protocol == "centrifuge" else cfg.protocol),
            url=cfg.url,
            codec=cfg.codec if cfg.protocol == "centrifuge" else "",
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            params=self._params(),
            machine=system.machine(cfg.server_pids[0] if cfg.server_pids else 0, self.fds),
            versions=system.versions(),
        )
        fleet = Fleet.start(cfg, self.shares)
        if cfg.publisher_cpus:  # the workers are started: only this process moves now
            os.sched_setaffinity(0, cfg.publisher_cpus)
            result.machine.publisher_cpus = ",".join(map(str, cfg.publisher_cpus))
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        )
        try:
            with progress:
                result.connect = self._open(fleet, progress)
                if cfg.scenario == "connect":
                    self._hold(fleet, progress, result.connect)
                elif cfg.scenario == "echo":
                    result.steps = self._echo(fleet, progress)
                else:
                    result.steps = self._stepped(fleet, progress)
        except (RunTimeout, WorkerDied, KeyboardInterrupt) as exc:
            self.interrupted = True
            self.notes.append(f"stopped early: {exc.__class__.__name__} {exc}".strip())
        finally:
            fleet.close()
        result.summary = summarize(result)
        result.notes = self.notes
        return result

    def _params(self) -> dict[str, Any]:
        cfg = self.cfg
        params: dict[str, Any] = {
            key: getattr(cfg, key)
            for key in (
                "connections",
                "publishers",
                "channels",
                "rooms",
                "members",
                "payload_size",
                "duration",
                "warmup",
                "drain",
                "echo_mode",
                "pipeline",
                "concurrency",
            )
        }
        if len(cfg.urls) > 1 or len(cfg.server_pids) > 1:  # nodes of a cluster, or workers
            params.update(urls=list(cfg.urls), server_pids=list(cfg.server_pids))
        params.update(procs=self.procs, source_addresses=self.sources, **cfg.extra)
        if self.policy is not None:
            p = self.policy
            params.update(
                start_rate=p.start_rate,
                step_factor=p.factor,
                max_rate=p.max_rate if math.isfinite(p.max_rate) else 0,
                max_steps=p.max_steps,
                p99_bound_ms=p.p99_bound_ms,
                min_keep_up=p.min_keep_up,
                max_pace_late_ms=p.max_pace_late_ms,
            )
        return params

    def _open(self, fleet: Fleet, progress: Progress) -> ConnectStats:
        cfg = self.cfg
        total = sum(len(share) for share in self.shares)
        rss0 = _server_rss(cfg) or 0
        task = progress.add_task("connecting", total=total, info="")
        timeline: list[tuple[float, int]] = []
        started = time.monotonic()

        def tick() -> None:
            ready, failed, _, _ = fleet.totals()
            elapsed = time.monotonic() - started
            if not timeline or elapsed - timeline[-1][0] >= 0.2:
                timeline.append((round(time.monotonic() - started, 2), ready))
            progress.update(task, completed=ready + failed, info=f"{failed} failed")

        fleet.broadcast("open")
        opened = fleet.gather("opened", self.deadline, tick)
        # The workers' own ramp time: process start-up is not part of connecting.
        elapsed = max((o[3] for o in opened.values()), default=time.monotonic() - started)
        errors: Counter[str] = Counter()
        failed = 0
        for roles, fails, failures, _ in opened.values():
            self.roles.update(roles)
            failed += fails
            errors.update(failures)
        ready = sum(self.roles.values())
        timeline.append((round(time.monotonic() - started, 2), ready))
        progress.update(task, completed=total, info=f"{failed} failed")
        return ConnectStats(
            target=total,
            connected=ready,
            failed=failed,
            elapsed_s=round(elapsed, 3),
            connects_per_s=round(ready / elapsed, 1) if elapsed > 0 else 0.0,
            errors=dict(errors),
            server_rss_before_bytes=rss0,
            timeline=timeline,
        )

    def _hold(self, fleet: Fleet, progress: Progress, connect: ConnectStats) -> None:
        """Keep the connections open a moment, then read the server's RSS."""
        cfg = self.cfg
        task = progress.add_task("holding", total=cfg.hold, info="")
        end = time.monotonic() + cfg.hold
        while (now := time.monotonic()) < end:
            fleet.pump(min(0.1, end - now))
            progress.update(task, completed=cfg.hold - (end - time.monotonic()))
        progress.update(task, completed=cfg.hold)
        if cfg.server_pids:
            rss1 = _server_rss(cfg)
            connect.server_rss_after_bytes = rss1 or 0
            if rss1 is None:  # a server is gone: a per-connection figure would be nonsense
                self.notes.append(f"server process {_gone(cfg)} gone: no RSS per connection")
            elif connect.connected:
                per = (rss1 - connect.server_rss_before_bytes) / connect.connected
                connect.rss_per_connection_bytes = round(per, 1)

    # ------------------------------------------------------------------- windows

    def _fan(self) -> float:
        """Deliveries one publication should cause."""
        if self.cfg.scenario == "fanout":
            return float(self.roles.get("sub", 0))
        if self.cfg.scenario == "rooms":
            return self.roles.get("member", 0) / max(1, self.cfg.rooms)
        return 1.0

    def _window(
        self,
        fleet: Fleet,
        progress: Progress,
        *,
        index: int,
        rate: float,
        seconds: float,
        record: bool,
        label: str,
    ) -> Step:
        cfg = self.cfg
        task = progress.add_task(label, total=round(seconds + cfg.drain, 1), info="")
        cpu0 = _server_cpu(cfg)
        busy0 = system.busy_seconds()
        total_pubs = max(1, sum(fleet.publishers))
        # Receivers open their window (take their counters' baseline) before anyone
        # publishes: a receiver that started late would leave early deliveries uncounted.
        quiet = [w for w, pubs in enumerate(fleet.publishers) if not pubs]
        for worker in quiet:
            fleet.send(worker, "run", 0.0, seconds, record)
        fleet.gather("started", self.deadline, workers=quiet)
        for worker, pubs in enumerate(fleet.publishers):
            if pubs:
                fleet.send(worker, "run", rate * pubs / total_pubs, seconds, record)
        started = time.monotonic()
        last = [started, fleet.totals()[2]]

        def tick() -> None:
            now = time.monotonic()
            delivered = fleet.totals()[2]
            if now - last[0] >= 0.5:
                speed = (delivered - last[1]) / (now - last[0])
                last[:] = [now, delivered]
                progress.update(task, info=f"{speed:,.0f}/s")
            progress.update(task, completed=min(seconds, now - started))

        windows = fleet.gather("window", min(self.deadline, started + seconds + 30), tick)
        cpu = _server_cpu(cfg) - cpu0
        busy = system.busy_seconds() - busy0
        self._drain(fleet, progress, task, seconds)
        fleet.broadcast("collect")
        collected = fleet.gather("collected", self.deadline)
        progress.update(task, completed=round(seconds + cfg.drain, 1))

        sent = sum(w[0] for w in windows.values())
        delivered = sum(w[1] for w in windows.values())
        lost = sum(w[2] for w in windows.values())
        reopened = sum(w[6] for w in windows.values())
        if reopened:
            self.notes.append(
                f"{label}: {reopened} connections the server had ended were opened again first"
            )
        generator_cpu = sum(w[4] for w in windows.values())
        delivered_total = sum(c[0] - windows[i][3] for i, c in collected.items())
        latency = stats.summarize(stats.merge(c[1] for c in collected.values()))
        late = stats.summarize(stats.merge(w[5] for w in windows.values()))
        errors: Counter[str] = Counter()
        for c in collected.values():
            errors.update(c[2])
        new_errors = errors - self._errors_seen
        self._errors_seen = errors
        expected = int(sent * self._fan()) if cfg.scenario != "echo" else sent
        keep_up = delivered / expected if expected else (1.0 if cfg.scenario == "echo" else 0.0)
        return Step(
            index=index,
            label=label,
            offered_rate=round(rate, 2),
            duration_s=seconds,
            sent=sent,
            expected=expected,
            delivered=delivered,
            delivered_total=delivered_total,
            throughput=round(delivered / seconds, 1),
            keep_up=round(min(keep_up, 9.99), 4),
            latency=latency,
            lost_connections=lost,
            errors=dict(new_errors),
            server_cpu_s=round(cpu, 3),
            generator_cpu_s=round(generator_cpu, 3),
            other_cpu_s=round(max(0.0, busy - cpu - generator_cpu), 3) if cfg.server_pids else 0.0,
            server_cpu_us_per_delivery=round(cpu * 1e6 / delivered, 3) if delivered else 0.0,
            pace_late_p99_ms=round(late.p99_us / 1000, 3) if late.count else None,
            pace_late_max_ms=round(late.max_us / 1000, 3) if late.count else None,
        )

    def _recover(self, fleet: Fleet) -> None:
        """After an overloaded step: wait for the backlog to clear before the next one."""
        end = min(time.monotonic() + RECOVER_MAX, self.deadline)
        last_count, last_change = fleet.totals()[2], time.monotonic()
        while (now := time.monotonic()) < end and now - last_change < RECOVER_QUIET:
            fleet.pump(0.1)
            count = fleet.totals()[2]
            if count != last_count:
                last_count, last_change = count, now
        if now >= end:
            self.notes.append(
                "the backlog of an overloaded step had not cleared after "
                f"{RECOVER_MAX:.0f} s; later steps may be affected"
            )

    def _drain(self, fleet: Fleet, progress: Progress, task: TaskID, seconds: float) -> None:
        """Wait until deliveries stop arriving or ``drain`` seconds pass. "Stopped" means
        STABLE_FOR without a new delivery *and* two fresh reports from every worker
        saying so: a worker too busy to report is not a quiet one."""
        start = time.monotonic()
        end = min(start + self.cfg.drain, self.deadline)
        last_count, last_change = fleet.totals()[2], start
        heard = dict(fleet.reports)
        while (now := time.monotonic()) < end:
            fleet.pump(0.05)
            count = fleet.totals()[2]
            if count != last_count:
                last_count, last_change, heard = count, now, dict(fleet.reports)
            elif now - last_change >= STABLE_FOR and all(
                fleet.reports[i] - heard[i] >= 2 for i in heard
            ):
                break
            progress.update(task, completed=seconds + now - start)

    def _warm(self, fleet: Fleet, progress: Progress, rate: float) -> None:
        if self.cfg.warmup > 0:
            self._window(
                fleet,
                progress,
                index=-1,
                rate=rate,
                seconds=self.cfg.warmup,
                record=False,
                label="warm-up",
            )

    def _echo(self, fleet: Fleet, progress: Progress) -> list[Step]:
        self._warm(fleet, progress, 0.0)
        step = self._window(
            fleet, progress, index=0, rate=0.0, seconds=self.cfg.duration, record=True, label="echo"
        )
        step.ok = step.delivered > 0 and not step.lost_connections
        if not step.ok:
            step.reason = "no round trip completed" if not step.delivered else "connections lost"
        return [step]

    def _stepped(self, fleet: Fleet, progress: Progress) -> list[Step]:
        policy = self.policy or StepPolicy(start_rate=100.0)
        stepper = RateStepper(policy)
        self._warm(fleet, progress, policy.start_rate)
        steps: list[Step] = []
        while (rate := stepper.next_rate()) is not None:
            index = len(steps)
            step = self._window(
                fleet,
                progress,
                index=index,
                rate=rate,
                seconds=self.cfg.duration,
                record=True,
                label=f"step {index}",
            )
            verdict = stepper.record(
                StepOutcome(
                    rate=rate,
                    keep_up=step.keep_up,
                    p99_ms=step.latency.p99_ms,
                    lost_connections=step.lost_connections,
                    send_ratio=step.sent / math.ceil(rate * self.cfg.duration) if rate else 1.0,
                    generator_busy=step.generator_cpu_s / (self.cfg.duration * self.generator_cpus),
                    pace_late_p99_ms=step.pace_late_p99_ms or 0.0,
                )
            )
            step.ok, step.reason = verdict.ok, verdict.reason
            steps.append(step)
            if verdict.generator_limited:
                self.notes.append(f"step {index}: {verdict.reason}")
            if step.delivered_total < step.expected * policy.min_keep_up:
                self._recover(fleet)
        best = stepper.best
        if self.half_rate and best is not None and policy.factor > 1:
            # It follows the steps that overloaded the server (and may have had some
            # connections ended and opened again): it warms up at its own rate first,
            # as the first step does, so it measures that rate, not the way back.
            self._warm(fleet, progress, best.rate / 2)
            index = len(steps)
            step = self._window(
                fleet,
                progress,
                index=index,
                rate=best.rate / 2,
                seconds=self.cfg.duration,
                record=True,
                label="half max",
            )
            verdict = policy.judge(
                StepOutcome(
                    rate=best.rate / 2,
                    keep_up=step.keep_up,
                    p99_ms=step.latency.p99_ms,
                    lost_connections=step.lost_connections,
                    pace_late_p99_ms=step.pace_late_p99_ms or 0.0,
                )
            )
            step.ok, step.reason = verdict.ok, verdict.reason
            steps.append(step)
        return steps


def _server_rss(cfg: RunConfig) -> int | None:
    """RSS of every server process of the run (all nodes, all workers) together; None
    when one of them is gone (its share would be missing), and when none is given."""
    sizes = [system.rss_bytes(pid) for pid in cfg.server_pids]
    return sum(sizes) if sizes and all(sizes) else None


def _gone(cfg: RunConfig) -> str:
    return ", ".join(str(pid) for pid in cfg.server_pids if not system.rss_bytes(pid))


def _server_cpu(cfg: RunConfig) -> float:
    """CPU seconds used so far by every server process of the run (all nodes)."""
    return sum(system.cpu_seconds(pid) for pid in cfg.server_pids)


def summarize(result: Result) -> dict[str, float]:
    """The headline figures of a run (the ``summary`` of its JSON)."""
    summary: dict[str, float] = {}
    connect = result.connect
    if connect is not None:
        summary.update(
            connections=connect.connected,
            failed=connect.failed,
            connects_per_s=connect.connects_per_s,
        )
        if result.scenario == "connect" and connect.rss_per_connection_bytes:
            summary["rss_per_connection_bytes"] = connect.rss_per_connection_bytes
    steps = [s for s in result.steps if not s.label.startswith("half")]
    if result.scenario == "echo" and result.steps:
        step = result.steps[0]
        summary.update(
            round_trips_per_s=step.throughput,
            p50_us=step.latency.p50_us,
            p99_us=step.latency.p99_us,
            server_cpu_us_per_round_trip=step.server_cpu_us_per_delivery,
        )
    elif steps:
        passed = [s for s in steps if s.ok]
        best = max(passed, key=lambda s: s.offered_rate) if passed else None
        peak = max(steps, key=lambda s: s.throughput)
        summary["peak_deliveries_per_s"] = peak.throughput
        if best is not None:
            summary.update(
                max_rate=best.offered_rate,
                max_deliveries_per_s=best.throughput,
                p50_at_max_us=best.latency.p50_us,
                p99_at_max_us=best.latency.p99_us,
                server_cpu_us_per_delivery=best.server_cpu_us_per_delivery,
            )
        half = [s for s in result.steps if s.label.startswith("half")]
        if half:
            summary.update(
                half_rate=half[0].offered_rate,
                p50_at_half_us=half[0].latency.p50_us,
                p99_at_half_us=half[0].latency.p99_us,
            )
    return summary
