"""What only the Redis engines do: URL options, Pub/Sub shards and batches, atomic
offsets across brokers, stream trimming and TTLs, presence expiry, sharded Pub/Sub on a
standalone Redis 7 (a real multi-primary Redis Cluster: test_redis_cluster.py).

Needs a Redis on 127.0.0.1:6379 (HUBBUB_TEST_REDIS_URL); skipped without one, except
the tests that never connect. Every engine uses a random key prefix and its keys are
deleted afterwards: the Redis is shared, so nothing here flushes or restarts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import redis
from conformance.case_redis import URL, scratch_prefix, unavailable
from conftest import eventually, free_port
from enginekit import HISTORY, Recorder, client, numbers, offsets, pub
from msgspec import Raw
from redis.asyncio.connection import AbstractConnection

from hubbub.engines.base import HistoryOptions
from hubbub.engines.redis import (
    KeyNames,
    RedisBroker,
    RedisOptions,
    RedisPresenceStore,
    decode_publication,
    encode_publication,
)
from hubbub.engines.redis.cluster import SlotMap
from hubbub.engines.registry import create_broker, create_presence
from hubbub.errors import EngineError
from hubbub.protocol.messages import ClientInfo, Publication

if TYPE_CHECKING:
    from .conftest import StartBroker

BOUND = 10.0
"""Seconds any wait for Redis (an expiry, a delivery) may take before the test fails."""
_REASON = unavailable()
needs_redis = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def prefix() -> Iterator[str]:
    """A random key prefix; every key under it is deleted after the test."""
    yield from scratch_prefix()


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    with redis.Redis.from_url(URL) as r:
        yield r


BrokerFactory = Callable[..., Awaitable[RedisBroker]]


@pytest.fixture
def make_broker(prefix: str, start_broker: StartBroker) -> BrokerFactory:
    """Start brokers on the shared prefix with extra URL options; closed at teardown."""

    def make(query: str = "", handler: Recorder | None = None) -> Awaitable[RedisBroker]:
        url = f"{URL}?prefix={prefix}{'&' if query else ''}{query}"
        return start_broker(RedisBroker.from_url(url), handler)

    return make


def pubsub_clients(r: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """CLIENT LIST entries of the Pub/Sub connections of engines using ``prefix``."""
    return [c for c in r.client_list() if c["name"] == f"{prefix}:pubsub"]


def record_sent_frames(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every frame redis-py sends from now until the test ends, in order."""
    sent: list[bytes] = []
    original = AbstractConnection.send_packed_command

    async def record(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(b"".join(command) if isinstance(command, list) else command)
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", record)
    return sent


# ----------------------------------------------------------------------------- options


def test_url_options_are_read() -> None:
    """Every option of the query is parsed, and the URL handed on to redis-py has none."""
    options = RedisOptions.from_url(
        "redis://:pw@h:7000/0?prefix=app.1&pubsub_shards=4&cluster=true&timeout=0.5"
        "&max_connections=8"
    )
    assert options == RedisOptions(
        url="redis://:pw@h:7000/0",
        prefix="app.1",
        pubsub_shards=4,
        cluster=True,
        timeout=0.5,
        max_connections=8,
    )
    assert RedisOptions.from_url("rediss://h").url == "rediss://h"


def test_url_defaults() -> None:
    """A URL without options gets prefix hubbub, one Pub/Sub connection, no cluster."""
    options = RedisOptions.from_url("redis://127.0.0.1:6379/2")
    assert (options.prefix, options.pubsub_shards, options.cluster) == ("hubbub", 1, False)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("pubsub_shards=0", "pubsub_shards"),
        ("pubsub_shards=two", "pubsub_shards"),
        ("pubsub_shards=1000", "pubsub_shards"),
        ("prefix=", "prefix"),
        ("prefix=a{b}", "prefix"),
        ("prefix=a b", "prefix"),
        ("cluster=maybe", "cluster"),
        ("timeout=0", "timeout"),
        ("timeout=soon", "timeout"),
        ("timeout=inf", "timeout"),
        ("max_connections=0", "max_connections"),
        ("prefix=a&prefix=b", "prefix"),
    ],
)
def test_bad_option_values_name_the_option(query: str, named: str) -> None:
    """A bad option value is a ValueError naming that option."""
    with pytest.raises(ValueError, match=named):
        RedisOptions.from_url(f"redis://h/0?{query}")


