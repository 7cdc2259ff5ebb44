"""The messages of the Centrifuge client protocol v2 as typed structs.

Field names are the proto field names: the JSON codec writes them as they are, the
Protobuf codec maps them to the generated classes by name. ``bytes`` fields of the
schema (``data``, ``conn_info``, ``chan_info``) are ``msgspec.Raw``: on JSON
connections they are embedded JSON taken and written verbatim, on Protobuf
connections raw bytes. Zero values are left out of the JSON output, except the
fields the schema says are always written (those have no default here).
"""

from __future__ import annotations

from msgspec import Raw, Struct, field

EMPTY = Raw()


def raw(data: bytes) -> Raw:
    """Wrap a payload; empty bytes become the shared EMPTY, which encoders leave out."""
    return Raw(data) if data else EMPTY


class _Message(Struct, omit_defaults=True, kw_only=True):
    """Base: zero values are omitted when encoded."""


# ----------------------------------------------------------------------- shared parts


class StreamPosition(_Message):
    offset: int = 0
    epoch: str = ""


class ClientInfo(_Message):
    user: str
    client: str
    conn_info: Raw = EMPTY
    chan_info: Raw = EMPTY


class Publication(_Message):
    data: Raw = EMPTY
    info: ClientInfo | None = None
    offset: int = 0
    tags: dict[str, str] = {}
    delta: bool = False
    time: int = 0
    channel: str = ""
    key: str = ""
    removed: bool = False
    score: int = 0
    epoch: str = ""
    version: int = 0


class Error(_Message):
    code: int
    message: str
    temporary: bool = False


# ----------------------------------------------------------------------------- requests


class SubscribeRequest(_Message):
    channel: str = ""
    token: str = ""
    recover: bool = False
    epoch: str = ""
    offset: int = 0
    data: Raw = EMPTY
    positioned: bool = False
    recoverable: bool = False
    join_leave: bool = False
    delta: str = ""
    flag: int = 0
    type: int = 0


class ConnectRequest(_Message):
    token: str = ""
    data: Raw = EMPTY
    subs: dict[str, SubscribeRequest] = {}
    name: str = ""
    version: str = ""
    headers: dict[str, str] = {}
    flag: int = 0
    # "dict" on the wire; renamed so it does not shadow the builtin in annotations.
    dictionary: str = field(default="", name="dict")
    profile: str = ""


class UnsubscribeRequest(_Message):
    channel: str = ""


class PublishRequest(_Message):
    channel: str = ""
    data: Raw = EMPTY


class PresenceRequest(_Message):
    channel: str = ""


class PresenceStatsRequest(_Message):
    channel: str = ""


class HistoryRequest(_Message):
    channel: str = ""
    limit: int = 0
    since: StreamPosition | None = None
    reverse: bool = False


class PingRequest(_Message):
    pass


class SendRequest(_Message):
    data: Raw = EMPTY


class RPCRequest(_Message):
    data: Raw = EMPTY
    method: str = ""


class RefreshRequest(_Message):
    token: str = ""


class SubRefreshRequest(_Message):
    channel: str = ""
    token: str = ""


class Command(_Message):
    """Client → server. ``id`` > 0 expects a reply; an empty command is a pong."""

    id: int = 0
    connect: ConnectRequest | None = None
    subscribe: SubscribeRequest | None = None
    unsubscribe: UnsubscribeRequest | None = None
    publish: PublishRequest | None = None
    presence: PresenceRequest | None = None
    presence_stats: PresenceStatsRequest | None = None
    history: HistoryRequest | None = None
    ping: PingRequest | None = None
    send: SendRequest | None = None
    rpc: RPCRequest | None = None
    refresh: RefreshRequest | None = None
    sub_refresh: SubRefreshRequest | None = None


# The request fields of Command in the order the server looks for them.
REQUEST_FIELDS: tuple[str, ...] = (
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "rpc",
    "send",
    "refresh",
    "sub_refresh",
    "ping",
)

# ------------------------------------------------------------------------------ results


