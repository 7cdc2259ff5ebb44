"""Prometheus metrics of one node, named ``hubbub_*``.

Each :class:`Metrics` owns its own ``CollectorRegistry`` rather than the process-wide
default one, so several nodes (or tests) in one process never clash over names. The
methods the hot path calls do one or two ``inc()`` on children bound at construction:
looking a label up per message would cost more than the counting itself.

This module imports nothing from hubbub, so any layer may hold a ``Metrics``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

NAMESPACE: Final = "hubbub"

# The command names of the Centrifuge client protocol v2 (the fields of `Command`).
COMMAND_METHODS: Final = (
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "ping",
    "send",
    "rpc",
    "refresh",
    "sub_refresh",
    "pong",
)

# Anything else is folded into one label value, so a client cannot grow the label set.
UNKNOWN_METHOD: Final = "unknown"

# A local delivery takes tens of microseconds; one through a broker under load can
# take most of a second. Roughly 1-2.5-5 steps across that range.
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


class Metrics:
    """The counters, gauges and histogram of one node, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ns, reg = NAMESPACE, self.registry
        self.connections = Gauge(
            "connections", "Client connections currently open.", namespace=ns, registry=reg
        )
        self.subscriptions = Gauge(
            "subscriptions",
            "Channel subscriptions currently held by client connections.",
            namespace=ns,
            registry=reg,
        )
        self.commands = Counter(
            "commands",
            "Client commands received, by method.",
            ["method"],
            namespace=ns,
            registry=reg,
        )
        self.messages_sent = Counter(
            "messages_sent", "Protocol messages sent to clients.", namespace=ns, registry=reg
        )
        self.messages_received = Counter(
            "messages_received",
            "Protocol messages received from clients.",
            namespace=ns,
            registry=reg,
        )
        self.bytes_sent = Counter(
            "bytes_sent", "Bytes sent to clients.", namespace=ns, registry=reg
        )
        self.bytes_received = Counter(
            "bytes_received", "Bytes received from clients.", namespace=ns, registry=reg
        )
        self.disconnects = Counter(
            "disconnects",
            "Connections closed by the server, by disconnect code.",
            ["code"],
            namespace=ns,
            registry=reg,
        )
        self.errors = Counter(
            "errors",
            "Error replies sent to clients, by error code.",
            ["code"],
            namespace=ns,
            registry=reg,
        )
        self.publications = Counter(
            "publications", "Publications accepted for delivery.", namespace=ns, registry=reg
        )
        self.publish_to_deliver = Histogram(
            "publish_to_deliver_seconds",
            "Time from accepting a publication to writing it to a subscriber.",
            namespace=ns,
            registry=reg,
            buckets=DELIVERY_BUCKETS,
        )
        self._commands = {m: self.commands.labels(method=m) for m in COMMAND_METHODS}
        self._unknown_command = self.commands.labels(method=UNKNOWN_METHOD)
        # Codes are chosen by the server from a short fixed list, so a lazy cache is bounded.
        self._disconnects: dict[int, Counter] = {}
        self._errors: dict[int, Counter] = {}

    def command(self, method: str) -> None:
        """Count one received command; unknown names count under ``unknown``."""
        self._commands.get(method, self._unknown_command).inc()

    def sent(self, messages: int, nbytes: int) -> None:
        """Count protocol messages and bytes written to one client."""
        self.messages_sent.inc(messages)
        self.bytes_sent.inc(nbytes)

    def received(self, messages: int, nbytes: int) -> None:
        """Count protocol messages and bytes read from one client."""
        self.messages_received.inc(messages)
        self.bytes_received.inc(nbytes)

    def connection_opened(self) -> None:
        """A client connection was accepted."""
        self.connections.inc()

    def connection_closed(self) -> None:
        """A client connection went away, for whatever reason."""
        self.connections.dec()

    def subscribed(self, count: int = 1) -> None:
        """A connection gained ``count`` channel subscriptions."""
        self.subscriptions.inc(count)

    def unsubscribed(self, count: int = 1) -> None:
        """A connection dropped ``count`` subscriptions (all of them when it closes)."""
        self.subscriptions.dec(count)

    def disconnect(self, code: int) -> None:
        """Count one server-side disconnect with its protocol code."""
        child = self._disconnects.get(code)
        if child is None:
            child = self._disconnects[code] = self.disconnects.labels(code=str(code))
        child.inc()

    def error(self, code: int) -> None:
        """Count one error reply with its protocol code."""
        child = self._errors.get(code)
        if child is None:
            child = self._errors[code] = self.errors.labels(code=str(code))
        child.inc()

    def publication(self) -> None:
        """Count one publication accepted for fan-out."""
        self.publications.inc()

    def delivered(self, seconds: float) -> None:
        """Record how long one publication took from acceptance to a subscriber's buffer."""
        self.publish_to_deliver.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """Return the Prometheus text exposition of this registry and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
