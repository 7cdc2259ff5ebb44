"""``hubbub bench``: the load generator's commands (also ``python -m hubbub.bench``).

Every command takes the target (``--url``, ``--protocol``, ``--codec``), how to spread
the load (``--procs``, ``--source-addrs``), the server to watch (``--server-pid``) and
where to put results (``--json``, ``--plot``). Load goes to 127.0.0.x addresses only
unless ``--allow-remote`` is given, and every run is bounded by ``--deadline``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import urlsplit

import msgspec
import typer
from rich.console import Console

from hubbub.bench import report, results
from hubbub.bench.plan import MAX_SOURCES, RunConfig, is_loopback, with_default_path
from hubbub.bench.runner import Runner
from hubbub.bench.stepping import StepPolicy
from hubbub.codecs.registry import default_registry

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Load generator: connect, fanout, rooms and echo scenarios against a server.",
)


def _positive(value: float) -> float:
    """Durations, rates and bounds: zero or less would divide by zero or mean nothing."""
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a number > 0, not {value:g}")
    return value


def _not_negative(value: float) -> float:
    """Optional waits and limits: 0 means none."""
    if not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"must be a number >= 0, not {value:g}")
    return value


def _factor(value: float) -> float:
    """A rate step factor below 1 would never raise the rate."""
    if not (math.isfinite(value) and value >= 1):
        raise typer.BadParameter(f"must be a number >= 1, not {value:g}")
    return value


def _share(value: float) -> float:
    """A share of deliveries: above 0, at most all of them."""
    if not (0 < value <= 1):
        raise typer.BadParameter(f"must be above 0 and at most 1, not {value:g}")
    return value


def _codec_name(value: str) -> str:
    """Fail here, not in every worker's first connection."""
    known = default_registry().names()
    if value not in known:
        raise typer.BadParameter(f"unknown codec {value!r} (known: {', '.join(known)})")
    return value


Urls = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--url",
        help="Server URL (the protocol's usual path is added when there is none); repeat "
        "for several nodes of one cluster: connections are dealt round-robin over them, "
        "fan-out publishers use the first [default: ws://127.0.0.1:8000]",
    ),
]
ProtocolOpt = Annotated[
    str, typer.Option("--protocol", help="centrifuge (hubbub), plain (peer servers), socketio")
]
Codec = Annotated[
    str, typer.Option(callback=_codec_name, help="Centrifuge codec: json or protobuf")
]
Procs = Annotated[int, typer.Option(min=0, help="Load processes (0: as the fd limit requires)")]
Sources = Annotated[
    int,
    typer.Option(
        min=0,
        max=MAX_SOURCES,
        help="Source addresses 127.0.0.2… (0: as ephemeral ports require)",
    ),
]
ServerPids = Annotated[
    Optional[list[int]],  # noqa: UP045
    typer.Option(
        "--server-pid",
        min=0,
        help="Server PID: RSS and CPU from /proc; repeat for several nodes or workers "
        "(their sum is the server's)",
    ),
]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Write results here")]  # noqa: UP045
PlotOut = Annotated[Optional[Path], typer.Option("--plot", help="Write a PNG chart here")]  # noqa: UP045
Label = Annotated[str, typer.Option(help="Name of what is measured, kept in the results")]
Deadline = Annotated[
    float, typer.Option(callback=_positive, help="Stop the whole run after this many seconds")
]
Concurrency = Annotated[int, typer.Option(min=1, help="Handshakes in flight per process")]
PayloadSize = Annotated[int, typer.Option(min=0, help="Payload bytes (JSON with a timestamp)")]
Duration = Annotated[float, typer.Option(callback=_positive, help="Seconds per measured step")]
Warmup = Annotated[
    float, typer.Option(callback=_not_negative, help="Seconds of unrecorded load first")
]
Drain = Annotated[
    float, typer.Option(callback=_not_negative, help="Max seconds to wait for late deliveries")
]
P99Bound = Annotated[
    float, typer.Option(callback=_positive, help="A step fails when p99 exceeds this (ms)")
]
MaxPaceLate = Annotated[
    float,
    typer.Option(
        "--max-pace-late-ms",
        callback=_positive,
        help="A step is generator limited when the publishers' pacing lateness p99 "
        "exceeds this (ms)",
    ),
]
StepFactor = Annotated[
    float, typer.Option(callback=_factor, help="Rate multiplier per step (1: one step)")
]
MaxSteps = Annotated[int, typer.Option(min=1, help="Most rate steps")]
MaxRate = Annotated[
    float, typer.Option(callback=_not_negative, help="Highest total publish rate (0: no limit)")
]
HalfRate = Annotated[bool, typer.Option(help="Re-measure latency at half the max rate")]
AllowRemote = Annotated[bool, typer.Option(help="Allow a server outside 127.0.0.0/8")]


