"""Redis engines: Pub/Sub carries publications, Streams keep history, hashes keep presence.

    redis://[:password@]host:6379/0?prefix=hubbub&pubsub_shards=4&cluster=true

Options in the URL query (anything else is refused, so a typo never passes silently):

    prefix           key and channel prefix, so several installations share a Redis
    pubsub_shards    Pub/Sub connections per node; channels spread over them by hash
    cluster          true: sharded Pub/Sub (SPUBLISH/SSUBSCRIBE) for Redis Cluster; all
                     traffic goes to the URL's node, so a Cluster of several primaries
                     is refused at start until slot-aware routing exists
    timeout          seconds a Redis command may take before it counts as failed
    max_connections  command connections per engine; callers queue beyond it

Publishing with history runs one Lua script: HINCRBY the top offset, XADD to the
stream with MAXLEN, PUBLISH, all atomically, so offsets have no gaps even with publishers in
many processes, and every node sees them in offset order. Each channel's keys share
one hash tag, so the script stays within one Cluster slot.

A subscriber connection that breaks is reconnected by its own reader task with capped
exponential back-off and jitter; it subscribes every channel it holds again and tells
the handler (``on_gap``) that those channels may have missed publications. Every
other Redis failure surfaces as ``EngineError``: a publish is never reported done
when Redis did not take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby, islice
from typing import Any, Protocol, Self, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec
import structlog
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

from hubbub.engines.base import (
    DEFAULT_META_TTL,
    Broker,
    BrokerEventHandler,
    HistoryOptions,
    PresenceStore,
)
from hubbub.errors import EngineError
from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition, raw

_log = structlog.get_logger(__name__)

# ------------------------------------------------------------------------------ options

_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _whole(low: int, high: int) -> Callable[[str], int | None]:
    return lambda value: int(value) if value.isdigit() and low <= int(value) <= high else None


def _seconds(value: str) -> float | None:
    with contextlib.suppress(ValueError):
        if 0 < (seconds := float(value)) < math.inf:
            return seconds
    return None


_OPTIONS: dict[str, tuple[Callable[[str], object | None], str]] = {
    "prefix": (lambda v: v if _PREFIX.fullmatch(v) else None, "1-64 letters, digits or _.:-"),
    "pubsub_shards": (_whole(1, 128), "a whole number from 1 to 128"),
    "cluster": (lambda v: _FLAGS.get(v.lower()), "true or false"),
    "timeout": (_seconds, "seconds > 0"),
    "max_connections": (_whole(1, 10_000), "a whole number from 1 to 10000"),
}
"""Each option's parser (None for a bad value) and what it expects, for the error."""


def _option(name: str, value: str) -> object:
    if name not in _OPTIONS:
        known = ", ".join(sorted(_OPTIONS))
        raise ValueError(f"unknown redis URL option {name!r}; known options: {known}")
    parse, expected = _OPTIONS[name]
    parsed = parse(value)
    if parsed is None:
        raise ValueError(f"redis URL option {name}: expected {expected}, got {value!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Where Redis is and how hubbub uses it, read from the engine URL."""

    url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    """The URL for redis-py, without hubbub's options (kept out of repr: a password)."""
    prefix: str = "hubbub"
    pubsub_shards: int = 1
    cluster: bool = False
    timeout: float = 5.0
    max_connections: int = 32

    @classmethod
    def from_url(cls, url: str) -> RedisOptions:
        """Split hubbub's options off ``url``; ValueError names a bad or unknown one."""
        parts = urlsplit(url)
        values: dict[str, Any] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in values:
                raise ValueError(f"redis URL option {name} is given twice")
            values[name] = _option(name, value)
        _check_database(parts.path, values.get("cluster", False))
        return cls(url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), **values)


def _check_database(path: str, cluster: bool) -> None:
    database = path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"redis URL path: expected a database number like /0, got {path!r}")
    if cluster and database not in ("", "0"):
        raise ValueError("redis URL option cluster=true needs database 0 (Cluster has no other)")


