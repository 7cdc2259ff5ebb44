"""Microseconds per history publish through a real broker, one after another and many at
once, on one channel: what an engine change costs the publish path.

    python benchmarks/engine_publish.py [--url nats://127.0.0.1:4222] [--count 1000]

The URL picks the engine (``nats://`` or ``redis://``); a random prefix keeps the run's
streams or keys apart, and they are deleted afterwards. Timings, so compare versions
in one sitting on one machine (run it at two commits one after the other).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence

import msgspec

from hubbub.engines.base import Broker, HistoryOptions
from hubbub.engines.registry import create_broker
from hubbub.protocol.messages import ClientInfo, Publication

HISTORY = HistoryOptions(size=100, ttl=600.0)
WARMUP = 50


class _Nothing:
    """A broker event handler that drops everything: only publishing is timed."""

    def on_publication(self, channel: str, pub: Publication) -> None: ...
    def on_join(self, channel: str, info: ClientInfo) -> None: ...
    def on_leave(self, channel: str, info: ClientInfo) -> None: ...
    def on_gap(self, channels: Sequence[str]) -> None: ...


def _pub(n: int) -> Publication:
    return Publication(data=msgspec.Raw(b'{"n":%d}' % n))


async def _us_each(broker: Broker, channel: str, count: int, *, together: bool) -> float:
    start = time.perf_counter()
    if together:
        await asyncio.gather(*(broker.publish(channel, _pub(n), HISTORY) for n in range(count)))
    else:
        for n in range(count):
            await broker.publish(channel, _pub(n), HISTORY)
    return (time.perf_counter() - start) / count * 1e6


async def _drop(url: str, prefix: str) -> None:
    if url.startswith("nats"):
        from hubbub.engines.nats import drop_prefix

        await drop_prefix(url)
    else:
        import redis.asyncio as redis

        client = redis.Redis.from_url(url.partition("?")[0])
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def main(url: str, count: int) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    url = f"{url}{'&' if '?' in url else '?'}prefix={prefix}"
    broker = create_broker(url)
    await broker.start(_Nothing())
    try:
        for n in range(WARMUP):
            await broker.publish("chat:warm", _pub(n), HISTORY)
        one = await _us_each(broker, "chat:one", count, together=False)
        many = await _us_each(broker, "chat:many", count, together=True)
    finally:
        await broker.close()
        await _drop(url, prefix)
    engine = url.split(":")[0]
    print(f"{engine}: {one:.0f} us per publish one after another, {many:.0f} us {count} at once")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.count))
