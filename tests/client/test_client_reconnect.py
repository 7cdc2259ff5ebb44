"""Reconnecting: server restarts, disconnect codes, give-up, and recovery without gaps."""

from __future__ import annotations

import asyncio
import socket

import pytest
from clientkit import WAIT, Transitions, make_client, until, ws_url
from conftest import UNIT, ServerFactory
from faultproxy import FaultProxy

from hubbub.client import (
    ClientBrokenError,
    ClientState,
    ClientTrigger,
    ConnectionLostError,
    LocalCode,
    ReplyError,
    SubscribedEvent,
    SubscriptionState,
    UnsubscribedEvent,
)
from hubbub.core.hooks import ClientContext, Credentials, Deny
from hubbub.protocol import codes
from hubbub.protocol.codes import Disconnect
from hubbub.protocol.messages import ConnectRequest

CHANNEL = "chat:recovery"
MESSAGES = 1000
CUTS = 3
BIG_HISTORY = {
    "channels.namespaces.chat.history_size": MESSAGES,
    "client.recovery_max_limit": MESSAGES,
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_reconnects_and_resubscribes_after_the_server_restarts(
    start_server: ServerFactory,
) -> None:
    """After a restart on the same port the client is back, with a "not recovered" event."""
    first = await start_server()
    port = first.websocket.port
    client = make_client(ws_url(first))
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    sub = client.new_subscription(CHANNEL)
    subscribed: list[SubscribedEvent] = []
    sub.on_subscribed(subscribed.append)
    await sub.subscribe()
    await first.stop()
    await until(lambda: client.state is ClientState.CONNECTING)
    lost = next(e for e in seen.events if e.trigger is ClientTrigger.LOST)
    assert (lost.code, lost.reason) == (3001, "shutdown, reconnect")

    second = await start_server(**{"server.port": port})
    await until(lambda: sub.state is SubscriptionState.SUBSCRIBED and len(subscribed) == 2)
    assert client.state is ClientState.READY
    assert subscribed[1].was_recovering and not subscribed[1].recovered and subscribed[1].gap
    publisher = make_client(ws_url(second))
    async with publisher:
        await publisher.publish(CHANNEL, {"after": "restart"})
        assert (await anext(sub)).json() == {"after": "restart"}
    await client.disconnect()


@pytest.mark.parametrize(
    "disconnect",
    [codes.FORCE_DISCONNECT, codes.INVALID_TOKEN, Disconnect(4500, "app says bye")],
    ids=["3503", "3500", "4500"],
)
async def test_terminal_disconnect_code_closes_for_good(
    start_server: ServerFactory, disconnect: Disconnect
) -> None:
    """3500-3999 and 4500-4999 end in CLOSED: no reconnect, subscriptions end, calls fail."""
    server = await start_server()
    client = make_client(ws_url(server))
    await client.connect()
    sub = await client.subscribe(CHANNEL)
    server.node.disconnect(client.client_id, disconnect)
    await until(lambda: client.state is ClientState.CLOSED)
    assert isinstance(client.error, ConnectionLostError)
    assert (client.error.code, client.error.temporary) == (disconnect.code, False)
    assert sub.state is SubscriptionState.UNSUBSCRIBED
    events = [event async for event in sub.events()]
    assert events[-1] == UnsubscribedEvent(CHANNEL, disconnect.code, str(client.error))
    with pytest.raises(ConnectionLostError):
        await client.publish(CHANNEL, {"too": "late"})
    await asyncio.sleep(10 * UNIT)  # several back-off delays: nobody comes back
    assert client.state is ClientState.CLOSED and not server.node.sessions


@pytest.mark.parametrize(
    "disconnect",
    [codes.FORCE_RECONNECT, codes.INSUFFICIENT_STATE, Disconnect(4000, "app says later")],
    ids=["3011", "3010", "4000"],
)
async def test_reconnect_codes_bring_the_client_back(
    start_server: ServerFactory, disconnect: Disconnect
) -> None:
    """3000-3499 and 4000-4499 lead to CONNECTING and then READY on a new connection."""
    server = await start_server()
    client = make_client(ws_url(server))
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    old_id = client.client_id
    server.node.disconnect(client.client_id, disconnect)
    await until(lambda: client.state is ClientState.READY and client.client_id != old_id)
    lost = next(e for e in seen.events if e.trigger is ClientTrigger.LOST)
    assert lost.code == disconnect.code
    await client.disconnect()


async def test_refused_connect_is_terminal_and_ready_says_why(start_server: ServerFactory) -> None:
    """A non-temporary connect error (101 unauthorized) closes the client; ready() raises it."""
    server = await start_server(**{"client.allow_anonymous": False})
    client = make_client(ws_url(server))
    await client.connect()
    with pytest.raises(ReplyError) as caught:
        await client.ready()
    assert caught.value.code == 101
    assert client.state is ClientState.CLOSED


async def test_temporary_connect_errors_are_retried(start_server: ServerFactory) -> None:
    """Connect answered "temporary" twice: two failed attempts, then READY."""
    server = await start_server()
    answers = [Deny(code=100, temporary=True), Deny(code=111, temporary=True)]

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials | Deny:
        return answers.pop(0) if answers else Credentials(user="u")

    server.node.hooks.on_connecting = on_connecting
    client = make_client(ws_url(server))
    seen = Transitions(client)
    await client.connect()
    await client.ready()
    failures = [e for e in seen.events if e.trigger is ClientTrigger.ATTEMPT_FAILED]
    assert [e.code for e in failures] == [100, 111]
    assert all(isinstance(e.error, ReplyError) for e in failures)
    await client.disconnect()


async def test_max_retries_failed_attempts_make_the_client_broken() -> None:
    """Nobody listening: after max_retries attempts the client is BROKEN, the cause chained."""
    client = make_client(f"ws://127.0.0.1:{_closed_port()}/connection/websocket", max_retries=3)
    seen = Transitions(client)
    await client.connect()
    with pytest.raises(ClientBrokenError) as caught:
        await client.ready()
    assert client.state is ClientState.BROKEN
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.code == LocalCode.RETRIES_EXHAUSTED and caught.value.temporary
    assert [e.trigger for e in seen.events] == [
        ClientTrigger.CONNECT,
        ClientTrigger.ATTEMPT_FAILED,
        ClientTrigger.ATTEMPT_FAILED,
        ClientTrigger.ATTEMPT_FAILED,
        ClientTrigger.GIVE_UP,
    ]
    await client.connect()  # BROKEN -> CONNECTING: starts over
    assert client.state is ClientState.CONNECTING
    await client.disconnect()
    assert client.state is ClientState.CLOSED


async def test_state_invalidated_reconnects_without_recovery(start_server: ServerFactory) -> None:
    """3014: the client drops its positions, reconnects and subscribes afresh."""
    server = await start_server()
    client = make_client(ws_url(server))
    await client.connect()
    sub = await client.subscribe(CHANNEL)
    subscribed: list[SubscribedEvent] = []
    sub.on_subscribed(subscribed.append)
    await client.publish(CHANNEL, {"n": 1})
    server.node.disconnect(client.client_id, Disconnect(3014, "state invalidated"))
    await until(lambda: len(subscribed) == 1)
    assert not subscribed[0].was_recovering
    await client.disconnect()


# ------------------------------------------------------------- recovery, no gaps


@pytest.mark.parametrize("codec", ["json", "protobuf"])
@pytest.mark.parametrize("cut", ["server", "proxy"])
async def test_every_publication_missed_during_cuts_is_recovered(
    start_server: ServerFactory, codec: str, cut: str
) -> None:
    """1,000 sequenced messages, three cuts while they flow: all arrive, once, in order."""
    server = await start_server(**BIG_HISTORY)
    async with FaultProxy(server.websocket.port) as proxy:
        url = ws_url(server) if cut == "server" else proxy.url("ws", "/connection/websocket")
        subscriber = make_client(url, codec=codec)
        seen = Transitions(subscriber)
        await subscriber.connect()
        sub = subscriber.new_subscription(CHANNEL, buffer_size=MESSAGES + 10)
        subscribed: list[SubscribedEvent] = []
        sub.on_subscribed(subscribed.append)
        await sub.subscribe()

        async def consume() -> list[int]:
            got: list[int] = []
            async for pub in sub:
                got.append(pub.json()["seq"])
                if len(got) == MESSAGES:
                    break
            return got

        consumer = asyncio.ensure_future(consume())
        async with make_client(ws_url(server), codec=codec) as publisher:
            cut_at = {MESSAGES * (k + 1) // (CUTS + 1) for k in range(CUTS)}
            for seq in range(MESSAGES):
                if seq in cut_at:
                    await until(lambda: sub.state is SubscriptionState.SUBSCRIBED)
                    if cut == "server":
                        server.node.disconnect(subscriber.client_id, codes.FORCE_RECONNECT)
                    else:
                        await proxy.cut()
                await publisher.publish(CHANNEL, {"seq": seq})
            got = await asyncio.wait_for(consumer, WAIT)
        assert got == list(range(MESSAGES))
        assert seen.count(ClientState.CONNECTING) == 1 + CUTS
        resubscribes = subscribed[1:]
        assert len(resubscribes) == CUTS
        assert all(e.was_recovering and e.recovered and not e.gap for e in resubscribes)
        await subscriber.disconnect()


async def test_server_unsubscribe_2500_resubscribes_with_recovery(
    start_server: ServerFactory,
) -> None:
    """An unsubscribe push with code >= 2500 makes the subscription recover and go on."""
    server = await start_server()
    async with make_client(ws_url(server)) as client:
        sub = await client.subscribe(CHANNEL)
        subscribed: list[SubscribedEvent] = []
        sub.on_subscribed(subscribed.append)
        await client.publish(CHANNEL, {"n": 1})
        session = server.node.sessions[client.client_id]
        server.node.unsubscribe(session, CHANNEL, codes.UnsubscribeCode.INSUFFICIENT_STATE)
        await until(lambda: len(subscribed) == 1)
        assert subscribed[0].was_recovering and subscribed[0].recovered
        await client.publish(CHANNEL, {"n": 2})
        assert [(await anext(sub)).json()["n"] for _ in range(2)] == [1, 2]
        assert sub.state is SubscriptionState.SUBSCRIBED


async def test_server_unsubscribe_below_2500_ends_the_subscription(
    start_server: ServerFactory,
) -> None:
    """An unsubscribe push with code 2000 ends it: UnsubscribedEvent, iteration stops."""
    server = await start_server()
    async with make_client(ws_url(server)) as client:
        sub = await client.subscribe(CHANNEL)
        session = server.node.sessions[client.client_id]
        server.node.unsubscribe(session, CHANNEL)
        events = [event async for event in sub.events()]
        assert events[-1] == UnsubscribedEvent(CHANNEL, 2000, "server unsubscribe")
        assert sub.state is SubscriptionState.UNSUBSCRIBED
        assert [pub async for pub in sub] == []
        await sub.subscribe()  # and it may subscribe again
        assert sub.state is SubscriptionState.SUBSCRIBED
