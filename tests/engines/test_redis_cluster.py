"""The Redis engines on a real Redis Cluster of three primaries (sharded Pub/Sub).

Throw-away cluster-enabled ``redis-server`` processes on free ports under 127.0.0.1
(never the shared Redis), always stopped afterwards; skipped without the binary.

The conformance suites run here once more: their test functions are imported into
this module, whose ``broker`` and ``presence`` fixtures give them engines on one
cluster shared by the module. Then what only a cluster shows: channels on every
primary, offsets under concurrent publishers across slots, channels following a
migrated slot or a failed-over primary. Tests that move slots get their own cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from conformance.case_redis import SettledBroker
from conformance.test_broker import *  # noqa: F403 -- collected again, on the cluster
from conformance.test_presence import *  # noqa: F403
from conftest import eventually, free_port
from enginekit import HISTORY, Recorder, client, numbers, offsets, pub
from redis.backoff import EqualJitterBackoff
from redis.crc import key_slot

from hubbub.engines.base import Broker, HistoryOptions, PresenceStore
from hubbub.engines.redis import KeyNames, RedisBroker, RedisOptions, RedisPresenceStore
from hubbub.protocol.messages import StreamPosition

if TYPE_CHECKING:
    from .conftest import StartBroker

BOUND = 15.0
"""Seconds a cluster start, a delivery or a failover may take before the test fails."""
FAST = EqualJitterBackoff(cap=0.2, base=0.02)
"""Reconnect and re-read back-off for tests that move slots: they wait for it."""

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="no redis-server binary to start a cluster"
)


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` (synchronously) until it holds; RuntimeError after BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"local redis cluster: {what} within {BOUND}s")
        time.sleep(0.05)


class LocalCluster:
    """Throw-away cluster-enabled redis-server processes, the slots split evenly.

    ``replicas`` more nodes replicate the first primaries, one each. The bus ports
    are chosen too: Redis's default, port + 10000, may not exist.
    """

    def __init__(self, directory: Path, primaries: int, replicas: int = 0) -> None:
        self.directory = directory
        self.primaries = primaries
        self.ports = [free_port() for _ in range(primaries + replicas)]
        self.bus_ports = [free_port() for _ in self.ports]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ids: list[str] = []

    def __enter__(self) -> LocalCluster:
        try:
            for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
                self.processes.append(self._spawn(port, bus_port))
            self._form()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=BOUND)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self, port: int, bus_port: int) -> subprocess.Popen[bytes]:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
        args += ["--cluster-port", str(bus_port), "--cluster-node-timeout", "1000"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        args += ["--repl-diskless-sync-delay", "0"]
        quiet = subprocess.DEVNULL
        return subprocess.Popen(["redis-server", *args], stdout=quiet, stderr=quiet)

    def _form(self) -> None:
        """Slots to the primaries, every node introduced, replicas attached; state ok."""
        wait_until(self._all_answer, "every node answers PING")
        self.ids = [self.call(n, "CLUSTER", "MYID").decode() for n in range(len(self.ports))]
        step = 16384 // self.primaries
        for n in range(self.primaries):
            last = 16383 if n == self.primaries - 1 else (n + 1) * step - 1
            self.call(n, "CLUSTER", "ADDSLOTSRANGE", n * step, last)
        for n, (port, bus_port) in enumerate(zip(self.ports, self.bus_ports, strict=True)):
            if n:
                self.call(0, "CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        wait_until(self._all_know_each_other, "every node knows every other")
        replicas = range(self.primaries, len(self.ports))
        for n in replicas:
            self.call(n, "CLUSTER", "REPLICATE", self.ids[n - self.primaries])
        wait_until(self._all_ok, "cluster_state:ok on every node")
        wait_until(lambda: all(map(self._in_sync, replicas)), "replicas in sync")

    def _in_sync(self, replica: int) -> bool:
        info: dict[str, Any] = self.call(replica, "INFO", "replication")
        return info.get("master_link_status") == "up"

    def _all_answer(self) -> bool:
        with contextlib.suppress(redis.ConnectionError):
            return all(self.call(n, "PING") for n in range(len(self.ports)))
        return False

    def _all_know_each_other(self) -> bool:
        nodes = [self.call(n, "CLUSTER", "NODES").decode() for n in range(len(self.ports))]
        return all(text.count("connected") == len(self.ports) for text in nodes)

    def _all_ok(self) -> bool:
        infos = [self.call(n, "CLUSTER", "INFO") for n in range(len(self.ports))]
        return all(b"cluster_state:ok" in info for info in infos)

    def call(self, node: int, *args: Any) -> Any:
        """One command on node ``node`` (its index), synchronously."""
        with redis.Redis(port=self.ports[node], socket_timeout=BOUND) as r:
            return r.execute_command(*args)

    def url(self, query: str) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0?cluster=true&{query}"

    def owners(self) -> list[int]:
        """The index of the primary serving each slot, as the second node sees it."""
        owners = [-1] * 16384
        for start, end, primary, *_ in self.call(1, "CLUSTER", "SLOTS"):
            owners[start : end + 1] = [self.ports.index(int(primary[1]))] * (end - start + 1)
        return owners

    def owner(self, slot: int) -> int:
        return self.owners()[slot]

    def pubsub_clients(self, node: int, prefix: str) -> list[dict[str, Any]]:
        """CLIENT LIST entries on ``node`` of the Pub/Sub connections of ``prefix``."""
        with redis.Redis(port=self.ports[node]) as r:
            return [c for c in r.client_list() if c["name"] == f"{prefix}:pubsub"]

    def migrate(self, slot: int, to: int) -> None:
        """Move ``slot`` and its keys to primary ``to``, in the order redis-cli uses."""
        source = self.owner(slot)
        self.call(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", self.ids[source])
        self.call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.ids[to])
        while keys := self.call(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            self.call(source, "MIGRATE", "127.0.0.1", self.ports[to], "", 0, 5000, "KEYS", *keys)
        others = [n for n in range(self.primaries) if n not in (to, source)]
        for node in (to, source, *others):
            self.call(node, "CLUSTER", "SETSLOT", slot, "NODE", self.ids[to])

    def kill(self, node: int) -> None:
        self.processes[node].kill()
        self.processes[node].wait()


@contextlib.contextmanager
def local_cluster(directory: Path, primaries: int, replicas: int = 0) -> Iterator[LocalCluster]:
    with LocalCluster(directory, primaries, replicas) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three primaries shared by the tests that do not move slots."""
    with local_cluster(tmp_path_factory.mktemp("cluster"), 3) as shared:
        yield shared


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """Three primaries for one test, which may move slots or kill a node."""
    with local_cluster(tmp_path, 3) as fresh:
        yield fresh


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


