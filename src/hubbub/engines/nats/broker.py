"""``NatsBroker``: core NATS carries live events, JetStream streams keep history.

Subscribing a channel subscribes its live subject, then reads the stream's tail: whatever
is stored later comes live, so nothing is missed and nothing older is delivered. Each
subscribed channel has a ``ChannelFeed`` (feed.py) that puts publications back in offset
order. The connection runs with ``no_echo``, so a node hands its own publications to its
feed directly, after JetStream stored them (history.py).

Calls on one channel take effect in the order they were made, however they interleave:
a subscribe makes a new ``_Subscription`` the channel's at once, and an unsubscribe
closes the current one, even while its subscribe still runs (which then drops the NATS
subscription it made, and starts no feed). Each NATS subscription delivers to its own
``_Subscription`` only, so one left over never feeds a later one.

nats-py resubscribes after a reconnect; every subscribed channel is then reported as a
gap, because core NATS dropped whatever was published meanwhile. A connection that goes
silent is found dead by its PINGs and reconnected the same way (link.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hubbub.engines.base import Broker, BrokerEventHandler, HistoryOptions
from hubbub.engines.nats.feed import ChannelFeed, FeedSink
from hubbub.engines.nats.history import HistoryStreams
from hubbub.engines.nats.link import Link
from hubbub.engines.nats.names import Names
from hubbub.engines.nats.options import NatsOptions
from hubbub.engines.nats.state import (
    JOIN,
    LEAVE,
    PUB,
    Record,
    client_info,
    decode_record,
    encode,
    event,
    publication,
    wire_info,
)
from hubbub.errors import EngineError
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

_log = structlog.get_logger(__name__)

STREAM_DELETED = "$JS.EVENT.ADVISORY.STREAM.DELETED.*"
"""JetStream's advisory subject for a deleted stream (its name is the last token)."""