class SubscribeResult(_Message):
    expires: bool = False
    ttl: int = 0
    recoverable: bool = False
    epoch: str = ""
    publications: list[Publication] = []
    recovered: bool = False
    offset: int = 0
    positioned: bool = False
    data: Raw = EMPTY
    was_recovering: bool = False
    delta: bool = False
    id: int = 0
    type: int = 0


class ConnectResult(_Message):
    client: str
    version: str = ""
    expires: bool = False
    ttl: int = 0
    data: Raw = EMPTY
    subs: dict[str, SubscribeResult] = {}
    ping: int = 0
    pong: bool = False
    session: str = ""
    node: str = ""
    time: int = 0


class UnsubscribeResult(_Message):
    pass


class PublishResult(_Message):
    """Empty in the schema; hubbub's own clients read ``offset`` (unknown to others)."""

    offset: int = 0
    epoch: str = ""


class PresenceResult(_Message):
    presence: dict[str, ClientInfo]


class PresenceStatsResult(_Message):
    num_clients: int
    num_users: int


class HistoryResult(_Message):
    publications: list[Publication]
    epoch: str
    offset: int


class PingResult(_Message):
    pass


class RPCResult(_Message):
    data: Raw = EMPTY


class RefreshResult(_Message):
    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0


class SubRefreshResult(_Message):
    expires: bool = False
    ttl: int = 0


# -------------------------------------------------------------------------------- pushes


class Join(_Message):
    info: ClientInfo


class Leave(_Message):
    info: ClientInfo


class Unsubscribe(_Message):
    code: int
    reason: str


class Subscribe(_Message):
    recoverable: bool = False
    epoch: str = ""
    offset: int = 0
    positioned: bool = False
    data: Raw = EMPTY


class Message(_Message):
    data: Raw = EMPTY


class Disconnect(_Message):
    code: int
    reason: str
    reconnect: bool = False


class Push(_Message):
    """Unsolicited server → client message, carried in a Reply with id 0."""

    channel: str = ""
    pub: Publication | None = None
    join: Join | None = None
    leave: Leave | None = None
    unsubscribe: Unsubscribe | None = None
    message: Message | None = None
    subscribe: Subscribe | None = None
    disconnect: Disconnect | None = None


class Reply(_Message):
    """Server → client: the answer to command ``id``, a push (id 0), or a ping (empty)."""

    id: int = 0
    error: Error | None = None
    push: Push | None = None
    connect: ConnectResult | None = None
    subscribe: SubscribeResult | None = None
    unsubscribe: UnsubscribeResult | None = None
    publish: PublishResult | None = None
    presence: PresenceResult | None = None
    presence_stats: PresenceStatsResult | None = None
    history: HistoryResult | None = None
    ping: PingResult | None = None
    rpc: RPCResult | None = None
    refresh: RefreshResult | None = None
    sub_refresh: SubRefreshResult | None = None


PING = Reply()
"""The server's ping: a reply with every field empty (``{}`` / ``0x00``)."""

PONG = Command()
"""The client's pong: an empty command."""


def request_of(command: Command) -> tuple[str, Struct] | None:
    """Return the first request set in ``command`` as (field name, request), or None.

    Written out in ``REQUEST_FIELDS`` order (a test holds them together): a plain
    attribute read per field instead of a ``getattr`` call, for every command."""
    c = command
    if c.connect is not None:
        return "connect", c.connect
    if c.subscribe is not None:
        return "subscribe", c.subscribe
    if c.unsubscribe is not None:
        return "unsubscribe", c.unsubscribe
    if c.publish is not None:
        return "publish", c.publish
    if c.presence is not None:
        return "presence", c.presence
    if c.presence_stats is not None:
        return "presence_stats", c.presence_stats
    if c.history is not None:
        return "history", c.history
    if c.rpc is not None:
        return "rpc", c.rpc
    if c.send is not None:
        return "send", c.send
    if c.refresh is not None:
        return "refresh", c.refresh
    if c.sub_refresh is not None:
        return "sub_refresh", c.sub_refresh
    if c.ping is not None:
        return "ping", c.ping
    return None
