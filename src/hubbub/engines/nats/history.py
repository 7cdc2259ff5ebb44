"""Channel history in JetStream: appends whose offsets are atomic with storing.

Every message of a channel's history subject is a ``Record`` carrying the stream's state
(state.py), so the subject's last message, the *tail*, is the stream's metadata. An
append writes tail.offset + 1 with JetStream's ``Nats-Expected-Last-Subject-Sequence``
set to the tail's sequence: if another node appended first, JetStream refuses, we re-read
the tail and retry. No counter can run ahead of the data, and when the data is gone
(stream deleted, server state lost, the stream's ``max_age`` = meta_ttl passed) the epoch
goes with it and a new one is drawn. ``remove`` and ``page`` on an unknown channel append
a data-less marker, so the tail keeps the position. Expiry after ``ttl`` is read from the
tail; the subject's older messages are purged when the next publication starts a new
window.

This node remembers the tails it read or wrote, so its next append to a channel needs
no read. A stream deleted and made again by another node restarts its sequences, so a
remembered tail's sequence could equal the new stream's, and the write would land with
the old epoch on top of the new one, hiding an accepted publication. So the tails of a
stream are forgotten when JetStream announces its deletion (the stream-deleted
advisory, ``forget_stream``) and on every reconnect (``forget``). nats-server 2.9 has no
guard that names a stream's incarnation, so one window stays: a stream deleted, made
again and written to by another node before the advisory reaches this one.

``max_age`` belongs to the namespace's stream: publications set it to their meta_ttl, a
stream that ``page`` makes gets the meta_ttl asked for (else 30 days). ``page`` with a
meta_ttl reads the stream's real max_age (once per node) and rewrites the tail when less
than meta_ttl / 2 of it is left. So a channel's state lives the namespace's max_age from
its last write: a meta_ttl asked of ``page`` that differs from the namespace's is only
approximated (per-message TTLs, nats-server 2.11, would make it exact).

One ambiguity stays, as with any request/reply store: if the connection dies after
JetStream stored a publication but before its acknowledgement arrived, the caller gets
EngineError for a publication that other nodes will still deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

import nats.js.errors
import structlog
from nats.js import api

from hubbub.engines.base import DEFAULT_META_TTL, HistoryOptions, new_epoch
from hubbub.engines.nats.link import WRONG_LAST_SEQUENCE, Link, create_or_read
from hubbub.engines.nats.names import Names
from hubbub.engines.nats.state import (
    MARK,
    PUB,
    Record,
    decode_record,
    encode,
    event,
    now_ms,
    publication,
    publications_between,
)
from hubbub.errors import EngineError
from hubbub.protocol.messages import Publication, StreamPosition

_log = structlog.get_logger(__name__)

MAX_ATTEMPTS: Final = 64
"""Appends to one channel retried after losing the race to another node."""
TAIL_CACHE: Final = 4096
"""Channels whose tail this node remembers, so its next publish needs no read."""


@dataclass(frozen=True, slots=True)
class Tail:
    """The last message of a channel's history subject: the stream's state."""

    seq: int
    record: Record
    stored: float
    """Unix seconds it was stored; it lives the stream's max_age from then."""


@dataclass(frozen=True, slots=True)
class _Limits:
    per_subject: int
    max_age_ms: int

    @classmethod
    def of(cls, config: api.StreamConfig) -> _Limits:
        return cls(config.max_msgs_per_subject or -1, round((config.max_age or 0) * 1000))

    @classmethod
    def wanted(cls, history: HistoryOptions) -> _Limits:
        # One slot more than size, for the marker that may sit among the publications.
        return cls(history.size + 1, round(history.meta_ttl * 1000))

    @classmethod
    def unasked(cls, meta_ttl: float | None = None) -> _Limits:
        """A stream made before any publication asked for limits: keep all, for meta_ttl."""
        return cls(-1, round((DEFAULT_META_TTL if meta_ttl is None else meta_ttl) * 1000))


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