def _cpus(value: str) -> tuple[int, ...]:
    """The CPU numbers of a comma-separated list ("" for none)."""
    try:
        return tuple(int(part) for part in value.split(",")) if value else ()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a comma-separated list of CPUs") from None


def _cpu_list(value: str) -> str:
    """Comma-separated CPU numbers of this machine, or "" for none."""
    cpus = _cpus(value)
    if not cpus:
        return value
    count = os.cpu_count() or 1
    wrong = [c for c in cpus if not 0 <= c < count]
    if wrong:
        raise typer.BadParameter(f"no CPU {wrong[0]} here (CPUs 0-{count - 1})")
    before = os.sched_getaffinity(0)
    try:  # a cpuset may still forbid them: find out now, not in a worker mid-run
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise typer.BadParameter(f"cannot run on CPUs {value}: {exc.strerror}") from None
    finally:
        os.sched_setaffinity(0, before)
    return value


PublisherCpus = Annotated[
    str,
    typer.Option(
        callback=_cpu_list,
        help="CPUs (e.g. 0) for the publishing worker and this coordinating process, so the "
        "subscribers' worker has its core alone: else its latency readings include "
        "waiting for them (default: stay where started)",
    ),
]

_DEFAULT_URL = "ws://127.0.0.1:8000"


def _url(url: str, protocol: str, allow_remote: bool) -> str:
    if protocol not in ("centrifuge", "plain", "socketio"):
        raise typer.BadParameter(f"unknown protocol {protocol!r}", param_hint="--protocol")
    host = urlsplit(url).hostname or ""
    if not (allow_remote or is_loopback(host)):
        raise typer.BadParameter(
            f"{host!r} is not a loopback address; pass --allow-remote to load it",
            param_hint="--url",
        )
    return with_default_path(url, protocol)


def _run(
    cfg: RunConfig,
    json_out: Path | None,
    plot_out: Path | None,
    policy: StepPolicy | None = None,
    half_rate: bool = True,
) -> None:
    """Run, show and save; exit non-zero when the run could not do its job."""
    try:
        runner = Runner(cfg, policy=policy, half_rate=half_rate)
    except ValueError as exc:  # e.g. more connections than source addresses can carry
        raise typer.BadParameter(str(exc)) from None
    result = runner.run()
    report.show(result)
    if json_out is not None:
        results.write(result, json_out)
        Console(stderr=True).print(f"results: {json_out}")
    if plot_out is not None:
        report.plot([result], plot_out)
        Console(stderr=True).print(f"chart: {plot_out}")
    # Partial results are still shown and written, but the exit says the run did not
    # finish (a deadline, a dead worker, Ctrl-C) or connected nothing.
    if runner.interrupted or (result.connect is not None and result.connect.connected == 0):
        raise typer.Exit(1)


def _servers(
    urls: list[str] | None, pids: list[int] | None, protocol: str, allow_remote: bool
) -> dict[str, Any]:
    """The run's server URLs and PIDs, each given once or repeated, as RunConfig fields."""
    return {
        "urls": tuple(_url(url, protocol, allow_remote) for url in (urls or [_DEFAULT_URL])),
        "server_pids": tuple(pid for pid in pids or () if pid),  # 0: not given
    }


