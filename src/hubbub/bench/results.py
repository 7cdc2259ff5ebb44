"""The JSON document one ``hubbub bench`` run writes (``--json FILE``).

Typed msgspec Structs: the writer and every reader (``hubbub evaluate``, the
comparison scripts, the tests) share one schema, and ``json_schema()`` publishes it.
Rates are per second, latencies in microseconds, memory in bytes unless a name says
otherwise. ``SCHEMA`` changes whenever a field changes meaning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from hubbub.bench.stats import Latency

SCHEMA = "hubbub.bench.result/1"

Scenario = Literal["connect", "fanout", "rooms", "echo"]
Protocol = Literal["centrifuge", "plain", "socketio"]


class Machine(msgspec.Struct, kw_only=True):
    """Where the run happened."""

    hostname: str
    cpu_model: str
    cpus: int
    memory_bytes: int
    kernel: str
    python: str
    fd_limit: int
    server_cpus: str = ""
    """CPU list the server was pinned to (taskset), "" when not known."""
    generator_cpus: str = ""
    publisher_cpus: str = ""
    """Where the publishing worker and the parent ran when moved (``--publisher-cpus``)."""


class ConnectStats(msgspec.Struct, kw_only=True):
    """The ramp to N connections, each connected and subscribed."""

    target: int
    connected: int
    failed: int
    elapsed_s: float
    connects_per_s: float
    errors: dict[str, int] = {}
    server_rss_before_bytes: int = 0
    server_rss_after_bytes: int = 0
    rss_per_connection_bytes: float = 0.0
    timeline: list[tuple[float, int]] = []
    """(seconds since start, connections ready) samples during the ramp."""


class Step(msgspec.Struct, kw_only=True):
    """One step at one offered rate (fanout, rooms) or one timed window (echo)."""

    index: int
    label: str = ""
    offered_rate: float
    """fanout/rooms: publications/s offered; echo: 0 (closed loop)."""
    duration_s: float
    sent: int
    """Publications (fanout/rooms) or requests (echo) sent in the window."""
    expected: int
    """Deliveries expected from what was sent (echo: = sent)."""
    delivered: int
    """Deliveries (or completed round trips) received in the window."""
    delivered_total: int
    """... including those that arrived while draining after the window."""
    throughput: float
    """delivered ÷ duration: deliveries/s, or round trips/s for echo."""
    keep_up: float
    latency: Latency
    lost_connections: int = 0
    errors: dict[str, int] = {}
    server_cpu_s: float = 0.0
    server_cpu_us_per_delivery: float = 0.0
    generator_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    """Busy CPU time of the machine in the window not charged to the server or the load
    processes: other programs, and kernel work (softirq) charged to no process. High
    values mean the figures were disturbed by something else running."""
    """CPU time the load processes used in the window: near ``duration_s`` per core
    they may use means the generator, not the server, set the pace."""
    pace_late_p99_ms: float | None = None
    pace_late_max_ms: float | None = None
    """How far behind its schedule the publishers' pacer sent (p99 and max over its
    batches, ms): latencies start at the actual send, so a generator that fell behind
    shows here, not in ``latency``. None: not paced (echo) or an older result."""
    ok: bool = True
    reason: str = ""


class Result(msgspec.Struct, kw_only=True):
    """Everything one run measured, and under what conditions."""

    schema: str = SCHEMA
    scenario: Scenario
    protocol: Protocol
    label: str
    """What was measured, e.g. ``hubbub json`` or ``picows-broadcast``."""
    url: str
    codec: str
    started_at: str
    """ISO 8601, UTC."""
    params: dict[str, Any]
    machine: Machine
    versions: dict[str, str]
    connect: ConnectStats | None = None
    steps: list[Step] = []
    summary: dict[str, float] = {}
    """Headline figures; keys depend on the scenario (see ``runner``)."""
    notes: list[str] = []


_encoder = msgspec.json.Encoder()


def dumps(result: Result) -> bytes:
    """Indented JSON, stable key order (the Structs' field order)."""
    return msgspec.json.format(_encoder.encode(result), indent=2) + b"\n"


def loads(data: bytes | str) -> Result:
    """A result from JSON; raises ``msgspec.ValidationError`` naming the bad field."""
    return msgspec.json.decode(data, type=Result)


def write(result: Result, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(result))


def read(path: Path) -> Result:
    return loads(path.read_bytes())


def json_schema() -> dict[str, Any]:
    """JSON Schema of a result document."""
    schema: dict[str, Any] = msgspec.json.schema(Result)
    return schema
