"""The NATS connection each engine holds, and how its failures reach the caller.

nats-py reconnects by itself (here with exponential back-off and jitter) and
resubscribes; the owner hears of it through ``on_reconnected``. While disconnected
nothing is buffered: publishes fail at once rather than leave later, after the client
was told they failed. Every call runs under ``Link.guard``: a deadline of ``timeout``
seconds, and every NATS failure turned into ``EngineError``.

A connection can also go silent (a blackholed route: the socket stays open, nothing
arrives) and nats-py's defaults would notice only after minutes. Here it PINGs every
``timeout`` (whole seconds: nats-py's unit) and counts the connection dead when the
PING is still unanswered at the next one, so silence is noticed within 2 x timeout and
handled like a plain disconnect. A core NATS publish is only written to the socket, so
``confirm`` waits for a PONG before a publish counts as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client, Server
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from hubbub.engines.nats.options import NatsOptions
from hubbub.errors import EngineError

_log = structlog.get_logger(__name__)

WRONG_LAST_SEQUENCE: Final = 10071
"""JetStream's error code when Nats-Expected-Last-Subject-Sequence does not match."""
STREAM_NOT_FOUND: Final = 10059
STREAM_NAME_IN_USE: Final = 10058
"""The stream exists with another configuration."""
SUBJECTS_OVERLAP: Final = 10065
"""Another stream takes these subjects; also what a creation racing ours may get."""


async def create_or_read(
    js: JetStreamContext, create: Awaitable[object], stream: str
) -> api.StreamInfo | None:
    """Await ``create`` (a stream's or a bucket's creation): None when it made ``stream``,
    the stream's info when another node made it at the same moment. The loser of that
    race gets "name in use" or, from nats-server 2.9, sometimes "subjects overlap";
    when no stream of that name exists, another one owns our subjects: that raises."""
    try:
        await create
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code not in (STREAM_NAME_IN_USE, SUBJECTS_OVERLAP):
            raise
        try:
            return await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            raise exc from None
    return None


