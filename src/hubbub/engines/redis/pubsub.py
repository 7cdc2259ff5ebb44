"""One Pub/Sub connection: batched (UN)SUBSCRIBE, delivery, reconnects, gap reports.

A ``Subscriber`` holds a share of the channels on one connection to one node. Which
node and which share is the business of ``subscriptions.py``; a subscriber only
tells its owner (``SubscriberEvents``) when Redis says a channel is served elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from itertools import groupby, islice
from typing import Any, Protocol

import structlog
from redis.backoff import EqualJitterBackoff
from redis.crc import key_slot
from redis.exceptions import MovedError, RedisError, ResponseError

from hubbub.errors import EngineError

_log = structlog.get_logger(__name__)


class Connection(Protocol):
    """What a subscriber uses of redis-py's (loosely typed) asyncio Connection."""

    async def connect(self) -> None: ...

    async def disconnect(self, nowait: bool = False) -> None: ...

    async def send_command(self, *args: Any, **kwargs: Any) -> None: ...

    async def send_packed_command(self, command: list[bytes], check_health: bool) -> None: ...

    async def read_response(self, timeout: float | None = None) -> Any: ...

    def pack_commands(self, commands: list[tuple[Any, ...]]) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class Verbs:
    """The commands and reply kinds of plain or sharded (Cluster) Pub/Sub."""

    subscribe: bytes
    unsubscribe: bytes
    publish: str
    message: bytes
    unsubscribed: bytes


PLAIN = Verbs(b"SUBSCRIBE", b"UNSUBSCRIBE", "PUBLISH", b"message", b"unsubscribe")
SHARDED = Verbs(b"SSUBSCRIBE", b"SUNSUBSCRIBE", "SPUBLISH", b"smessage", b"sunsubscribe")

SUBSCRIBE_CHUNK = 500
"""At most this many channels in one SUBSCRIBE command."""


class SubscriberEvents(Protocol):
    """What a subscriber tells its owner about channels this node may no longer serve."""

    def moved(self, subscriber: Subscriber, slot: int) -> None:
        """Redis answered MOVED: ``slot`` is served by another node now."""
        ...

    def dropped(self, subscriber: Subscriber, name: bytes) -> None:
        """Redis unsubscribed ``name`` on its own: its slot moved to another node."""
        ...

    def down(self, subscriber: Subscriber) -> None:
        """The connection broke or could not be made; it is retried with back-off."""
        ...


@dataclass(frozen=True, slots=True)
class SubscriberSettings:
    """What every subscriber of a broker shares."""

    verbs: Verbs
    timeout: float
    backoff: EqualJitterBackoff
    deliver: Callable[[str, bytes], None]
    """Called with (hubbub channel, message) for every message of a held channel."""
    gap: Callable[[list[str]], None]
    """Called with channels whose delivery was interrupted, once they are subscribed again."""
    events: SubscriberEvents


