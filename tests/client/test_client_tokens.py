"""Tokens: get_token when there is none or it expired (109), refresh before it runs out."""

from __future__ import annotations

import asyncio
import time

import pytest
from clientkit import WAIT, CountingBackoff, Transitions, make_client, until, ws_url
from conftest import UNIT, ServerFactory

from hubbub.client import (
    ClientClosedError,
    ClientState,
    ClientTrigger,
    ConnectionLostError,
    ErrorEvent,
    ReplyError,
    RequestTimeoutError,
    SubscriptionState,
    UnsubscribedEvent,
)
from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny
from hubbub.protocol.codes import Disconnect, ErrorCode, UnsubscribeCode
from hubbub.protocol.messages import (
    ConnectRequest,
    RefreshRequest,
    SubRefreshRequest,
    SubscribeRequest,
)
from hubbub.server import Server

CHANNEL = "chat:tokens"


SOON = 20 * UNIT
"""A token lifetime that scales with the tests' time unit (1 s at the default scale), as
the client's timeouts and back-off here do."""


async def test_expired_token_is_replaced_through_get_token(start_server: ServerFactory) -> None:
    """Connect answered 109 for the stale token: one failed attempt, get_token, READY."""
    server = await start_server()
    seen_tokens: list[str] = []

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials | Deny:
        seen_tokens.append(req.token)
        if req.token != "fresh":
            return Deny(code=ErrorCode.TOKEN_EXPIRED)
        return Credentials(user="alice")

    server.node.hooks.on_connecting = on_connecting
    calls = 0

    async def get_token() -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    client = make_client(ws_url(server), token="stale", get_token=get_token)
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    assert seen_tokens == ["stale", "fresh"] and calls == 1
    failed = [e for e in seen.events if e.trigger is ClientTrigger.ATTEMPT_FAILED]
    assert [e.code for e in failed] == [ErrorCode.TOKEN_EXPIRED]
    await client.disconnect()


async def test_expired_token_without_get_token_is_terminal(start_server: ServerFactory) -> None:
    """109 and no way to get another token: retrying is pointless, the client closes."""
    server = await start_server()

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Deny:
        return Deny(code=ErrorCode.TOKEN_EXPIRED)

    server.node.hooks.on_connecting = on_connecting
    client = make_client(ws_url(server), token="stale")
    await client.connect()
    await until(lambda: client.state is ClientState.CLOSED)


async def test_expiring_connection_is_refreshed_with_a_new_token(
    start_server: ServerFactory,
) -> None:
    """A connection granted for one second gets a refresh command with get_token's token."""
    server = await start_server()
    refreshed: list[str] = []

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user="bob", expire_at=time.time() + SOON)

    async def on_refresh(ctx: ClientContext, req: RefreshRequest) -> Credentials:
        refreshed.append(req.token)
        return Credentials(user="bob", expire_at=time.time() + 3600)

    server.node.hooks.on_connecting = on_connecting
    server.node.hooks.on_refresh = on_refresh
    tokens = iter(["first", "second"])

    async def get_token() -> str:
        return next(tokens)

    client = make_client(ws_url(server), get_token=get_token)
    await client.connect()
    await client.ready()
    first_id = client.client_id
    await until(lambda: refreshed == ["second"])
    assert client.state is ClientState.READY and client.client_id == first_id
    await client.disconnect()


async def test_subscription_token_comes_from_its_get_token(start_server: ServerFactory) -> None:
    """A subscription without a token asks get_token(channel) and sends what it got."""
    server = await start_server()
    seen: list[str] = []

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        seen.append(req.token)
        return Allow()

    server.node.hooks.on_subscribe = on_subscribe

    async def sub_token(channel: str) -> str:
        return f"token-for-{channel}"

    async with make_client(ws_url(server)) as client:
        await client.subscribe(CHANNEL, get_token=sub_token)
    assert seen == [f"token-for-{CHANNEL}"]


async def _reconnect_after_3014(start_server: ServerFactory, **options: object) -> list[str]:
    """Connect, have the server close with 3014, wait for the next READY; the tokens sent."""
    server = await start_server()
    sent: list[str] = []

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials | Deny:
        sent.append(req.token)
        return Credentials(user="u") if req.token else Deny(code=ErrorCode.UNAUTHORIZED)

    server.node.hooks.on_connecting = on_connecting
    client = make_client(ws_url(server), **options)
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    server.node.disconnect(client.client_id, Disconnect(3014, "state invalidated"))
    await until(lambda: seen.count(ClientState.READY) == 2 or client.state is ClientState.CLOSED)
    state = client.state
    await client.disconnect()
    assert state is ClientState.READY, f"{state}: {client.error!r}; tokens sent {sent}"
    return sent


