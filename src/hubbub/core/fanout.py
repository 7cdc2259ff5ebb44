"""Fan-out: from one publication to the write queues of every local subscriber.

A publication is encoded once per codec in use on the channel and the same bytes are
queued on every subscriber; each session's queue is flushed once at the end of the
loop turn (``Flusher``), so a burst of publications reaches a client as one frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from hubbub.codecs.base import Codec
from hubbub.codecs.json import is_json
from hubbub.observability.metrics import Metrics
from hubbub.protocol import codes
from hubbub.protocol.codes import UnsubscribeCode
from hubbub.protocol.messages import ClientInfo, Join, Leave, Publication, Push, Reply

_log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from hubbub.core.session import Session, Subscription


def fits(codec: Codec, pub: Publication) -> bool:
    """Can ``pub`` travel over ``codec``? Binary data cannot be embedded in JSON text."""
    return codec.binary or not pub.data or is_json(pub.data)


def push_item(codec: Codec, channel: str, pub: Publication) -> bytes | None:
    """One publication push encoded for ``codec``; None when its payload does not fit."""
    if not fits(codec, pub):
        return None
    return codec.encode(Reply(push=Push(channel=channel, pub=pub)))


class Flusher:
    """Flushes every session that queued something, once per loop turn."""

    def __init__(self, loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
        """``loop`` gives the running loop (the node's, asked once per turn at most)."""
        self._dirty: list[Session] = []
        self._scheduled = False
        self._loop = loop

    def mark(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._scheduled:
            self._scheduled = True
            self._loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            try:
                session.flush()
            except Exception:  # one broken session must not stall the others
                _log.exception("flush failed", client=session.client_id)


class Hub:
    """Local subscribers by channel; implements the broker's event handler."""

    def __init__(self, metrics: Metrics) -> None:
        self._channels: dict[str, dict[Session, Subscription]] = {}
        self._metrics = metrics

    def add(self, session: Session, sub: Subscription) -> None:
        """Add a subscriber (the node keeps the broker in line with ``subscribers``)."""
        subscribers = self._channels.get(sub.channel)
        if subscribers is None:
            subscribers = self._channels[sub.channel] = {}
        subscribers[session] = sub

    def remove(self, session: Session, channel: str) -> None:
        """Remove a subscriber; a channel left without one is forgotten."""
        subscribers = self._channels.get(channel)
        if subscribers is None:
            return
        subscribers.pop(session, None)
        if not subscribers:
            del self._channels[channel]

    def subscribers(self, channel: str) -> int:
        return len(self._channels.get(channel, ()))

    def channels(self) -> list[str]:
        return list(self._channels)

    # -------------------------------------------------------- broker event handler

    def on_publication(self, channel: str, pub: Publication) -> None:
        subscribers = self._channels.get(channel)
        if not subscribers:
            return
        if pub.time:
            self._metrics.delivered(max(0.0, time.time() - pub.time / 1000))
        encoded: dict[Codec, bytes | None] = {}
        for session, sub in subscribers.items():
            if sub.pending is not None:
                sub.pending.append(pub)
                continue
            codec = session.codec
            if codec in encoded:
                item = encoded[codec]
            else:
                item = encoded[codec] = push_item(codec, channel, pub)
            if item is None:
                session.close(codes.INAPPROPRIATE_PROTOCOL)
            else:
                session.push(item)

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self._presence_push(channel, Reply(push=Push(channel=channel, join=Join(info=info))))

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self._presence_push(channel, Reply(push=Push(channel=channel, leave=Leave(info=info))))

    def on_gap(self, channels: Sequence[str]) -> None:
        """Publications may be lost: every subscriber recovers. A client's own
        subscription is ended with 2500, which makes it subscribe again; a server-side
        one cannot be asked so, and its connection is closed with 3010 instead, which
        makes the client reconnect and recover it through connect."""
        for channel in channels:
            for session, sub in list(self._channels.get(channel, {}).items()):
                if session.closed:
                    continue  # closed for a server-side channel earlier in this gap
                if sub.server_side:
                    session.close(codes.INSUFFICIENT_STATE)
                else:
                    session.node.unsubscribe(session, channel, UnsubscribeCode.INSUFFICIENT_STATE)

    def _presence_push(self, channel: str, reply: Reply) -> None:
        subscribers = self._channels.get(channel)
        if not subscribers:
            return
        encoded: dict[Codec, bytes] = {}
        for session, sub in subscribers.items():
            if not sub.join_leave or sub.pending is not None:
                continue
            item = encoded.get(session.codec)
            if item is None:
                item = encoded[session.codec] = session.codec.encode(reply)
            session.push(item)
