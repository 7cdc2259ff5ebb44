"""Publishes in call order, many per round trip: an ordered pipeline on one connection.

``submit`` queues a command and returns a future at once; one drainer sends whatever
is queued as a single pipeline (no MULTI), waits for its replies, resolves the futures
in order, and goes on with what queued meanwhile. One drainer and one pipeline at a
time means Redis runs the commands in exactly the order they were submitted, whoever
submitted them — which is what lets a session keep several publishes in flight
without reordering them, and costs one round trip per batch instead of one per
publish.

Scripts run by EVALSHA; when Redis answers NOSCRIPT (its script cache was flushed or
it restarted) none of that batch's script calls ran, so the drainer loads the scripts
and sends those calls again, in order, before anything queued after them (the plain
commands of that same batch have run by then: a namespace's channels are either all
scripted, with history, or all plain, so one channel's order holds).

Plain Redis only: on a Cluster, commands go to the primary of their key's slot and
no single connection orders them (``RedisBroker`` does not use this there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from hubbub.engines.redis.scripts import Script
from hubbub.tasks import start

Pending = tuple[tuple[Any, ...], asyncio.Future[Any]]


class OrderedPipeline:
    """Commands from any caller, sent in submission order; see the module doc."""

    def __init__(self, client: Callable[[], Awaitable[Redis]], scripts: Sequence[Script]) -> None:
        self._client = client
        self._scripts = {script.sha: script for script in scripts}
        self._queue: list[Pending] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0
        """Pipelines sent so far: fewer than the commands when round trips are shared."""

    async def call(self, *args: Any) -> Any:
        """Run one command in order; the same call as ``Commands.call``."""
        return await self.submit(*args)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` in order (NOSCRIPT handled by the drainer), as ``Commands.run``."""
        return await self.submit("EVALSHA", script.sha, len(keys), *keys, *args)

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; its future gets the reply, or the error Redis or the socket gave."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((args, future))
        if self._drainer is None:
            self._drainer = start(self._drain())
        return future

    async def close(self) -> None:
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.cancel()
            await asyncio.gather(drainer, return_exceptions=True)
        queued, self._queue = self._queue, []
        for _, future in queued:
            if not future.done():
                future.set_exception(ConnectionError("redis engine closed"))

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch)
        finally:
            self._drainer = None

    async def _send(self, batch: list[Pending]) -> None:
        try:
            client = await self._client()
            results = await self._execute(client, batch)
            missing = [
                i
                for i, result in enumerate(results)
                if isinstance(result, NoScriptError) and batch[i][0][0] == "EVALSHA"
            ]
            if missing:  # none of them ran: load the scripts, then run them, in order
                for sha in {batch[i][0][1] for i in missing}:
                    await client.script_load(self._scripts[sha].text)
                again = await self._execute(client, [batch[i] for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
        except BaseException as exc:  # the socket failed: these may or may not have run
            failure = exc if isinstance(exc, Exception) else ConnectionError("redis engine closed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if failure is not exc:
                raise  # cancelled: the pipeline is closing
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller gave up (cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, client: Redis, batch: Sequence[Pending]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(*args)
        self.batches += 1
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results