def _config(**values: Any) -> RunConfig:
    try:
        return RunConfig(**values)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _policy(
    rate: float,
    step_factor: float,
    max_rate: float,
    max_steps: int,
    p99_bound_ms: float,
    min_keep_up: float,
    max_pace_late_ms: float,
) -> StepPolicy:
    try:
        return StepPolicy(
            start_rate=rate,
            factor=step_factor,
            max_rate=max_rate if max_rate > 0 else math.inf,
            max_steps=max_steps,
            p99_bound_ms=p99_bound_ms,
            min_keep_up=min_keep_up,
            max_pace_late_ms=max_pace_late_ms,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def connect(
    connections: Annotated[
        int, typer.Option("-n", "--connections", min=1, help="Connections")
    ] = 1000,
    channels: Annotated[
        int, typer.Option(min=1, help="Channels they subscribe to, round-robin")
    ] = 1,
    hold: Annotated[
        float, typer.Option(callback=_not_negative, help="Seconds to hold before reading RSS")
    ] = 2.0,
    url: Urls = None,
    protocol: ProtocolOpt = "centrifuge",
    codec: Codec = "json",
    procs: Procs = 0,
    source_addrs: Sources = 0,
    concurrency: Concurrency = 200,
    server_pid: ServerPids = None,
    label: Label = "",
    json_out: JsonOut = None,
    plot_out: PlotOut = None,
    deadline: Deadline = 600.0,
    allow_remote: AllowRemote = False,
) -> None:
    """Ramp to N connections (connected + subscribed); connects/s and server RSS per connection."""
    cfg = _config(
        scenario="connect",
        **_servers(url, server_pid, protocol, allow_remote),
        protocol=protocol,
        codec=codec,
        label=label,
        connections=connections,
        channels=channels,
        procs=procs,
        source_addrs=source_addrs,
        concurrency=concurrency,
        hold=hold,
        deadline=deadline,
    )
    _run(cfg, json_out, plot_out)


@app.command()
def fanout(
    subscribers: Annotated[
        int, typer.Option("-n", "--subscribers", min=1, help="Subscribers")
    ] = 1000,
    publishers: Annotated[int, typer.Option(min=1, help="Publishing connections")] = 1,
    rate: Annotated[
        float,
        typer.Option(callback=_positive, help="First step's publications/s (all publishers)"),
    ] = 100.0,
    step_factor: StepFactor = 1.5,
    max_rate: MaxRate = 0.0,
    max_steps: MaxSteps = 10,
    p99_bound_ms: P99Bound = 50.0,
    min_keep_up: Annotated[
        float, typer.Option(callback=_share, help="Share of deliveries a step must see")
    ] = 0.95,
    max_pace_late_ms: MaxPaceLate = 10.0,
    half_rate: HalfRate = True,
    payload_size: PayloadSize = 64,
    duration: Duration = 5.0,
    warmup: Warmup = 1.0,
    drain: Drain = 2.0,
    url: Urls = None,
    protocol: ProtocolOpt = "centrifuge",
    codec: Codec = "json",
    procs: Procs = 0,
    source_addrs: Sources = 0,
    concurrency: Concurrency = 200,
    server_pid: ServerPids = None,
    label: Label = "",
    json_out: JsonOut = None,
    plot_out: PlotOut = None,
    deadline: Deadline = 600.0,
    allow_remote: AllowRemote = False,
    publisher_cpus: PublisherCpus = "",
) -> None:
    """N subscribers on one channel; step the publish rate up until deliveries fall behind."""
    cfg = _config(
        scenario="fanout",
        **_servers(url, server_pid, protocol, allow_remote),
        protocol=protocol,
        codec=codec,
        label=label,
        connections=subscribers,
        publishers=publishers,
        payload_size=payload_size,
        duration=duration,
        warmup=warmup,
        drain=drain,
        procs=procs,
        source_addrs=source_addrs,
        concurrency=concurrency,
        deadline=deadline,
        publisher_cpus=_cpus(publisher_cpus),
    )
    policy = _policy(
        rate, step_factor, max_rate, max_steps, p99_bound_ms, min_keep_up, max_pace_late_ms
    )
    _run(cfg, json_out, plot_out, policy, half_rate)


@app.command()
def rooms(
    rooms: Annotated[int, typer.Option(min=1, help="Channels (chat rooms)")] = 100,
    members: Annotated[int, typer.Option(min=1, help="Members per room; each publishes")] = 10,
    rate: Annotated[
        float, typer.Option(callback=_positive, help="Publications/s per member (first step)")
    ] = 1.0,
    step_factor: StepFactor = 1.0,
    max_rate: MaxRate = 0.0,
    max_steps: MaxSteps = 8,
    p99_bound_ms: P99Bound = 50.0,
    max_pace_late_ms: MaxPaceLate = 10.0,
    half_rate: HalfRate = False,
    payload_size: PayloadSize = 64,
    duration: Duration = 10.0,
    warmup: Warmup = 1.0,
    drain: Drain = 2.0,
    url: Urls = None,
    protocol: ProtocolOpt = "centrifuge",
    codec: Codec = "json",
    procs: Procs = 0,
    source_addrs: Sources = 0,
    concurrency: Concurrency = 200,
    server_pid: ServerPids = None,
    label: Label = "",
    json_out: JsonOut = None,
    plot_out: PlotOut = None,
    deadline: Deadline = 600.0,
    allow_remote: AllowRemote = False,
) -> None:
    """Many rooms of M members, every member publishing at a rate: a chat workload."""
    cfg = _config(
        scenario="rooms",
        **_servers(url, server_pid, protocol, allow_remote),
        protocol=protocol,
        codec=codec,
        label=label,
        rooms=rooms,
        members=members,
        payload_size=payload_size,
        duration=duration,
        warmup=warmup,
        drain=drain,
        procs=procs,
        source_addrs=source_addrs,
        concurrency=concurrency,
        deadline=deadline,
        extra={"rate_per_member": rate},
    )
    total = rooms * members
    policy = _policy(
        rate * total, step_factor, max_rate * total, max_steps, p99_bound_ms, 0.95, max_pace_late_ms
    )
    _run(cfg, json_out, plot_out, policy, half_rate)


@app.command()
def echo(
    connections: Annotated[
        int, typer.Option("-n", "--connections", min=1, help="Connections")
    ] = 100,
    mode: Annotated[
        str, typer.Option(help="publish (to its own channel) or rpc (method 'echo')")
    ] = "publish",
    pipeline: Annotated[int, typer.Option(min=1, help="Requests in flight per connection")] = 1,
    payload_size: PayloadSize = 64,
    duration: Duration = 5.0,
    warmup: Warmup = 1.0,
    drain: Drain = 2.0,
    url: Urls = None,
    protocol: ProtocolOpt = "centrifuge",
    codec: Codec = "json",
    procs: Procs = 0,
    source_addrs: Sources = 0,
    concurrency: Concurrency = 200,
    server_pid: ServerPids = None,
    label: Label = "",
    json_out: JsonOut = None,
    plot_out: PlotOut = None,
    deadline: Deadline = 600.0,
    allow_remote: AllowRemote = False,
) -> None:
    """Closed-loop round trips over N connections: round trips/s and their latency."""
    if mode not in ("publish", "rpc"):
        raise typer.BadParameter("expected publish or rpc", param_hint="--mode")
    cfg = _config(
        scenario="echo",
        **_servers(url, server_pid, protocol, allow_remote),
        protocol=protocol,
        codec=codec,
        label=label,
        connections=connections,
        echo_mode=mode if protocol == "centrifuge" else "rpc",
        pipeline=pipeline,
        payload_size=payload_size,
        duration=duration,
        warmup=warmup,
        drain=drain,
        procs=procs,
        source_addrs=source_addrs,
        concurrency=concurrency,
        deadline=deadline,
    )
    _run(cfg, json_out, plot_out)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the results that --json writes."""
    typer.echo(json.dumps(results.json_schema(), indent=2))


def _read(path: Path) -> results.Result:
    """A result file, or a one-line error naming it (exit 2)."""
    try:
        return results.read(path)
    except OSError as exc:
        problem = exc.strerror or str(exc)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = f"not a hubbub bench result: {exc}"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"error: {path}: {problem}", markup=False
    )
    raise typer.Exit(2)


@app.command()
def plot(
    files: Annotated[list[Path], typer.Argument(help="Result JSON files of one scenario")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write")],
    title: Annotated[str, typer.Option(help="Chart title")] = "",
) -> None:
    """Draw several results of the same scenario in one chart."""
    loaded = [_read(f) for f in files]
    if len({r.scenario for r in loaded}) != 1:
        raise typer.BadParameter("results of different scenarios cannot share a chart")
    report.plot(loaded, out, title)