class HistoryStreams:
    """The history streams of one prefix, with this node's cache of tails and limits.

    Calls raise nats-py's errors; the broker runs them under ``Link.guard``.
    """

    def __init__(self, link: Link, names: Names) -> None:
        self._link = link
        self._names = names
        self._locks = _Locks()
        self._tails: OrderedDict[str, Tail] = OrderedDict()
        self._streams: dict[str, _Limits] = {}
        """The limits of the streams this node made or read, by stream name."""
        self._chores: set[asyncio.Task[None]] = set()
        """Storage clean-ups that must not delay, or fail, the publish that found them."""

    def hold(self, channel: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Appends to ``channel`` from this node, one at a time."""
        return self._locks.hold(channel)

    def forget(self) -> None:
        """Drop the cached tails and limits (the connection was lost: they may be stale)."""
        self._tails.clear()
        self._streams.clear()

    def forget_stream(self, stream: str) -> None:
        """Drop what is cached of ``stream``, which was deleted: a new one starts over."""
        self._streams.pop(stream, None)
        for channel in [c for c in self._tails if self._names.stream(c) == stream]:
            del self._tails[channel]

    async def close(self) -> None:
        for chore in self._chores:
            chore.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)

    async def append(
        self, channel: str, pub: Publication, history: HistoryOptions
    ) -> tuple[Tail, bytes]:
        """Store ``pub`` at the next offset; the caller holds ``hold(channel)``.

        Returns:
            The new tail, and its record as stored: the bytes the live subject carries too.
        """
        tail, data = await self._append(
            channel, lambda t: _next_publication(t, pub, history), _Limits.wanted(history)
        )
        assert tail is not None
        return tail, data

    async def read_tail(self, channel: str) -> Tail | None:
        """The subject's last message, read from the stream leader (never stale)."""
        try:
            msg = await self._link.jetstream().get_msg(
                self._names.stream(channel), subject=self._names.history(channel)
            )
        except nats.js.errors.NotFoundError:  # no such stream, or nothing on the subject
            self._tails.pop(channel, None)
            return None
        stored = msg.time.timestamp() if msg.time is not None else time.time()
        tail = Tail(msg.seq or 0, decode_record(msg.data or b""), stored)
        self._remember(channel, tail)
        return tail

    async def between(self, channel: str, epoch: str, first: int, last: int) -> list[Record]:
        """The stored publications of ``epoch`` with offsets first..last, in order."""
        return publications_between(await self._records(channel), epoch, first, last)

    async def page(
        self,
        channel: str,
        *,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float | None,
    ) -> tuple[list[Publication], StreamPosition]:
        """``Broker.history``."""
        tail = await self._current_tail(channel, meta_ttl)
        first, last = tail.record.window(now_ms())
        if not _page_wanted(first, last, since, limit, reverse):
            return [], tail.record.position
        records = await self._records(channel, upto=tail.seq)
        found = publications_between(records, tail.record.epoch, first, last)
        pubs = [publication(r) for r in found]
        return _page(pubs, since, limit, reverse), tail.record.position

    async def remove(self, channel: str) -> None:
        """``Broker.remove_history``: a marker past the last offset, then a purge."""

        def decide(tail: Tail | None) -> Record | None:
            if tail is None:
                return None
            return tail.record.marker(first=tail.record.offset + 1, expires=0)

        async with self.hold(channel):
            stored, _ = await self._append(channel, decide)
            if stored is not None:
                await self._purge_before(channel, stored.seq)

    async def _current_tail(self, channel: str, meta_ttl: float | None) -> Tail:
        """The tail, created (fresh epoch, top 0) if there is none; with ``meta_ttl``,
        rewritten when it would expire within meta_ttl / 2, so the stream lives on."""
        new = _Limits.unasked(meta_ttl)
        if meta_ttl is not None:  # when the tail expires depends on the stream's max_age
            await self._ensure_stream(channel, None, new)
        tail = await self.read_tail(channel)
        if tail is not None and not self._touch_due(channel, tail, meta_ttl):
            return tail

        def decide(tail: Tail | None) -> Record | None:
            if tail is None:
                return Record(kind=MARK, epoch=new_epoch(), first=1)
            return tail.record.marker() if self._touch_due(channel, tail, meta_ttl) else None

        async with self.hold(channel):
            stored, _ = await self._append(channel, decide, new=new)
        assert stored is not None
        return stored

    def _touch_due(self, channel: str, tail: Tail, meta_ttl: float | None) -> bool:
        """Would the tail expire (the stream's max_age after it was stored) too soon?"""
        if meta_ttl is None:
            return False
        limits = self._streams.get(self._names.stream(channel))
        max_age = DEFAULT_META_TTL if limits is None else limits.max_age_ms / 1000
        return tail.stored + max_age - time.time() < meta_ttl / 2

    async def _append(
        self,
        channel: str,
        decide: Callable[[Tail | None], Record | None],
        limits: _Limits | None = None,
        new: _Limits | None = None,
    ) -> tuple[Tail | None, bytes]:
        """Append ``decide(tail)`` if the tail is still the subject's last message; retry
        with the new tail if another node appended first. Returns the tail and the bytes
        stored; None from ``decide``: no write, and b"" for the bytes."""
        for attempt in range(MAX_ATTEMPTS):
            await self._ensure_stream(channel, limits, new)
            tail = self._tails.get(channel) or await self.read_tail(channel)
            record = decide(tail)
            if record is None:
                return tail, b""
            data = encode(record)
            try:
                return await self._store(channel, record, data, tail), data
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise
            except nats.js.errors.NoStreamResponseError:
                self._streams.pop(self._names.stream(channel), None)  # deleted under us
            self._tails.pop(channel, None)
            await asyncio.sleep(random.uniform(0, 0.001 * min(attempt, 10)))
        raise EngineError(f"NATS publish failed: {MAX_ATTEMPTS} attempts lost the race")

    async def _store(self, channel: str, record: Record, data: bytes, tail: Tail | None) -> Tail:
        """Write ``data``, ``record`` encoded, if ``tail`` is still the subject's last."""
        ack = await self._link.jetstream().publish(
            self._names.history(channel),
            data,
            stream=self._names.stream(channel),
            headers={"Nats-Expected-Last-Subject-Sequence": str(0 if tail is None else tail.seq)},
        )
        stored = Tail(ack.seq, record, time.time())
        self._remember(channel, stored)
        restarted = record.kind == PUB and record.first == record.offset
        if restarted and tail is not None and tail.record.offset:  # free the expired window
            chore = asyncio.get_running_loop().create_task(self._reclaim(channel, ack.seq))
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)
        return stored

    def _remember(self, channel: str, tail: Tail) -> None:
        self._tails[channel] = tail
        self._tails.move_to_end(channel)
        if len(self._tails) > TAIL_CACHE:
            self._tails.popitem(last=False)

    async def _records(self, channel: str, upto: int = 0) -> list[Record]:
        messages = await self._link.snapshot(
            self._names.stream(channel), self._names.history(channel), api.DeliverPolicy.ALL, upto
        )
        return [decode_record(msg.data) for msg in messages]

    async def _purge_before(self, channel: str, seq: int) -> None:
        await self._link.jetstream().purge_stream(
            self._names.stream(channel), seq=seq, subject=self._names.history(channel)
        )

    async def _reclaim(self, channel: str, seq: int) -> None:
        try:
            async with self._link.guard("purge"):
                await self._purge_before(channel, seq)
        except EngineError as exc:  # the data is dead either way; it only takes space
            _log.warning("could not purge expired history", channel=channel, error=str(exc))

    async def _ensure_stream(
        self, channel: str, limits: _Limits | None, new: _Limits | None = None
    ) -> None:
        """The namespace's stream exists, with ``limits`` when given (cached per node);
        one made here without them gets ``new``, by default ``_Limits.unasked()``."""
        key = self._names.stream(channel)
        known = self._streams.get(key)
        if known is not None and (limits is None or known == limits):
            return
        async with self._locks.hold("\0stream\0" + key):
            known = self._streams.get(key)
            if known is None:
                known = await self._create_stream(channel, limits or new or _Limits.unasked())
            if limits is not None and known != limits:
                await self._link.jetstream().update_stream(self._stream_config(channel, limits))
                known = limits
            self._streams[key] = known

    async def _create_stream(self, channel: str, limits: _Limits) -> _Limits:
        """Make the stream with ``limits``; one already there keeps its own: those, read."""
        js = self._link.jetstream()
        config = self._stream_config(channel, limits)
        existing = await create_or_read(js, js.add_stream(config), config.name or "")
        return limits if existing is None else _Limits.of(existing.config)

    def _stream_config(self, channel: str, limits: _Limits) -> api.StreamConfig:
        options = self._link.options
        return api.StreamConfig(
            name=self._names.stream(channel),
            description="hubbub channel history",
            subjects=[self._names.stream_subjects(channel)],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            storage=api.StorageType(options.storage),
            num_replicas=options.stream_replicas,
            max_msgs_per_subject=limits.per_subject,
            max_age=limits.max_age_ms / 1000,
        )


def _next_publication(tail: Tail | None, pub: Publication, history: HistoryOptions) -> Record:
    now = now_ms()
    if tail is None:
        epoch, offset, first = new_epoch(), 1, 1
    else:
        last = tail.record
        epoch, offset = last.epoch, last.offset + 1
        first = last.first if last.expires > now else offset  # expired: a new window starts
    expires = now + round(history.ttl * 1000)
    return event(
        PUB, pub, epoch=epoch, offset=offset, first=first, expires=expires, size=history.size
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
