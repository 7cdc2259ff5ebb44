"""NATS engines: core NATS carries live events, JetStream keeps history and presence.

    nats://127.0.0.1:4222?prefix=hubbub&stream_replicas=1

Names, all under ``prefix`` so deployments (and test runs) sharing a server never meet:

    stream  <prefix>_history_<namespace>     one per channel namespace (``chat`` of ``chat:x``)
    subject <prefix>.history.<ns>.<channel>  a channel's stream; at most size + 1 messages
    subject <prefix>.live.<channel>          core NATS fan-out, every node subscribes
    bucket  <prefix>_presence                key ``<channel>.<client>``

Channel names may hold anything (spaces, ``.``, ``*``, ``>``), so they travel as tokens:
``encode_token`` keeps ``[A-Za-z0-9-]`` and writes every other UTF-8 byte as ``_XX``.

**Offsets are atomic with storing.** Every message of a channel's subject is a ``Record``
carrying the stream's state: epoch, offset, the first offset still live and when the
live publications expire. The last message of the subject (the *tail*) therefore IS the
stream's metadata. A publish writes tail.offset + 1 with JetStream's
``Nats-Expected-Last-Subject-Sequence`` set to the tail's sequence: if another node
appended first, JetStream refuses, we re-read the tail and retry. No counter can run
ahead of the data, and when the data is gone (stream deleted, server state lost, the
stream's ``max_age`` = meta_ttl passed) the epoch goes with it and a new one is drawn.
``remove_history`` and ``history`` on an unknown channel append a data-less marker, so
the tail keeps the position. Expiry after ``ttl`` is read from the tail; the subject's
older messages are purged when the next publication starts a new window.

**Live delivery, once and in order.** A publication goes out on the live subject only
after JetStream acknowledged it, so anything delivered is also in history. Publishers on
different nodes race, so offset n + 1 may arrive before n: a ``ChannelFeed`` per channel
holds it back, waits ``reorder_wait`` for n, then reads n from JetStream; what JetStream
no longer has is reported to the handler as a gap. Offsets at or below the last one
delivered are dropped, which makes delivery at most once. The connection runs with
``no_echo`` and a node hands its own publications to its feed directly.

**Faults.** nats-py reconnects by itself (here with exponential back-off and jitter) and
resubscribes; on reconnect every subscribed channel is reported as a gap, because core
NATS dropped whatever was published meanwhile. While disconnected nothing is buffered:
publishes fail at once with ``EngineError`` rather than leave later, after the client
was told they failed. Every call has a deadline of ``timeout`` seconds. One ambiguity
stays, as with any request/reply store: if the connection dies after JetStream stored a
publication but before its acknowledgement arrived, the caller gets EngineError for a
publication that other nodes will still deliver.

Needs nats-server 2.9+ with JetStream; per-message TTLs (2.11) are not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final, Protocol, Self
from urllib.parse import parse_qs, urlsplit

import msgspec
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client, Server
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

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

WRONG_LAST_SEQUENCE: Final = 10071
"""JetStream's error code when Nats-Expected-Last-Subject-Sequence does not match."""
STREAM_NOT_FOUND: Final = 10059
STREAM_NAME_IN_USE: Final = 10058
"""The stream exists with another configuration."""
MAX_ATTEMPTS: Final = 64
"""Appends to one channel retried after losing the race to another node."""
TAIL_CACHE: Final = 4096
"""Channels whose tail this node remembers, so its next publish needs no read."""
MAX_HELD: Final = 10_000
"""Out-of-order publications a feed holds before it stops waiting and reads history."""

_PREFIX = re.compile(r"[A-Za-z0-9-]{1,32}")
_ESCAPE = re.compile(r"[^A-Za-z0-9-]")
_TOKEN = re.compile(r"(?:[A-Za-z0-9-]|_[0-9A-F]{2})+")