def test_unknown_option_lists_the_known_ones() -> None:
    """A typo in an option name is refused, with the options that exist."""
    with pytest.raises(ValueError, match=r"'pubsub_shard'.*prefix, pubsub_shards"):
        RedisOptions.from_url("redis://h/0?pubsub_shard=2")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h/zero", "database number"),
        ("redis://h/1?cluster=true", "database 0"),
    ],
)
def test_bad_database_path(url: str, message: str) -> None:
    """The path must be a database number, and 0 in cluster mode."""
    with pytest.raises(ValueError, match=message):
        RedisOptions.from_url(url)


def test_password_stays_out_of_errors_and_repr() -> None:
    """Neither an option error nor the options' repr shows the URL's password."""
    with pytest.raises(ValueError) as caught:
        RedisOptions.from_url("redis://:s3cret@h/0?cluster=perhaps")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(RedisOptions.from_url("redis://:s3cret@h/0"))


def test_registry_builds_redis_engines_without_connecting() -> None:
    """redis:// gives the Redis broker and presence store; nothing connects until used."""
    url = f"redis://127.0.0.1:{free_port()}/0?prefix=p"
    assert isinstance(create_broker(url), RedisBroker)
    assert isinstance(create_presence(url), RedisPresenceStore)


def test_key_names_share_one_hash_tag() -> None:
    """A channel's keys and Pub/Sub name fall in one Cluster slot, even for odd names."""
    from redis.crc import key_slot

    names = KeyNames("p")
    for channel in ("chat:room", "}odd{", "", "a}b"):
        keys = [names.stream(channel), names.meta(channel), names.presence(channel)]
        keys += [names.presence_expiry(channel), names.pubsub(channel).decode()]
        assert len({key_slot(k.encode()) for k in keys}) == 1, channel