class Link:
    """One NATS connection: back-off on reconnect, no buffering while disconnected."""

    def __init__(self, options: NatsOptions, on_reconnected: Callable[[], None] = lambda: None):
        self.options = options
        self._on_reconnected = on_reconnected
        self._nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._generation = 0
        """Connections made so far: a probe of an earlier one never resets a later one."""
        self._probes: set[asyncio.Task[None]] = set()
        self._next_probe: asyncio.Task[None] | None = None
        """The probe made this loop turn and not yet started: later confirms share it."""

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise EngineError("the NATS engine is not started")
        return self._nc

    def jetstream(self) -> JetStreamContext:
        if self.js is None:
            raise EngineError("the NATS engine is not started")
        return self.js

    @contextlib.asynccontextmanager
    async def guard(self, action: str) -> AsyncIterator[None]:
        """Turn every NATS failure, and taking longer than ``timeout``, into EngineError."""
        try:
            async with asyncio.timeout(self.options.timeout):
                yield
        except EngineError:
            raise
        except (nats.errors.Error, TimeoutError, OSError, msgspec.DecodeError) as exc:
            raise EngineError(f"NATS {action} failed: {str(exc) or type(exc).__name__}") from exc

    async def open(self) -> None:
        options = self.options
        nc = Client()
        try:
            where = urlsplit(options.server)  # host and port only: no credentials
            async with self.guard(f"connect to {where.hostname}:{where.port or 4222}"):
                await nc.connect(
                    servers=[options.server],
                    name="hubbub",
                    no_echo=True,  # a node delivers its own publications itself
                    pending_size=0,  # fail publishes while disconnected: never send them late
                    connect_timeout=math.ceil(options.timeout),
                    ping_interval=math.ceil(options.timeout),
                    max_outstanding_pings=1,  # unanswered at the next PING: dead
                    reconnect_time_wait=math.ceil(options.reconnect_wait),
                    max_reconnect_attempts=-1,
                    reconnect_to_server_handler=self._backoff,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
        except BaseException:
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._nc = nc
        self.js = nc.jetstream(timeout=options.timeout)

    async def close(self) -> None:
        nc, self._nc, self.js = self._nc, None, None
        for probe in list(self._probes):
            probe.cancel()
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), self.options.timeout)

    async def confirm(self) -> None:
        """Return once the server answered a PING sent now: a live send before it then
        went out on a connection known to be alive, not into a silent one. (nats-py
        writes the PING straight to the socket, maybe just ahead of a send still queued
        for its flusher: the PONG shows the connection alive, not that very send read.)

        The PING runs in a task of its own, which a caller giving up (its deadline, a
        cancel) leaves running: nats-py's reader stops at a PONG whose waiter was
        cancelled. No PONG within ``timeout``: the connection counts as dead and is
        reconnected at once, so that late PONG never reaches the reader.
        """
        probe = self._next_probe
        if probe is None:  # sends of one loop turn share one PING, sent after them all
            loop = asyncio.get_running_loop()
            probe = self._next_probe = loop.create_task(self._probe(self.nc, self._generation))
            self._probes.add(probe)
            probe.add_done_callback(self._probe_done)
        await asyncio.shield(probe)

    async def _probe(self, nc: Client, generation: int) -> None:
        if self._next_probe is None:
            # Started eagerly (an eager task factory runs it inside ``create_task``, before
            # ``confirm`` keeps it): the sends of this loop turn go first, as they would.
            await asyncio.sleep(0)
        if self._next_probe is asyncio.current_task():
            self._next_probe = None  # its PING goes out now: a later send needs the next
        if not nc.is_connected:
            raise nats.errors.ConnectionReconnectingError
        try:
            await nc.flush(timeout=math.ceil(self.options.timeout))
        except nats.errors.FlushTimeoutError:
            if nc is self._nc and generation == self._generation:
                _log.warning("NATS connection silent; reconnecting", server=self.options.server)
                await nc.force_reconnect()
            raise

    def _probe_done(self, probe: asyncio.Task[None]) -> None:
        self._probes.discard(probe)
        if self._next_probe is probe:  # ended before it started (closed): not to share
            self._next_probe = None
        if not probe.cancelled():
            probe.exception()  # retrieved here: the caller may have stopped waiting

    async def snapshot(
        self, stream: str, subject: str, policy: api.DeliverPolicy, upto: int = 0
    ) -> list[Msg]:
        """Every stored message of ``subject`` (or the last of each, by ``policy``), in order,
        through a short-lived push consumer; up to stream sequence ``upto`` when given."""
        nc, js = self.nc, self.jetstream()
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        name = ""
        try:
            config = api.ConsumerConfig(
                deliver_subject=inbox,
                filter_subject=subject,
                deliver_policy=policy,
                ack_policy=api.AckPolicy.NONE,
                mem_storage=True,
                inactive_threshold=max(10.0, 2 * self.options.timeout),
            )
            try:
                info = await js.add_consumer(stream, config)
            except nats.js.errors.NotFoundError as exc:
                if exc.err_code == STREAM_NOT_FOUND:
                    return []
                raise
            name = info.name or ""
            pending = info.num_pending or 0
            messages: list[Msg] = []
            while pending:
                msg = await sub.next_msg(timeout=self.options.timeout)
                messages.append(msg)
                pending = msg.metadata.num_pending or 0
                if upto and (msg.metadata.sequence.stream or 0) >= upto:
                    break
            return messages
        finally:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
            if name:  # the server would drop it when idle anyway; this frees it now
                with contextlib.suppress(nats.errors.Error):
                    await nc.publish(f"$JS.API.CONSUMER.DELETE.{stream}.{name}")

    def _backoff(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server | None, float]:
        """nats-py asks before each reconnect attempt: exponential back-off with jitter."""
        attempts = min(server.reconnects for server in servers)
        delay = min(
            self.options.reconnect_max_wait, self.options.reconnect_wait * 2 ** min(attempts, 16)
        )
        return servers[0], delay * random.uniform(0.5, 1.0)

    async def _disconnected(self) -> None:
        if self._nc is None:
            return  # closing
        _log.warning("NATS connection lost; reconnecting", server=self.options.server)

    async def _reconnected(self) -> None:
        self._generation += 1
        _log.info("NATS connection back", server=self.options.server)
        try:
            self._on_reconnected()
        except Exception:  # never break nats-py's reconnect task
            _log.exception("NATS reconnect handling failed")

    async def _error(self, exc: Exception) -> None:
        _log.debug("NATS connection error", error=str(exc) or type(exc).__name__)
