"""The server-side connection state machine, as one table.

Everything that moves a connection from one state to another lives here, in
``TRANSITIONS``; the session asks ``next_state`` and acts on the answer. A command
that is not allowed in the current state closes the connection with 3501, as
Centrifuge does (PROTOCOL.md §6).

    AWAITING_CONNECT --connect ok-->     CONNECTED --close--> CLOSED
    AWAITING_CONNECT --connect error-->  UNUSABLE  --close--> CLOSED
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    # Members are singletons compared by identity: hash them in C, not through
    # Enum.__hash__ in Python (the table below is consulted for every command).
    __hash__ = object.__hash__

    AWAITING_CONNECT = "awaiting connect"
    CONNECTING = "connecting"  # connect received; commands behind it wait their turn
    CONNECTED = "connected"
    UNUSABLE = "unusable"  # a connect was refused with an error reply
    CLOSED = "closed"


class Event(Enum):
    __hash__ = object.__hash__

    CONNECT = "connect"  # a connect command arrived
    CONNECT_OK = "connect ok"
    CONNECT_ERROR = "connect error"  # refused with an error reply, not a disconnect
    COMMAND = "command"  # any request other than connect, with id > 0
    SEND = "send"  # fire-and-forget send (no id)
    PONG = "pong"  # an empty command
    CLOSE = "close"


ALLOWED = "allowed"
"""Marker: the event is processed and the state does not change."""

# (state, event) -> next state, or ALLOWED; a missing pair is a protocol violation.
TRANSITIONS: dict[tuple[State, Event], State | str] = {
    (State.AWAITING_CONNECT, Event.CONNECT): State.CONNECTING,
    (State.CONNECTING, Event.CONNECT_OK): State.CONNECTED,
    (State.CONNECTING, Event.CONNECT_ERROR): State.UNUSABLE,
    (State.CONNECTED, Event.COMMAND): ALLOWED,
    (State.CONNECTED, Event.SEND): ALLOWED,
    (State.CONNECTED, Event.PONG): ALLOWED,
}
for _state in State:
    TRANSITIONS[(_state, Event.CLOSE)] = State.CLOSED


def next_state(state: State, event: Event) -> State | None:
    """The state after ``event``, or None when the event is not allowed in ``state``."""
    target = TRANSITIONS.get((state, event))
    if target is None:
        return None
    return state if target == ALLOWED else target  # type: ignore[return-value]