# ------------------------------------------------------------------------------ options


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Where the server is and how the engines use it, from a ``nats://`` URL."""

    server: str = "nats://127.0.0.1:4222"
    prefix: str = "hubbub"
    stream_replicas: int = 1
    storage: str = "file"
    timeout: float = 5.0
    """Seconds any one engine call may take before it fails with EngineError."""
    reorder_wait: float = 0.2
    """Seconds a missing offset may lag behind a later one before it is read from history."""
    reconnect_wait: float = 0.1
    reconnect_max_wait: float = 5.0

    @classmethod
    def from_url(cls, url: str) -> NatsOptions:
        """Parse ``nats://[user:password@]host[:port][?option=value&...]``."""
        parts = urlsplit(url)
        if parts.scheme != "nats":
            raise ValueError("a NATS URL starts with nats://")
        if not parts.hostname:
            raise ValueError("nats:// needs a host, e.g. nats://127.0.0.1:4222")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("nats:// takes no path; options go in the query: ?prefix=hubbub")
        values = _query(parts.query)
        options = cls(server=f"nats://{parts.netloc}", **values)
        options._check()
        return options

    def _check(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError("nats:// prefix must be 1-32 letters, digits or '-'")
        if not 1 <= self.stream_replicas <= 5:
            raise ValueError("nats:// stream_replicas must be 1 to 5")
        if self.storage not in ("file", "memory"):
            raise ValueError("nats:// storage must be 'file' or 'memory'")
        for name in ("timeout", "reorder_wait", "reconnect_wait", "reconnect_max_wait"):
            if not getattr(self, name) > 0:
                raise ValueError(f"nats:// {name} must be a number of seconds > 0")


_OPTION_TYPES: dict[str, type[int] | type[float] | type[str]] = {
    "prefix": str,
    "stream_replicas": int,
    "storage": str,
    "timeout": float,
    "reorder_wait": float,
    "reconnect_wait": float,
    "reconnect_max_wait": float,
}


def _query(query: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, given in parse_qs(query, keep_blank_values=True, strict_parsing=False).items():
        kind = _OPTION_TYPES.get(name)
        if kind is None:
            known = ", ".join(sorted(_OPTION_TYPES))
            raise ValueError(f"unknown nats:// option {name!r}; known options: {known}")
        if len(given) > 1:
            raise ValueError(f"nats:// option {name!r} is given more than once")
        try:
            value = kind(given[0])
        except ValueError:
            raise ValueError(f"nats:// option {name!r} must be {kind.__name__}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"nats:// option {name!r} must be finite")
        values[name] = value
    return values


# -------------------------------------------------------------------------------- names


@lru_cache(maxsize=8192)
def encode_token(text: str) -> str:
    """``text`` as one NATS subject token (also a valid stream, bucket and key part).

    ``[A-Za-z0-9-]`` stays; every other UTF-8 byte becomes ``_XX`` (upper-case hex); the
    empty string becomes ``_``. Distinct texts give distinct tokens.
    """
    if not text:
        return "_"
    return _ESCAPE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return "".join(f"_{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def decode_token(token: str) -> str:
    """The text ``encode_token`` made ``token`` from; ValueError if it made no such token."""
    if token == "_":
        return ""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not an encoded token: {token!r}")
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "_":
            out.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(token[i]))
            i += 1
    text = out.decode("utf-8", "surrogatepass")
    if encode_token(text) != token:  # e.g. "_41" for "A": one text, one token
        raise ValueError(f"not an encoded token: {token!r}")
    return text


def _namespace(channel: str) -> str:
    head, sep, _ = channel.partition(":")
    return head if sep else ""


@dataclass(frozen=True, slots=True)
class _Names:
    prefix: str

    def stream(self, channel: str) -> str:
        return f"{self.prefix}_history_{encode_token(_namespace(channel))}"

    def history(self, channel: str) -> str:
        return f"{self.prefix}.history.{encode_token(_namespace(channel))}.{encode_token(channel)}"

    def live(self, channel: str) -> str:
        return f"{self.prefix}.live.{encode_token(channel)}"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}_presence"

    def presence_key(self, channel: str, client_id: str) -> str:
        return f"$KV.{self.bucket}.{encode_token(channel)}.{encode_token(client_id)}"

    def presence_keys(self, channel: str) -> str:
        return f"$KV.{self.bucket}.{encode_token(channel)}.*"


# ------------------------------------------------------------------------------ records

PUB: Final = 0
MARK: Final = 1
"""A history record without data: holds the stream's position (remove_history, creation)."""
JOIN: Final = 2
LEAVE: Final = 3


class WireInfo(msgspec.Struct, array_like=True, frozen=True):
    user: str
    client: str
    conn_info: bytes = b""
    chan_info: bytes = b""


class Record(msgspec.Struct, array_like=True, frozen=True):
    """One message on a history or live subject (msgpack); see the module docstring."""

    kind: int
    epoch: str = ""
    offset: int = 0
    first: int = 0
    """The oldest offset of the live window: older ones were removed or expired."""
    expires: int = 0
    """Unix ms when the window's publications expire (ttl after the latest)."""
    size: int = 0
    """How many of the newest publications the window keeps."""
    data: bytes = b""
    info: WireInfo | None = None
    tags: dict[str, str] = {}
    time: int = 0

    def window(self, now_ms: int) -> tuple[int, int]:
        """The offsets still retained and unexpired, first and last (empty if first > last)."""
        if self.expires <= now_ms:
            return 1, 0
        return max(self.first, self.offset - self.size + 1), self.offset

    def marker(self, **changes: Any) -> Record:
        """A data-less copy: the same position, for the tail to keep."""
        return msgspec.structs.replace(
            self, kind=MARK, data=b"", info=None, tags={}, time=0, **changes
        )


_encoder = msgspec.msgpack.Encoder()
_decode_record = msgspec.msgpack.Decoder(Record).decode


def _wire_info(info: ClientInfo | None) -> WireInfo | None:
    if info is None:
        return None
    return WireInfo(info.user, info.client, bytes(info.conn_info), bytes(info.chan_info))


def _client_info(info: WireInfo | None) -> ClientInfo:
    if info is None:
        return ClientInfo(user="", client="")
    return ClientInfo(
        user=info.user,
        client=info.client,
        conn_info=raw(info.conn_info),
        chan_info=raw(info.chan_info),
    )


def _event(kind: int, pub: Publication, **position: Any) -> Record:
    return Record(
        kind=kind,
        data=bytes(pub.data),
        info=_wire_info(pub.info),
        tags=pub.tags,
        time=pub.time,
        **position,
    )


def _publication(record: Record) -> Publication:
    info = None if record.info is None else _client_info(record.info)
    return Publication(
        data=raw(record.data), info=info, offset=record.offset, tags=record.tags, time=record.time
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_epoch() -> str:
    return secrets.token_urlsafe(6)


# --------------------------------------------------------------------------- connection


@contextlib.asynccontextmanager
async def _guard(action: str, timeout: float) -> AsyncIterator[None]:
    """Turn every NATS failure, and taking longer than ``timeout``, into EngineError."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except EngineError:
        raise
    except (nats.errors.Error, TimeoutError, OSError, msgspec.DecodeError) as exc:
        raise EngineError(f"NATS {action} failed: {exc or type(exc).__name__}") from exc


class _Link:
    """One NATS connection: back-off on reconnect, no buffering while disconnected."""

    def __init__(self, options: NatsOptions, on_reconnected: Callable[[], None] = lambda: None):
        self.options = options
        self._on_reconnected = on_reconnected
        self._nc: Client | None = None
        self.js: JetStreamContext | None = None

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise EngineError("the NATS engine is not started")
        return self._nc

    async def open(self) -> None:
        options = self.options
        nc = Client()
        try:
            async with _guard("connect", options.timeout):
                await nc.connect(
                    servers=[options.server],
                    name="hubbub",
                    no_echo=True,  # a node delivers its own publications itself
                    pending_size=0,  # fail publishes while disconnected: never send them late
                    connect_timeout=math.ceil(options.timeout),
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
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), self.options.timeout)

    def jetstream(self) -> JetStreamContext:
        if self.js is None:
            raise EngineError("the NATS engine is not started")
        return self.js

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
        _log.info("NATS connection back", server=self.options.server)
        try:
            self._on_reconnected()
        except Exception:  # never break nats-py's reconnect task
            _log.exception("NATS reconnect handling failed")

    async def _error(self, exc: Exception) -> None:
        _log.debug("NATS connection error", error=str(exc) or type(exc).__name__)


async def _snapshot(
    link: _Link, stream: str, subject: str, policy: api.DeliverPolicy, upto: int = 0
) -> list[Msg]:
    """Every stored message of ``subject`` (or the last of each, by ``policy``), in order,
    through a short-lived push consumer; up to stream sequence ``upto`` when given."""
    nc, js = link.nc, link.jetstream()
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
            inactive_threshold=max(10.0, 2 * link.options.timeout),
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
            msg = await sub.next_msg(timeout=link.options.timeout)
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


# ------------------------------------------------------------------------- live ordering


class FeedSink(Protocol):
    """Where a ChannelFeed sends what it releases, and where it reads what went missing."""

    def deliver(self, channel: str, record: Record) -> None: ...

    def gap(self, channel: str) -> None: ...

    def fetch(self, channel: str, epoch: str, first: int, last: int) -> Awaitable[list[Record]]:
        """The stored publications of ``epoch`` with offsets first..last, in order."""
        ...


class ChannelFeed:
    """Hands one channel's live events to the sink in offset order, each at most once.

    Publications without an offset, joins and leaves pass straight through. Until
    ``begin`` gives the stream position at subscribe time everything waits, so nothing
    published after the subscription is missed and nothing before it is delivered.
    """

    def __init__(self, channel: str, sink: FeedSink, wait: float) -> None:
        self.channel = channel
        self._sink = sink
        self._wait = wait
        self._early: list[Record] | None = []
        self._epoch: str | None = None
        self._next: int | None = 1
        """The next offset to deliver; None: take it from the next publication (adopt)."""
        self._held: dict[int, Record] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._filler: asyncio.Task[None] | None = None

    def begin(self, tail: Record | None) -> None:
        """Start delivering after ``tail``, the stream's last record when subscribing."""
        self._epoch = None if tail is None else tail.epoch
        self._next = 1 if tail is None else tail.offset + 1
        early, self._early = self._early or [], None
        for record in early:
            self.accept(record)

    def adopt(self) -> None:
        """Forget the position (the connection was lost): the next publication sets it."""
        self._stop()
        self._early = None
        self._epoch, self._next = None, None

    def close(self) -> None:
        self._stop()

    def accept(self, record: Record) -> None:
        if self._early is not None:
            self._early.append(record)
        elif record.kind != PUB or not record.offset:
            self._sink.deliver(self.channel, record)
        else:
            self._accept_offset(record)

    def _accept_offset(self, record: Record) -> None:
        if self._next is None:
            self._epoch, self._next = record.epoch, record.offset
        elif record.epoch != self._epoch:
            if self._epoch is not None:  # the stream was lost and started again
                self._stop()
                self._next = 1
                self._sink.gap(self.channel)
            self._epoch = record.epoch
        if record.offset < self._next:
            return  # delivered already, or published before the subscription
        if record.offset > self._next:
            self._held[record.offset] = record
            self._arm()
            return
        self._deliver(record)
        self._drain()

    def _deliver(self, record: Record) -> None:
        self._next = record.offset + 1
        self._sink.deliver(self.channel, record)

    def _drain(self) -> None:
        while self._next in self._held:
            self._deliver(self._held.pop(self._next))
        if not self._held and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._filler is not None:
            return
        if len(self._held) > MAX_HELD:
            self._fill_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait, self._fill_now)

    def _fill_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._filler is None:
            self._filler = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        """Read the missing offsets from history; skip, reporting a gap, what is gone."""
        try:
            while self._held and self._next is not None and self._epoch is not None:
                epoch, first, last = self._epoch, self._next, min(self._held) - 1
                found = await self._fetch(epoch, first, last)
                if self._epoch != epoch:
                    continue  # restarted meanwhile; the loop condition decides
                for record in found:
                    self._accept_offset(record)
                if self._held and min(self._held) > self._next:
                    self._sink.gap(self.channel)
                    self._next = min(self._held)
                    self._drain()
        finally:
            if self._filler is asyncio.current_task():
                self._filler = None

    async def _fetch(self, epoch: str, first: int, last: int) -> list[Record]:
        try:
            return await self._sink.fetch(self.channel, epoch, first, last)
        except EngineError as exc:
            _log.warning("could not read missed publications", channel=self.channel, error=str(exc))
            return []

    def _stop(self) -> None:
        self._held.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._filler is not None:
            self._filler.cancel()
            self._filler = None


# -------------------------------------------------------------------------------- broker


@dataclass(frozen=True, slots=True)
class _Tail:
    """The last message of a channel's history subject: the stream's state."""

    seq: int
    record: Record
    stored: float
    """Unix seconds it was stored; it lives the stream's max_age from then."""

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(offset=self.record.offset, epoch=self.record.epoch)


@dataclass(frozen=True, slots=True)
class _Limits:
    per_subject: int
    max_age_ms: int

    @classmethod
    def of(cls, config: api.StreamConfig) -> _Limits:
        return cls(config.max_msgs_per_subject or -1, round((config.max_age or 0) * 1000))


class _Locks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._slots: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._slots.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._slots[key]


@dataclass(slots=True)
class _Subscribed:
    feed: ChannelFeed
    sub: Subscription | None = None


class NatsBroker:
    """Broker over NATS: core subjects fan out, JetStream streams keep history."""

    def __init__(self, options: NatsOptions) -> None:
        self.options = options
        self._names = _Names(options.prefix)
        self._link = _Link(options, on_reconnected=self._reconnected)
        self._handler: BrokerEventHandler | None = None
        self._channels: dict[str, _Subscribed] = {}
        self._locks = _Locks()
        self._tails: OrderedDict[str, _Tail] = OrderedDict()
        self._streams: dict[str, _Limits] = {}
        self._chores: set[asyncio.Task[None]] = set()
        """Storage clean-ups that must not delay, or fail, the publish that found them."""

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(NatsOptions.from_url(url))

    def _guard(self, action: str) -> contextlib.AbstractAsyncContextManager[None]:
        return _guard(action, self.options.timeout)

    async def start(self, handler: BrokerEventHandler) -> None:
        await self._link.open()
        self._handler = handler

    async def close(self) -> None:
        self._handler = None
        for entry in self._channels.values():
            entry.feed.close()
        self._channels.clear()
        for chore in self._chores:
            chore.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)
        await self._link.close()

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, channels: Sequence[str]) -> None:
        fresh = [channel for channel in dict.fromkeys(channels) if channel not in self._channels]
        for channel in fresh:
            wait = self.options.reorder_wait
            self._channels[channel] = _Subscribed(ChannelFeed(channel, self, wait))
        try:
            async with self._guard("subscribe"):
                for channel in fresh:
                    live = self._names.live(channel)
                    self._channels[channel].sub = await self._link.nc.subscribe(
                        live, cb=self._on_live
                    )
                # Read after SUB: whatever is stored later comes live, and is delivered.
                tails = await asyncio.gather(*(self._read_tail(channel) for channel in fresh))
        except BaseException:
            await self._drop(fresh)
            raise
        for channel, tail in zip(fresh, tails, strict=True):
            self._channels[channel].feed.begin(None if tail is None else tail.record)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        await self._drop(channels)

    async def _drop(self, channels: Sequence[str]) -> None:
        for channel in channels:
            entry = self._channels.pop(channel, None)
            if entry is None:
                continue
            entry.feed.close()
            if entry.sub is not None:  # best effort: the server forgets it on reconnect anyway
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    await asyncio.wait_for(entry.sub.unsubscribe(), self.options.timeout)

    async def _on_live(self, msg: Msg) -> None:
        try:
            channel = decode_token(msg.subject.rpartition(".")[2])
            record = _decode_record(msg.data)
        except (ValueError, msgspec.DecodeError):
            _log.warning("dropped an undecodable NATS message", subject=msg.subject)
            return
        entry = self._channels.get(channel)
        if entry is not None:
            entry.feed.accept(record)

    def _reconnected(self) -> None:
        """Core NATS lost whatever was published while we were away: tell the handler."""
        self._tails.clear()
        self._streams.clear()
        for entry in self._channels.values():
            entry.feed.adopt()
        if self._handler is not None and self._channels:
            self._handler.on_gap(list(self._channels))

    # ---------------------------------------------------------------- FeedSink

    def deliver(self, channel: str, record: Record) -> None:
        handler = self._handler
        if handler is None:
            return
        if record.kind == JOIN:
            handler.on_join(channel, _client_info(record.info))
        elif record.kind == LEAVE:
            handler.on_leave(channel, _client_info(record.info))
        else:
            handler.on_publication(channel, _publication(record))

    def gap(self, channel: str) -> None:
        if self._handler is not None:
            self._handler.on_gap([channel])

    async def fetch(self, channel: str, epoch: str, first: int, last: int) -> list[Record]:
        async with self._guard("history read"):
            records = await self._records(channel)
        return [
            r for r in records if r.kind == PUB and r.epoch == epoch and first <= r.offset <= last
        ]

    # ---------------------------------------------------------------------- publish

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        if history is None or not history.enabled:
            async with self._guard("publish"):
                await self._send_live(channel, _event(PUB, pub), required=True)
            return StreamPosition()
        async with self._guard("publish"), self._locks.hold(channel):
            tail = await self._append(
                channel, lambda t: _next_publication(t, pub, history), history
            )
            assert tail is not None
            await self._send_live(channel, tail.record, required=False)
        return tail.position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        async with self._guard("publish"):
            await self._send_live(channel, Record(kind=JOIN, info=_wire_info(info)), required=True)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        async with self._guard("publish"):
            await self._send_live(channel, Record(kind=LEAVE, info=_wire_info(info)), required=True)

    async def _send_live(self, channel: str, record: Record, *, required: bool) -> None:
        """Send to every other node, then deliver here. Once a publication is in history a
        failed send is not an error: other nodes read it from there at their next one."""
        try:
            await self._link.nc.publish(self._names.live(channel), _encoder.encode(record))
        except nats.errors.Error as exc:
            if required:
                raise
            _log.warning("a stored publication was not sent live", channel=channel, error=str(exc))
        entry = self._channels.get(channel)
        if entry is not None:
            entry.feed.accept(record)

    async def _append(
        self,
        channel: str,
        decide: Callable[[_Tail | None], Record | None],
        history: HistoryOptions | None = None,
    ) -> _Tail | None:
        """Append ``decide(tail)`` if the tail is still the subject's last message; retry
        with the new tail if another node appended first. None from ``decide``: no write."""
        limits = None if history is None else _limits(history)
        for attempt in range(MAX_ATTEMPTS):
            await self._ensure_stream(channel, limits)
            tail = self._tails.get(channel) or await self._read_tail(channel)
            record = decide(tail)
            if record is None:
                return tail
            try:
                return await self._store(channel, record, tail)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise
            except nats.js.errors.NoStreamResponseError:
                self._streams.pop(_namespace(channel), None)  # deleted under us
            self._tails.pop(channel, None)
            await asyncio.sleep(random.uniform(0, 0.001 * min(attempt, 10)))
        raise EngineError(f"NATS publish failed: {MAX_ATTEMPTS} attempts lost the race")

    async def _store(self, channel: str, record: Record, tail: _Tail | None) -> _Tail:
        ack = await self._link.jetstream().publish(
            self._names.history(channel),
            _encoder.encode(record),
            stream=self._names.stream(channel),
            headers={"Nats-Expected-Last-Subject-Sequence": str(0 if tail is None else tail.seq)},
        )
        stored = _Tail(ack.seq, record, time.time())
        self._remember(channel, stored)
        restarted = record.kind == PUB and record.first == record.offset
        if restarted and tail is not None and tail.record.offset:  # free the expired window
            chore = asyncio.get_running_loop().create_task(self._reclaim(channel, ack.seq))
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)
        return stored

    def _remember(self, channel: str, tail: _Tail) -> None:
        self._tails[channel] = tail
        self._tails.move_to_end(channel)
        if len(self._tails) > TAIL_CACHE:
            self._tails.popitem(last=False)

    async def _purge_before(self, channel: str, seq: int) -> None:
        await self._link.jetstream().purge_stream(
            self._names.stream(channel), seq=seq, subject=self._names.history(channel)
        )

    async def _reclaim(self, channel: str, seq: int) -> None:
        try:
            async with self._guard("purge"):
                await self._purge_before(channel, seq)
        except EngineError as exc:  # the data is dead either way; it only takes space
            _log.warning("could not purge expired history", channel=channel, error=str(exc))

    async def _ensure_stream(self, channel: str, limits: _Limits | None) -> None:
        """The namespace's stream exists, with ``limits`` when given (cached per node)."""
        namespace = _namespace(channel)
        known = self._streams.get(namespace)
        if known is not None and (limits is None or known == limits):
            return
        async with self._locks.hold("\0stream\0" + namespace):
            known = self._streams.get(namespace)
            if known is None:
                known = await self._create_stream(channel, limits)
            if limits is not None and known != limits:
                await self._link.jetstream().update_stream(self._stream_config(channel, limits))
                known = limits
            self._streams[namespace] = known

    async def _create_stream(self, channel: str, limits: _Limits | None) -> _Limits:
        js = self._link.jetstream()
        default = _Limits(-1, round(DEFAULT_META_TTL * 1000))
        config = self._stream_config(channel, limits or default)
        try:
            info = await js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
            info = await js.stream_info(config.name or "")
        return _Limits.of(info.config)

    def _stream_config(self, channel: str, limits: _Limits) -> api.StreamConfig:
        namespace = encode_token(_namespace(channel))
        options = self.options
        return api.StreamConfig(
            name=self._names.stream(channel),
            description="hubbub channel history",
            subjects=[f"{options.prefix}.history.{namespace}.*"],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            storage=api.StorageType(options.storage),
            num_replicas=options.stream_replicas,
            max_msgs_per_subject=limits.per_subject,
            max_age=limits.max_age_ms / 1000,
        )

    async def _read_tail(self, channel: str) -> _Tail | None:
        """The subject's last message, read from the stream leader (never stale)."""
        try:
            msg = await self._link.jetstream().get_msg(
                self._names.stream(channel), subject=self._names.history(channel)
            )
        except nats.js.errors.NotFoundError:  # no such stream, or nothing on the subject
            self._tails.pop(channel, None)
            return None
        stored = msg.time.timestamp() if msg.time is not None else time.time()
        tail = _Tail(msg.seq or 0, _decode_record(msg.data or b""), stored)
        self._remember(channel, tail)
        return tail

    async def _records(self, channel: str, upto: int = 0) -> list[Record]:
        messages = await _snapshot(
            self._link,
            self._names.stream(channel),
            self._names.history(channel),
            api.DeliverPolicy.ALL,
            upto,
        )
        return [_decode_record(msg.data) for msg in messages]

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
        async with self._guard("history"):
            tail = await self._current_tail(channel, meta_ttl)
            first, last = tail.record.window(_now_ms())
            if not _page_wanted(first, last, since, limit, reverse):
                return [], tail.position
            records = await self._records(channel, upto=tail.seq)
        epoch = tail.record.epoch
        pubs = [
            _publication(r)
            for r in records
            if r.kind == PUB and r.epoch == epoch and first <= r.offset <= last
        ]
        return _page(pubs, since, limit, reverse), tail.position

    async def _current_tail(self, channel: str, meta_ttl: float | None) -> _Tail:
        """The tail, created (fresh epoch, top 0) if there is none; with ``meta_ttl``,
        rewritten when it would expire within meta_ttl / 2, so the stream lives on."""
        tail = await self._read_tail(channel)
        if tail is not None and not self._touch_due(channel, tail, meta_ttl):
            return tail

        def decide(tail: _Tail | None) -> Record | None:
            if tail is None:
                return Record(kind=MARK, epoch=_new_epoch(), first=1)
            return tail.record.marker() if self._touch_due(channel, tail, meta_ttl) else None

        async with self._locks.hold(channel):
            stored = await self._append(channel, decide)
        assert stored is not None
        return stored

    def _touch_due(self, channel: str, tail: _Tail, meta_ttl: float | None) -> bool:
        """Would the tail expire (the stream's max_age after it was stored) too soon?"""
        if meta_ttl is None:
            return False
        limits = self._streams.get(_namespace(channel))
        max_age = DEFAULT_META_TTL if limits is None else limits.max_age_ms / 1000
        return tail.stored + max_age - time.time() < meta_ttl / 2

    async def remove_history(self, channel: str) -> None:
        def decide(tail: _Tail | None) -> Record | None:
            if tail is None:
                return None
            return tail.record.marker(first=tail.record.offset + 1, expires=0)

        async with self._guard("remove history"), self._locks.hold(channel):
            stored = await self._append(channel, decide)
            if stored is not None:
                await self._purge_before(channel, stored.seq)