def _pool_kwargs(options: RedisOptions, role: str) -> dict[str, Any]:
    # No retries inside redis-py: a publish whose reply was lost must not run twice,
    # and reconnecting the subscribers is this module's job (it must report the gap).
    return {
        "socket_timeout": options.timeout,
        "socket_connect_timeout": options.timeout,
        "retry": Retry(NoBackoff(), 0),
        "protocol": 2,
        "client_name": f"{options.prefix}:{role}",
    }


def _command_client(options: RedisOptions) -> Redis:
    pool = BlockingConnectionPool.from_url(
        options.url,
        max_connections=options.max_connections,
        timeout=options.timeout,
        **_pool_kwargs(options, "commands"),
    )
    return Redis(connection_pool=pool)


@contextlib.contextmanager
def _engine_errors(action: str) -> Iterator[None]:
    """Turn any Redis or socket failure into the EngineError the node answers 100 for."""
    try:
        yield
    except (RedisError, OSError, msgspec.DecodeError) as exc:
        raise EngineError(f"redis {action} failed: {exc}") from exc


# ---------------------------------------------------------------------- names, encoding


class KeyNames:
    """Key and Pub/Sub channel names of one hubbub channel.

    All of a channel's names carry the same hash tag, so a Cluster keeps them in one
    slot. The tag opens with ``=``: a channel name starting with ``}`` would otherwise
    make an empty tag, and Redis would hash each whole key to a different slot.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _name(self, kind: str, channel: str) -> str:
        return f"{self.prefix}:{kind}:{{={channel}}}"

    def stream(self, channel: str) -> str:
        return self._name("stream", channel)

    def meta(self, channel: str) -> str:
        return self._name("meta", channel)

    def presence(self, channel: str) -> str:
        return self._name("presence", channel)

    def presence_expiry(self, channel: str) -> str:
        return self._name("presence-expiry", channel)

    def pubsub(self, channel: str) -> bytes:
        return self._name("pub", channel).encode()


class _WireInfo(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    user: str
    client: str
    conn_info: bytes = b""
    chan_info: bytes = b""


class _WirePublication(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """A Publication without its offset, which travels beside it (the script assigns it)."""

    data: bytes = b""
    info: _WireInfo | None = None
    tags: dict[str, str] = {}
    delta: bool = False
    time: int = 0
    channel: str = ""
    key: str = ""
    removed: bool = False
    score: int = 0
    epoch: str = ""
    version: int = 0


_PASSED = _WirePublication.__struct_fields__[2:]
"""The Publication fields that travel unchanged (payloads and info are converted)."""


class _WireUser(msgspec.Struct, array_like=True, gc=False):
    """The first field of an encoded ClientInfo: enough to count users."""

    user: str


# msgspec writes a Raw verbatim, which would splice JSON text into the msgpack:
# payloads become bytes explicitly on the way in and Raw again on the way out.
_encode = msgspec.msgpack.Encoder().encode
_decode_info = msgspec.msgpack.Decoder(_WireInfo).decode
_decode_publication = msgspec.msgpack.Decoder(_WirePublication).decode
_decode_user = msgspec.msgpack.Decoder(_WireUser).decode


def _wire_info(info: ClientInfo) -> _WireInfo:
    return _WireInfo(info.user, info.client, bytes(info.conn_info), bytes(info.chan_info))


def _client_info(wire: _WireInfo) -> ClientInfo:
    return ClientInfo(
        user=wire.user,
        client=wire.client,
        conn_info=raw(wire.conn_info),
        chan_info=raw(wire.chan_info),
    )


def encode_publication(pub: Publication) -> bytes:
    """Our compact msgpack form of ``pub``, without the offset."""
    info = None if pub.info is None else _wire_info(pub.info)
    return _encode(_WirePublication(bytes(pub.data), info, *[getattr(pub, f) for f in _PASSED]))


def decode_publication(body: bytes, offset: int) -> Publication:
    """``body`` from ``encode_publication`` as the Publication at ``offset``."""
    wire = _decode_publication(body)
    info = None if wire.info is None else _client_info(wire.info)
    passed = {name: getattr(wire, name) for name in _PASSED}
    return Publication(data=raw(wire.data), info=info, offset=offset, **passed)


# A Pub/Sub message is <kind><offset>:<body>; the offset only on publications, where
# the publish script writes it (it is known only inside the script).
_PUB, _JOIN, _LEAVE = b"p", b"j", b"l"

# ---------------------------------------------------------------------------- scripts

_PUBLISH = """
-- KEYS: stream, meta. ARGV: body, size, ttl ms, meta ttl ms, fresh epoch,
--       publish command, pub/sub channel. Returns {offset, epoch}.
local epoch = redis.call('hget', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('del', KEYS[1])  -- publications of a lost epoch must not mix with the new one
  redis.call('hset', KEYS[2], 'epoch', epoch)
end
local top = redis.call('hincrby', KEYS[2], 'top', 1)
redis.call('pexpire', KEYS[2], ARGV[4])
redis.call('xadd', KEYS[1], 'maxlen', ARGV[2], top .. '-0', 'd', ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[3])
redis.call(ARGV[6], ARGV[7], 'p' .. top .. ':' .. ARGV[1])
return {top, epoch}
"""

_HISTORY = """
-- KEYS: stream, meta. ARGV: fresh epoch, meta ttl ms, '1' to (re)set the meta ttl,
--       'xrange' or 'xrevrange', first bound, second bound, count (-1 all, 0 none).
-- Returns {top, epoch, entries}: the page and the top are read in one atomic step.
local epoch = redis.call('hget', KEYS[2], 'epoch')
local top = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('del', KEYS[1])
  redis.call('hset', KEYS[2], 'epoch', epoch, 'top', 0)
  redis.call('pexpire', KEYS[2], ARGV[2])
else
  top = tonumber(redis.call('hget', KEYS[2], 'top')) or 0
  if ARGV[3] == '1' then redis.call('pexpire', KEYS[2], ARGV[2]) end
end
local count = tonumber(ARGV[7])
local entries = {}
if count > 0 then
  entries = redis.call(ARGV[4], KEYS[1], ARGV[5], ARGV[6], 'count', count)
elseif count < 0 then
  entries = redis.call(ARGV[4], KEYS[1], ARGV[5], ARGV[6])
end
return {top, epoch, entries}
"""

_NOW_MS = """
local now = redis.call('time')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

_PRESENCE_ADD = (
    _NOW_MS
    + """
-- KEYS: hash, expiry zset. ARGV: client id, encoded info, ttl ms.
local ttl = tonumber(ARGV[3])
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], now_ms + ttl, ARGV[1])
for _, key in ipairs(KEYS) do  -- only ever extend: others may have added with longer ttls
  if redis.call('pttl', key) < ttl then redis.call('pexpire', key, ttl) end
end
"""
)

_PRESENCE_READ = (
    _NOW_MS
    + """
-- KEYS: hash, expiry zset. ARGV: 'hgetall' or 'hvals'. Drops expired entries first.
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now_ms)
for i = 1, #expired, 1000 do
  redis.call('hdel', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
end
if #expired > 0 then redis.call('zremrangebyscore', KEYS[2], '-inf', now_ms) end
return redis.call(ARGV[1], KEYS[1])
"""
)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _history_range(
    since: StreamPosition | None, limit: int, reverse: bool
) -> tuple[str, str, str, int]:
    """The XRANGE/XREVRANGE command, its bounds and count for a history page.

    Stream entry ids are ``<offset>-0``, so offsets are ids and bounds need no lookup.
    """
    if not reverse:
        return "xrange", "-" if since is None else str(since.offset + 1), "+", limit
    if since is None:
        return "xrevrange", "+", "-", limit
    if since.offset <= 1:  # nothing comes before offset 1
        return "xrevrange", "+", "-", 0
    return "xrevrange", str(since.offset - 1), "-", limit


def _page(entries: list[Any]) -> list[Publication]:
    pubs = []
    for entry_id, fields in entries:
        fields_by_name = dict(zip(fields[::2], fields[1::2], strict=True))
        offset = int(entry_id.partition(b"-")[0])
        pubs.append(decode_publication(fields_by_name[b"d"], offset))
    return pubs


# ------------------------------------------------------------------------ subscribers


class _Connection(Protocol):
    """What the subscriber uses of redis-py's (loosely typed) asyncio Connection."""

    async def connect(self) -> None: ...

    async def disconnect(self, nowait: bool = False) -> None: ...

    async def send_packed_command(self, command: list[bytes], check_health: bool) -> None: ...

    async def read_response(self, timeout: float | None = None) -> Any: ...

    def pack_commands(self, commands: list[tuple[Any, ...]]) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class _Verbs:
    """The Pub/Sub commands of plain or sharded (Cluster) Pub/Sub."""

    subscribe: bytes
    unsubscribe: bytes
    publish: str
    message: bytes


PLAIN = _Verbs(b"SUBSCRIBE", b"UNSUBSCRIBE", "publish", b"message")
SHARDED = _Verbs(b"SSUBSCRIBE", b"SUNSUBSCRIBE", "spublish", b"smessage")

SUBSCRIBE_CHUNK = 500
"""At most this many channels in one SUBSCRIBE command."""


class _Subscriber:
    """One Pub/Sub connection holding a share of the channels; reconnects by itself.

    (UN)SUBSCRIBE requests made in one loop turn go out together, followed by one
    PING. Redis answers commands of a connection in order, so its PONG says every
    channel before it is subscribed: waiters of a batch share one future, resolved
    by that PONG. Connection loss fails the waiting futures with EngineError.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], _Connection],
        verbs: _Verbs,
        sharded: bool,
        deliver: Callable[[str, bytes], None],
        gap: Callable[[list[str]], None],
        timeout: float,
        backoff: EqualJitterBackoff,
    ) -> None:
        self.name = name
        self.held: dict[bytes, str] = {}
        """Pub/Sub channel name → hubbub channel, for every channel wanted here."""
        self._factory = factory
        self._verbs = verbs
        self._sharded = sharded
        self._deliver = deliver
        self._gap = gap
        self._timeout = timeout
        self._backoff = backoff
        self._conn: _Connection | None = None
        self.connected = asyncio.Event()
        self._pongs: deque[asyncio.Future[None] | None] = deque()
        self._ops: list[tuple[bytes, bytes]] = []
        self._batch: asyncio.Future[None] | None = None
        self._failure: str | None = None
        self._write = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self._lost("closed")

    # ------------------------------------------------------------------ requests

    async def subscribe(self, names: dict[bytes, str]) -> None:
        """Hold ``names`` and return once Redis has confirmed them."""
        self.held.update(names)
        if self._conn is None:
            raise EngineError("redis pub/sub connection is down")
        await self._wait(self._request(self._verbs.subscribe, list(names)))

    def unsubscribe(self, names: Sequence[bytes]) -> None:
        """Stop holding ``names``; their messages are dropped from now on."""
        for name in names:
            self.held.pop(name, None)
        if self._conn is not None:  # when down, the reconnect simply leaves them out
            self._request(self._verbs.unsubscribe, names)

    async def barrier(self) -> None:
        """Return once every message Redis queued for this connection before has arrived."""
        if self._conn is None:
            raise EngineError("redis pub/sub connection is down")
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
            await asyncio.wait_for(asyncio.shield(batch), self._timeout)
        except TimeoutError:
            raise EngineError("redis pub/sub did not answer in time") from None

    async def _flush(self) -> None:
        async with self._write:
            ops, self._ops = self._ops, []
            batch, self._batch = self._batch, None
            assert batch is not None
            conn = self._conn
            if conn is None:
                batch.set_exception(EngineError("redis pub/sub connection is down"))
                return
            with contextlib.suppress(RedisError, OSError):  # the reader sees the loss
                await self._send(conn, self._commands(ops), batch)

    async def _send(
        self, conn: _Connection, commands: list[tuple[Any, ...]], pong: asyncio.Future[None] | None
    ) -> None:
        """Write ``commands`` and a PING whose PONG resolves ``pong``; hold ``_write``."""
        self._pongs.append(pong)
        packed = conn.pack_commands([*commands, (b"PING",)])
        await conn.send_packed_command(packed, check_health=False)

    def _commands(self, ops: list[tuple[bytes, bytes]]) -> list[tuple[Any, ...]]:
        """Consecutive ops of one verb as few commands as allowed, in the order asked.

        Redis Cluster refuses an SSUBSCRIBE whose channels are in different slots.
        """
        commands: list[tuple[Any, ...]] = []
        for verb, run in groupby(ops, key=lambda op: op[0]):
            names = [name for _, name in run]
            groups = _by_slot(names) if self._sharded else [names]
            for group in groups:
                iterator = iter(group)
                while chunk := list(islice(iterator, SUBSCRIBE_CHUNK)):
                    commands.append((verb, *chunk))
        return commands

    # ------------------------------------------------------------------- reading

    async def _run(self) -> None:
        """Connect, read until the connection breaks, back off, again; never raises."""
        failures = 0
        connected_before = False
        while True:
            try:
                conn = await self._connect()
                failures = 0
                if connected_before:
                    self._report_gap()
                connected_before = True
                await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("redis pub/sub connection failed", shard=self.name, error=str(exc))
            await self._lost(f"redis pub/sub connection {self.name} lost")
            await asyncio.sleep(self._backoff.compute(failures))
            failures += 1

    async def _connect(self) -> _Connection:
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
        self.connected.set()
        _log.info("redis pub/sub connected", shard=self.name, channels=len(self.held))
        return conn

    def _report_gap(self) -> None:
        channels = list(self.held.values())
        if not channels:
            return
        _log.warning("redis pub/sub resubscribed after a gap", shard=self.name, n=len(channels))
        try:
            self._gap(channels)
        except Exception:
            _log.exception("broker gap handler failed", shard=self.name)

    async def _read(self, conn: _Connection) -> None:
        """Dispatch replies; a silent connection gets a PING, then counts as dead."""
        probing = False
        while True:
            try:
                reply = await conn.read_response(timeout=self._timeout)
            except ResponseError as exc:  # a refused (UN)SUBSCRIBE: fail its batch
                self._failure = str(exc)
                continue
            if reply is not None:
                probing = False
                self._dispatch(reply)
            elif probing:
                raise ConnectionError(f"no answer to PING within {self._timeout}s")
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
                    self._deliver(channel, reply[2])
            elif kind == b"pong":
                self._pong()
        elif reply == b"PONG":  # a PING while subscribed to nothing: a plain reply
            self._pong()

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


# ------------------------------------------------------------------------------ broker

RECONNECT_FIRST = 0.05
RECONNECT_CAP = 5.0
"""Reconnect delays double from about RECONNECT_FIRST up to RECONNECT_CAP seconds."""


class RedisBroker:
    """Broker over Redis Pub/Sub (fan-out) and Streams (history); see the module doc."""

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
        self._client = _command_client(self.options)
        self._publish_script = self._client.register_script(_PUBLISH)
        self._history_script = self._client.register_script(_HISTORY)
        self._handler: BrokerEventHandler | None = None
        self._subscribers: list[_Subscriber] = []

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(RedisOptions.from_url(url))

    # ----------------------------------------------------------------- lifecycle

    async def start(self, handler: BrokerEventHandler) -> None:
        """Connect every Pub/Sub shard; EngineError when Redis cannot be reached."""
        if self.options.cluster:
            await self._refuse_several_primaries()
        self._handler = handler
        pool = ConnectionPool.from_url(self.options.url, **_pool_kwargs(self.options, "pubsub"))
        shards = range(self.options.pubsub_shards)
        self._subscribers = [self._subscriber(pool, index) for index in shards]
        for subscriber in self._subscribers:
            subscriber.start()
        waits = [subscriber.connected.wait() for subscriber in self._subscribers]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.options.timeout)
        except TimeoutError:
            await self.close()
            where = urlsplit(self.options.url)
            raise EngineError(
                f"redis pub/sub could not connect to {where.hostname}:{where.port or 6379}"
            ) from None

    async def _refuse_several_primaries(self) -> None:
        """Commands and subscriptions go to the URL's node only: a Cluster whose slots
        are spread over several primaries would answer MOVED, so say so at start."""
        client = cast(Any, self._client)
        with _engine_errors("cluster check"):
            info = await client.info("cluster")
            enabled = info.get("cluster_enabled")
            slots = await client.execute_command("CLUSTER", "SLOTS") if enabled else []
        primaries = {(bytes(r[2][0]), int(r[2][1])) for r in slots}
        if len(primaries) > 1:
            raise EngineError(
                f"redis cluster=true supports a Cluster with one primary (this one has "
                f"{len(primaries)}): slot-aware routing is not implemented yet"
            )

    def _subscriber(self, pool: ConnectionPool, index: int) -> _Subscriber:
        return _Subscriber(
            name=str(index),
            factory=lambda: cast(_Connection, cast(Any, pool).make_connection()),
            verbs=self._verbs,
            sharded=self.options.cluster,
            deliver=self._deliver,
            gap=self._gap,
            timeout=self.options.timeout,
            backoff=self._backoff,
        )

    async def close(self) -> None:
        self._handler = None
        subscribers, self._subscribers = self._subscribers, []
        for subscriber in subscribers:
            await subscriber.close()
        await self._client.aclose(close_connection_pool=True)

    # ------------------------------------------------------------- subscriptions

    def shard_of(self, channel: str) -> int:
        """The index of the Pub/Sub connection carrying ``channel``."""
        return key_slot(self._names.pubsub(channel)) % self.options.pubsub_shards

    async def subscribe(self, channels: Sequence[str]) -> None:
        by_shard: dict[int, dict[bytes, str]] = {}
        for channel in channels:
            by_shard.setdefault(self.shard_of(channel), {})[self._names.pubsub(channel)] = channel
        await asyncio.gather(
            *(self._subscribers[index].subscribe(names) for index, names in by_shard.items())
        )

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        by_shard: dict[int, list[bytes]] = {}
        for channel in channels:
            by_shard.setdefault(self.shard_of(channel), []).append(self._names.pubsub(channel))
        for index, names in by_shard.items():
            self._subscribers[index].unsubscribe(names)

    async def settle(self) -> None:
        """Return once everything published before the call has reached the handler.

        Redis queues a PUBLISH for the subscribers before it answers the publisher,
        and answers each connection in order; so a PING sent on every Pub/Sub
        connection afterwards comes back behind those messages. For tests, and for
        callers that need to read their own writes through the handler.
        """
        await asyncio.gather(*(subscriber.barrier() for subscriber in self._subscribers))

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        body = encode_publication(pub)
        with _engine_errors("publish"):
            if history is None or not history.enabled:
                await self._send(channel, _PUB + b"0:" + body)
                return StreamPosition()
            args: list[Any] = [body, history.size, _ms(history.ttl), _ms(history.meta_ttl)]
            args += [secrets.token_urlsafe(6), self._verbs.publish, self._names.pubsub(channel)]
            offset, epoch = await self._publish_script(keys=self._keys(channel), args=args)
        return StreamPosition(offset=int(offset), epoch=epoch.decode())

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        with _engine_errors("publish join"):
            await self._send(channel, _JOIN + b":" + _encode(_wire_info(info)))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        with _engine_errors("publish leave"):
            await self._send(channel, _LEAVE + b":" + _encode(_wire_info(info)))

    async def _send(self, channel: str, message: bytes) -> None:
        send = self._client.spublish if self.options.cluster else self._client.publish
        await send(self._names.pubsub(channel), message)

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
        command, first, second, count = _history_range(since, limit, reverse)
        ttl = DEFAULT_META_TTL if meta_ttl is None else meta_ttl
        args: list[Any] = [secrets.token_urlsafe(6), _ms(ttl), "0" if meta_ttl is None else "1"]
        args += [command, first, second, count]
        with _engine_errors("history"):
            top, epoch, entries = await self._history_script(keys=self._keys(channel), args=args)
            page = _page(entries)
        return page, StreamPosition(offset=int(top), epoch=epoch.decode())

    def _keys(self, channel: str) -> list[str]:
        return [self._names.stream(channel), self._names.meta(channel)]

    async def remove_history(self, channel: str) -> None:
        with _engine_errors("remove history"):
            await self._client.delete(self._names.stream(channel))

    # -------------------------------------------------------------------- delivery

    def _deliver(self, channel: str, message: bytes) -> None:
        """One Pub/Sub message to the handler; a bad one is logged and skipped."""
        handler = self._handler
        if handler is None:
            return
        head, _, body = message.partition(b":")
        kind = head[:1]
        try:
            if kind == _PUB:
                handler.on_publication(channel, decode_publication(body, int(head[1:])))
            elif kind == _JOIN:
                handler.on_join(channel, _client_info(_decode_info(body)))
            elif kind == _LEAVE:
                handler.on_leave(channel, _client_info(_decode_info(body)))
            else:
                _log.warning("unknown redis pub/sub message", channel=channel, kind=kind)
        except Exception:
            _log.exception("redis pub/sub message not delivered", channel=channel)

    def _gap(self, channels: list[str]) -> None:
        if self._handler is not None:
            self._handler.on_gap(channels)


# ---------------------------------------------------------------------------- presence


class RedisPresenceStore:
    """Presence in a hash per channel (client id → info) with a sorted set of expiries.

    Expiry is per entry and uses Redis's clock, so nodes with skewed clocks agree;
    reading drops the expired entries first. Both keys also expire as a whole once
    no entry is refreshed, so abandoned channels leave nothing behind.
    """

    def __init__(self, options: RedisOptions | None = None) -> None:
        self.options = options if options is not None else RedisOptions()
        self._names = KeyNames(self.options.prefix)
        self._client = _command_client(self.options)
        self._add_script = self._client.register_script(_PRESENCE_ADD)
        self._read_script = self._client.register_script(_PRESENCE_READ)

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(RedisOptions.from_url(url))

    def _keys(self, channel: str) -> list[str]:
        return [self._names.presence(channel), self._names.presence_expiry(channel)]

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        with _engine_errors("presence add"):
            await self._add_script(
                keys=self._keys(channel), args=[client_id, _encode(_wire_info(info)), _ms(ttl)]
            )

    async def remove(self, channel: str, client_id: str) -> None:
        hash_key, expiry_key = self._keys(channel)
        with _engine_errors("presence remove"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hdel(hash_key, client_id)
                pipe.zrem(expiry_key, client_id)
                await pipe.execute()

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        with _engine_errors("presence"):
            flat = await self._read_script(keys=self._keys(channel), args=["hgetall"])
            return {
                client_id.decode(): _client_info(_decode_info(body))
                for client_id, body in zip(flat[::2], flat[1::2], strict=True)
            }

    async def stats(self, channel: str) -> tuple[int, int]:
        with _engine_errors("presence stats"):
            bodies = await self._read_script(keys=self._keys(channel), args=["hvals"])
            return len(bodies), len({_decode_user(body).user for body in bodies})

    async def close(self) -> None:
        await self._client.aclose(close_connection_pool=True)


_broker: type[Broker] = RedisBroker
_presence: type[PresenceStore] = RedisPresenceStore
