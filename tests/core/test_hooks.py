"""Tests for hubbub.core.hooks as the handlers apply them, sans I/O.

What each hook's answer does to the reply, the session and the channel: credentials,
refusals, disconnects, allow-with-data, RPC dispatch. Also the subscribe positioning
a client asks for (``positioned`` / ``recoverable``), which the handlers grant from the
namespace's history.
"""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny, Hooks
from hubbub.core.node import Node
from hubbub.protocol import codes
from hubbub.protocol.messages import (
    ConnectRequest,
    Publication,
    PublishRequest,
    StreamPosition,
    SubscribeRequest,
)
from hubbub.protocol.state import State

from .fakes import Client, Gate, connected, drain, pubs_of, turns

ROOM = "chat:room"
CONN_INFO = b'{"name":"Alice"}'
CHAN_INFO = b'{"role":"moderator"}'

# `news:` has no history, `feed:` has history without `recover`; both subscribable
# (CLOSED_NEWS: `news:` that nobody may subscribe to).
NEWS = {"channels.namespaces.news.allow_subscribe": True}
CLOSED_NEWS = {"channels.namespaces.news.allow_subscribe": False}
FEED = {
    "channels.namespaces.feed.allow_subscribe": True,
    "channels.namespaces.feed.history_size": 10,
    "channels.namespaces.feed.history_ttl": "1m",
}


async def top_of(node: Node, channel: str) -> StreamPosition:
    """The stream's current top position."""
    _, top = await node.broker.history(channel, since=None, limit=0, reverse=False)
    return top


def credentials_from_token(hooks: Hooks, **extra: Any) -> list[tuple[ClientContext, Any]]:
    """Install a connect hook: user = token, plus ``extra`` credentials; returns its calls."""
    calls: list[tuple[ClientContext, Any]] = []

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        calls.append((ctx, req))
        return Credentials(user=req.token, **extra)

    hooks.on_connecting = on_connecting
    return calls


async def connected_as(node: Node, user: str) -> Client:
    """A connected client whose token names ``user``; the connect reply taken."""
    client = Client(node)
    reply = await client.connect({"token": user})
    assert reply.connect is not None, reply
    client.conn.take()
    return client


# --------------------------------------------------------------------- on_connecting


async def test_connect_hook_sees_the_request_and_the_connection(hooks: Hooks, node: Node) -> None:
    """on_connecting gets the token, the connect data and the connection's id/transport/remote."""
    calls = credentials_from_token(hooks)
    client = Client(node)
    await client.connect({"token": "alice", "data": {"app": 1}})
    ((ctx, req),) = calls
    assert (req.token, bytes(req.data)) == ("alice", b'{"app":1}')
    assert ctx.client_id == client.session.client_id
    assert (ctx.transport, ctx.remote) == ("test", client.conn.remote)
    assert ctx.user == ""  # not known until the hook has answered


async def test_connect_hook_credentials_set_user_and_result_data(hooks: Hooks, node: Node) -> None:
    """Credentials(user, info, data): the session takes user and conn_info, the reply the data."""
    credentials_from_token(hooks, info=CONN_INFO, data=b'{"welcome":true}')
    client = Client(node)
    reply = await client.connect({"token": "alice"})
    assert reply.connect is not None
    assert bytes(reply.connect.data) == b'{"welcome":true}'
    (message,) = client.conn.messages()
    assert message["connect"]["data"] == {"welcome": True}
    assert (client.session.user, client.session.conn_info) == ("alice", CONN_INFO)
    assert client.session.state is State.CONNECTED


async def test_connect_credentials_show_in_presence_join_and_publication_info(
    hooks: Hooks, node: Node
) -> None:
    """The user and conn_info from Credentials appear in presence, join pushes and pub info."""
    credentials_from_token(hooks, info=CONN_INFO)
    bob = await connected_as(node, "bob")
    await bob.call("subscribe", {"channel": ROOM})
    bob.conn.take()
    alice = await connected_as(node, "alice")
    await alice.call("subscribe", {"channel": ROOM})
    await alice.call("publish", {"channel": ROOM, "data": {"text": "hi"}})
    presence = await alice.call("presence", {"channel": ROOM})
    await turns()

    expected = {"user": "alice", "client": alice.session.client_id, "conn_info": {"name": "Alice"}}
    assert presence.presence is not None
    answer = next(m for m in alice.conn.messages() if m.get("id") == presence.id)
    assert answer["presence"]["presence"][alice.session.client_id] == expected
    pushes = [m["push"] for m in bob.conn.messages() if "push" in m]
    assert pushes[0] == {"channel": ROOM, "join": {"info": expected}}
    assert pushes[1]["pub"]["info"] == expected


