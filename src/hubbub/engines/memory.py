"""In-memory engines: one process, nothing to install, nothing survives a restart.

Time comes from an injected ``clock`` so tests move it instead of sleeping. Expiry is
checked lazily on every access, so answers are right whenever they are asked for; the
periodic sweep only frees the memory of channels nobody touches any more.

Everything runs on the event loop with no ``await`` between reading and writing a
stream, which is what makes append-and-deliver atomic per channel here.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from itertools import islice
from typing import Generic, NamedTuple, Self, TypeVar
from urllib.parse import urlsplit

import msgspec
import structlog

from hubbub.engines.base import (
    DEFAULT_META_TTL,
    Broker,
    BrokerEventHandler,
    HistoryOptions,
    PresenceStore,
    new_epoch,
)
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

Clock = Callable[[], float]
"""Seconds on a monotonic scale; ``time.monotonic`` unless a test drives it."""

SWEEP_INTERVAL = 1.0
"""Seconds between two sweeps of expired streams and presence entries."""

K = TypeVar("K", bound=Hashable)
_log = structlog.get_logger(__name__)


class _Deadlines(Generic[K]):
    """When each key is next due, in a heap; at most one live entry per key.

    Arming never moves an entry later: a refreshed key keeps its earlier entry, and
    whoever pops it re-arms at the real deadline. So refreshing is O(1) and the heap
    stays about one entry per key.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, K]] = []
        self._armed: dict[K, float] = {}

    def arm(self, key: K, when: float) -> None:
        armed = self._armed.get(key)
        if armed is None or when < armed:
            self._armed[key] = when
            heapq.heappush(self._heap, (when, key))

    def pop_due(self, now: float) -> list[K]:
        due: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._armed.get(key) == when:  # else a later, superseded entry
                del self._armed[key]
                due.append(key)
        return due


class _Sweeper:
    """Runs ``sweep`` every ``interval`` seconds in one task owned by an engine."""

    def __init__(self, sweep: Callable[[], object], interval: float) -> None:
        self._sweep = sweep
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self._sweep()
            except Exception:  # a dead sweeper would leak memory silently
                _log.exception("memory engine sweep failed")


def _reject_options(url: str) -> None:
    parts = urlsplit(url)
    if parts.netloc or parts.path or parts.query:
        raise ValueError("memory:// takes no host, path or options")


# ------------------------------------------------------------------------------ broker


class _Stream:
    """One channel's history: a ring buffer of the newest publications plus metadata."""

    __slots__ = ("epoch", "expires", "meta_expires", "pubs", "top")

    def __init__(self, meta_expires: float) -> None:
        self.epoch = new_epoch()
        self.top = 0
        self.pubs: deque[Publication] = deque()
        self.expires = 0.0
        """When ``pubs`` expire; meaningless while ``pubs`` is empty."""
        self.meta_expires = meta_expires

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(offset=self.top, epoch=self.epoch)

    @property
    def next_deadline(self) -> float:
        return self.expires if self.pubs else self.meta_expires

    def append(self, pub: Publication, history: HistoryOptions, now: float) -> Publication:
        if self.pubs.maxlen != history.size:
            self.pubs = deque(self.pubs, maxlen=history.size)
        self.top += 1
        stored = msgspec.structs.replace(pub, offset=self.top)
        self.pubs.append(stored)
        self.expires = now + history.ttl
        self.meta_expires = now + history.meta_ttl
        return stored

    def page(self, since: StreamPosition | None, limit: int, reverse: bool) -> list[Publication]:
        # Retained offsets are contiguous, top - len + 1 .. top, so positions are indexes.
        count = len(self.pubs)
        first = self.top - count + 1
        if reverse:
            end = count if since is None else min(max(since.offset - first, 0), count)
            skip = count - end
            return list(islice(reversed(self.pubs), skip, None if limit < 0 else skip + limit))
        start = 0 if since is None else min(max(since.offset + 1 - first, 0), count)
        return list(islice(self.pubs, start, None if limit < 0 else start + limit))