def _limits(history: HistoryOptions) -> _Limits:
    # One slot more than size, for the marker that may sit among the publications.
    return _Limits(history.size + 1, round(history.meta_ttl * 1000))


def _next_publication(tail: _Tail | None, pub: Publication, history: HistoryOptions) -> Record:
    now = _now_ms()
    expires = now + round(history.ttl * 1000)
    if tail is None:
        return _event(
            PUB, pub, epoch=_new_epoch(), offset=1, first=1, expires=expires, size=history.size
        )
    last = tail.record
    offset = last.offset + 1
    first = last.first if last.expires > now else offset  # expired: a new window starts
    return _event(
        PUB, pub, epoch=last.epoch, offset=offset, first=first, expires=expires, size=history.size
    )


def _page_wanted(
    first: int, last: int, since: StreamPosition | None, limit: int, reverse: bool
) -> bool:
    """Could the page hold anything? If not, history need not be read at all."""
    if limit == 0 or first > last:
        return False
    if since is None:
        return True
    return since.offset > first if reverse else since.offset < last


def _page(
    pubs: list[Publication], since: StreamPosition | None, limit: int, reverse: bool
) -> list[Publication]:
    """PROTOCOL.md §7.4 over retained publications in offset order."""
    if reverse:
        if since is not None:
            pubs = [p for p in pubs if p.offset < since.offset]
        pubs = pubs[::-1]
    elif since is not None:
        pubs = [p for p in pubs if p.offset > since.offset]
    return pubs if limit < 0 else pubs[:limit]