async def test_connect_hook_deny_101_then_commands_close_3501(hooks: Hooks, node: Node) -> None:
    """Deny(101) answers 101 unauthorized; the next command closes the connection 3501."""

    async def deny(ctx: ClientContext, req: ConnectRequest) -> Deny:
        return Deny(101)

    hooks.on_connecting = deny
    client = Client(node)
    reply = await client.connect({"token": "forged"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (101, "unauthorized")
    assert client.session.client_id not in node.sessions
    assert not client.conn.closes
    await client.send({"id": 2, "publish": {"channel": ROOM, "data": {}}})
    assert client.conn.closed_with == codes.BAD_REQUEST
    assert [r.id for r in client.conn.replies()] == [1]
    assert (await top_of(node, ROOM)).offset == 0


@pytest.mark.parametrize(
    "disconnect", [codes.INVALID_TOKEN, codes.CONNECTION_LIMIT], ids=["3500", "3504"]
)
async def test_connect_hook_disconnect_closes_with_that_code(
    hooks: Hooks, node: Node, disconnect: codes.Disconnect
) -> None:
    """A Disconnect from on_connecting closes with its code and reason, without a reply."""

    async def refuse(ctx: ClientContext, req: ConnectRequest) -> codes.Disconnect:
        return disconnect

    hooks.on_connecting = refuse
    client = Client(node)
    await client.send({"id": 1, "connect": {"token": "x"}})
    assert client.conn.closes == [disconnect]
    assert client.conn.frames == []
    assert client.session.closed
    assert client.session.client_id not in node.sessions


@pytest.mark.parametrize("settings_overrides", [{"client.allow_anonymous": False}])
async def test_no_connect_hook_and_no_anonymous_is_101_unusable(node: Node) -> None:
    """Without on_connecting and allow_anonymous off, connect is 101 and the session unusable."""
    client = Client(node)
    reply = await client.connect()
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (101, "unauthorized")
    assert client.session.state is State.UNUSABLE


@pytest.mark.parametrize("settings_overrides", [{"client.allow_anonymous": False}])
async def test_connect_hook_decides_even_when_anonymous_is_off(hooks: Hooks, node: Node) -> None:
    """With a connect hook, its Credentials admit the client whatever allow_anonymous says."""
    credentials_from_token(hooks)
    client = Client(node)
    reply = await client.connect({"token": "alice"})
    assert reply.connect is not None
    assert client.session.user == "alice"


# ---------------------------------------------------------------------- on_subscribe


async def test_subscribe_hook_allow_data_and_chan_info(hooks: Hooks, node: Node) -> None:
    """Allow(data, info): the subscribe result carries data, presence and join carry chan_info."""
    calls: list[tuple[str, SubscribeRequest]] = []

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        calls.append((channel, req))
        return Allow(data=b'{"topic":"cats"}', info=CHAN_INFO)

    hooks.on_subscribe = on_subscribe
    watcher = await connected(node)
    await watcher.call("subscribe", {"channel": ROOM})
    watcher.conn.take()
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": ROOM, "data": {"want": "in"}})
    assert reply.subscribe is not None
    assert bytes(reply.subscribe.data) == b'{"topic":"cats"}'
    assert [(c, bytes(r.data)) for c, r in calls][-1] == (ROOM, b'{"want":"in"}')

    me = client.session.client_id
    presence = await node.presence.presence(ROOM)
    assert bytes(presence[me].chan_info) == CHAN_INFO
    await turns()
    (join,) = [r.push.join for r in watcher.conn.replies() if r.push and r.push.join]
    assert join.info.client == me
    assert bytes(join.info.chan_info) == CHAN_INFO


@pytest.mark.parametrize("settings_overrides", [CLOSED_NEWS])
async def test_subscribe_hook_allow_overrides_the_namespace(hooks: Hooks, node: Node) -> None:
    """on_subscribe's Allow admits a subscriber where the namespace alone would say 103."""

    async def allow(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        return Allow()

    client = await connected(node)
    refused = await client.call("subscribe", {"channel": "news:x"})
    assert refused.error is not None and refused.error.code == 103
    hooks.on_subscribe = allow
    reply = await client.call("subscribe", {"channel": "news:x"})
    assert reply.error is None and reply.subscribe is not None
    assert node.hub.subscribers("news:x") == 1


# ------------------------------------------------------------------------ on_publish


async def test_publish_hook_deny_is_the_error_and_nothing_is_published(
    hooks: Hooks, node: Node
) -> None:
    """on_publish Deny(code, message) answers that error; no history, no push to subscribers."""
    seen: list[tuple[str, bytes]] = []

    async def deny(ctx: ClientContext, channel: str, req: PublishRequest) -> Deny:
        seen.append((channel, bytes(req.data)))
        return Deny(4002, "read only")

    hooks.on_publish = deny
    listener = await connected(node)
    await listener.call("subscribe", {"channel": ROOM})
    listener.conn.take()
    client = await connected(node)
    reply = await client.call("publish", {"channel": ROOM, "data": {"t": 1}})
    await turns()
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (4002, "read only")
    assert seen == [(ROOM, b'{"t":1}')]
    assert (await top_of(node, ROOM)).offset == 0
    assert pubs_of(listener.conn.replies(), ROOM) == []


@pytest.mark.parametrize("settings_overrides", [NEWS])
async def test_publish_hook_allow_publishes_where_the_namespace_forbids(
    hooks: Hooks, node: Node
) -> None:
    """on_publish's Allow publishes even though the namespace has allow_publish off."""

    async def allow(ctx: ClientContext, channel: str, req: PublishRequest) -> Allow:
        return Allow()

    hooks.on_publish = allow
    client = await connected(node)
    await client.call("subscribe", {"channel": "news:x"})
    client.conn.take()
    reply = await client.call("publish", {"channel": "news:x", "data": {"t": 1}})
    await turns()
    assert reply.error is None and reply.publish is not None
    pushed = [r.push.pub for r in client.conn.replies() if r.push and r.push.pub]
    assert [bytes(p.data) for p in pushed] == [b'{"t":1}']


# --------------------------------------------------------------------------- on_send


async def test_send_hook_gets_the_payload_and_the_user_and_nothing_is_written(
    hooks: Hooks, node: Node
) -> None:
    """on_send receives the send data and the sender's context; no reply goes back."""
    received: list[tuple[str, str, bytes]] = []

    async def on_send(ctx: ClientContext, data: bytes) -> None:
        received.append((ctx.user, ctx.client_id, data))

    credentials_from_token(hooks)
    hooks.on_send = on_send
    client = await connected_as(node, "alice")
    await client.send({"send": {"data": {"typing": True}}}, {"send": {"data": [1, 2]}})
    me = client.session.client_id
    assert received == [("alice", me, b'{"typing":true}'), ("alice", me, b"[1,2]")]
    assert client.conn.frames == []
    assert not client.conn.closes


# ------------------------------------------------------------------------------ rpc


async def test_rpc_fallback_gets_method_and_data(hooks: Hooks, node: Node) -> None:
    """A method missing from hooks.rpc goes to on_rpc with its name and data; its bytes answer."""
    calls: list[tuple[str, str, bytes]] = []

    async def on_rpc(ctx: ClientContext, method: str, data: bytes) -> bytes:
        calls.append((ctx.client_id, method, data))
        return b'{"ok":true}'

    hooks.on_rpc = on_rpc
    client = await connected(node)
    reply = await client.call("rpc", {"method": "anything", "data": {"x": 1}})
    assert reply.rpc is not None
    assert bytes(reply.rpc.data) == b'{"ok":true}'
    assert calls == [(client.session.client_id, "anything", b'{"x":1}')]


async def test_registered_rpc_handler_wins_over_the_fallback(hooks: Hooks, node: Node) -> None:
    """A method registered with node.rpc runs its handler; on_rpc is not called for it."""
    fallback_methods: list[str] = []

    async def on_rpc(ctx: ClientContext, method: str, data: bytes) -> bytes:
        fallback_methods.append(method)
        return b'"fallback"'

    hooks.on_rpc = on_rpc

    @node.rpc("echo")
    async def echo(ctx: ClientContext, data: bytes) -> bytes:
        return data

    client = await connected(node)
    echoed = await client.call("rpc", {"method": "echo", "data": {"x": 1}})
    other = await client.call("rpc", {"method": "other"})
    assert echoed.rpc is not None and bytes(echoed.rpc.data) == b'{"x":1}'
    assert other.rpc is not None and bytes(other.rpc.data) == b'"fallback"'
    assert fallback_methods == ["other"]


async def test_rpc_handler_deny_is_the_error(node: Node) -> None:
    """An RPC handler returning Deny(code, message) answers that error."""

    @node.rpc("secret")
    async def secret(ctx: ClientContext, data: bytes) -> Deny:
        return Deny(4003, "members only")

    client = await connected(node)
    reply = await client.call("rpc", {"method": "secret"})
    assert reply.rpc is None
    assert reply.error is not None
    assert (reply.error.code, reply.error.message, reply.error.temporary) == (
        4003,
        "members only",
        False,
    )


async def test_rpc_fallback_deny_is_the_error(hooks: Hooks, node: Node) -> None:
    """on_rpc returning Deny(104) answers 104 method not found."""

    async def on_rpc(ctx: ClientContext, method: str, data: bytes) -> Deny:
        return Deny(104)

    hooks.on_rpc = on_rpc
    client = await connected(node)
    reply = await client.call("rpc", {"method": "nope"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (104, "method not found")


async def test_rpc_without_handler_or_fallback_is_104(node: Node) -> None:
    """No handler for the method and no on_rpc: 104 method not found, the session lives."""
    client = await connected(node)
    reply = await client.call("rpc", {"method": "nope"})
    assert reply.error is not None
    assert reply.error.code == 104
    assert not client.conn.closes


# ------------------------------------------------------------- subscribe positioning


@pytest.mark.parametrize("settings_overrides", [FEED])
async def test_positioned_request_in_a_history_namespace_without_recover(node: Node) -> None:
    """positioned: true where history is kept but recover is off → positioned, not recoverable."""
    for i in range(2):
        await node.publish("feed:x", b'{"n":%d}' % i)
    top = await top_of(node, "feed:x")
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": "feed:x", "positioned": True})
    result = reply.subscribe
    assert result is not None
    assert (result.positioned, result.recoverable) == (True, False)
    assert (result.epoch, result.offset) == (top.epoch, 2)
    assert top.epoch
    assert result.publications == []
    message = client.conn.messages()[-1]
    assert "recoverable" not in message["subscribe"]


@pytest.mark.parametrize("settings_overrides", [FEED])
async def test_recoverable_request_in_a_history_namespace_without_recover(node: Node) -> None:
    """recoverable: true where history is kept → recoverable and positioned at the top."""
    await node.publish("feed:x", b'{"n":1}')
    top = await top_of(node, "feed:x")
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": "feed:x", "recoverable": True})
    result = reply.subscribe
    assert result is not None
    assert (result.positioned, result.recoverable) == (True, True)
    assert (result.epoch, result.offset) == (top.epoch, 1)


@pytest.mark.parametrize("settings_overrides", [FEED])
async def test_plain_subscribe_in_a_history_namespace_without_recover(node: Node) -> None:
    """Asking for nothing where recover is off gives neither positioning nor recovery."""
    await node.publish("feed:x", b'{"n":1}')
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": "feed:x"})
    result = reply.subscribe
    assert result is not None
    assert (result.positioned, result.recoverable, result.epoch, result.offset) == (
        False,
        False,
        "",
        0,
    )


@pytest.mark.parametrize("settings_overrides", [NEWS])
@pytest.mark.parametrize("ask", ["positioned", "recoverable"])
async def test_positioning_requests_without_history_are_not_granted(node: Node, ask: str) -> None:
    """Without history in the namespace, positioned/recoverable requests give neither."""
    client = await connected(node)
    await client.call("subscribe", {"channel": "news:x", ask: True})
    (message,) = client.conn.messages()
    assert message["subscribe"] == {}


async def _positioned_subscribe_racing_publications(
    node: Node, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> tuple[Client, int]:
    """Subscribe to feed:x with ``body``; 2 publications land while the position read is
    held (read after they are in history), 1 more after; returns the client and the
    result's offset."""
    await node.publish("feed:x", b'{"n":0}')
    gate = Gate()
    read = node.broker.history

    async def held_history(channel: str, **kwargs: Any) -> tuple[list[Publication], StreamPosition]:
        await gate.wait()
        return await read(channel, **kwargs)

    monkeypatch.setattr(node.broker, "history", held_history)
    client = await connected(node)
    client.feed({"id": 2, "subscribe": {"channel": "feed:x", **body}})
    await gate.reached.wait()
    await node.publish("feed:x", b'{"n":1}')
    await node.publish("feed:x", b'{"n":2}')
    gate.opened.set()
    await drain(client.session)
    await node.publish("feed:x", b'{"n":3}')
    await turns()
    result = client.reply(2).subscribe
    assert result is not None and result.positioned
    return client, result.offset


@pytest.mark.parametrize("settings_overrides", [FEED])
async def test_recoverable_subscribe_racing_publications_gets_each_once(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recoverable: publications racing the position read follow the reply's offset, once."""
    client, offset = await _positioned_subscribe_racing_publications(
        node, monkeypatch, {"recoverable": True}
    )
    assert offset == 3
    assert pubs_of(client.conn.replies(), "feed:x") == [4]


@pytest.mark.parametrize("settings_overrides", [FEED])
async def test_positioned_subscribe_racing_publications_gets_each_once(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """positioned only: publications racing the position read follow the reply's offset, once."""
    client, offset = await _positioned_subscribe_racing_publications(
        node, monkeypatch, {"positioned": True}
    )
    assert offset == 3
    assert pubs_of(client.conn.replies(), "feed:x") == [4]
