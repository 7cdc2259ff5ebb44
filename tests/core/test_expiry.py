"""Expiring credentials, sans I/O: connect/subscribe ttl, refresh, sub_refresh, and what
the heartbeat visit (``Session.ping``) does once a connection or subscription ran out
(PROTOCOL.md §6 "Expiry").

Expiry that must already have happened is set a fraction of UNIT ahead and waited out
(two UNITs) with ``client.expiry_grace`` at 0; nothing here waits longer.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import UNIT

from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny, Hooks
from hubbub.core.node import Node
from hubbub.protocol import codes
from hubbub.protocol.messages import (
    ConnectRequest,
    RefreshRequest,
    SubRefreshRequest,
    SubscribeRequest,
)
from hubbub.protocol.state import State

from .fakes import Client, connected, pubs_of, turns

ROOM = "chat:room"
NO_GRACE = {"client.expiry_grace": 0}
HOUR = 3600.0


def expiring_connect(hooks: Hooks, seconds: float) -> None:
    """Install a connect hook whose credentials run out ``seconds`` after each connect."""

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user=req.token, expire_at=time.time() + seconds)

    hooks.on_connecting = on_connecting


def refreshing(hooks: Hooks, seconds: float) -> list[str]:
    """Install a refresh hook extending the credentials by ``seconds``; returns the tokens seen."""
    tokens: list[str] = []

    async def on_refresh(ctx: ClientContext, req: RefreshRequest) -> Credentials:
        tokens.append(req.token)
        return Credentials(user=ctx.user, expire_at=time.time() + seconds)

    hooks.on_refresh = on_refresh
    return tokens


def expiring_subscribe(hooks: Hooks, seconds: float) -> None:
    """Install a subscribe hook allowing subscriptions that run out after ``seconds``."""

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        return Allow(expire_at=time.time() + seconds)

    hooks.on_subscribe = on_subscribe


def sub_refreshing(hooks: Hooks, seconds: float) -> list[tuple[str, str]]:
    """Install a sub_refresh hook extending by ``seconds``; returns (channel, token) seen."""
    seen: list[tuple[str, str]] = []

    async def on_sub_refresh(ctx: ClientContext, channel: str, req: SubRefreshRequest) -> Allow:
        seen.append((channel, req.token))
        return Allow(expire_at=time.time() + seconds)

    hooks.on_sub_refresh = on_sub_refresh
    return seen


async def run_out() -> None:
    """Wait past credentials set to expire within one UNIT."""
    await asyncio.sleep(2 * UNIT)


def unsubscribe_pushes(client: Client) -> list[tuple[str, int, str]]:
    """(channel, code, reason) of every Unsubscribe push written to ``client``."""
    return [
        (r.push.channel, r.push.unsubscribe.code, r.push.unsubscribe.reason)
        for r in client.conn.replies()
        if r.push is not None and r.push.unsubscribe is not None
    ]


# ------------------------------------------------------------------------ connect


async def test_expiring_credentials_give_expires_and_ttl(hooks: Hooks, node: Node) -> None:
    """Credentials(expire_at=now+600) → ConnectResult expires: true, ttl about 600 seconds."""
    expiring_connect(hooks, 600)
    client = Client(node)
    reply = await client.connect()
    assert reply.connect is not None
    assert reply.connect.expires is True
    assert 595 <= reply.connect.ttl <= 600
    (message,) = client.conn.messages()
    assert message["connect"]["expires"] is True
    assert message["connect"]["ttl"] == reply.connect.ttl


async def test_credentials_expired_at_connect_are_109(hooks: Hooks, node: Node) -> None:
    """expire_at in the past → error 109 token expired, the session unusable, not registered."""
    expiring_connect(hooks, -1)
    client = Client(node)
    reply = await client.connect()
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (109, "token expired")
    assert client.session.state is State.UNUSABLE
    assert client.session.client_id not in node.sessions


# ------------------------------------------------------------------------ refresh


async def test_refresh_extends_the_connection(hooks: Hooks, node: Node) -> None:
    """refresh with on_refresh → RefreshResult client/expires/ttl; the session's expiry moves."""
    expiring_connect(hooks, 60)
    tokens = refreshing(hooks, 600)
    client = await connected(node)
    before = client.session.expire_at
    reply = await client.call("refresh", {"token": "fresh"})
    assert reply.refresh is not None
    assert reply.refresh.client == client.session.client_id
    assert reply.refresh.version
    assert reply.refresh.expires is True
    assert 595 <= reply.refresh.ttl <= 600
    assert tokens == ["fresh"]
    assert client.session.expire_at > before + 500