BrokerFactory = Callable[..., Awaitable[RedisBroker]]


@pytest.fixture
def make_broker(prefix: str, start_broker: StartBroker) -> BrokerFactory:
    """Start brokers on a cluster, sharing ``prefix``; closed at teardown."""

    def make(on: LocalCluster, handler: Recorder | None = None) -> Awaitable[RedisBroker]:
        options = RedisOptions.from_url(on.url(f"prefix={prefix}"))
        return start_broker(RedisBroker(options, backoff=FAST), handler)

    return make


def channels_on(on: LocalCluster, prefix: str, node: int, count: int) -> list[str]:
    """``count`` channel names whose slot ``node`` serves."""
    names, owners = KeyNames(prefix), on.owners()
    found = (f"chat:{n}" for n in range(100_000))
    return list(islice((ch for ch in found if owners[key_slot(names.pubsub(ch))] == node), count))


def gaps(events: Recorder) -> list[str]:
    return [channel for kind, channel, _ in events.events if kind == "gap"]


# ------------------------------------------------------- the conformance suites


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def channel() -> str:
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def broker(
    cluster: LocalCluster, events: Recorder, prefix: str, start_broker: StartBroker
) -> Broker:
    engine = SettledBroker(RedisBroker.from_url(cluster.url(f"prefix={prefix}")))
    return await start_broker(engine, events)


@pytest.fixture
async def presence(cluster: LocalCluster, prefix: str) -> AsyncIterator[PresenceStore]:
    store = RedisPresenceStore.from_url(cluster.url(f"prefix={prefix}"))
    yield store
    await store.close()


@pytest.fixture
def broker_clock() -> None:
    pytest.skip("the engine keeps its own time")