class ShardsReply:
    """A connection that answers every command with ``reply`` (a RESP2 CLUSTER SHARDS)."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    async def connect(self) -> None:
        pass

    async def send_command(self, *args: Any) -> None:
        assert args == ("CLUSTER", "SHARDS")

    async def read_response(self) -> Any:
        return self.reply

    async def disconnect(self, nowait: bool = False) -> None:
        pass


def _node(port: int, role: bytes, health: bytes, endpoint: bytes = b"127.0.0.1") -> list[Any]:
    return [b"id", b"x", b"port", port, b"endpoint", endpoint, b"role", role, b"health", health]


async def test_slot_map_reads_the_online_primary_of_each_shard() -> None:
    """CLUSTER SHARDS: each range goes to its online primary; "?" means the node asked."""
    reply = [
        [b"slots", [0, 99, 200, 299], b"nodes", [_node(7001, b"master", b"online")]],
        [
            b"slots",
            [100, 199],
            b"nodes",
            [
                _node(7002, b"master", b"fail"),
                _node(7003, b"replica", b"online"),
                _node(7004, b"master", b"online", endpoint=b"?"),
            ],
        ],
    ]
    slots = SlotMap(("10.0.0.9", 7000), lambda address: ShardsReply(reply), tls=False)
    await slots.refresh()
    assert [slots.owner(s) for s in (0, 99, 100, 199, 200, 299)] == [
        ("127.0.0.1", 7001),
        ("127.0.0.1", 7001),
        ("10.0.0.9", 7004),
        ("10.0.0.9", 7004),
        ("127.0.0.1", 7001),
        ("127.0.0.1", 7001),
    ]
    assert slots.owner(300) == ("10.0.0.9", 7000)  # unclaimed: the owner it had
    assert slots.primaries() == [("127.0.0.1", 7001), ("10.0.0.9", 7004), ("10.0.0.9", 7000)]


# ---------------------------------------------------------------------------- encoding


def test_publication_encoding_round_trips() -> None:
    """Every field survives our msgpack form; the payload travels as msgpack bin."""
    info = ClientInfo(user="u", client="c", conn_info=Raw(b'{"a":1}'), chan_info=Raw(b"\x00"))
    fields = {"tags": {"k": "v"}, "delta": True, "time": 5, "channel": "ch", "key": "x"}
    fields |= {"removed": True, "score": 3, "epoch": "e", "version": 9}
    sent = Publication(data=Raw(b"\xff\x00binary"), info=info, **fields)
    body = encode_publication(sent)
    assert msgspec.msgpack.decode(body)[0] == b"\xff\x00binary"
    got = decode_publication(body, 7)
    assert got == msgspec.structs.replace(sent, offset=7)
    assert bytes(got.data) == b"\xff\x00binary"


# -------------------------------------------------------------------------- connecting


@pytest.mark.parametrize("method", ["publish", "history", "presence"])
async def test_unreachable_redis_raises_engine_error(method: str) -> None:
    """Commands against a Redis that is not there fail with EngineError, promptly."""
    url = f"redis://127.0.0.1:{free_port()}/0?timeout=1"
    broker, store = RedisBroker.from_url(url), RedisPresenceStore.from_url(url)
    calls = {
        "publish": lambda: broker.publish("ch", pub(1), HISTORY),
        "history": lambda: broker.history("ch", since=None, limit=-1, reverse=False),
        "presence": lambda: store.presence("ch"),
    }
    try:
        with pytest.raises(EngineError):
            await calls[method]()
    finally:
        await broker.close()
        await store.close()


async def test_start_fails_when_redis_is_unreachable() -> None:
    """A broker that cannot connect its Pub/Sub refuses to start, with EngineError."""
    broker = RedisBroker.from_url(f"redis://127.0.0.1:{free_port()}/0?timeout=0.5")
    with pytest.raises(EngineError, match="could not connect"):
        await broker.start(Recorder())


# ------------------------------------------------------------------------ subscriptions


@needs_redis
async def test_channels_spread_over_the_pubsub_connections(
    make_broker: BrokerFactory, sync_redis: redis.Redis, prefix: str
) -> None:
    """With pubsub_shards=4 the channels are split over 4 connections, and all deliver."""
    events = Recorder()
    broker = await make_broker("pubsub_shards=4", events)
    channels = [f"chat:{n}" for n in range(40)]
    await broker.subscribe(channels)
    clients = pubsub_clients(sync_redis, prefix)
    assert len(clients) == 4
    assert all(int(c["sub"]) > 0 for c in clients)
    assert sum(int(c["sub"]) for c in clients) == 40
    assert len({broker.shard_of(ch) for ch in channels}) == 4
    for channel in channels:
        await broker.publish(channel, pub(1), None)
    await broker.settle()
    assert sorted(ch for _, ch, _ in events.events) == sorted(channels)


@needs_redis
async def test_concurrent_subscribes_go_out_as_one_command(
    make_broker: BrokerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscribes asked for in the same loop turn share one SUBSCRIBE (and one wait)."""
    broker = await make_broker()
    sent = record_sent_frames(monkeypatch)
    await asyncio.gather(*(broker.subscribe([f"chat:{n}"]) for n in range(200)))
    assert sum(frame.count(b"\r\nSUBSCRIBE\r\n") for frame in sent) == 1
    await asyncio.gather(*(broker.unsubscribe([f"chat:{n}"]) for n in range(200)))
    await broker.settle()
    assert sum(frame.count(b"\r\nUNSUBSCRIBE\r\n") for frame in sent) == 1


