"""Prometheus metrics of one node, named ``hubbub_*``.

The hot path only adds to plain integers: a ``prometheus_client`` ``inc()`` takes a
lock and costs about a microsecond, and a command touched eight of them. The numbers
become Prometheus metric families when ``/metrics`` is scraped, through a collector
of our own. Each :class:`Metrics` has a ``CollectorRegistry`` of its own, so several
nodes (or tests) in one process never clash over names.

This module imports nothing from hubbub, so any layer may hold a ``Metrics``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from hubbub.protocol.messages import REQUEST_FIELDS

NAMESPACE: Final = "hubbub"

# The command names of the Centrifuge client protocol v2 (the request fields of
# `Command`), and the empty command that is a pong.
COMMAND_METHODS: Final = (*REQUEST_FIELDS, "pong")
# Anything else is folded into one label value, so a caller cannot grow the label set.
UNKNOWN_METHOD: Final = "unknown"

# The broker hop: from a publication's timestamp (``Publication.time``, whole
# milliseconds, taken when a node accepted it) to its arrival at this node's hub, which
# hands it to the subscribers at the end of that loop turn. Through a broker under load
# it can take most of a second; locally it is below the timestamp's resolution, so the
# sub-millisecond buckets show the truncation (0-1 ms), not the work. Roughly 1-2.5-5
# steps across that range.
DELIVERY_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

# How late a timer of the event loop fires: the time the loop was busy with other work
# (a long callback, a big write round, the collector) before it could run. The same
# 1-2.5-5 scale, from 0.5 ms (libuv's timers have 1 ms resolution) to 2.5 s.
LOOP_LAG_BUCKETS: Final = (*DELIVERY_BUCKETS[DELIVERY_BUCKETS.index(0.0005) :], 2.5)
LOOP_LAG_INTERVAL: Final = 0.01
"""Seconds between loop lag samples: 100 wake-ups a second, a few microseconds each."""


class Buckets:
    """A histogram kept as plain counts: an observation is a bisect and two adds."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        return HistogramMetricFamily(
            f"{NAMESPACE}_{name}", doc, buckets=buckets, sum_value=self.total
        )


class Metrics:
    """The counters, gauges and histogram of one node, in a registry of its own."""

    def __init__(self) -> None:
        self.connections = 0
        self.subscriptions = 0
        self.messages_sent = 0  # these four are added to in place by the session,
        self.messages_received = 0  # once per frame (flush, data_received)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.publications = 0
        self.commands: dict[str, int] = dict.fromkeys((*COMMAND_METHODS, UNKNOWN_METHOD), 0)
        # Codes are chosen by the server from a short fixed list: these stay small.
        self.disconnects: dict[int, int] = {}
        self.errors: dict[int, int] = {}
        self.delivery = Buckets(DELIVERY_BUCKETS)
        self.loop_lag = Buckets(LOOP_LAG_BUCKETS)
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))

    def command(self, method: str) -> None:
        """Count one received command; unknown names count under ``unknown``."""
        commands = self.commands
        if method in commands:
            commands[method] += 1
        else:
            commands[UNKNOWN_METHOD] += 1

    def connection_opened(self) -> None:
        """A client connection was accepted."""
        self.connections += 1

    def connection_closed(self) -> None:
        """A client connection went away, for whatever reason."""
        self.connections -= 1

    def subscribed(self, count: int = 1) -> None:
        """A connection gained ``count`` channel subscriptions."""
        self.subscriptions += count

    def unsubscribed(self, count: int = 1) -> None:
        """A connection dropped ``count`` subscriptions (all of them when it closes)."""
        self.subscriptions -= count

    def disconnect(self, code: int) -> None:
        """Count one server-side disconnect with its protocol code."""
        self.disconnects[code] = self.disconnects.get(code, 0) + 1

    def error(self, code: int) -> None:
        """Count one error reply with its protocol code."""
        self.errors[code] = self.errors.get(code, 0) + 1

    def publication(self) -> None:
        """Count one publication accepted for fan-out."""
        self.publications += 1

    def delivered(self, seconds: float) -> None:
        """Record how long one publication took from its timestamp to this node's
        fan-out (the broker hop; see ``DELIVERY_BUCKETS``)."""
        self.delivery.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """Return the Prometheus text exposition of this registry and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", doc, value=value)


class _Collector(Collector):
    """Turns a Metrics' numbers into metric families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield GaugeMetricFamily(
            f"{NAMESPACE}_connections", "Client connections currently open.", m.connections
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_subscriptions",
            "Channel subscriptions currently held by client connections.",
            m.subscriptions,
        )
        commands = CounterMetricFamily(
            f"{NAMESPACE}_commands", "Client commands received, by method.", labels=["method"]
        )
        for method, count in m.commands.items():
            commands.add_metric([method], count)
        yield commands
        yield _counter("messages_sent", "Protocol messages sent to clients.", m.messages_sent)
        yield _counter(
            "messages_received", "Protocol messages received from clients.", m.messages_received
        )
        yield _counter("bytes_sent", "Bytes sent to clients.", m.bytes_sent)
        yield _counter("bytes_received", "Bytes received from clients.", m.bytes_received)
        for name, doc, by_code in (
            ("disconnects", "Connections closed by the server, by disconnect code.", m.disconnects),
            ("errors", "Error replies sent to clients, by error code.", m.errors),
        ):
            family = CounterMetricFamily(f"{NAMESPACE}_{name}", doc, labels=["code"])
            for code, count in sorted(by_code.items()):
                family.add_metric([str(code)], count)
            yield family
        yield _counter("publications", "Publications accepted for delivery.", m.publications)
        yield m.delivery.family(
            "publish_to_deliver_seconds",
            "Time from a publication's timestamp (ms resolution) to its arrival at this "
            "node's hub, through the broker; the rest of that loop turn, queueing and "
            "writes not included.",
        )
        yield m.loop_lag.family(
            "event_loop_lag_seconds",
            "How late the event loop ran a timer it was given (sampled every "
            f"{LOOP_LAG_INTERVAL * 1000:g} ms): "
            "the time it was busy with other work first.",
        )