async def test_static_token_is_kept_after_3014(start_server: ServerFactory) -> None:
    """3014 invalidates our state, not the token we were given: with no get_token to
    fetch another, the reconnect sends the same one (it used to send none: CLOSED)."""
    assert await _reconnect_after_3014(start_server, token="static") == ["static", "static"]


async def test_token_is_fetched_again_after_3014(start_server: ServerFactory) -> None:
    """With get_token, 3014 drops the token and the reconnect fetches a fresh one."""
    tokens = iter(["first", "second"])

    async def get_token() -> str:
        return next(tokens)

    assert await _reconnect_after_3014(start_server, get_token=get_token) == ["first", "second"]


async def test_static_subscription_token_is_kept_after_2502(start_server: ServerFactory) -> None:
    """Unsubscribe 2502 (state invalidated) resubscribes with the subscription's own
    token when it has no get_token (it used to send none and be refused for good)."""
    server = await start_server()
    sent: list[str] = []

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow | Deny:
        sent.append(req.token)
        return Allow() if req.token else Deny(code=ErrorCode.PERMISSION_DENIED)

    server.node.hooks.on_subscribe = on_subscribe
    async with make_client(ws_url(server)) as client:
        sub = await client.subscribe(CHANNEL, token="subtoken")
        moves: list[SubscriptionState] = []
        sub.on_state(lambda event: moves.append(event.new))
        session = server.node.sessions[client.client_id]
        server.node.unsubscribe(session, CHANNEL, UnsubscribeCode.STATE_INVALIDATED)
        await until(lambda: len(moves) == 2)
        assert sent == ["subtoken", "subtoken"]
        assert moves == [SubscriptionState.SUBSCRIBING, SubscriptionState.SUBSCRIBED]


EXPIRING = {"client.ping_interval": 5 * UNIT, "client.expiry_grace": 10 * UNIT}
"""Expiry checked often, with a short grace: a connection not refreshed ends soon."""


async def test_refresh_that_timed_out_is_sent_again(start_server: ServerFactory) -> None:
    """The first refresh is answered after the client's timeout: the client asks again
    on the same connection (it used to give up and let the connection expire: 3005)."""
    server = await start_server(**EXPIRING)
    calls: list[str] = []

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user="bob", expire_at=time.time() + SOON)

    async def on_refresh(ctx: ClientContext, req: RefreshRequest) -> Credentials:
        calls.append(ctx.client_id)
        if len(calls) == 1:
            await asyncio.sleep(8 * UNIT)  # the client stops waiting after 4 units
            return Credentials(user="bob", expire_at=time.time() + SOON)  # it never learns
        return Credentials(user="bob", expire_at=time.time() + 3600)

    server.node.hooks.on_connecting = on_connecting
    server.node.hooks.on_refresh = on_refresh

    async def get_token() -> str:
        return "token"

    client = make_client(ws_url(server), get_token=get_token, timeout=4 * UNIT)
    errors: list[ErrorEvent] = []
    client.on_error(errors.append)
    await client.connect()
    await client.ready()
    first = client.client_id
    await until(lambda: len(calls) == 2)
    await client.disconnect()
    assert calls == [first, first], "the second refresh came from a new connection"
    assert [type(event.error) for event in errors] == [RequestTimeoutError]


async def test_temporary_refresh_errors_are_retried_with_growing_delays(
    start_server: ServerFactory,
) -> None:
    """Two temporary refusals: the client tries again after back-off delays 0 then 1."""
    server = await start_server()
    calls = 0

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user="bob", expire_at=time.time() + SOON)

    async def on_refresh(ctx: ClientContext, req: RefreshRequest) -> Credentials | Deny:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return Deny(code=ErrorCode.INTERNAL, temporary=True)
        return Credentials(user="bob", expire_at=time.time() + 3600)

    server.node.hooks.on_connecting = on_connecting
    server.node.hooks.on_refresh = on_refresh

    async def get_token() -> str:
        return "token"

    backoff = CountingBackoff(initial=UNIT, factor=2.0, maximum=4 * UNIT)
    client = make_client(ws_url(server), get_token=get_token, backoff=backoff)
    await client.connect()
    await client.ready()
    first = client.client_id
    await until(lambda: calls == 3)
    assert client.state is ClientState.READY and client.client_id == first
    await client.disconnect()
    assert backoff.asked == [0, 1]