@needs_redis
async def test_unsubscribe_releases_the_redis_subscription(
    make_broker: BrokerFactory, sync_redis: redis.Redis, prefix: str
) -> None:
    """After unsubscribe() Redis no longer counts the channel on our connection."""
    broker = await make_broker()
    await broker.subscribe(["chat:a", "chat:b"])
    await broker.unsubscribe(["chat:a"])
    await broker.settle()
    [conn] = pubsub_clients(sync_redis, prefix)
    assert conn["sub"] == "1"


@needs_redis
async def test_garbage_on_a_channel_does_not_stop_delivery(
    make_broker: BrokerFactory, sync_redis: redis.Redis, prefix: str
) -> None:
    """A message that is not ours is logged and skipped; the reader goes on."""
    events = Recorder()
    broker = await make_broker("", events)
    await broker.subscribe(["chat:a"])
    for junk in (b"", b"p1:not msgpack", b"zzz", b"pX:"):
        sync_redis.publish(KeyNames(prefix).pubsub("chat:a"), junk)
    await broker.publish("chat:a", pub(1), None)
    await broker.settle()
    assert numbers(events.pubs("chat:a")) == [1]


# ---------------------------------------------------------------------------- offsets


@needs_redis
async def test_concurrent_brokers_get_every_offset_exactly_once(
    make_broker: BrokerFactory,
) -> None:
    """4 brokers x 250 concurrent publishes: offsets 1..1000 once each, delivered in order."""
    events = Recorder()
    listener = await make_broker("", events)
    await listener.subscribe(["chat:busy"])
    publishers = [await make_broker() for _ in range(4)]
    history = HistoryOptions(size=2000, ttl=60.0, meta_ttl=600.0)

    async def burst(broker: RedisBroker, base: int) -> list[int]:
        positions = await asyncio.gather(
            *(broker.publish("chat:busy", pub(base + n), history) for n in range(250))
        )
        return [p.offset for p in positions]

    results = await asyncio.gather(*(burst(b, i * 1000) for i, b in enumerate(publishers)))
    assert sorted(o for r in results for o in r) == list(range(1, 1001))
    await listener.settle()
    assert offsets(events.pubs("chat:busy")) == list(range(1, 1001))
    page, top = await listener.history("chat:busy", since=None, limit=-1, reverse=False)
    assert offsets(page) == list(range(1, 1001))
    assert top.offset == 1000
    delivered = {p.offset: numbers([p])[0] for p in events.pubs("chat:busy")}
    assert {p.offset: numbers([p])[0] for p in page} == delivered


# ----------------------------------------------------------------------------- streams


@needs_redis
async def test_stream_is_trimmed_and_keys_carry_the_ttls(
    make_broker: BrokerFactory, sync_redis: redis.Redis, prefix: str
) -> None:
    """MAXLEN keeps size entries; the stream lives ttl, the epoch and top meta_ttl."""
    broker = await make_broker()
    options = HistoryOptions(size=5, ttl=30.0, meta_ttl=600.0)
    for n in range(1, 21):
        await broker.publish("chat:t", pub(n), options)
    names = KeyNames(prefix)
    assert sync_redis.xlen(names.stream("chat:t")) == 5
    assert 0 < sync_redis.pttl(names.stream("chat:t")) <= 30_000
    assert 30_000 < sync_redis.pttl(names.meta("chat:t")) <= 600_000
    page, _ = await broker.history("chat:t", since=None, limit=-1, reverse=False)
    assert offsets(page) == [16, 17, 18, 19, 20]


@needs_redis
async def test_publications_expire_with_the_stream_ttl(make_broker: BrokerFactory) -> None:
    """With a short real ttl the publications go; the epoch and top offset stay."""
    broker = await make_broker()
    first = await broker.publish("chat:e", pub(1), HistoryOptions(size=5, ttl=0.2))

    async def emptied() -> bool:
        page, _ = await broker.history("chat:e", since=None, limit=-1, reverse=False)
        return page == []

    await eventually(emptied)
    _, top = await broker.history("chat:e", since=None, limit=0, reverse=False)
    assert top == first


