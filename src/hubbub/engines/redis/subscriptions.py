"""Which Pub/Sub connection holds each channel, and moving channels when slots move.

A channel is held by connection ``slot % pubsub_shards`` to the node serving its
hash slot: without Cluster, always the URL's node. On a Redis Cluster (sharded
Pub/Sub) Redis says when a slot is served elsewhere, and its channels move:

- SSUBSCRIBE answered MOVED: our slot map is stale;
- an SUNSUBSCRIBE we did not ask for: the slot was given to another node;
- a connection lost: its node may have failed over to a replica.

Each re-reads CLUSTER SHARDS (one background task, with back-off while events keep
coming) and subscribes every channel not held where it belongs on the connection
to its new node. A channel that had been delivering is then reported to the handler
(``on_gap``), as after any reconnect: publications may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import structlog
from redis.asyncio import ConnectionPool
from redis.backoff import EqualJitterBackoff
from redis.crc import key_slot

from hubbub.engines.redis.cluster import Address, SlotMap
from hubbub.engines.redis.options import RedisOptions, connection_kwargs
from hubbub.engines.redis.pubsub import (
    Connection,
    Subscriber,
    SubscriberSettings,
    Verbs,
)
from hubbub.errors import EngineError
from hubbub.tasks import start

_log = structlog.get_logger(__name__)

Key = tuple[Address, int]
"""A Pub/Sub connection: its node and its index among that node's connections."""


class _Join:
    """Channels of a subscribe() call in progress; ``displaced`` if one had to move."""

    def __init__(self, names: set[bytes]) -> None:
        self.names = names
        self.displaced = False


