"""Every state of the client and of its subscriptions, and every way between them.

Everything that moves a ``Client`` or a ``Subscription`` from one state to another
lives here, as data (the approach of h11's ``_state.py``): ``CLIENT_TRANSITIONS`` and
``SUBSCRIPTION_TRANSITIONS`` map (state, trigger) to the next state, and a
``StateMachine`` refuses anything missing from its table. Each transition, including
one that keeps the state (a failed attempt, a retry), emits a ``Transition`` event to
the machine's listeners, so an application can observe all of them.

Client::

    IDLE ──connect──▶ CONNECTING ──connected──▶ READY ──lost──▶ CONNECTING
                      │  ▲  │ attempt failed (back-off, then again)
                      │  └──┘
                      ├──give up (max_retries failures in a row)──▶ BROKEN ──connect──▶ CONNECTING
                      └──terminal (server said no for good)──▶ CLOSED ──connect──▶ CONNECTING
    READY ──terminal──▶ CLOSED;  any state ──disconnect()──▶ CLOSED

Subscription::

    UNSUBSCRIBED ──subscribe──▶ SUBSCRIBING ──subscribed──▶ SUBSCRIBED
    SUBSCRIBED ──interrupted (connection lost, server asks to resubscribe)──▶ SUBSCRIBING
    SUBSCRIBING/SUBSCRIBED ──unsubscribe() or ended (server unsubscribe, refusal,
                             client closed)──▶ UNSUBSCRIBED
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Generic, TypeVar


class ClientState(Enum):
    IDLE = "idle"
    """Created; ``connect()`` not called yet."""
    CONNECTING = "connecting"
    """Opening a connection, or waiting out a back-off before the next attempt."""
    READY = "ready"
    """Connected: commands go out, publications come in."""
    BROKEN = "broken"
    """Gave up after ``max_retries`` failed attempts in a row; ``connect()`` starts over."""
    CLOSED = "closed"
    """``disconnect()`` was called, or the server closed with a terminal code."""


class ClientTrigger(Enum):
    CONNECT = "connect"
    """``connect()`` was called."""
    CONNECTED = "connected"
    """The server accepted the connect command."""
    ATTEMPT_FAILED = "attempt failed"
    """A connect attempt failed; another follows after a back-off delay."""
    LOST = "lost"
    """A ready connection ended with a code that allows reconnecting."""
    GIVE_UP = "give up"
    """``max_retries`` attempts failed in a row."""
    TERMINAL = "terminal"
    """The server refused the connect or closed the connection with a terminal code."""
    DISCONNECT = "disconnect"
    """``disconnect()`` was called."""


class SubscriptionState(Enum):
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIBING = "subscribing"
    """Waiting for the server's answer, or for the client to be ready again."""
    SUBSCRIBED = "subscribed"


class SubscriptionTrigger(Enum):
    SUBSCRIBE = "subscribe"
    """``subscribe()`` was called."""
    SUBSCRIBED = "subscribed"
    """The server accepted the subscribe command."""
    INTERRUPTED = "interrupted"
    """It must subscribe again: the connection was lost, the server asked to resubscribe
    (unsubscribe code >= 2500) or refused with a temporary error."""
    UNSUBSCRIBE = "unsubscribe"
    """``unsubscribe()`` was called."""
    ENDED = "ended"
    """The server unsubscribed it (code < 2500) or refused it, or the client closed."""


class LocalCode(IntEnum):
    """The client's own codes, below 100 so they never collide with the server's."""

    DISCONNECT_CALLED = 0
    TRANSPORT_CLOSED = 1
    NO_PING = 2
    SUBSCRIBE_TIMEOUT = 3
    UNSUBSCRIBE_ERROR = 4
    BAD_PROTOCOL = 5
    CONNECT_FAILED = 6
    RETRIES_EXHAUSTED = 7
    REQUEST_TIMEOUT = 8


LOCAL_REASONS: dict[LocalCode, str] = {
    LocalCode.DISCONNECT_CALLED: "disconnect called",
    LocalCode.TRANSPORT_CLOSED: "transport closed",
    LocalCode.NO_PING: "no ping",
    LocalCode.SUBSCRIBE_TIMEOUT: "subscribe timeout",
    LocalCode.UNSUBSCRIBE_ERROR: "unsubscribe error",
    LocalCode.BAD_PROTOCOL: "bad protocol",
    LocalCode.CONNECT_FAILED: "connect failed",
    LocalCode.RETRIES_EXHAUSTED: "reconnect attempts exhausted",
    LocalCode.REQUEST_TIMEOUT: "request timeout",
}