@needs_redis
async def test_new_epoch_once_the_meta_ttl_passes(make_broker: BrokerFactory) -> None:
    """Metadata with a short real meta_ttl expires: a new epoch, offsets from 1 again."""
    broker = await make_broker()
    history = HistoryOptions(size=5, ttl=0.2, meta_ttl=0.3)
    old = await broker.publish("chat:m", pub(1), history)

    async def renewed() -> bool:
        _, top = await broker.history("chat:m", since=None, limit=0, reverse=False)
        return top.epoch != old.epoch

    await eventually(renewed)
    position = await broker.publish("chat:m", pub(2), history)
    assert position.offset == 1
    assert position.epoch != old.epoch


# ---------------------------------------------------------------------------- presence


@needs_redis
async def test_presence_entries_expire_on_their_own(prefix: str, sync_redis: redis.Redis) -> None:
    """An entry not refreshed within its (short, real) ttl goes; a longer one stays."""
    store = RedisPresenceStore.from_url(f"{URL}?prefix={prefix}")
    try:
        await store.add("chat:p", "c1", client("u1", "c1"), 0.3)
        await store.add("chat:p", "c2", client("u2", "c2"), 60.0)
        assert 59_000 < sync_redis.pttl(KeyNames(prefix).presence("chat:p")) <= 60_000

        async def c1_gone() -> bool:
            return list(await store.presence("chat:p")) == ["c2"]

        await eventually(c1_gone)
        assert await store.stats("chat:p") == (1, 1)
    finally:
        await store.close()


@needs_redis
async def test_presence_add_refreshes_the_entry(prefix: str) -> None:
    """Re-adding before the ttl passes keeps the client present past the first ttl."""
    store = RedisPresenceStore.from_url(f"{URL}?prefix={prefix}")
    try:
        await store.add("chat:r", "c1", client("u1", "c1"), 0.4)
        await store.add("chat:r", "c2", client("u2", "c2"), 0.4)
        await store.add("chat:r", "c1", client("u1", "c1"), 60.0)

        async def c2_gone() -> bool:
            return list(await store.presence("chat:r")) == ["c1"]

        await eventually(c2_gone)
    finally:
        await store.close()


# --------------------------------------------------------------------- sharded pub/sub


@needs_redis
async def test_cluster_mode_uses_sharded_pubsub(
    make_broker: BrokerFactory, sync_redis: redis.Redis, prefix: str
) -> None:
    """cluster=true subscribes with SSUBSCRIBE and publishes with SPUBLISH (Redis 7)."""
    events = Recorder()
    broker = await make_broker("cluster=true&pubsub_shards=2", events)
    channels = ["chat:a", "chat:b", "chat:c"]
    await broker.subscribe(channels)
    clients = pubsub_clients(sync_redis, prefix)
    assert sum(int(c["ssub"]) for c in clients) == 3
    assert sum(int(c["sub"]) for c in clients) == 0
    info = client("u1", "c1")
    await broker.publish_join("chat:a", info)
    position = await broker.publish("chat:a", pub(1), HISTORY)
    await broker.publish("chat:b", pub(2), None)
    await broker.settle()
    assert events.events[0] == ("join", "chat:a", info)
    assert offsets(events.pubs("chat:a")) == [position.offset] == [1]
    assert numbers(events.pubs("chat:b")) == [2]


@needs_redis
async def test_cluster_mode_groups_a_batch_by_slot(
    make_broker: BrokerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One SSUBSCRIBE per hash slot: Redis Cluster refuses channels of several slots."""
    from redis.crc import key_slot

    broker = await make_broker("cluster=true")
    sent = record_sent_frames(monkeypatch)
    channels = [f"chat:{n}" for n in range(30)]
    await broker.subscribe(channels)
    slots = {key_slot(KeyNames(broker.options.prefix).pubsub(ch)) for ch in channels}
    assert sum(frame.count(b"\r\nSSUBSCRIBE\r\n") for frame in sent) == len(slots)
