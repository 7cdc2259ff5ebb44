"""Hooks through which an embedding application decides who may do what.

Each hook is an async callable. It returns an ``Allow`` (optionally carrying data
back to the client) or a ``Deny`` with a protocol error code; a connect hook may also
end the connection with a ``Disconnect``. Without a hook, the channel options of the
config decide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hubbub.protocol.codes import ERROR_MESSAGES, Disconnect, ErrorCode
from hubbub.protocol.messages import (
    ConnectRequest,
    PublishRequest,
    RefreshRequest,
    SubRefreshRequest,
    SubscribeRequest,
)


@dataclass(frozen=True, slots=True)
class Allow:
    """Go ahead; ``data`` is returned to the client (connect/subscribe result)."""

    data: bytes = b""
    info: bytes = b""
    """conn_info for connect, chan_info for subscribe: shown in presence and join/leave."""
    expire_at: float = 0.0
    """Unix time when the credentials run out (0: never); the client must refresh before."""


@dataclass(frozen=True, slots=True)
class Credentials(Allow):
    """A connect is allowed as ``user`` (``""`` for anonymous)."""

    user: str = ""
    channels: tuple[str, ...] = field(default=())
    """Server-side subscriptions made at connect."""


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse with error ``code`` (103 permission denied unless said otherwise)."""

    code: int = ErrorCode.PERMISSION_DENIED
    message: str = ""
    temporary: bool = False

    def text(self) -> str:
        if self.message:
            return self.message
        try:
            return ERROR_MESSAGES[ErrorCode(self.code)]
        except ValueError:
            return "error"


@dataclass(frozen=True, slots=True)
class ClientContext:
    """What hooks know about the connection making a request."""

    client_id: str
    user: str
    transport: str
    remote: str


OnConnecting = Callable[[ClientContext, ConnectRequest], Awaitable[Credentials | Deny | Disconnect]]
OnSubscribe = Callable[[ClientContext, str, SubscribeRequest], Awaitable[Allow | Deny]]
OnPublish = Callable[[ClientContext, str, PublishRequest], Awaitable[Allow | Deny]]
OnRefresh = Callable[[ClientContext, RefreshRequest], Awaitable[Credentials | Deny | Disconnect]]
OnSubRefresh = Callable[[ClientContext, str, SubRefreshRequest], Awaitable[Allow | Deny]]
RpcHandler = Callable[[ClientContext, bytes], Awaitable[bytes | Deny]]
OnRpc = Callable[[ClientContext, str, bytes], Awaitable[bytes | Deny]]
OnSend = Callable[[ClientContext, bytes], Awaitable[None]]


@dataclass(slots=True)
class Hooks:
    """The application's hooks; every one optional."""

    on_connecting: OnConnecting | None = None
    on_subscribe: OnSubscribe | None = None
    on_publish: OnPublish | None = None
    on_send: OnSend | None = None
    on_refresh: OnRefresh | None = None
    on_sub_refresh: OnSubRefresh | None = None
    rpc: dict[str, RpcHandler] = field(default_factory=dict)
    """Handlers by method name; ``on_rpc`` gets the methods not found here."""
    on_rpc: OnRpc | None = None
