"""Error, unsubscribe and disconnect codes of the Centrifuge client protocol v2.

The numbers and messages are the ones on the public "client protocol codes" page;
SDKs decide what to do from them (reconnect or not), so they are wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes carried in ``Reply.error``."""

    INTERNAL = 100
    UNAUTHORIZED = 101
    UNKNOWN_CHANNEL = 102
    PERMISSION_DENIED = 103
    METHOD_NOT_FOUND = 104
    ALREADY_SUBSCRIBED = 105
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    NOT_AVAILABLE = 108
    TOKEN_EXPIRED = 109
    EXPIRED = 110
    TOO_MANY_REQUESTS = 111
    UNRECOVERABLE_POSITION = 112


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.INTERNAL: "internal server error",
    ErrorCode.UNAUTHORIZED: "unauthorized",
    ErrorCode.UNKNOWN_CHANNEL: "unknown channel",
    ErrorCode.PERMISSION_DENIED: "permission denied",
    ErrorCode.METHOD_NOT_FOUND: "method not found",
    ErrorCode.ALREADY_SUBSCRIBED: "already subscribed",
    ErrorCode.LIMIT_EXCEEDED: "limit exceeded",
    ErrorCode.BAD_REQUEST: "bad request",
    ErrorCode.NOT_AVAILABLE: "not available",
    ErrorCode.TOKEN_EXPIRED: "token expired",
    ErrorCode.EXPIRED: "expired",
    ErrorCode.TOO_MANY_REQUESTS: "too many requests",
    ErrorCode.UNRECOVERABLE_POSITION: "unrecoverable position",
}

TEMPORARY_ERRORS = frozenset({ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS})


class UnsubscribeCode(IntEnum):
    """Codes of the Unsubscribe push; 2500 and above tell the SDK to resubscribe."""

    SERVER = 2000
    INSUFFICIENT_STATE = 2500
    EXPIRED = 2501
    STATE_INVALIDATED = 2502


UNSUBSCRIBE_REASONS: dict[UnsubscribeCode, str] = {
    UnsubscribeCode.SERVER: "server unsubscribe",
    UnsubscribeCode.INSUFFICIENT_STATE: "insufficient state",
    UnsubscribeCode.EXPIRED: "subscription expired",
    UnsubscribeCode.STATE_INVALIDATED: "state invalidated",
}


_TOO_BIG = 1009
"""The WebSocket close code for a message over the size limit."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A reason to close a connection: the code decides whether the SDK reconnects."""

    code: int
    reason: str

    @property
    def reconnect(self) -> bool:
        """3000-3499 and 4000-4499 ask the client to come back; 3500-3999, 4500-4999 do
        not, nor 1009 (message too big: the same message would be refused again)."""
        code = self.code
        return not (3500 <= code < 4000 or 4500 <= code < 5000 or code == _TOO_BIG)


class DisconnectCode(IntEnum):
    """Server disconnect codes, sent as the WebSocket close code."""

    CONNECTION_CLOSED = 3000
    SHUTDOWN = 3001
    INTERNAL = 3004
    CONNECTION_EXPIRED = 3005
    SUBSCRIPTION_EXPIRED = 3006
    SLOW = 3008
    WRITE_ERROR = 3009
    INSUFFICIENT_STATE = 3010
    FORCE_RECONNECT = 3011
    NO_PONG = 3012
    TOO_MANY_REQUESTS = 3013
    STATE_INVALIDATED = 3014
    INVALID_TOKEN = 3500
    BAD_REQUEST = 3501
    STALE = 3502
    FORCE_DISCONNECT = 3503
    CONNECTION_LIMIT = 3504
    CHANNEL_LIMIT = 3505
    INAPPROPRIATE_PROTOCOL = 3506
    PERMISSION_DENIED = 3507
    NOT_AVAILABLE = 3508
    TOO_MANY_ERRORS = 3509


def _disconnect(code: DisconnectCode, reason: str) -> Disconnect:
    return Disconnect(int(code), reason)


# Reasons are short plain text (a close frame holds at most 123 bytes) and never
# valid JSON, because centrifuge-js first tries to parse a reason as legacy advice.
SHUTDOWN = _disconnect(DisconnectCode.SHUTDOWN, "shutdown, reconnect")
INTERNAL = _disconnect(DisconnectCode.INTERNAL, "internal server error")
CONNECTION_EXPIRED = _disconnect(DisconnectCode.CONNECTION_EXPIRED, "connection expired")
SLOW = _disconnect(DisconnectCode.SLOW, "slow")
WRITE_ERROR = _disconnect(DisconnectCode.WRITE_ERROR, "write error")
INSUFFICIENT_STATE = _disconnect(DisconnectCode.INSUFFICIENT_STATE, "insufficient state")
FORCE_RECONNECT = _disconnect(DisconnectCode.FORCE_RECONNECT, "force reconnect")
NO_PONG = _disconnect(DisconnectCode.NO_PONG, "no pong")
TOO_MANY_REQUESTS = _disconnect(DisconnectCode.TOO_MANY_REQUESTS, "too many requests")
INVALID_TOKEN = _disconnect(DisconnectCode.INVALID_TOKEN, "invalid token")
BAD_REQUEST = _disconnect(DisconnectCode.BAD_REQUEST, "bad request")
STALE = _disconnect(DisconnectCode.STALE, "stale")
FORCE_DISCONNECT = _disconnect(DisconnectCode.FORCE_DISCONNECT, "force disconnect")
CONNECTION_LIMIT = _disconnect(DisconnectCode.CONNECTION_LIMIT, "connection limit")
CHANNEL_LIMIT = _disconnect(DisconnectCode.CHANNEL_LIMIT, "channel limit")
INAPPROPRIATE_PROTOCOL = _disconnect(
    DisconnectCode.INAPPROPRIATE_PROTOCOL, "inappropriate protocol"
)
PERMISSION_DENIED = _disconnect(DisconnectCode.PERMISSION_DENIED, "permission denied")
NOT_AVAILABLE = _disconnect(DisconnectCode.NOT_AVAILABLE, "not available")
# Not in the Centrifuge list: 1009 is the WebSocket close code for an oversized message,
# which is what SDKs already understand; terminal, as a resend would be as big.
MESSAGE_TOO_BIG = Disconnect(_TOO_BIG, "message too big")
# RFC 6455's code for frames that break the WebSocket protocol (e.g. §5.4 fragmentation).
PROTOCOL_ERROR = Disconnect(1002, "protocol error")