async def test_refresh_refused_for_good_closes_the_client(start_server: ServerFactory) -> None:
    """A permanent refusal (103) is not asked again: the client closes without
    reconnecting, as centrifuge-js does (it used to retry every second forever)."""
    server = await start_server()
    calls = 0

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        return Credentials(user="bob", expire_at=time.time() + SOON)

    async def on_refresh(ctx: ClientContext, req: RefreshRequest) -> Deny:
        nonlocal calls
        calls += 1
        return Deny(code=ErrorCode.PERMISSION_DENIED)

    server.node.hooks.on_connecting = on_connecting
    server.node.hooks.on_refresh = on_refresh

    async def get_token() -> str:
        return "token"

    client = make_client(ws_url(server), get_token=get_token)
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    await until(lambda: client.state is not ClientState.READY or calls > 1)
    await client.disconnect()
    assert calls == 1
    assert seen.states == [ClientState.CONNECTING, ClientState.READY, ClientState.CLOSED]
    assert seen.events[-1].code == ErrorCode.PERMISSION_DENIED
    assert isinstance(client.error, ConnectionLostError)
    assert isinstance(client.error.__cause__, ReplyError)


async def test_get_token_failing_after_unsubscribe_is_ignored(server: Server) -> None:
    """A subscription's get_token fails after unsubscribe(): nothing is retried and its
    task ends quietly (it used to raise InvalidTransition, INTERRUPTED from UNSUBSCRIBED)."""
    asked, fail = asyncio.Event(), asyncio.Event()

    async def sub_token(channel: str) -> str:
        asked.set()
        await fail.wait()
        raise RuntimeError("auth backend down")

    async with make_client(ws_url(server)) as client:
        sub = client.new_subscription(CHANNEL, get_token=sub_token)
        moves: list[SubscriptionState] = []
        sub.on_state(lambda event: moves.append(event.new))
        subscribing = asyncio.ensure_future(sub.subscribe())
        await asyncio.wait_for(asked.wait(), WAIT)
        fetching = list(client._tasks)
        await sub.unsubscribe()
        with pytest.raises(ClientClosedError):
            await subscribing
        fail.set()
        done, _ = await asyncio.wait(fetching, timeout=WAIT)
        assert done == set(fetching)
        assert [task.exception() for task in fetching] == [None]
        assert moves == [SubscriptionState.SUBSCRIBING, SubscriptionState.UNSUBSCRIBED]


async def test_disconnect_cancels_a_get_token_that_never_returns(server: Server) -> None:
    """disconnect() leaves no background task behind, even one stuck in get_token."""
    asked = asyncio.Event()
    cancelled: list[str] = []

    async def sub_token(channel: str) -> str:
        asked.set()
        try:
            await asyncio.Event().wait()  # e.g. an HTTP call that never returns
        except asyncio.CancelledError:
            cancelled.append(channel)
            raise
        return "never"

    client = make_client(ws_url(server))
    await client.connect()
    await client.ready()
    sub = client.new_subscription(CHANNEL, get_token=sub_token)
    subscribing = asyncio.ensure_future(sub.subscribe())
    await asyncio.wait_for(asked.wait(), WAIT)
    await client.disconnect()
    with pytest.raises(ClientClosedError):
        await subscribing
    assert cancelled == [CHANNEL]