class Subscriptions:
    """The Pub/Sub connections of one broker and the channels each holds."""

    def __init__(
        self,
        options: RedisOptions,
        verbs: Verbs,
        deliver: Callable[[str, bytes], None],
        gap: Callable[[list[str]], None],
        backoff: EqualJitterBackoff,
    ) -> None:
        self._options = options
        self._pool = ConnectionPool.from_url(options.url, **connection_kwargs(options, "pubsub"))
        kwargs = self._pool.connection_kwargs
        seed = (str(kwargs["host"]), int(kwargs["port"]))
        self._map = SlotMap(seed, self._probe, tls=options.url.startswith("rediss:"))
        self._settings = SubscriberSettings(verbs, options.timeout, backoff, deliver, gap, self)
        self._backoff = backoff
        self._subscribers: dict[Key, Subscriber] = {}
        self._wanted: dict[bytes, str] = {}
        """Pub/Sub name → hubbub channel, for every channel subscribed."""
        self._where: dict[bytes, Subscriber] = {}
        """Which connection holds each wanted channel; none while it waits for a new one."""
        self._joins: set[_Join] = set()
        self._unsettled = False
        self._follower: asyncio.Task[None] | None = None

    def _connection(self, address: Address, **overrides: Any) -> Connection:
        kwargs = {**self._pool.connection_kwargs, "host": address[0], "port": address[1]}
        return cast(Connection, cast(Any, self._pool.connection_class)(**kwargs | overrides))

    def _probe(self, address: Address) -> Connection:
        """A short-lived connection reading the slot map, named apart from the subscribers."""
        return self._connection(address, client_name=f"{self._options.prefix}:slots")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open every connection of every primary; EngineError when they do not connect."""
        seed = self._map.seed
        unreachable = EngineError(f"redis pub/sub could not connect to {seed[0]}:{seed[1]}")
        if self._options.cluster:
            try:
                await self._map.refresh()
            except EngineError as exc:
                raise unreachable from exc
        for address in self._map.primaries():
            for index in range(self._options.pubsub_shards):
                self._subscriber((address, index))
        waits = [subscriber.connected.wait() for subscriber in self._subscribers.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self._options.timeout)
        except TimeoutError:
            raise unreachable from None

    async def close(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            await asyncio.wait([follower])
        subscribers, self._subscribers = self._subscribers, {}
        for subscriber in subscribers.values():
            await subscriber.close()

    def key_of(self, name: bytes) -> Key:
        """The connection that should hold Pub/Sub channel ``name``."""
        slot = key_slot(name)
        return self._map.owner(slot), slot % self._options.pubsub_shards

    def _subscriber(self, key: Key) -> Subscriber:
        subscriber = self._subscribers.get(key)
        if subscriber is None:
            (host, port), index = key
            name = f"{host}:{port}/{index}" if self._options.cluster else str(index)
            subscriber = Subscriber(name, lambda: self._connection(key[0]), self._settings)
            self._subscribers[key] = subscriber
            subscriber.start()
        return subscriber

    # ------------------------------------------------------------------- requests

    async def subscribe(self, names: dict[bytes, str]) -> None:
        """Hold ``names`` where they belong and return once Redis has confirmed them."""
        self._wanted.update(names)
        join = _Join(set(names))
        self._joins.add(join)
        try:
            groups: dict[Subscriber, dict[bytes, str]] = {}
            for name, channel in names.items():
                groups.setdefault(self._place(name), {})[name] = channel
            await asyncio.gather(*(s.subscribe(group) for s, group in groups.items()))
            if join.displaced:  # MOVED: wait until they are subscribed where they belong
                await self._settled()
        finally:
            self._joins.discard(join)

    def unsubscribe(self, names: list[bytes]) -> None:
        """Stop delivering ``names``."""
        groups: dict[Subscriber, list[bytes]] = {}
        for name in names:
            self._wanted.pop(name, None)
            holder = self._where.pop(name, None)
            if holder is not None:
                groups.setdefault(holder, []).append(name)
        for subscriber, group in groups.items():
            subscriber.unsubscribe(group)

    async def barrier(self) -> None:
        """Return once everything queued for every connection before has arrived."""
        await asyncio.gather(*(s.barrier() for s in list(self._subscribers.values())))

    def _place(self, name: bytes) -> Subscriber:
        """Record the connection that should hold ``name``, taking it off any other."""
        target = self._subscriber(self.key_of(name))
        holder = self._where.get(name)
        if holder is not None and holder is not target:
            holder.forget([name])
        self._where[name] = target
        return target

    async def _settled(self) -> None:
        follower = self._follower
        if follower is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(follower), self._options.timeout)
        except TimeoutError:
            raise EngineError("redis cluster slots are still moving") from None

    # ------------------------------------------------------- SubscriberEvents

    def moved(self, subscriber: Subscriber, slot: int) -> None:
        self._displace(subscriber, [name for name in subscriber.held if key_slot(name) == slot])

    def dropped(self, subscriber: Subscriber, name: bytes) -> None:
        self._displace(subscriber, [name])

    def down(self, subscriber: Subscriber) -> None:
        if self._options.cluster:  # its node may have failed over
            self._unsettle()

    def _displace(self, subscriber: Subscriber, names: list[bytes]) -> None:
        subscriber.forget(names)
        for name in names:
            if self._where.get(name) is subscriber:
                del self._where[name]
        for join in self._joins:
            join.displaced = join.displaced or not join.names.isdisjoint(names)
        self._unsettle()

    # ------------------------------------------------------------------ following

    def _unsettle(self) -> None:
        self._unsettled = True
        if self._follower is None:
            self._follower = start(self._follow())

    async def _follow(self) -> None:
        """Re-read the slots and re-place channels until nothing moves; never raises."""
        rounds = 0
        try:
            while self._unsettled:
                if rounds:
                    await asyncio.sleep(self._backoff.compute(rounds - 1))
                rounds += 1
                self._unsettled = False
                try:
                    await self._map.refresh(self._reachable())
                except EngineError as exc:
                    _log.warning("redis cluster slots unknown", error=str(exc))
                    self._unsettled = True
                    continue
                await self._rehome()
        except Exception:
            _log.exception("redis cluster slots not followed")
        finally:
            self._follower = None

    def _reachable(self) -> list[Address]:
        """Nodes with an open connection first: a failed node would only make us wait."""
        return [key[0] for key, s in self._subscribers.items() if s.connected.is_set()]

    async def _rehome(self) -> None:
        moves: dict[Subscriber, dict[bytes, str]] = {}
        for name, channel in self._wanted.items():
            holder = self._where.get(name)
            target = self._place(name)
            if holder is not target:
                moves.setdefault(target, {})[name] = channel
        if moves:
            counts = {subscriber.name: len(group) for subscriber, group in moves.items()}
            _log.info("redis cluster channels moved", to=counts)
        results = await asyncio.gather(
            *(s.subscribe(group, owed=self._owed(group)) for s, group in moves.items()),
            return_exceptions=True,
        )
        for result in results:  # the connection subscribes them when it is back
            if isinstance(result, Exception):
                _log.warning("redis cluster channels not moved yet", error=str(result))
        await self._retire()

    def _owed(self, names: dict[bytes, str]) -> list[bytes]:
        """The moving channels that were delivering: all but those still being joined."""
        joining: set[bytes] = set().union(*(join.names for join in self._joins))
        return [name for name in names if name not in joining]

    async def _retire(self) -> None:
        """Close the connections of nodes that serve no slot and hold nothing any more."""
        primaries = set(self._map.primaries())
        placed = set(self._where.values())  # placed, maybe not yet held: about to subscribe
        for key, subscriber in list(self._subscribers.items()):
            if key[0] not in primaries and not subscriber.held and subscriber not in placed:
                del self._subscribers[key]
                await subscriber.close()