@pytest.fixture
def presence_clock() -> None:
    pytest.skip("the engine keeps its own time")


# ------------------------------------------------------------- on every primary


async def test_channels_are_subscribed_on_the_primary_serving_their_slot(
    cluster: LocalCluster, make_broker: BrokerFactory, prefix: str
) -> None:
    """Channels spread over all three primaries: one SSUBSCRIBE connection each, all deliver."""
    events = Recorder()
    broker = await make_broker(cluster, events)
    channels = [f"chat:{n}" for n in range(30)]
    await broker.subscribe(channels)
    slots = cluster.owners()
    owners = [slots[key_slot(KeyNames(prefix).pubsub(ch))] for ch in channels]
    assert set(owners) == {0, 1, 2}
    for node in range(3):
        [conn] = cluster.pubsub_clients(node, prefix)
        assert (int(conn["ssub"]), int(conn["sub"])) == (owners.count(node), 0)
    for n, channel in enumerate(channels):
        await broker.publish(channel, pub(n), HISTORY if n % 2 else None)
    await broker.settle()
    assert sorted(ch for _, ch, _ in events.events) == sorted(channels)  # one each


async def test_keys_live_on_the_primary_serving_the_channel(
    cluster: LocalCluster, make_broker: BrokerFactory, prefix: str
) -> None:
    """History and presence of a channel are written on the primary that serves its slot."""
    broker = await make_broker(cluster)
    store = RedisPresenceStore.from_url(cluster.url(f"prefix={prefix}"))
    names = KeyNames(prefix)
    try:
        for node in range(3):
            [channel] = channels_on(cluster, prefix, node, 1)
            await broker.publish(channel, pub(1), HISTORY)
            await store.add(channel, "c1", client("u1", "c1"), 60.0)
            assert await store.stats(channel) == (1, 1)
            keys = [names.stream(channel), names.meta(channel), names.presence(channel)]
            assert cluster.call(node, "EXISTS", *keys) == 3
    finally:
        await store.close()


async def test_concurrent_publishers_across_slots_get_every_offset_once(
    cluster: LocalCluster, make_broker: BrokerFactory, prefix: str
) -> None:
    """3 brokers publish concurrently to channels on all primaries: offsets 1..N once, in order."""
    events = Recorder()
    listener = await make_broker(cluster, events)
    channels = [ch for node in range(3) for ch in channels_on(cluster, prefix, node, 2)]
    await listener.subscribe(channels)
    publishers = [await make_broker(cluster) for _ in range(3)]
    history = HistoryOptions(size=1000, ttl=60.0, meta_ttl=600.0)

    async def burst(broker: RedisBroker, channel: str) -> list[int]:
        sent = [broker.publish(channel, pub(n), history) for n in range(100)]
        return [position.offset for position in await asyncio.gather(*sent)]

    bursts = [burst(b, ch) for b in publishers for ch in channels]
    results = await asyncio.gather(*bursts)
    await listener.settle()
    for index, channel in enumerate(channels):
        got = [o for r in results[index :: len(channels)] for o in r]
        assert sorted(got) == list(range(1, 301)), channel
        assert offsets(events.pubs(channel)) == list(range(1, 301)), channel
        page, top = await listener.history(channel, since=None, limit=-1, reverse=False)
        assert (offsets(page), top.offset) == (list(range(1, 301)), 300)


async def test_unsubscribe_releases_the_sharded_subscription(
    cluster: LocalCluster, make_broker: BrokerFactory, prefix: str
) -> None:
    """After unsubscribe() the primary no longer counts the channel on our connection."""
    broker = await make_broker(cluster)
    [kept, dropped] = channels_on(cluster, prefix, 2, 2)
    await broker.subscribe([kept, dropped])
    await broker.unsubscribe([dropped])
    await broker.settle()
    [conn] = cluster.pubsub_clients(2, prefix)
    assert conn["ssub"] == "1"