_C = ClientState
_CT = ClientTrigger

CLIENT_TRANSITIONS: Mapping[tuple[ClientState, ClientTrigger], ClientState] = {
    (_C.IDLE, _CT.CONNECT): _C.CONNECTING,
    (_C.IDLE, _CT.DISCONNECT): _C.CLOSED,
    (_C.CONNECTING, _CT.CONNECTED): _C.READY,
    (_C.CONNECTING, _CT.ATTEMPT_FAILED): _C.CONNECTING,
    (_C.CONNECTING, _CT.GIVE_UP): _C.BROKEN,
    (_C.CONNECTING, _CT.TERMINAL): _C.CLOSED,
    (_C.CONNECTING, _CT.DISCONNECT): _C.CLOSED,
    (_C.READY, _CT.LOST): _C.CONNECTING,
    (_C.READY, _CT.TERMINAL): _C.CLOSED,
    (_C.READY, _CT.DISCONNECT): _C.CLOSED,
    (_C.BROKEN, _CT.CONNECT): _C.CONNECTING,
    (_C.BROKEN, _CT.DISCONNECT): _C.CLOSED,
    (_C.CLOSED, _CT.CONNECT): _C.CONNECTING,
}

_S = SubscriptionState
_ST = SubscriptionTrigger

SUBSCRIPTION_TRANSITIONS: Mapping[
    tuple[SubscriptionState, SubscriptionTrigger], SubscriptionState
] = {
    (_S.UNSUBSCRIBED, _ST.SUBSCRIBE): _S.SUBSCRIBING,
    (_S.SUBSCRIBING, _ST.SUBSCRIBED): _S.SUBSCRIBED,
    (_S.SUBSCRIBING, _ST.INTERRUPTED): _S.SUBSCRIBING,
    (_S.SUBSCRIBING, _ST.UNSUBSCRIBE): _S.UNSUBSCRIBED,
    (_S.SUBSCRIBING, _ST.ENDED): _S.UNSUBSCRIBED,
    (_S.SUBSCRIBED, _ST.INTERRUPTED): _S.SUBSCRIBING,
    (_S.SUBSCRIBED, _ST.UNSUBSCRIBE): _S.UNSUBSCRIBED,
    (_S.SUBSCRIBED, _ST.ENDED): _S.UNSUBSCRIBED,
}

S = TypeVar("S", bound=Enum)
T = TypeVar("T", bound=Enum)


@dataclass(frozen=True, slots=True)
class Transition(Generic[S, T]):
    """One step of a state machine, as its listeners see it."""

    old: S
    new: S
    trigger: T
    code: int = 0
    """Why, as a protocol code (server) or a ``LocalCode``; 0 when nothing to say."""
    reason: str = ""
    error: BaseException | None = None
    """The failure behind the step, if any (a failed attempt, a refusal)."""


ClientStateChanged = Transition[ClientState, ClientTrigger]
SubscriptionStateChanged = Transition[SubscriptionState, SubscriptionTrigger]


class InvalidTransition(RuntimeError):
    """A trigger that the table does not allow in the current state: a bug in the client."""


class StateMachine(Generic[S, T]):
    """A state, a transition table and the listeners told about every step."""

    def __init__(self, table: Mapping[tuple[S, T], S], initial: S) -> None:
        self._table = table
        self.state = initial
        self._listeners: list[Callable[[Transition[S, T]], None]] = []

    def listen(self, listener: Callable[[Transition[S, T]], None]) -> None:
        """Call ``listener`` with every transition, in the order they happen."""
        self._listeners.append(listener)

    def can(self, trigger: T) -> bool:
        """True when ``trigger`` is allowed in the current state."""
        return (self.state, trigger) in self._table

    def fire(
        self, trigger: T, *, code: int = 0, reason: str = "", error: BaseException | None = None
    ) -> Transition[S, T]:
        """Move by ``trigger`` and tell the listeners.

        Raises:
            InvalidTransition: the table has no entry for (state, trigger).
        """
        target = self._table.get((self.state, trigger))
        if target is None:
            raise InvalidTransition(f"{trigger} is not allowed in {self.state}")
        event = Transition(self.state, target, trigger, code, reason, error)
        self.state = target
        for listener in list(self._listeners):
            listener(event)
        return event