class MemoryBroker:
    """Broker for a single process: delivery is a function call, history a ring buffer."""

    pipelines_publishes = False  # a publish never waits: nothing to overlap

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        meta_ttl: float = DEFAULT_META_TTL,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        """``meta_ttl`` is for streams that ``history()`` creates without one."""
        self._clock = clock
        self._meta_ttl = meta_ttl
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._deadlines: _Deadlines[str] = _Deadlines()
        self._sweeper = _Sweeper(self.sweep, sweep_interval)

    @classmethod
    def from_url(cls, url: str) -> Self:
        _reject_options(url)
        return cls()

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._sweeper.start()

    async def close(self) -> None:
        self._handler = None
        await self._sweeper.stop()

    async def subscribe(self, channels: Sequence[str]) -> None:
        self._subscribed.update(channels)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        self._subscribed.difference_update(channels)

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        position = StreamPosition()
        if history is not None and history.enabled:
            now = self._clock()
            stream = self._stream(channel, now, history.meta_ttl)
            pub = stream.append(pub, history, now)
            self._deadlines.arm(channel, stream.next_deadline)
            position = stream.position
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_publication(channel, pub)
        return position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_leave(channel, info)

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None = None,
    ) -> tuple[list[Publication], StreamPosition]:
        now = self._clock()
        stream = self._stream(channel, now, self._meta_ttl if meta_ttl is None else meta_ttl)
        if meta_ttl is not None:
            stream.meta_expires = now + meta_ttl
            self._deadlines.arm(channel, stream.next_deadline)
        return stream.page(since, limit, reverse), stream.position

    async def remove_history(self, channel: str) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            stream.pubs.clear()

    def sweep(self) -> int:
        """Apply every expiry due now; returns how many streams it emptied or dropped."""
        now = self._clock()
        freed = 0
        for channel in self._deadlines.pop_due(now):
            freed += self._expire(channel, now)
            stream = self._streams.get(channel)
            if stream is not None:
                self._deadlines.arm(channel, stream.next_deadline)
        return freed

    def _stream(self, channel: str, now: float, meta_ttl: float) -> _Stream:
        """The channel's live stream, created with a fresh epoch if there is none."""
        self._expire(channel, now)
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(now + meta_ttl)
            self._deadlines.arm(channel, stream.next_deadline)
        return stream

    def _expire(self, channel: str, now: float) -> bool:
        """Drop the stream past its meta ttl, or empty it past its ttl; True if it did."""
        stream = self._streams.get(channel)
        if stream is None:
            return False
        if now >= stream.meta_expires:
            del self._streams[channel]
            return True
        if stream.pubs and now >= stream.expires:
            stream.pubs.clear()
            return True
        return False


# ---------------------------------------------------------------------------- presence


class _Entry(NamedTuple):
    info: ClientInfo
    expires: float


class MemoryPresenceStore:
    """Presence for a single process: a dict of clients per channel."""

    def __init__(
        self, *, clock: Clock = time.monotonic, sweep_interval: float = SWEEP_INTERVAL
    ) -> None:
        self._clock = clock
        self._channels: dict[str, dict[str, _Entry]] = {}
        self._deadlines: _Deadlines[tuple[str, str]] = _Deadlines()
        # Started by the first add(): the PresenceStore interface has no start().
        self._sweeper = _Sweeper(self.sweep, sweep_interval)

    @classmethod
    def from_url(cls, url: str) -> Self:
        _reject_options(url)
        return cls()

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        expires = self._clock() + ttl
        self._channels.setdefault(channel, {})[client_id] = _Entry(info, expires)
        self._deadlines.arm((channel, client_id), expires)
        self._sweeper.start()

    async def remove(self, channel: str, client_id: str) -> None:
        self._drop(channel, client_id)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        return {client_id: entry.info for client_id, entry in self._live(channel).items()}

    async def stats(self, channel: str) -> tuple[int, int]:
        clients = self._live(channel)
        return len(clients), len({entry.info.user for entry in clients.values()})

    async def close(self) -> None:
        await self._sweeper.stop()

    def sweep(self) -> int:
        """Drop every entry expired by now; returns how many it dropped."""
        now = self._clock()
        dropped = 0
        for channel, client_id in self._deadlines.pop_due(now):
            entry = self._channels.get(channel, {}).get(client_id)
            if entry is None:
                continue
            if now >= entry.expires:
                self._drop(channel, client_id)
                dropped += 1
            else:
                self._deadlines.arm((channel, client_id), entry.expires)
        return dropped

    def _live(self, channel: str) -> dict[str, _Entry]:
        """The channel's entries after dropping the expired ones."""
        clients = self._channels.get(channel)
        if clients is None:
            return {}
        now = self._clock()
        for client_id in [cid for cid, entry in clients.items() if now >= entry.expires]:
            self._drop(channel, client_id)
        return clients

    def _drop(self, channel: str, client_id: str) -> None:
        clients = self._channels.get(channel)
        if clients is not None:
            clients.pop(client_id, None)
            if not clients:
                del self._channels[channel]


_broker: type[Broker] = MemoryBroker
_presence: type[PresenceStore] = MemoryPresenceStore