class SubTokens:
    """A subscription get_token handing out t1, t2, ... and counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, channel: str) -> str:
        self.calls += 1
        return f"t{self.calls}"


async def _expiring_subscriptions(
    start_server: ServerFactory, on_sub_refresh: object, **settings: object
) -> Server:
    """A server granting subscriptions for one second, refreshed by ``on_sub_refresh``."""
    server = await start_server(**settings)

    async def on_subscribe(ctx: ClientContext, channel: str, req: SubscribeRequest) -> Allow:
        return Allow(expire_at=time.time() + SOON)

    server.node.hooks.on_subscribe = on_subscribe
    server.node.hooks.on_sub_refresh = on_sub_refresh  # type: ignore[assignment]
    return server


async def test_subscription_token_is_refreshed_before_it_runs_out(
    start_server: ServerFactory,
) -> None:
    """A subscription granted for one second sends sub_refresh with get_token's next
    token, and stays SUBSCRIBED (it used to be unsubscribed 2501 and resubscribe)."""
    refreshed: list[str] = []

    async def on_sub_refresh(ctx: ClientContext, channel: str, req: SubRefreshRequest) -> Allow:
        refreshed.append(req.token)
        return Allow(expire_at=time.time() + 3600)

    server = await _expiring_subscriptions(start_server, on_sub_refresh)
    async with make_client(ws_url(server)) as client:
        sub = client.new_subscription(CHANNEL, get_token=SubTokens())
        moves: list[SubscriptionState] = []
        sub.on_state(lambda event: moves.append(event.new))
        await sub.subscribe()
        await until(lambda: refreshed == ["t2"])
        assert moves == [SubscriptionState.SUBSCRIBING, SubscriptionState.SUBSCRIBED]


async def test_temporary_sub_refresh_errors_are_retried_with_growing_delays(
    start_server: ServerFactory,
) -> None:
    """Two temporary refusals: sub_refresh goes again after back-off delays 0 then 1."""
    calls = 0

    async def on_sub_refresh(
        ctx: ClientContext, channel: str, req: SubRefreshRequest
    ) -> Allow | Deny:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return Deny(code=ErrorCode.INTERNAL, temporary=True)
        return Allow(expire_at=time.time() + 3600)

    server = await _expiring_subscriptions(start_server, on_sub_refresh)
    backoff = CountingBackoff(initial=UNIT, factor=2.0, maximum=4 * UNIT)
    async with make_client(ws_url(server), backoff=backoff) as client:
        sub = client.new_subscription(CHANNEL, get_token=SubTokens())
        errors: list[ErrorEvent] = []
        sub.on_error(errors.append)
        await sub.subscribe()
        await until(lambda: calls == 3)
        assert sub.state is SubscriptionState.SUBSCRIBED
        assert [getattr(e.error, "code", None) for e in errors] == [ErrorCode.INTERNAL] * 2
    assert backoff.asked == [0, 1]


async def test_sub_refresh_that_timed_out_is_sent_again(start_server: ServerFactory) -> None:
    """The first sub_refresh is answered after the client's timeout: it goes again, and
    the subscription is kept (it used to be left to expire: 2501)."""
    calls = 0

    async def on_sub_refresh(ctx: ClientContext, channel: str, req: SubRefreshRequest) -> Allow:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(8 * UNIT)  # the client stops waiting after 4 units
            return Allow(expire_at=time.time() + SOON)  # it never learns
        return Allow(expire_at=time.time() + 3600)

    server = await _expiring_subscriptions(start_server, on_sub_refresh, **EXPIRING)
    async with make_client(ws_url(server), timeout=4 * UNIT) as client:
        sub = client.new_subscription(CHANNEL, get_token=SubTokens())
        moves: list[SubscriptionState] = []
        sub.on_state(lambda event: moves.append(event.new))
        await sub.subscribe(timeout=WAIT)
        await until(lambda: calls == 2 or len(moves) > 2)
        assert moves == [SubscriptionState.SUBSCRIBING, SubscriptionState.SUBSCRIBED]


async def test_sub_refresh_refused_for_good_ends_the_subscription(
    start_server: ServerFactory,
) -> None:
    """A permanent refusal ends the subscription with its code, here and on the server;
    the client stays connected."""
    calls = 0

    async def on_sub_refresh(ctx: ClientContext, channel: str, req: SubRefreshRequest) -> Deny:
        nonlocal calls
        calls += 1
        return Deny(code=ErrorCode.PERMISSION_DENIED)

    server = await _expiring_subscriptions(start_server, on_sub_refresh)
    async with make_client(ws_url(server)) as client:
        sub = client.new_subscription(CHANNEL, get_token=SubTokens())
        ended: list[UnsubscribedEvent] = []
        sub.on_unsubscribed(ended.append)
        await sub.subscribe()
        first = client.client_id
        await until(lambda: bool(ended))
        session = server.node.sessions[client.client_id]
        await until(lambda: CHANNEL not in session.subscriptions)
        assert calls == 1 and sub.state is SubscriptionState.UNSUBSCRIBED
        assert ended == [
            UnsubscribedEvent(CHANNEL, ErrorCode.PERMISSION_DENIED, "permission denied")
        ]
        assert client.state is ClientState.READY and client.client_id == first