class Subscriber:
    """One Pub/Sub connection holding a share of the channels; reconnects by itself.

    (UN)SUBSCRIBE requests made in one loop turn go out together, followed by one
    PING. Redis answers commands of a connection in order, so its PONG says every
    channel before it is subscribed: waiters of a batch share one future, resolved
    by that PONG. Connection loss fails the waiting futures with EngineError.

    After a reconnect every held channel is subscribed again and reported as a gap.
    Channels handed over from another connection are "owed" a gap report too: it is
    made once Redis confirms them here, or when this connection (re)opens.
    """

    def __init__(self, name: str, factory: Callable[[], Connection], settings: SubscriberSettings):
        self.name = name
        self.held: dict[bytes, str] = {}
        """Pub/Sub channel name → hubbub channel, for every channel wanted here."""
        self._factory = factory
        self._settings = settings
        self._verbs = settings.verbs
        self._owed: set[bytes] = set()
        self._leaving: Counter[bytes] = Counter()
        """Our UNSUBSCRIBEs not answered yet: any other unsubscribe reply is Redis's own."""
        self._conn: Connection | None = None
        self._opened = False
        self.connected = asyncio.Event()
        self._pongs: deque[asyncio.Future[None] | None] = deque()
        self._ops: list[tuple[bytes, bytes]] = []
        self._batch: asyncio.Future[None] | None = None
        self._failure: str | None = None
        self._write = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Subscriber {self.name} holding {len(self.held)}>"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self._lost("closed")

    # ------------------------------------------------------------------ requests

    async def subscribe(self, names: dict[bytes, str], owed: Collection[bytes] = ()) -> None:
        """Hold ``names`` and return once Redis has confirmed them.

        ``owed`` names were delivered by another connection before: they are reported
        as a gap once confirmed here. A connection opening for the first time is
        waited for; one that is down raises EngineError (it subscribes them when back).
        """
        self.held.update(names)
        self._owed.update(owed)
        if self._conn is None and not self._opened:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), self._settings.timeout)
        if self._conn is None:
            raise EngineError(f"redis pub/sub connection {self.name} is down")
        await self._wait(self._request(self._verbs.subscribe, list(names)))
        self._report_gap([name for name in owed if name in self._owed])

    def unsubscribe(self, names: Sequence[bytes]) -> None:
        """Stop holding ``names``; their messages are dropped from now on."""
        self.forget(names)
        if self._conn is not None:  # when down, the reconnect simply leaves them out
            self._request(self._verbs.unsubscribe, names)

    def forget(self, names: Collection[bytes]) -> None:
        """Stop holding ``names`` without telling Redis: it no longer serves them here."""
        for name in names:
            self.held.pop(name, None)
            self._owed.discard(name)

    async def barrier(self) -> None:
        """Return once every message Redis queued for this connection before has arrived."""
        if self._conn is None:
            raise EngineError(f"redis pub/sub connection {self.name} is down")
        await self._wait(self._request(b"", ()))

    def _request(self, verb: bytes, names: Sequence[bytes]) -> asyncio.Future[None]:
        if verb:
            self._ops.extend((verb, name) for name in names)
        if self._batch is None:
            loop = asyncio.get_running_loop()
            self._batch = loop.create_future()
            self._batch.add_done_callback(_retrieve)
            flush = loop.create_task(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return self._batch

    async def _wait(self, batch: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(batch), self._settings.timeout)
        except TimeoutError:
            raise EngineError("redis pub/sub did not answer in time") from None

    async def _flush(self) -> None:
        async with self._write:
            ops, self._ops = self._ops, []
            batch, self._batch = self._batch, None
            assert batch is not None
            conn = self._conn
            if conn is None:
                batch.set_exception(EngineError(f"redis pub/sub connection {self.name} is down"))
                return
            self._leaving.update(name for verb, name in ops if verb == self._verbs.unsubscribe)
            with contextlib.suppress(RedisError, OSError):  # the reader sees the loss
                await self._send(conn, self._commands(ops), batch)

    async def _send(
        self, conn: Connection, commands: list[tuple[Any, ...]], pong: asyncio.Future[None] | None
    ) -> None:
        """Write ``commands`` and a PING whose PONG resolves ``pong``; hold ``_write``."""
        self._pongs.append(pong)
        packed = conn.pack_commands([*commands, (b"PING",)])
        await conn.send_packed_command(packed, check_health=False)

    def _commands(self, ops: list[tuple[bytes, bytes]]) -> list[tuple[Any, ...]]:
        """Consecutive ops of one verb as few commands as allowed, in the order asked.

        Redis Cluster refuses a sharded (UN)SUBSCRIBE whose channels are in several slots.
        """
        commands: list[tuple[Any, ...]] = []
        for verb, run in groupby(ops, key=lambda op: op[0]):
            names = [name for _, name in run]
            groups = _by_slot(names) if self._verbs is SHARDED else [names]
            for group in groups:
                iterator = iter(group)
                while chunk := list(islice(iterator, SUBSCRIBE_CHUNK)):
                    commands.append((verb, *chunk))
        return commands

    # ------------------------------------------------------------------- reading

    async def _run(self) -> None:
        """Connect, read until the connection breaks, back off, again; never raises."""
        failures = 0
        while True:
            try:
                reopened = self._opened
                conn = await self._connect()
                failures = 0
                self._report_gap(list(self.held) if reopened else list(self._owed))
                await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("redis pub/sub connection failed", shard=self.name, error=str(exc))
            await self._lost(f"redis pub/sub connection {self.name} lost")
            self._settings.events.down(self)
            await asyncio.sleep(self._settings.backoff.compute(failures))
            failures += 1

    async def _connect(self) -> Connection:
        conn = self._factory()
        try:
            await conn.connect()
            async with self._write:
                ops = [(self._verbs.subscribe, name) for name in self.held]
                await self._send(conn, self._commands(ops), None)
                self._conn = conn
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise
        self._opened = True
        self.connected.set()
        _log.info("redis pub/sub connected", shard=self.name, channels=len(self.held))
        return conn

    def _report_gap(self, names: list[bytes]) -> None:
        channels = [self.held[name] for name in names if name in self.held]
        self._owed.difference_update(names)
        if not channels:
            return
        _log.warning("redis pub/sub resubscribed after a gap", shard=self.name, n=len(channels))
        try:
            self._settings.gap(channels)
        except Exception:
            _log.exception("broker gap handler failed", shard=self.name)

    async def _read(self, conn: Connection) -> None:
        """Dispatch replies; a silent connection gets a PING, then counts as dead."""
        probing = False
        timeout = self._settings.timeout
        while True:
            try:
                reply = await conn.read_response(timeout=timeout)
            except MovedError as exc:  # its channels are not subscribed: not a failure here
                self._moved(int(exc.slot_id))
                continue
            except ResponseError as exc:  # a refused (UN)SUBSCRIBE: fail its batch
                self._failure = str(exc)
                continue
            if reply is not None:
                probing = False
                self._dispatch(reply)
            elif probing:
                raise ConnectionError(f"no answer to PING within {timeout}s")
            else:
                probing = True
                async with self._write:
                    await self._send(conn, [], None)

    def _dispatch(self, reply: Any) -> None:
        if isinstance(reply, list):
            kind = reply[0]
            if kind == self._verbs.message:
                channel = self.held.get(reply[1])
                if channel is not None:  # else unsubscribed meanwhile
                    self._settings.deliver(channel, reply[2])
            elif kind == self._verbs.unsubscribed:
                self._unsubscribed(reply[1])
            elif kind == b"pong":
                self._pong()
        elif reply == b"PONG":  # a PING while subscribed to nothing: a plain reply
            self._pong()

    def _unsubscribed(self, name: bytes) -> None:
        if self._leaving[name] > 0:
            self._leaving[name] -= 1
            if not self._leaving[name]:
                del self._leaving[name]
        elif name in self.held:  # Redis dropped it: the slot was given to another node
            self._settings.events.dropped(self, name)

    def _moved(self, slot: int) -> None:
        for name in [name for name in self._leaving if key_slot(name) == slot]:
            del self._leaving[name]  # a refused SUNSUBSCRIBE is never answered
        self._settings.events.moved(self, slot)

    def _pong(self) -> None:
        future = self._pongs.popleft() if self._pongs else None
        failure, self._failure = self._failure, None
        if future is None or future.done():
            return
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(EngineError(f"redis refused a subscription: {failure}"))

    async def _lost(self, reason: str) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        self._leaving.clear()
        pongs, self._pongs = self._pongs, deque()
        for future in pongs:
            if future is not None and not future.done():
                future.set_exception(EngineError(reason))
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a batch's exception as seen: its waiters may all have timed out."""
    if not future.cancelled():
        future.exception()


def _by_slot(names: list[bytes]) -> list[list[bytes]]:
    groups: dict[int, list[bytes]] = {}
    for name in names:
        groups.setdefault(key_slot(name), []).append(name)
    return list(groups.values())
