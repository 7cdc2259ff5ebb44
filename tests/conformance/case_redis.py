"""The Redis engines in the conformance suite; skipped where no Redis answers.

Redis keeps its own time, so the tests that move a fake clock are skipped here
(tests/engines/test_redis.py covers expiry with short real TTLs). Each engine gets a
random key prefix and deletes its keys when closed: the Redis is shared.

Pub/Sub delivery is asynchronous while the suite checks the handler right after a
publish, so the broker is wrapped to wait for delivery (``RedisBroker.settle``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterator, Sequence

import redis

from conformance.support import Case
from hubbub.engines.base import Broker, BrokerEventHandler, HistoryOptions, PresenceStore
from hubbub.engines.redis import RedisBroker, RedisPresenceStore
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition

URL = os.environ.get("HUBBUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@functools.cache
def unavailable() -> str | None:
    """Why the Redis tests cannot run here, or None when Redis answers."""
    try:
        with redis.Redis.from_url(URL, socket_timeout=1, socket_connect_timeout=1) as client:
            client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"no Redis at {URL}: {exc}"
    return None


def fresh_prefix() -> str:
    return f"hubbub-test-{uuid.uuid4().hex[:10]}"


def scratch_prefix() -> Iterator[str]:
    """Body of a ``prefix`` fixture: a random key prefix, its keys deleted afterwards."""
    name = fresh_prefix()
    yield name
    with contextlib.suppress(redis.RedisError, OSError):  # no Redis: nothing to delete
        drop_keys(name)


def drop_keys(prefix: str) -> None:
    """Delete every key under ``prefix`` (and nothing else) from the shared Redis."""
    with redis.Redis.from_url(URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)


class SettledBroker:
    """A RedisBroker whose publishes return only once their message was delivered.

    ``cleanup`` runs after it is closed (deleting its keys from the shared Redis).
    """

    def __init__(self, inner: RedisBroker, cleanup: Callable[[], None] = lambda: None) -> None:
        self.inner = inner
        self._cleanup = cleanup
        self.pipelines_publishes = False  # each publish waits for its own delivery

    async def start(self, handler: BrokerEventHandler) -> None:
        await self.inner.start(handler)

    async def close(self) -> None:
        await self.inner.close()
        self._cleanup()

    async def subscribe(self, channels: Sequence[str]) -> None:
        await self.inner.subscribe(channels)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        await self.inner.unsubscribe(channels)

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        position = await self.inner.publish(channel, pub, history)
        await self.inner.settle()
        return position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self.inner.publish_join(channel, info)
        await self.inner.settle()

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self.inner.publish_leave(channel, info)
        await self.inner.settle()

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None = None,
    ) -> tuple[list[Publication], StreamPosition]:
        return await self.inner.history(
            channel, since=since, limit=limit, reverse=reverse, meta_ttl=meta_ttl
        )

    async def remove_history(self, channel: str) -> None:
        await self.inner.remove_history(channel)


class CleanPresenceStore(RedisPresenceStore):
    """A RedisPresenceStore that deletes its keys when closed."""

    async def close(self) -> None:
        await super().close()
        drop_keys(self.options.prefix)


def _broker(_: object) -> Broker:
    prefix = fresh_prefix()
    return SettledBroker(RedisBroker.from_url(f"{URL}?prefix={prefix}"), lambda: drop_keys(prefix))


def _presence(_: object) -> PresenceStore:
    return CleanPresenceStore.from_url(f"{URL}?prefix={fresh_prefix()}")


_: type[Broker] = SettledBroker

BROKER = Case(_broker, fake_time=False, unavailable=unavailable)
PRESENCE = Case(_presence, fake_time=False, unavailable=unavailable)
