"""The ordered publish pipeline of the Redis broker, against the real Redis.

Publishes started together (without awaiting each) reach Redis in the order they were
started, many per round trip; a NOSCRIPT answer reloads the script and reruns those
calls in order; a closed pipeline fails what it still holds. Shared Redis: random
prefixes, keys deleted afterwards, nothing flushed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import redis
from conformance.case_redis import URL, scratch_prefix, unavailable
from enginekit import Recorder, numbers, offsets, pub
from redis.asyncio import Redis

from hubbub.engines.base import HistoryOptions
from hubbub.engines.redis import RedisBroker
from hubbub.engines.redis.pipeline import OrderedPipeline
from hubbub.engines.redis.scripts import Script
from hubbub.errors import EngineError

if TYPE_CHECKING:
    from .conftest import StartBroker

_REASON = unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
HISTORY = HistoryOptions(size=1000, ttl=60.0, meta_ttl=600.0)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A random key prefix; every key under it is deleted after the test."""
    yield from scratch_prefix()


@pytest.fixture
async def broker(prefix: str, start_broker: StartBroker) -> tuple[RedisBroker, Recorder]:
    events = Recorder()
    return await start_broker(RedisBroker.from_url(f"{URL}?prefix={prefix}"), events), events


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    client = Redis.from_url(URL)
    yield client
    await client.aclose()


async def test_publishes_started_together_keep_their_order_and_share_round_trips(
    broker: tuple[RedisBroker, Recorder],
) -> None:
    """300 publishes started in one go: offsets 1..300 in start order, fewer round trips."""
    redis_broker, events = broker
    assert redis_broker.pipelines_publishes
    await redis_broker.subscribe(["chat:line"])
    pipeline = redis_broker._pipeline
    assert pipeline is not None
    batches0 = pipeline.batches
    started = [redis_broker.publish("chat:line", pub(n), HISTORY) for n in range(300)]
    positions = await asyncio.gather(*started)
    assert [p.offset for p in positions] == list(range(1, 301))
    await redis_broker.settle()
    delivered = events.pubs("chat:line")
    assert numbers(delivered) == list(range(300))
    assert offsets(delivered) == list(range(1, 301))
    # All 300 were queued before the drainer ran: one pipeline, or two more when Redis
    # first answered NOSCRIPT (reload, rerun). Not one round trip per publish.
    assert pipeline.batches - batches0 <= 3


async def test_plain_publishes_keep_their_order_too(broker: tuple[RedisBroker, Recorder]) -> None:
    redis_broker, events = broker
    await redis_broker.subscribe(["room"])
    await asyncio.gather(*(redis_broker.publish("room", pub(n), None) for n in range(200)))
    await redis_broker.settle()
    assert numbers(events.pubs("room")) == list(range(200))


async def test_noscript_loads_the_script_and_reruns_in_order(client: Redis, prefix: str) -> None:
    """A script Redis has never seen: its calls come back NOSCRIPT, then run, in order."""
    key = f"{prefix}:seq"
    script = Script(f"-- {secrets.token_hex(8)}\nreturn redis.call('rpush', KEYS[1], ARGV[1])")

    async def plain() -> Redis:
        return client

    pipeline = OrderedPipeline(plain, [script])
    lengths = await asyncio.gather(
        *(pipeline.submit("EVALSHA", script.sha, 1, key, str(n)) for n in range(20))
    )
    assert lengths == list(range(1, 21))
    assert [int(x) for x in await client.lrange(key, 0, -1)] == list(range(20))
    await pipeline.close()


async def test_a_failed_command_fails_only_its_own_future(client: Redis, prefix: str) -> None:
    async def plain() -> Redis:
        return client

    pipeline = OrderedPipeline(plain, [])
    key = f"{prefix}:s"
    ok1 = pipeline.submit("SET", key, "1")
    bad = pipeline.submit("INCRBY", key, "not-a-number")
    ok2 = pipeline.submit("GET", key)
    assert await ok1 is True
    with pytest.raises(redis.ResponseError):
        await bad
    assert await ok2 == b"1"
    await pipeline.close()


async def test_unreachable_redis_fails_every_queued_publish() -> None:
    dead = RedisBroker.from_url("redis://127.0.0.1:1/0?prefix=nothing&timeout=0.5")
    results = await asyncio.gather(
        *(dead.publish("chat:x", pub(n), HISTORY) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, EngineError) for r in results), results
    await dead.close()


async def test_close_fails_what_is_still_queued(client: Redis) -> None:
    gate = asyncio.Event()

    async def slow() -> Redis:
        await gate.wait()
        return client

    pipeline = OrderedPipeline(slow, [])
    waiting = pipeline.submit("PING")
    await asyncio.sleep(0)
    queued = pipeline.submit("PING")
    await pipeline.close()
    for future in (waiting, queued):
        with pytest.raises(ConnectionError):
            await future
