"""``hubbub.client``: an asyncio client for hubbub and other Centrifuge protocol v2 servers.

    from hubbub.client import Client

    async with Client("ws://127.0.0.1:8000/connection/websocket") as client:
        sub = await client.subscribe("chat:lobby")
        await client.publish("chat:lobby", {"text": "hello"})
        pub = await anext(sub)

Modules, from the bottom up: ``backoff`` (reconnect delays), ``state`` (the transition
tables), ``protocol`` (sans-I/O framing), ``transport`` (WebSocket and TCP),
``connection`` (one live connection), ``subscription``, ``server_subs`` (channels the
server subscribed the client to), ``client``, ``pool``.
Errors are in :mod:`hubbub.errors` (``ClientError`` and its subclasses, ``ReplyError``).

The client logs through the standard ``logging`` module (loggers under
``hubbub.client``), not structlog like the server: a library embedded in someone
else's program must leave the choice of output to that program.
"""

from hubbub.client.backoff import Backoff
from hubbub.client.client import Client
from hubbub.client.events import (
    ClientInfo,
    ErrorEvent,
    HistoryPage,
    JoinEvent,
    LeaveEvent,
    Position,
    PresenceStats,
    PublicationEvent,
    ServerMessage,
    SubscribedEvent,
    SubscriptionEvent,
    UnsubscribedEvent,
)
from hubbub.client.pool import ClientPool, PoolClient
from hubbub.client.state import (
    ClientState,
    ClientStateChanged,
    ClientTrigger,
    LocalCode,
    SubscriptionState,
    SubscriptionStateChanged,
    SubscriptionTrigger,
    Transition,
)
from hubbub.client.subscription import Subscription
from hubbub.errors import (
    ClientBrokenError,
    ClientClosedError,
    ClientError,
    ConnectionLostError,
    ReplyError,
    RequestTimeoutError,
)

__all__ = [
    "Backoff",
    "Client",
    "ClientBrokenError",
    "ClientClosedError",
    "ClientError",
    "ClientInfo",
    "ClientPool",
    "ClientState",
    "ClientStateChanged",
    "ClientTrigger",
    "ConnectionLostError",
    "ErrorEvent",
    "HistoryPage",
    "JoinEvent",
    "LeaveEvent",
    "LocalCode",
    "PoolClient",
    "Position",
    "PresenceStats",
    "PublicationEvent",
    "ReplyError",
    "RequestTimeoutError",
    "ServerMessage",
    "SubscribedEvent",
    "Subscription",
    "SubscriptionEvent",
    "SubscriptionState",
    "SubscriptionStateChanged",
    "SubscriptionTrigger",
    "Transition",
    "UnsubscribedEvent",
]