@dataclass(eq=False, slots=True)
class _Subscription:
    """One subscribe of a channel: the channel's from the call until an unsubscribe, or
    its own failure, closes it."""

    feed: ChannelFeed
    nats_sub: Subscription | None = None
    closed: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the subscribe is over: delivering, failed (``error``) or closed meanwhile."""
    error: str = ""

    async def on_live(self, msg: Msg) -> None:
        """nats-py's callback for this subscription's live subject."""
        if self.closed:
            return
        try:
            record = decode_record(msg.data)
        except msgspec.DecodeError:
            _log.warning("dropped an undecodable NATS message", subject=msg.subject)
            return
        self.feed.accept(record)

    def close(self) -> None:
        self.closed = True
        self.feed.close()
        self.settled.set()

    async def release(self, timeout: float) -> None:
        """Drop the NATS subscription; best effort: the server forgets it on reconnect."""
        sub, self.nats_sub = self.nats_sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await asyncio.wait_for(sub.unsubscribe(), timeout)


class NatsBroker:
    """Broker over NATS: core subjects fan out, JetStream streams keep history."""

    # Publishes started together are applied in the order they started, so a session may
    # keep several in flight: a live send is written to the one connection at once (and
    # the sends of a loop turn share one PING, ``Link.confirm``), and appends to one
    # channel's history take ``HistoryStreams.hold``, a FIFO lock entered before the first
    # wait. Awaited one by one, each publish would cost a PING round trip and a loop
    # turn, so under fan-out load every publication went out alone, never coalesced.
    pipelines_publishes = True

    def __init__(self, options: NatsOptions) -> None:
        self.options = options
        self._names = Names(options.prefix)
        self._link = Link(options, on_reconnected=self._reconnected)
        self._streams = HistoryStreams(self._link, self._names)
        self._handler: BrokerEventHandler | None = None
        self._channels: dict[str, _Subscription] = {}

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(NatsOptions.from_url(url))

    async def start(self, handler: BrokerEventHandler) -> None:
        await self._link.open()
        # A history stream deleted (by anyone) takes this node's cached tails with it;
        # nats-py subscribes again after a reconnect, which forgets them all anyway.
        async with self._link.guard("subscribe to stream advisories"):
            await self._link.nc.subscribe(STREAM_DELETED, cb=self._stream_deleted)
        self._handler = handler

    async def close(self) -> None:
        self._handler = None
        for entry in self._channels.values():
            entry.close()
        self._channels.clear()
        await self._streams.close()
        await self._link.close()

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, channels: Sequence[str]) -> None:
        """See the module docstring; a channel whose subscribe is still running is waited
        for, and fails with it."""
        wanted = list(dict.fromkeys(channels))
        fresh = {c: self._open(c) for c in wanted if c not in self._channels}
        running = [self._channels[c] for c in wanted if c not in fresh]
        try:
            await self._start(fresh)
        finally:
            for entry in fresh.values():
                entry.settled.set()
        for entry in running:
            await entry.settled.wait()
            if entry.error:
                raise EngineError(entry.error)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        closing = [self._channels.pop(channel, None) for channel in dict.fromkeys(channels)]
        entries = [entry for entry in closing if entry is not None]
        for entry in entries:
            entry.close()
        for entry in entries:
            await entry.release(self.options.timeout)

    def _open(self, channel: str) -> _Subscription:
        entry = _Subscription(ChannelFeed(channel, self, self.options.reorder_wait))
        self._channels[channel] = entry
        return entry

    async def _start(self, fresh: dict[str, _Subscription]) -> None:
        """Subscribe the live subjects, then read the tails and start the feeds."""
        if not fresh:
            return
        try:
            async with self._link.guard("subscribe"):
                for channel, entry in fresh.items():
                    live = self._names.live(channel)
                    entry.nats_sub = await self._link.nc.subscribe(live, cb=entry.on_live)
                    if entry.closed:  # unsubscribed meanwhile
                        await entry.release(self.options.timeout)
                # Read after SUB: whatever is stored later comes live, and is delivered.
                tails = await asyncio.gather(*(self._streams.read_tail(c) for c in fresh))
        except BaseException as exc:
            for channel, entry in fresh.items():
                entry.error = str(exc) if isinstance(exc, EngineError) else "NATS subscribe stopped"
                await self._close(channel, entry)
            raise
        for entry, tail in zip(fresh.values(), tails, strict=True):
            if not entry.closed:
                entry.feed.begin(None if tail is None else tail.record)

    async def _close(self, channel: str, entry: _Subscription) -> None:
        if self._channels.get(channel) is entry:  # not a later subscribe's
            del self._channels[channel]
        entry.close()
        await entry.release(self.options.timeout)

    async def _stream_deleted(self, msg: Msg) -> None:
        stream = msg.subject.rpartition(".")[2]
        if self._names.owns(stream):
            self._streams.forget_stream(stream)

    def _reconnected(self) -> None:
        """Core NATS lost whatever was published while we were away: tell the handler."""
        self._streams.forget()
        for entry in self._channels.values():
            entry.feed.adopt()
        if self._handler is not None and self._channels:
            self._handler.on_gap(list(self._channels))

    # ---------------------------------------------------------------------- FeedSink

    def deliver(self, channel: str, record: Record) -> None:
        handler = self._handler
        if handler is None:
            return
        if record.kind == JOIN:
            handler.on_join(channel, client_info(record.info))
        elif record.kind == LEAVE:
            handler.on_leave(channel, client_info(record.info))
        else:
            handler.on_publication(channel, publication(record))

    def gap(self, channel: str) -> None:
        if self._handler is not None:
            self._handler.on_gap([channel])

    async def fetch(self, channel: str, epoch: str, first: int, last: int) -> list[Record]:
        async with self._link.guard("history read"):
            return await self._streams.between(channel, epoch, first, last)

    # ---------------------------------------------------------------------- publish

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        if history is None or not history.enabled:
            async with self._link.guard("publish"):
                await self._send_live(channel, event(PUB, pub), required=True)
            return StreamPosition()
        # Held until sent, so this node sends (and delivers) its offsets in order.
        async with self._link.guard("publish"), self._streams.hold(channel):
            tail, data = await self._streams.append(channel, pub, history)
            await self._send_live(channel, tail.record, required=False, data=data)
        return tail.record.position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._send_presence(channel, JOIN, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._send_presence(channel, LEAVE, info)

    async def _send_presence(self, channel: str, kind: int, info: ClientInfo) -> None:
        async with self._link.guard("publish"):
            await self._send_live(channel, Record(kind=kind, info=wire_info(info)), required=True)

    async def _send_live(
        self, channel: str, record: Record, *, required: bool, data: bytes | None = None
    ) -> None:
        """Send to every other node, then deliver here. Once a publication is in history a
        failed send is not an error: other nodes read it from there at their next one.
        A ``required`` send has no such fallback, so it counts only once the server
        answered after it (``Link.confirm``): else a silent connection would swallow it.
        ``data`` is ``record`` already encoded (as history stored it), so it is not again."""
        if data is None:
            data = encode(record)
        try:
            await self._link.nc.publish(self._names.live(channel), data)
            if required:
                await self._link.confirm()
        except nats.errors.Error as exc:
            if required:
                raise
            _log.warning("a stored publication was not sent live", channel=channel, error=str(exc))
        entry = self._channels.get(channel)
        if entry is not None:
            entry.feed.accept(record)

    # ---------------------------------------------------------------------- history

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None = None,
    ) -> tuple[list[Publication], StreamPosition]:
        async with self._link.guard("history"):
            return await self._streams.page(
                channel, since=since, limit=limit, reverse=reverse, meta_ttl=meta_ttl
            )

    async def remove_history(self, channel: str) -> None:
        async with self._link.guard("remove history"):
            await self._streams.remove(channel)


_broker: type[Broker] = NatsBroker
_sink: type[FeedSink] = NatsBroker