async def test_a_cluster_of_one_primary_runs_every_operation(tmp_path: Path) -> None:
    """On a one-primary cluster, scripts, SPUBLISH and presence all run, two shards deliver."""
    with local_cluster(tmp_path, 1) as one:
        url = one.url("pubsub_shards=2")
        events = Recorder()
        broker, store = RedisBroker.from_url(url), RedisPresenceStore.from_url(url)
        await broker.start(events)
        try:
            await broker.subscribe(["chat:a", "chat:b"])
            await broker.publish("chat:a", pub(1), HISTORY)
            await broker.publish("chat:b", pub(2), None)
            await broker.settle()
            assert (offsets(events.pubs("chat:a")), offsets(events.pubs("chat:b"))) == ([1], [0])
            page, _ = await broker.history("chat:a", since=None, limit=-1, reverse=False)
            assert numbers(page) == [1]
            await store.add("chat:a", "c1", client("u1", "c1"), 60.0)
            await store.remove("chat:a", "c2")
            assert await store.stats("chat:a") == (1, 1)
        finally:
            await broker.close()
            await store.close()


# ---------------------------------------------------------------- slots moving


async def test_a_migrated_slot_takes_its_channels_along_with_a_gap(
    own_cluster: LocalCluster, make_broker: BrokerFactory, prefix: str
) -> None:
    """Slot migrated: its channel is resubscribed on the new primary, on_gap, offsets go on."""
    events = Recorder()
    broker = await make_broker(own_cluster, events)
    [moving] = channels_on(own_cluster, prefix, 0, 1)
    [staying] = channels_on(own_cluster, prefix, 1, 1)
    await broker.subscribe([moving, staying])
    first = await broker.publish(moving, pub(1), HISTORY)
    await broker.settle()
    slot = key_slot(KeyNames(prefix).pubsub(moving))
    await asyncio.to_thread(own_cluster.migrate, slot, 2)
    await eventually(lambda: gaps(events) == [moving])
    [conn] = own_cluster.pubsub_clients(2, prefix)
    assert conn["ssub"] == "1"
    second = await broker.publish(moving, pub(2), HISTORY)
    await broker.publish(staying, pub(3), None)
    await broker.settle()
    assert second == StreamPosition(offset=2, epoch=first.epoch)  # the keys moved too
    assert numbers(events.pubs(moving)) == [1, 2]
    assert numbers(events.pubs(staying)) == [3]
    assert gaps(events) == [moving]


async def test_a_subscribe_to_a_stale_owner_follows_moved(
    own_cluster: LocalCluster, make_broker: BrokerFactory, prefix: str
) -> None:
    """A slot moved unseen: SSUBSCRIBE gets MOVED, the broker follows it, no gap reported."""
    events = Recorder()
    broker = await make_broker(own_cluster, events)
    [channel] = channels_on(own_cluster, prefix, 0, 1)
    slot = key_slot(KeyNames(prefix).pubsub(channel))
    await asyncio.to_thread(own_cluster.migrate, slot, 1)
    await broker.subscribe([channel])
    await broker.publish(channel, pub(1), HISTORY)
    await broker.settle()
    assert numbers(events.pubs(channel)) == [1]
    [conn] = own_cluster.pubsub_clients(1, prefix)
    assert conn["ssub"] == "1"
    assert gaps(events) == []


async def test_a_failed_over_primary_moves_its_channels_to_the_new_one(
    tmp_path: Path, make_broker: BrokerFactory, prefix: str
) -> None:
    """Primary killed, its replica promoted: channels resubscribed there, on_gap, publish works."""
    with local_cluster(tmp_path, 3, replicas=1) as failing:
        events = Recorder()
        broker = await make_broker(failing, events)
        [lost] = channels_on(failing, prefix, 0, 1)
        [kept] = channels_on(failing, prefix, 1, 1)
        await broker.subscribe([lost, kept])
        await broker.publish(lost, pub(1), HISTORY)
        await broker.settle()
        failing.kill(0)
        await eventually(lambda: gaps(events) == [lost])
        [conn] = failing.pubsub_clients(3, prefix)  # the promoted replica
        assert conn["ssub"] == "1"

        async def published() -> bool:
            with contextlib.suppress(Exception):  # until the commands see the new primary
                await broker.publish(lost, pub(2), None)
                return True
            return False

        await eventually(published)
        await broker.publish(kept, pub(3), None)
        await broker.settle()
        assert numbers(events.pubs(lost))[-1] == 2
        assert numbers(events.pubs(kept)) == [3]
        assert gaps(events) == [lost]
