"""Server-side subscriptions: channels the server subscribed the client to by itself.

The server subscribes a connection to the channels of its credentials (a token's
``channels`` claim, the connect hook's ``Credentials.channels``) and lists them in the
connect result; it may add one later with a ``subscribe`` push and end one with an
``unsubscribe`` push. The application made no ``Subscription`` for them, so their
events go to callbacks on the ``Client`` (``on_server_publication``, ...), each event
naming its channel.

Each one keeps its stream position like a client-side subscription does. The next
connect asks the server to recover every recoverable one from there
(``ConnectRequest.subs``); the connect result carries what was missed, and it is
delivered before anything newer, without duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hubbub.client.callbacks import Callbacks, Runner
from hubbub.client.events import (
    ClientInfo,
    JoinEvent,
    LeaveEvent,
    Position,
    PublicationEvent,
    SubscribedEvent,
    UnsubscribedEvent,
)
from hubbub.protocol.codes import UnsubscribeCode
from hubbub.protocol.messages import Publication, Push, SubscribeRequest, SubscribeResult

NOT_RESUBSCRIBED = "not resubscribed by the server"
"""Reason of the ``UnsubscribedEvent`` for a channel missing from a later connect result."""


@dataclass(slots=True)
class _Held:
    """What the client knows of one server-side subscription."""

    recoverable: bool
    """The server keeps a position: the next connect asks it to recover from there."""
    positioned: bool
    offset: int
    epoch: str


class ServerSubscriptions:
    """The server-side subscriptions of one client, and the callbacks for their events."""

    def __init__(self, runner: Runner) -> None:
        self._held: dict[str, _Held] = {}
        self.on_publication = Callbacks[PublicationEvent](runner)
        self.on_join = Callbacks[JoinEvent](runner)
        self.on_leave = Callbacks[LeaveEvent](runner)
        self.on_subscribed = Callbacks[SubscribedEvent](runner)
        self.on_unsubscribed = Callbacks[UnsubscribedEvent](runner)

    def __contains__(self, channel: str) -> bool:
        return channel in self._held

    def positions(self) -> dict[str, Position]:
        """Where each one is: the last delivered publication (or the stream's top)."""
        return {channel: Position(held.offset, held.epoch) for channel, held in self._held.items()}

    def recovery_requests(self) -> dict[str, SubscribeRequest]:
        """``ConnectRequest.subs``: recover every recoverable one from its position."""
        return {
            channel: SubscribeRequest(recover=True, offset=held.offset, epoch=held.epoch)
            for channel, held in self._held.items()
            if held.recoverable
        }

    # ------------------------------------------------------------ connect result

    def connected(self, results: Mapping[str, SubscribeResult]) -> None:
        """Apply a connect result's ``subs``: what the server subscribed us to now."""
        for channel, result in results.items():
            self._subscribed(channel, result)
        for channel in [channel for channel in self._held if channel not in results]:
            del self._held[channel]
            code = int(UnsubscribeCode.SERVER)
            self.on_unsubscribed.emit(UnsubscribedEvent(channel, code, NOT_RESUBSCRIBED))

    def _subscribed(self, channel: str, result: SubscribeResult) -> None:
        # The result's publications are deduplicated against where we were, not against
        # its offset: a Centrifuge server puts the stream's top there (the offset of the
        # last missed publication), hubbub the position they follow.
        before = self._held.get(channel)
        same_stream = before is not None and before.epoch == result.epoch
        offset = before.offset if before is not None and same_stream else 0
        held = _Held(result.recoverable, result.positioned, offset, result.epoch)
        self._held[channel] = held
        self.on_subscribed.emit(SubscribedEvent.of(channel, result))
        for pub in result.publications:
            self._deliver(channel, held, pub)  # moves held.offset on
        held.offset = max(held.offset, result.offset)

    # --------------------------------------------------------------------- pushes

    def on_push(self, push: Push) -> None:
        """A push for a channel that no client-side subscription holds."""
        channel = push.channel
        if push.subscribe is not None:
            added = push.subscribe
            self._held[channel] = _Held(
                added.recoverable, added.positioned, added.offset, added.epoch
            )
            self.on_subscribed.emit(SubscribedEvent.of(channel, added))
            return
        held = self._held.get(channel)
        if held is None:
            return  # a late push for a channel that ended: nobody wants it
        if push.pub is not None:
            self._deliver(channel, held, push.pub)
        elif push.join is not None:
            self.on_join.emit(JoinEvent(channel, ClientInfo.of(push.join.info)))
        elif push.leave is not None:
            self.on_leave.emit(LeaveEvent(channel, ClientInfo.of(push.leave.info)))
        elif push.unsubscribe is not None:
            del self._held[channel]
            ended = push.unsubscribe
            self.on_unsubscribed.emit(UnsubscribedEvent(channel, ended.code, ended.reason))

    def follow(self, push: Push) -> None:
        """Keep the position of a channel a client-side subscription also holds, silently.

        The server holds one subscription per channel and connection, so the
        ``Subscription`` gets the events; this only keeps the recovery position right.
        """
        held = self._held.get(push.channel)
        if held is None:
            return
        if push.pub is not None and push.pub.offset:
            held.offset = max(held.offset, push.pub.offset)
        elif push.unsubscribe is not None:
            del self._held[push.channel]

    def _deliver(self, channel: str, held: _Held, pub: Publication) -> None:
        if pub.offset:
            if held.recoverable and pub.offset <= held.offset:
                return  # delivered already (a recovery overlapping the live stream)
            held.offset = pub.offset
        self.on_publication.emit(PublicationEvent.of(channel, pub))

    # ------------------------------------------------------------------- endings

    def forget_positions(self) -> None:
        """The server says our state is stale: the next connect recovers nothing."""
        for held in self._held.values():
            held.recoverable = False
            held.offset, held.epoch = 0, ""

    def end(self, code: int, reason: str) -> None:
        """The client closed or gave up: every one ends and is forgotten."""
        held, self._held = self._held, {}
        for channel in held:
            self.on_unsubscribed.emit(UnsubscribedEvent(channel, code, reason))
