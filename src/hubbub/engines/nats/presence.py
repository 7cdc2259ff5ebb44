"""``NatsPresenceStore``: who is in a channel, in a JetStream key-value bucket.

One key per channel and client (names.py). A bucket has one TTL for every key (per-key
TTLs need nats-server 2.11), so each entry carries its own expiry and the bucket's TTL
only grows to the longest ttl asked for: storage is freed at most that long after a
client's last refresh. An entry that cannot be read is left out of the listing and
logged (``_read_entry`` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import replace
from typing import Self

import msgspec
import nats.js.errors
import structlog
from nats.js import api

from hubbub.engines.base import PresenceStore
from hubbub.engines.nats.link import Link, create_or_read
from hubbub.engines.nats.names import Names, last_token
from hubbub.engines.nats.options import NatsOptions
from hubbub.engines.nats.state import WireInfo, client_info, encode, now_ms, wire_info
from hubbub.protocol.messages import ClientInfo

_log = structlog.get_logger(__name__)


class _Entry(msgspec.Struct, array_like=True, frozen=True):
    expires: int
    """Unix ms; the bucket's max_age is only an upper bound shared by all entries."""
    info: WireInfo


_decode_entry = msgspec.msgpack.Decoder(_Entry).decode


class NatsPresenceStore:
    """Presence in a JetStream key-value bucket, one key per channel and client."""

    def __init__(self, options: NatsOptions) -> None:
        self.options = options
        self._names = Names(options.prefix)
        self._link = Link(options, on_reconnected=self._forget_bucket)
        self._opening = asyncio.Lock()
        self._bucket_ttl = 0.0

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(NatsOptions.from_url(url))

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        entry = _Entry(now_ms() + round(ttl * 1000), wire_info(info) or WireInfo("", ""))
        async with self._link.guard("presence add"):
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
            encode(entry),
            stream=self._names.bucket_stream,
        )

    def _forget_bucket(self) -> None:
        """Check the bucket again before the next add (after a reconnect, or when lost)."""
        self._bucket_ttl = 0.0

    async def remove(self, channel: str, client_id: str) -> None:
        async with self._link.guard("presence remove"):
            await self._ready(None)
            with contextlib.suppress(nats.js.errors.NoStreamResponseError):  # no bucket yet
                await self._link.jetstream().publish(
                    self._names.presence_key(channel, client_id),
                    headers={"KV-Operation": "DEL"},
                )

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        async with self._link.guard("presence"):
            await self._ready(None)
            messages = await self._link.snapshot(
                self._names.bucket_stream,
                self._names.presence_keys(channel),
                api.DeliverPolicy.LAST_PER_SUBJECT,
            )
        now = now_ms()
        present: dict[str, ClientInfo] = {}
        for msg in messages:
            if not msg.data or (msg.headers or {}).get("KV-Operation"):
                continue  # deleted or purged
            read = _read_entry(msg.subject, msg.data)
            if read is None:
                continue
            client_id, entry = read
            if entry.expires > now:
                present[client_id] = client_info(entry.info)
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
        info = await create_or_read(js, js.create_key_value(config), self._names.bucket_stream)
        if info is None:
            return ttl
        current = info.config.max_age or 0.0
        if current and current < ttl:
            await js.update_stream(replace(info.config, max_age=ttl))
            return ttl
        return current or math.inf


def _read_entry(key: str, data: bytes) -> tuple[str, _Entry] | None:
    """The client id and entry stored under ``key``; None, logged, if either is unreadable.

    Nothing of ours writes such an entry (another writer or version did) and it names no
    client we could list. Failing the whole listing for it would make the channel's
    presence unavailable until the bucket's max_age drops the entry, and retrying (what
    EngineError asks for) would not help: it is left out instead.
    """
    try:
        return last_token(key), _decode_entry(data)
    except (ValueError, msgspec.DecodeError) as exc:
        _log.warning("skipped an unreadable presence entry", key=key, error=str(exc))
        return None


_presence: type[PresenceStore] = NatsPresenceStore
