"""The engine interfaces: how publications travel between nodes and what is kept.

A ``Broker`` carries publications, joins and leaves to every node subscribed to a
channel and keeps each channel's history stream; a ``PresenceStore`` knows who is in
a channel. Implementations live in their own modules (``memory.py``, ``redis.py``, ...)
and are chosen by URL scheme in ``registry.py``.

Every method of an engine may raise ``hubbub.errors.EngineError`` when the backend
fails (connection lost, timeout, bad reply). The error is temporary by nature: the
node answers the client with error 100 "internal server error", ``temporary: true``,
and an accepted publish is never reported as done when it was not.

Channels of one namespace (``chat`` of ``chat:lobby``) share their options, so an engine
may keep them together (NATS keeps a history stream per namespace). ``namespace_of``
says which that is; it lives here, below ``hubbub.core.channels``, so that the engines
use the same split as core without importing from the layer above them.

Stream semantics (PROTOCOL.md §7.1): with history on, each publication of a channel
gets the next ``offset`` (first is 1, an empty stream's top is 0) within one ``epoch``,
a random name of one incarnation of the stream. Offsets are only comparable within an
epoch; losing the stream's metadata starts a new epoch from offset 0.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

DEFAULT_META_TTL = 30 * 24 * 3600.0
"""How long a stream's epoch and top offset outlive its last use (Centrifugo: 720h)."""
NAMESPACE_SEPARATOR = ":"


def namespace_of(channel: str) -> str | None:
    """The namespace name, or None for a channel of the default options."""
    head, sep, _ = channel.partition(NAMESPACE_SEPARATOR)
    return head if sep else None


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How a channel keeps its publications; history is on only if size and ttl are > 0."""

    size: int
    """At most this many publications are kept; older ones are trimmed."""
    ttl: float
    """Seconds the publications are kept after the channel's last publication."""
    meta_ttl: float = DEFAULT_META_TTL
    """Seconds the epoch and top offset survive, so positions stay comparable."""

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self.ttl > 0


class BrokerEventHandler(Protocol):
    """What a broker calls when something arrives on a subscribed channel.

    The callbacks are synchronous on purpose: the node encodes each message once and
    queues the bytes on its sessions, so nothing awaits in the delivery hot path.
    """

    def on_publication(self, channel: str, pub: Publication) -> None:
        """A publication arrived, in offset order; ``pub.offset`` is set when history is on."""
        ...

    def on_join(self, channel: str, info: ClientInfo) -> None:
        """A client subscribed to ``channel`` on some node."""
        ...

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        """A client unsubscribed from ``channel`` on some node."""
        ...

    def on_gap(self, channels: Sequence[str]) -> None:
        """Delivery on ``channels`` may have missed publications (the broker connection was
        lost and is back, resubscribed): subscribers must recover from history."""
        ...


class Broker(Protocol):
    """Fans publications out to every subscribed node and keeps per-channel history."""

    pipelines_publishes: bool
    """True when publishes started one after another, without awaiting each, are applied
    in the order they were started: a session may then keep several in flight (worth it
    when a publish waits on the network; a broker that publishes in place says False)."""

    async def start(self, handler: BrokerEventHandler) -> None:
        """Connect and deliver every later event of subscribed channels to ``handler``."""
        ...

    async def close(self) -> None:
        """Stop delivering, stop background work and release connections."""
        ...

    async def subscribe(self, channels: Sequence[str]) -> None:
        """Deliver ``channels`` from now on; called once per channel, at its first subscriber."""
        ...

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        """Stop delivering ``channels``; called once their last local subscriber has left."""
        ...

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        """Append to history (if on) and publish atomically per channel; returns the position.

        Offsets grow by exactly 1 per publication with no gap, and handlers see them in
        offset order. Delivery is at most once. With history off (``None`` or disabled)
        the position is offset 0, epoch "".
        """
        ...

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every node subscribed to ``channel`` that ``info`` joined (at most once)."""
        ...

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Tell every node subscribed to ``channel`` that ``info`` left (at most once)."""
        ...

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None = None,
    ) -> tuple[list[Publication], StreamPosition]:
        """A page of retained publications and the stream's CURRENT top position.

        ``limit`` 0 returns the position only, a negative limit every retained
        publication, N at most N. Without ``since`` the page starts at the oldest
        retained publication (with ``reverse``, the newest, going back); with it, the
        page holds offsets after ``since.offset`` (with ``reverse``, before it, newest
        first). ``since.epoch`` is not checked here: the caller compares it with the
        returned epoch (error 112). The page may start later than ``since.offset + 1``
        when publications were trimmed or expired; callers needing continuity check.
        Creates the stream metadata (a fresh random epoch, top 0) if none exists;
        ``meta_ttl``, when given, (re)sets how long that metadata lives.
        """
        ...

    async def remove_history(self, channel: str) -> None:
        """Drop the retained publications; the epoch and top offset stay."""
        ...


class PresenceStore(Protocol):
    """Who is subscribed to which channel, across all nodes."""

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        """Add or refresh ``client_id``; the entry expires ``ttl`` seconds after its last add."""
        ...

    async def remove(self, channel: str, client_id: str) -> None:
        """Remove ``client_id`` from ``channel``; removing an absent client is not an error."""
        ...

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """The unexpired entries of ``channel`` by client id."""
        ...

    async def stats(self, channel: str) -> tuple[int, int]:
        """``(num_clients, num_users)``: unexpired entries and distinct users among them."""
        ...

    async def close(self) -> None:
        """Stop background work and release connections."""
        ...


def new_epoch() -> str:
    """A fresh stream epoch: what every engine names a history that started over."""
    return secrets.token_urlsafe(6)
