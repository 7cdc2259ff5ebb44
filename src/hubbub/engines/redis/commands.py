"""Where commands go: the URL's Redis, or the primary serving each command's slot.

With ``cluster=true`` the choice waits for the first command, which asks the URL's
node whether it runs Cluster: a standalone Redis 7 speaks sharded Pub/Sub too and
takes the plain client. On a Cluster, redis-py's ``RedisCluster`` routes every
command and script by its keys' slot and follows MOVED and ASK; those redirect a
command that did not run, so following them never runs a publish twice. It raises
instead of queueing when a node's connections are all busy, so callers queue here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from hubbub.engines.redis.options import RedisOptions, connection_kwargs
from hubbub.engines.redis.scripts import Script


class Commands:
    """Sends commands and scripts of one engine; see the module doc."""

    def __init__(self, options: RedisOptions, role: str) -> None:
        self._options = options
        self._role = role
        self._client: Redis | RedisCluster | None = None if options.cluster else self._plain()
        self._opening = asyncio.Lock()
        self._queue = asyncio.Semaphore(options.max_connections)

    async def call(self, *args: Any) -> Any:
        """Run one command where its key lives; redis-py's errors pass through."""
        client = self._client or await self._open()
        if isinstance(client, Redis):  # its blocking pool queues callers itself
            return await cast(Any, client).execute_command(*args)
        async with self._queue:
            return await client.execute_command(*args)

    async def plain_client(self) -> Redis:
        """The client of a plain (non-Cluster) Redis, opened on first use."""
        client = self._client or await self._open()
        if not isinstance(client, Redis):
            raise TypeError("plain_client() on a Redis Cluster")
        return client

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` on the node serving its keys' slot, loading it there if needed."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # not run: this node has not seen the script yet
            return await self.call("EVAL", script.text, len(keys), *keys, *args)

    async def close(self) -> None:
        client, self._client = self._client, None
        if isinstance(client, Redis):
            await client.aclose(close_connection_pool=True)
        elif client is not None:
            await client.aclose()

    async def _open(self) -> Redis | RedisCluster:
        async with self._opening:
            if self._client is None:
                self._client = await self._detect()
            return self._client

    async def _detect(self) -> Redis | RedisCluster:
        plain = self._plain()
        try:
            info = await cast(Any, plain).execute_command("INFO", "cluster")
            if not info.get("cluster_enabled"):
                return plain
        except BaseException:
            await plain.aclose(close_connection_pool=True)
            raise
        await plain.aclose(close_connection_pool=True)
        cluster = RedisCluster.from_url(
            self._options.url,
            max_connections=self._options.max_connections,
            **connection_kwargs(self._options, self._role),
        )
        try:
            await cluster.initialize()
        except BaseException:
            await cluster.aclose()
            raise
        return cluster

    def _plain(self) -> Redis:
        pool = BlockingConnectionPool.from_url(
            self._options.url,
            max_connections=self._options.max_connections,
            timeout=self._options.timeout,
            **connection_kwargs(self._options, self._role),
        )
        return Redis(connection_pool=pool)
