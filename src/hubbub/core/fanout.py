"""Fan-out: from publications to the write queues of every local subscriber.

The publications a channel receives in one loop turn are kept together and delivered
at the end of the turn (``Flusher``): each is encoded once per codec in use on the
channel, the turn's items are joined once per codec, and every subscriber is handed
that one frame, so a burst costs each subscriber one queue entry and one write, not
one per publication. Anything that must come after them for some subscriber (a new
or leaving subscriber, a join or leave, a recovery's merge, a close) delivers the
channel's turn first (``Hub.settle``), so within a channel each client sees the order
it would have seen had every publication been queued on arrival. Across channels, and
against the replies to its own commands, a client may now see a turn's publications
later than before: the protocol orders neither (with a Redis or NATS broker a
publication never comes back before the reply to its publish anyway).
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


def frame_of(codec: Codec, channel: str, pubs: list[Publication]) -> tuple[bytes, int, bool]:
    """``pubs`` as one frame for ``codec``: the frame (b"" when empty), how many
    publications it holds, and False when a payload that does not fit the codec ended
    it (what follows would arrive out of order: the subscriber is closed after it).

    A publication the codec fails on (a server-side bug, such as a hook's tag that is
    not a string) is logged and left out; the rest of the turn still goes."""
    items: list[bytes] = []
    fits = True
    for pub in pubs:
        try:
            item = push_item(codec, channel, pub)
        except Exception:
            _log.exception("publication not encoded", channel=channel, codec=codec.name)
            continue
        if item is None:
            fits = False
            break
        items.append(item)
    return (codec.join(items) if items else b""), len(items), fits


class Flusher:
    """Flushes every session that queued something, once per loop turn."""

    def __init__(self, loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
        """``loop`` gives the running loop (the node's, asked once per turn at most)."""
        self._dirty: list[Session] = []
        self._first: list[Callable[[], None]] = []
        self._scheduled = False
        self._loop = loop

    def mark(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._scheduled:
            self._schedule()

    def first(self, deliver: Callable[[], None]) -> None:
        """Call ``deliver`` at the start of this turn's flush: what it queues goes out
        with the rest."""
        self._first.append(deliver)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self._scheduled = True
        self._loop().call_soon(self.flush)

    def flush(self) -> None:
        # Still "scheduled" while the deliveries run: the sessions they mark are
        # flushed below, in this call, not in one more scheduled for the next turn; and
        # a delivery asked for meanwhile runs here too (it scheduled nothing).
        while self._first:
            first, self._first = self._first, []
            for deliver in first:
                try:
                    deliver()
                except Exception:  # the sessions' own queues still go out
                    _log.exception("delivery failed")
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            try:
                session.flush()
            except Exception:  # one broken session must not stall the others
                _log.exception("flush failed", client=session.client_id)


class Hub:
    """Local subscribers by channel; implements the broker's event handler."""

    def __init__(self, metrics: Metrics, flusher: Flusher) -> None:
        self._channels: dict[str, dict[Session, Subscription]] = {}
        self._turn: dict[str, list[Publication]] = {}
        """Publications received this turn and not yet delivered, by channel."""
        self._metrics = metrics
        self._flusher = flusher

    def add(self, session: Session, sub: Subscription) -> None:
        """Add a subscriber (the node keeps the broker in line with ``subscribers``).
        It gets what is published from now on: the turn's earlier publications go to
        the subscribers they found."""
        self.settle(sub.channel)
        subscribers = self._channels.get(sub.channel)
        if subscribers is None:
            subscribers = self._channels[sub.channel] = {}
        subscribers[session] = sub

    def remove(self, session: Session, channel: str) -> None:
        """Remove a subscriber, after handing it the turn's publications so far; a
        channel left without one is forgotten."""
        subscribers = self._channels.get(channel)
        if subscribers is None:
            return
        self.settle(channel)
        subscribers.pop(session, None)
        if not subscribers:
            del self._channels[channel]

    def subscribers(self, channel: str) -> int:
        return len(self._channels.get(channel, ()))

    def channels(self) -> list[str]:
        return list(self._channels)

    # -------------------------------------------------------- broker event handler

    def on_publication(self, channel: str, pub: Publication) -> None:
        if channel not in self._channels:
            return
        if pub.time:
            self._metrics.delivered(max(0.0, time.time() - pub.time / 1000))
        turn = self._turn.get(channel)
        if turn is not None:
            turn.append(pub)
            return
        if not self._turn:
            self._flusher.first(self.deliver)
        self._turn[channel] = [pub]

    def deliver(self) -> None:
        """Hand every channel's publications of this turn to its subscribers."""
        while self._turn:
            channel = next(iter(self._turn))
            try:
                self.settle(channel)
            except Exception:  # the other channels' turns still go
                _log.exception("delivering a turn failed", channel=channel)

    def settle(self, channel: str) -> None:
        """Hand ``channel``'s publications of this turn to its subscribers now: before
        a change that must come after them."""
        pubs = self._turn.pop(channel, None)
        if pubs is None:
            return
        subscribers = self._channels.get(channel)
        if not subscribers:
            return
        # Once per subscriber: most share one codec, so it is compared by identity and
        # the dict is asked only when it changes. The table is walked as it is: a close
        # here releases its channels on a later turn (Node._in_background).
        frames: dict[Codec, tuple[bytes, int, bool]] = {}
        last: Codec | None = None
        frame, count, fits = b"", 0, True
        for session, sub in subscribers.items():
            if sub.pending is not None:
                sub.pending.extend(pubs)
                continue
            codec = session.codec
            if codec is not last:
                framed = frames.get(codec)
                if framed is None:
                    framed = frames[codec] = frame_of(codec, channel, pubs)
                frame, count, fits = framed
                last = codec
            if count:
                session.push(frame, count)
            if not fits:
                session.close(codes.INAPPROPRIATE_PROTOCOL)

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
        self.settle(channel)
        encoded: dict[Codec, bytes] = {}
        for session, sub in subscribers.items():
            if not sub.join_leave or sub.pending is not None:
                continue
            item = encoded.get(session.codec)
            if item is None:
                item = encoded[session.codec] = session.codec.encode(reply)
            session.push(item)
