"""What the client hands to the application: events, results and payloads.

Payloads stay ``bytes`` as they came (JSON text on JSON connections, whatever the
publisher sent on binary ones); ``json()`` decodes them when they are JSON. The wire
structs of :mod:`hubbub.protocol.messages` never leak out: they hold ``msgspec.Raw``
and zero-value conventions an application should not have to know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hubbub.codecs.base import Codec
from hubbub.codecs.json import is_json
from hubbub.protocol import messages


def encode_payload(data: object, codec: Codec) -> msgspec.Raw:
    """``data`` as it goes on the wire: bytes as they are, anything else as JSON.

    Raises:
        ValueError: bytes that are not JSON, for a JSON connection (which embeds
            payloads as JSON values and cannot carry anything else).
    """
    if isinstance(data, bytes | bytearray | memoryview):
        payload = bytes(data)
        if not codec.binary and payload and not is_json(payload):
            raise ValueError("a JSON connection carries JSON payloads only; these bytes are not")
    else:
        payload = msgspec.json.encode(data)
    return messages.raw(payload)


def _json(data: bytes) -> Any:
    return msgspec.json.decode(data) if data else None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is behind a publication, a join or a presence entry."""

    user: str
    client: str
    conn_info: bytes = b""
    chan_info: bytes = b""

    @classmethod
    def of(cls, info: messages.ClientInfo) -> ClientInfo:
        return cls(info.user, info.client, bytes(info.conn_info), bytes(info.chan_info))


@dataclass(frozen=True, slots=True)
class PublicationEvent:
    """A message published in a channel."""

    channel: str
    data: bytes
    offset: int = 0
    """Position in the channel's stream (0 when the channel keeps no history)."""
    info: ClientInfo | None = None
    """The publisher, when a client published it."""
    tags: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The payload decoded as JSON (None when empty)."""
        return _json(self.data)

    @classmethod
    def of(cls, channel: str, pub: messages.Publication) -> PublicationEvent:
        info = ClientInfo.of(pub.info) if pub.info is not None else None
        return cls(channel, bytes(pub.data), pub.offset, info, dict(pub.tags))


@dataclass(frozen=True, slots=True)
class JoinEvent:
    """A client subscribed to the channel."""

    channel: str
    info: ClientInfo


@dataclass(frozen=True, slots=True)
class LeaveEvent:
    """A client left the channel."""

    channel: str
    info: ClientInfo


@dataclass(frozen=True, slots=True)
class SubscribedEvent:
    """The server accepted a subscribe (the first or a resubscribe), or subscribed us itself."""

    channel: str
    recoverable: bool
    positioned: bool
    was_recovering: bool
    """This subscribe asked to recover what was missed since the last one."""
    recovered: bool
    """Everything missed was delivered (before any newer publication)."""
    offset: int
    epoch: str
    data: bytes = b""

    @property
    def gap(self) -> bool:
        """Publications were missed and could not be recovered: reload the state."""
        return self.was_recovering and not self.recovered

    @classmethod
    def of(
        cls, channel: str, result: messages.SubscribeResult | messages.Subscribe
    ) -> SubscribedEvent:
        """The event of a subscribe result (a reply, or a connect result's ``subs``), or
        of a server's Subscribe push: a new subscription, nothing recovered."""
        if isinstance(result, messages.SubscribeResult):
            recovering, recovered = result.was_recovering, result.recovered
        else:
            recovering = recovered = False
        return cls(
            channel=channel,
            recoverable=result.recoverable,
            positioned=result.positioned,
            was_recovering=recovering,
            recovered=recovered,
            offset=result.offset,
            epoch=result.epoch,
            data=bytes(result.data),
        )


@dataclass(frozen=True, slots=True)
class UnsubscribedEvent:
    """The subscription ended: by ``unsubscribe()``, by the server or by the client closing."""

    channel: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something failed that no call of the application is waiting for."""

    channel: str
    """The subscription's channel; "" for the client itself."""
    error: BaseException


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """An asynchronous message the server sent to this client (a ``message`` push)."""

    data: bytes

    def json(self) -> Any:
        return _json(self.data)


SubscriptionEvent = (
    PublicationEvent | JoinEvent | LeaveEvent | SubscribedEvent | UnsubscribedEvent | ErrorEvent
)
"""Everything ``Subscription.events()`` yields."""


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a channel's stream: offsets only compare within one epoch."""

    offset: int = 0
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class PresenceStats:
    num_clients: int
    num_users: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Publications read from a channel's history, and the stream's current top."""

    publications: list[PublicationEvent]
    offset: int
    epoch: str