# ------------------------------------------------------------------------------ presence


class _Entry(msgspec.Struct, array_like=True, frozen=True):
    expires: int
    """Unix ms; the bucket's max_age is only an upper bound shared by all entries."""
    info: WireInfo


_decode_entry = msgspec.msgpack.Decoder(_Entry).decode


class NatsPresenceStore:
    """Presence in a JetStream key-value bucket, one key per channel and client.

    Entries carry their own expiry, since a bucket has one TTL for every key (per-key
    TTLs need nats-server 2.11); the bucket's TTL grows to the longest ttl asked for, so
    storage is freed at most that long after a client's last refresh.
    """

    def __init__(self, options: NatsOptions) -> None:
        self.options = options
        self._names = _Names(options.prefix)
        self._link = _Link(options, on_reconnected=self._forget_bucket)
        self._opening = asyncio.Lock()
        self._bucket_ttl = 0.0

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(NatsOptions.from_url(url))

    def _guard(self, action: str) -> contextlib.AbstractAsyncContextManager[None]:
        return _guard(action, self.options.timeout)

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        entry = _Entry(_now_ms() + round(ttl * 1000), _wire_info(info) or WireInfo("", ""))
        async with self._guard("presence add"):
            await self._ready(ttl)
            try:
                await self._put(channel, client_id, entry)
            except nats.js.errors.NoStreamResponseError:  # the bucket is gone: again
                self._forget_bucket()
                await self._ready(ttl)
                await self._put(channel, client_id, entry)

    async def _put(self, channel: str, client_id: str, entry: _Entry) -> None:
        await self._link.jetstream().publish(
            self._names.presence_key(channel, client_id),
            _encoder.encode(entry),
            stream=f"KV_{self._names.bucket}",
        )

    def _forget_bucket(self) -> None:
        """Check the bucket again before the next add (after a reconnect, or when lost)."""
        self._bucket_ttl = 0.0

    async def remove(self, channel: str, client_id: str) -> None:
        async with self._guard("presence remove"):
            await self._ready(None)
            with contextlib.suppress(nats.js.errors.NoStreamResponseError):  # no bucket yet
                await self._link.jetstream().publish(
                    self._names.presence_key(channel, client_id),
                    headers={"KV-Operation": "DEL"},
                )

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        async with self._guard("presence"):
            await self._ready(None)
            messages = await _snapshot(
                self._link,
                f"KV_{self._names.bucket}",
                self._names.presence_keys(channel),
                api.DeliverPolicy.LAST_PER_SUBJECT,
            )
        now = _now_ms()
        present: dict[str, ClientInfo] = {}
        for msg in messages:
            if not msg.data or (msg.headers or {}).get("KV-Operation"):
                continue  # deleted or purged
            entry = _decode_entry(msg.data)
            if entry.expires > now:
                present[decode_token(msg.subject.rpartition(".")[2])] = _client_info(entry.info)
        return present

    async def stats(self, channel: str) -> tuple[int, int]:
        clients = await self.presence(channel)
        return len(clients), len({info.user for info in clients.values()})

    async def close(self) -> None:
        await self._link.close()

    async def _ready(self, ttl: float | None) -> None:
        """Connected, and (for ``ttl``) the bucket keeps entries at least ``ttl`` seconds."""
        if self._link.js is None:
            async with self._opening:
                if self._link.js is None:
                    await self._link.open()
        if ttl is not None and ttl > self._bucket_ttl:
            async with self._opening:
                if ttl > self._bucket_ttl:
                    self._bucket_ttl = await self._ensure_bucket(ttl)

    async def _ensure_bucket(self, ttl: float) -> float:
        js = self._link.jetstream()
        config = api.KeyValueConfig(
            bucket=self._names.bucket,
            description="hubbub presence",
            history=1,
            ttl=ttl,
            storage=api.StorageType(self.options.storage),
            replicas=self.options.stream_replicas,
        )
        try:
            await js.create_key_value(config)
            return ttl
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
            info = await js.stream_info(f"KV_{self._names.bucket}")
        current = info.config.max_age or 0.0
        if current and current < ttl:
            await js.update_stream(replace(info.config, max_age=ttl))
            return ttl
        return current or math.inf


# --------------------------------------------------------------------------- maintenance


async def drop_prefix(url: str) -> list[str]:
    """Delete every stream and bucket under the URL's prefix; their names.

    For tests, and for retiring a deployment: all history and presence is lost.
    """
    options = NatsOptions.from_url(url)
    link = _Link(options)
    await link.open()
    try:
        async with _guard("cleanup", options.timeout):
            js = link.jetstream()
            names: list[str] = []
            while page := await js.streams_info(offset=len(names)):
                names.extend(info.config.name or "" for info in page)
            mine = [
                name
                for name in names
                if name.startswith(f"{options.prefix}_history_")
                or name == f"KV_{options.prefix}_presence"
            ]
            for name in mine:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(name)
        return mine
    finally:
        await link.close()


_broker: type[Broker] = NatsBroker
_presence: type[PresenceStore] = NatsPresenceStore
_sink: type[FeedSink] = NatsBroker
