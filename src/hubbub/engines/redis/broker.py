"""The Redis broker: Pub/Sub carries publications, Streams keep history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import structlog
from redis.backoff import EqualJitterBackoff
from redis.crc import key_slot

from hubbub.engines.base import (
    DEFAULT_META_TTL,
    Broker,
    BrokerEventHandler,
    HistoryOptions,
    new_epoch,
)
from hubbub.engines.redis import scripts
from hubbub.engines.redis.commands import Commands
from hubbub.engines.redis.keys import KeyNames
from hubbub.engines.redis.options import RedisOptions, engine_errors, ms
from hubbub.engines.redis.pipeline import OrderedPipeline
from hubbub.engines.redis.pubsub import PLAIN, SHARDED
from hubbub.engines.redis.subscriptions import Subscriptions
from hubbub.engines.redis.wire import (
    JOIN,
    LEAVE,
    PUB,
    decode_info,
    decode_publication,
    encode_info,
    encode_publication,
)
from hubbub.errors import EngineError
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

_log = structlog.get_logger(__name__)

RECONNECT_FIRST = 0.05
RECONNECT_CAP = 5.0
"""Reconnect delays double from about RECONNECT_FIRST up to RECONNECT_CAP seconds."""


class RedisBroker:
    """Broker over Redis Pub/Sub (fan-out) and Streams (history); see the package doc."""

    def __init__(
        self,
        options: RedisOptions | None = None,
        *,
        backoff: EqualJitterBackoff | None = None,
    ) -> None:
        self.options = options if options is not None else RedisOptions()
        self._names = KeyNames(self.options.prefix)
        self._verbs = SHARDED if self.options.cluster else PLAIN
        self._backoff = backoff or EqualJitterBackoff(cap=RECONNECT_CAP, base=RECONNECT_FIRST)
        self._commands = Commands(self.options, "commands")
        # One ordered pipeline for every publish of this node: several may be in flight
        # (from one session too) and still reach Redis in the order they were made.
        self._pipeline = (
            None
            if self.options.cluster
            else OrderedPipeline(self._commands.plain_client, [scripts.PUBLISH])
        )
        self.pipelines_publishes = self._pipeline is not None
        self._publisher: Commands | OrderedPipeline = self._pipeline or self._commands
        self._handler: BrokerEventHandler | None = None
        self._subscriptions: Subscriptions | None = None
        # The offset last delivered per history channel: Pub/Sub keeps the order of the
        # publish script's calls, so any other next offset is a loss or a new epoch.
        self._offsets: dict[str, int] = {}

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(RedisOptions.from_url(url))

    # ----------------------------------------------------------------- lifecycle

    async def start(self, handler: BrokerEventHandler) -> None:
        """Connect every Pub/Sub connection; EngineError when Redis cannot be reached."""
        self._handler = handler
        self._subscriptions = Subscriptions(
            self.options, self._verbs, self._deliver, self._gap, self._backoff
        )
        try:
            await self._subscriptions.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._handler = None
        subscriptions, self._subscriptions = self._subscriptions, None
        if subscriptions is not None:
            await subscriptions.close()
        if self._pipeline is not None:
            await self._pipeline.close()
        await self._commands.close()

    # ------------------------------------------------------------- subscriptions

    def shard_of(self, channel: str) -> int:
        """The index of the Pub/Sub connection (to its node) carrying ``channel``."""
        return key_slot(self._names.pubsub(channel)) % self.options.pubsub_shards

    async def subscribe(self, channels: Sequence[str]) -> None:
        names = {self._names.pubsub(channel): channel for channel in channels}
        await self._started().subscribe(names)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        for channel in channels:
            self._offsets.pop(channel, None)
        self._started().unsubscribe([self._names.pubsub(channel) for channel in channels])

    async def settle(self) -> None:
        """Return once everything published before the call has reached the handler.

        Redis queues a PUBLISH for the subscribers before it answers the publisher,
        and answers each connection in order; so a PING sent on every Pub/Sub
        connection afterwards comes back behind those messages. For tests, and for
        callers that need to read their own writes through the handler.
        """
        await self._started().barrier()

    def _started(self) -> Subscriptions:
        if self._subscriptions is None:
            raise EngineError("redis broker is not started")
        return self._subscriptions

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        body = encode_publication(pub)
        with engine_errors("publish"):
            if history is None or not history.enabled:
                await self._send(channel, PUB + b"0:" + body)
                return StreamPosition()
            args: list[Any] = [body, history.size, ms(history.ttl), ms(history.meta_ttl)]
            args += [new_epoch(), self._verbs.publish, self._names.pubsub(channel)]
            publish = self._publisher.run(scripts.PUBLISH, self._keys(channel), args)
            offset, epoch = await publish
        return StreamPosition(offset=int(offset), epoch=epoch.decode())

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        with engine_errors("publish join"):
            await self._send(channel, JOIN + b":" + encode_info(info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        with engine_errors("publish leave"):
            await self._send(channel, LEAVE + b":" + encode_info(info))

    async def _send(self, channel: str, message: bytes) -> None:
        await self._publisher.call(self._verbs.publish, self._names.pubsub(channel), message)

    # --------------------------------------------------------------------- history

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None = None,
    ) -> tuple[list[Publication], StreamPosition]:
        command, first, second, count = scripts.history_range(since, limit, reverse)
        ttl = DEFAULT_META_TTL if meta_ttl is None else meta_ttl
        args: list[Any] = [new_epoch(), ms(ttl), "0" if meta_ttl is None else "1"]
        args += [command, first, second, count]
        with engine_errors("history"):
            reply = await self._commands.run(scripts.HISTORY, self._keys(channel), args)
            top, epoch, entries = reply
            page = scripts.page(entries)
        return page, StreamPosition(offset=int(top), epoch=epoch.decode())

    def _keys(self, channel: str) -> list[str]:
        return [self._names.stream(channel), self._names.meta(channel)]

    async def remove_history(self, channel: str) -> None:
        with engine_errors("remove history"):
            await self._commands.call("DEL", self._names.stream(channel))

    # -------------------------------------------------------------------- delivery

    def _deliver(self, channel: str, message: bytes) -> None:
        """One Pub/Sub message to the handler; a bad one is logged and skipped."""
        handler = self._handler
        if handler is None:
            return
        head, _, body = message.partition(b":")
        kind = head[:1]
        try:
            if kind == PUB:
                offset = int(head[1:])
                if offset:
                    last = self._offsets.get(channel)
                    self._offsets[channel] = offset
                    if last is not None and offset != last + 1:
                        # Lost on the way, or the stream's metadata is gone (evicted,
                        # flushed) and offsets started again under a new epoch: the
                        # subscribers recover from history rather than see a jump.
                        _log.warning("redis offsets jumped", channel=channel, last=last, now=offset)
                        handler.on_gap([channel])
                handler.on_publication(channel, decode_publication(body, offset))
            elif kind == JOIN:
                handler.on_join(channel, decode_info(body))
            elif kind == LEAVE:
                handler.on_leave(channel, decode_info(body))
            else:
                _log.warning("unknown redis pub/sub message", channel=channel, kind=kind)
        except Exception:
            _log.exception("redis pub/sub message not delivered", channel=channel)

    def _gap(self, channels: list[str]) -> None:
        for channel in channels:  # what came meanwhile is unknown: start counting again
            self._offsets.pop(channel, None)
        if self._handler is not None:
            self._handler.on_gap(channels)


_: type[Broker] = RedisBroker