async def test_refresh_on_a_connection_that_does_not_expire_closes_3501(
    hooks: Hooks, node: Node
) -> None:
    """A refresh where the connect gave no expiry is a bad request, even with on_refresh set."""
    refreshing(hooks, 600)
    client = await connected(node)
    await client.send({"id": 2, "refresh": {"token": "fresh"}})
    assert client.conn.closed_with == codes.BAD_REQUEST
    assert client.conn.frames == []


async def test_refresh_with_an_empty_token_closes_3501(hooks: Hooks, node: Node) -> None:
    """refresh without a token closes the connection with 3501."""
    expiring_connect(hooks, 60)
    tokens = refreshing(hooks, 600)
    client = await connected(node)
    await client.send({"id": 2, "refresh": {}})
    assert client.conn.closed_with == codes.BAD_REQUEST
    assert tokens == []


async def test_refresh_hook_deny_is_an_error_and_keeps_the_expiry(hooks: Hooks, node: Node) -> None:
    """on_refresh returning Deny(109) answers 109; the old expiry stays; the connection stays."""

    async def deny(ctx: ClientContext, req: RefreshRequest) -> Deny:
        return Deny(109)

    expiring_connect(hooks, 60)
    hooks.on_refresh = deny
    client = await connected(node)
    before = client.session.expire_at
    reply = await client.call("refresh", {"token": "stale"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (109, "token expired")
    assert client.session.expire_at == before
    assert not client.conn.closes


async def test_refresh_hook_disconnect_closes_with_it(hooks: Hooks, node: Node) -> None:
    """on_refresh returning a Disconnect closes the connection with that code."""

    async def refuse(ctx: ClientContext, req: RefreshRequest) -> codes.Disconnect:
        return codes.INVALID_TOKEN

    expiring_connect(hooks, 60)
    hooks.on_refresh = refuse
    client = await connected(node)
    await client.send({"id": 2, "refresh": {"token": "forged"}})
    assert client.conn.closed_with == codes.INVALID_TOKEN


async def test_refresh_with_already_expired_credentials_is_109(hooks: Hooks, node: Node) -> None:
    """on_refresh Credentials that are already past answer 109 and leave the expiry as it was."""
    expiring_connect(hooks, 60)
    refreshing(hooks, -1)
    client = await connected(node)
    before = client.session.expire_at
    reply = await client.call("refresh", {"token": "old"})
    assert reply.error is not None
    assert reply.error.code == 109
    assert client.session.expire_at == before


# ---------------------------------------------------------------- connection expiry


@pytest.mark.parametrize("settings_overrides", [NO_GRACE])
async def test_expired_connection_is_closed_3005_at_the_heartbeat(hooks: Hooks, node: Node) -> None:
    """Past expire_at + grace, the heartbeat visit closes with 3005 connection expired."""
    expiring_connect(hooks, UNIT / 2)
    client = await connected(node)
    await run_out()
    client.session.ping()
    await turns()
    assert client.conn.closed_with == codes.CONNECTION_EXPIRED
    assert (client.conn.closed_with.code, client.conn.closed_with.reason) == (
        3005,
        "connection expired",
    )
    assert client.conn.frames == []  # no ping to a connection being closed
    assert client.session.client_id not in node.sessions


async def test_expired_connection_within_the_grace_is_kept(hooks: Hooks, node: Node) -> None:
    """Within the default 25 s grace after expire_at the heartbeat still just pings."""
    expiring_connect(hooks, UNIT / 2)
    client = await connected(node)
    await run_out()
    client.session.ping()
    await turns()
    assert not client.conn.closes
    assert client.conn.frames == [b"{}"]


@pytest.mark.parametrize("settings_overrides", [NO_GRACE])
async def test_refreshed_connection_outlives_its_first_expiry(hooks: Hooks, node: Node) -> None:
    """A refresh before expire_at keeps the heartbeat from closing after the old expiry."""
    expiring_connect(hooks, UNIT / 2)
    refreshing(hooks, HOUR)
    client = await connected(node)
    reply = await client.call("refresh", {"token": "fresh"})
    assert reply.refresh is not None
    await run_out()
    client.session.ping()
    await turns()
    assert not client.conn.closes


# -------------------------------------------------------------- subscription expiry


async def test_expiring_subscribe_gives_expires_and_ttl(hooks: Hooks, node: Node) -> None:
    """on_subscribe Allow(expire_at=now+300) → SubscribeResult expires: true, ttl about 300."""
    expiring_subscribe(hooks, 300)
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": ROOM})
    assert reply.subscribe is not None
    assert reply.subscribe.expires is True
    assert 295 <= reply.subscribe.ttl <= 300
    assert client.session.subscriptions[ROOM].expire_at > time.time()


async def test_subscribe_allowed_with_an_expiry_in_the_past_is_109(
    hooks: Hooks, node: Node
) -> None:
    """Allow(expire_at in the past) answers 109 and leaves no subscription behind."""
    expiring_subscribe(hooks, -1)
    client = await connected(node)
    reply = await client.call("subscribe", {"channel": ROOM})
    assert reply.error is not None
    assert reply.error.code == 109
    assert ROOM not in client.session.subscriptions
    assert node.hub.subscribers(ROOM) == 0


@pytest.mark.parametrize("settings_overrides", [NO_GRACE])
async def test_expired_subscription_is_unsubscribed_2501_at_the_heartbeat(
    hooks: Hooks, node: Node
) -> None:
    """Past its expiry the heartbeat sends Unsubscribe 2501 and releases the subscription only."""
    expiring_subscribe(hooks, UNIT / 2)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    client.conn.take()
    await run_out()
    client.session.ping()
    await turns(5)
    assert unsubscribe_pushes(client) == [(ROOM, 2501, "subscription expired")]
    assert ROOM not in client.session.subscriptions
    assert node.hub.subscribers(ROOM) == 0
    assert client.session.client_id not in await node.presence.presence(ROOM)
    assert not client.conn.closes  # the connection lives on and is pinged
    assert client.conn.frames[-1].endswith(b"{}")
    await node.publish(ROOM, b'{"late":1}')
    await turns()
    assert pubs_of(client.conn.replies(), ROOM) == []


@pytest.mark.parametrize("settings_overrides", [NO_GRACE])
async def test_no_publication_follows_the_expiry_unsubscribe_push(hooks: Hooks, node: Node) -> None:
    """A publication right after the heartbeat expired a subscription is not sent after 2501."""
    expiring_subscribe(hooks, UNIT / 2)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    client.conn.take()
    await run_out()
    client.session.ping()
    await node.publish(ROOM, b'{"late":1}')  # same loop turn as the heartbeat visit
    await turns(5)
    assert unsubscribe_pushes(client) == [(ROOM, 2501, "subscription expired")]
    assert pubs_of(client.conn.replies(), ROOM) == []


@pytest.mark.parametrize("settings_overrides", [NO_GRACE])
async def test_expired_subscription_leaves_the_others_alone(hooks: Hooks, node: Node) -> None:
    """Only the expired subscription ends; a non-expiring one on the same session stays."""
    expiring_subscribe(hooks, UNIT / 2)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    hooks.on_subscribe = None  # the namespace decides now: no expiry
    await client.call("subscribe", {"channel": "chat:other"})
    await run_out()
    client.session.ping()
    await turns(5)
    assert list(client.session.subscriptions) == ["chat:other"]
    assert node.hub.subscribers("chat:other") == 1


# ------------------------------------------------------------------------ sub_refresh


async def test_sub_refresh_extends_the_subscription(hooks: Hooks, node: Node) -> None:
    """sub_refresh with on_sub_refresh → SubRefreshResult expires/ttl; the expiry moves."""
    expiring_subscribe(hooks, 60)
    seen = sub_refreshing(hooks, 600)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    before = client.session.subscriptions[ROOM].expire_at
    reply = await client.call("sub_refresh", {"channel": ROOM, "token": "fresh"})
    assert reply.sub_refresh is not None
    assert reply.sub_refresh.expires is True
    assert 595 <= reply.sub_refresh.ttl <= 600
    assert seen == [(ROOM, "fresh")]
    assert client.session.subscriptions[ROOM].expire_at > before + 500


@pytest.mark.parametrize("settings_overrides", [NO_GRACE])
async def test_refreshed_subscription_outlives_its_first_expiry(hooks: Hooks, node: Node) -> None:
    """A sub_refresh before expiry keeps the heartbeat from unsubscribing after the old one."""
    expiring_subscribe(hooks, UNIT / 2)
    sub_refreshing(hooks, HOUR)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    await client.call("sub_refresh", {"channel": ROOM, "token": "fresh"})
    await run_out()
    client.session.ping()
    await turns(5)
    assert unsubscribe_pushes(client) == []
    assert ROOM in client.session.subscriptions


async def test_sub_refresh_on_a_channel_not_subscribed_is_103(hooks: Hooks, node: Node) -> None:
    """sub_refresh for a channel the connection is not subscribed to answers 103."""
    seen = sub_refreshing(hooks, 600)
    client = await connected(node)
    reply = await client.call("sub_refresh", {"channel": ROOM, "token": "t"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (103, "permission denied")
    assert seen == []


async def test_sub_refresh_without_a_hook_is_108(hooks: Hooks, node: Node) -> None:
    """sub_refresh of an expiring subscription with no on_sub_refresh answers 108."""
    expiring_subscribe(hooks, 60)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    reply = await client.call("sub_refresh", {"channel": ROOM, "token": "t"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (108, "not available")


async def test_sub_refresh_with_an_empty_token_is_107(hooks: Hooks, node: Node) -> None:
    """sub_refresh without a token answers 107 bad request; the hook is not asked."""
    expiring_subscribe(hooks, 60)
    seen = sub_refreshing(hooks, 600)
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    reply = await client.call("sub_refresh", {"channel": ROOM})
    assert reply.error is not None
    assert reply.error.code == 107
    assert seen == []


async def test_sub_refresh_with_an_empty_channel_closes_3501(hooks: Hooks, node: Node) -> None:
    """sub_refresh without a channel closes the connection with 3501."""
    sub_refreshing(hooks, 600)
    client = await connected(node)
    await client.send({"id": 2, "sub_refresh": {"token": "t"}})
    assert client.conn.closed_with == codes.BAD_REQUEST


async def test_sub_refresh_hook_deny_is_the_error(hooks: Hooks, node: Node) -> None:
    """on_sub_refresh returning Deny(code) answers it; the subscription's expiry stays."""

    async def deny(ctx: ClientContext, channel: str, req: SubRefreshRequest) -> Deny:
        return Deny(4010, "banned")

    expiring_subscribe(hooks, 60)
    hooks.on_sub_refresh = deny
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    before = client.session.subscriptions[ROOM].expire_at
    reply = await client.call("sub_refresh", {"channel": ROOM, "token": "t"})
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == (4010, "banned")
    assert client.session.subscriptions[ROOM].expire_at == before
