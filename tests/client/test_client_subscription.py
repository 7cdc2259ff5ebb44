"""Subscriptions: iteration and events in order, unsubscribe, buffers, positions, states."""

from __future__ import annotations

import asyncio

import pytest
from clientkit import Transitions, make_client, until, ws_url
from conftest import UNIT

from hubbub.client import (
    ClientState,
    ClientStateChanged,
    ErrorEvent,
    PublicationEvent,
    SubscribedEvent,
    SubscriptionState,
    SubscriptionStateChanged,
    SubscriptionTrigger,
    UnsubscribedEvent,
)
from hubbub.protocol import codes
from hubbub.server import Server

CHANNEL = "chat:subs"


async def test_events_come_in_order_and_end_with_unsubscribed(server: Server) -> None:
    """events() yields subscribed, the publications, then unsubscribed, and stops."""
    async with make_client(ws_url(server)) as client:
        sub = await client.subscribe(CHANNEL)
        for n in range(3):
            await client.publish(CHANNEL, {"n": n})
        await until(lambda: sub.position.offset == 3)
        await sub.unsubscribe()
        events = [event async for event in sub.events()]
    assert isinstance(events[0], SubscribedEvent) and not events[0].was_recovering
    assert [e.json()["n"] for e in events[1:4] if isinstance(e, PublicationEvent)] == [0, 1, 2]
    assert events[-1] == UnsubscribedEvent(CHANNEL, 0, "unsubscribe called")


async def test_unsubscribe_ends_iteration_and_the_server_forgets_us(server: Server) -> None:
    """After unsubscribe() an ``async for`` finishes and presence no longer lists us."""
    async with make_client(ws_url(server)) as client, make_client(ws_url(server)) as other:
        sub = await client.subscribe(CHANNEL)
        await other.subscribe(CHANNEL)

        async def drain() -> list[PublicationEvent]:
            return [pub async for pub in sub]

        reader = asyncio.ensure_future(drain())
        await client.publish(CHANNEL, {"last": True})
        await until(lambda: sub.position.offset == 1)
        await sub.unsubscribe()
        got = await asyncio.wait_for(reader, 20 * UNIT)
        assert [p.json() for p in got] == [{"last": True}]
        assert set(await other.presence(CHANNEL)) == {other.client_id}


async def test_subscribe_waits_while_the_client_is_connecting(server: Server) -> None:
    """subscribe() during CONNECTING completes once the client is READY."""
    client = make_client(ws_url(server))
    await client.connect()
    assert client.state is ClientState.CONNECTING
    sub = await client.subscribe(CHANNEL)
    assert sub.state is SubscriptionState.SUBSCRIBED
    await client.disconnect()


async def test_every_subscription_transition_is_an_event(server: Server) -> None:
    """on_state sees subscribe, subscribed, interrupted (a cut), subscribed, unsubscribe."""
    client = make_client(ws_url(server))
    await client.connect()
    sub = client.new_subscription(CHANNEL)
    steps: list[SubscriptionStateChanged] = []
    sub.on_state(steps.append)
    await sub.subscribe()
    server.node.disconnect(client.client_id, codes.FORCE_RECONNECT)
    await until(lambda: len(steps) == 4 and sub.state is SubscriptionState.SUBSCRIBED)
    await sub.unsubscribe()
    assert [s.trigger for s in steps] == [
        SubscriptionTrigger.SUBSCRIBE,
        SubscriptionTrigger.SUBSCRIBED,
        SubscriptionTrigger.INTERRUPTED,
        SubscriptionTrigger.SUBSCRIBED,
        SubscriptionTrigger.UNSUBSCRIBE,
    ]
    await client.disconnect()


async def test_disconnect_ends_subscriptions_and_connect_lets_them_resume(server: Server) -> None:
    """disconnect() ends subscriptions; after connect() they resubscribe and recover."""
    client = make_client(ws_url(server))
    await client.connect()
    sub = await client.subscribe(CHANNEL)
    await client.publish(CHANNEL, {"n": 1})
    assert (await anext(sub)).json() == {"n": 1}
    await client.disconnect()
    assert sub.state is SubscriptionState.UNSUBSCRIBED
    assert [p async for p in sub] == []
    async with make_client(ws_url(server)) as publisher:
        await publisher.publish(CHANNEL, {"n": 2})
    await client.connect()
    subscribed: list[SubscribedEvent] = []
    sub.on_subscribed(subscribed.append)
    await sub.subscribe()
    assert subscribed[0].was_recovering and subscribed[0].recovered
    assert (await anext(sub)).json() == {"n": 2}
    await client.disconnect()


async def test_since_recovers_history_on_the_first_subscribe(server: Server) -> None:
    """A subscription created with ``since`` gets everything after that position first."""
    async with make_client(ws_url(server)) as client:
        first = await client.publish(CHANNEL, {"n": 1})
        await client.publish(CHANNEL, {"n": 2})
        await client.publish(CHANNEL, {"n": 3})
        sub = client.new_subscription(CHANNEL, since=first)
        await sub.subscribe()
        assert [(await anext(sub)).json()["n"] for _ in range(2)] == [2, 3]
        assert sub.position.offset == 3


async def test_full_buffer_drops_the_oldest_and_reports_it_once(server: Server) -> None:
    """Nobody iterating: the buffer keeps the newest events and one ErrorEvent says so."""
    async with make_client(ws_url(server)) as client:
        sub = client.new_subscription(CHANNEL, buffer_size=3)
        errors: list[ErrorEvent] = []
        sub.on_error(errors.append)
        await sub.subscribe()
        for n in range(6):
            await client.publish(CHANNEL, {"n": n})
        await until(lambda: sub.position.offset == 6)
        assert len(errors) == 1
        assert [(await anext(sub)).json()["n"] for _ in range(3)] == [3, 4, 5]


async def test_callbacks_only_subscription_keeps_no_buffer(server: Server) -> None:
    """buffer_size=0: callbacks get everything, iteration has nothing, no overflow errors."""
    async with make_client(ws_url(server)) as client:
        sub = client.new_subscription(CHANNEL, buffer_size=0)
        got: list[int] = []
        errors: list[ErrorEvent] = []
        sub.on_publication(lambda pub: got.append(pub.json()["n"]))
        sub.on_error(errors.append)
        await sub.subscribe()
        for n in range(5):
            await client.publish(CHANNEL, {"n": n})
        await until(lambda: len(got) == 5)
        assert got == [0, 1, 2, 3, 4] and errors == []


async def test_one_subscription_per_channel(server: Server) -> None:
    """A second new_subscription to a channel is a ValueError; subscribe() reuses the first."""
    async with make_client(ws_url(server)) as client:
        sub = await client.subscribe(CHANNEL)
        with pytest.raises(ValueError):
            client.new_subscription(CHANNEL)
        assert await client.subscribe(CHANNEL) is sub
        await client.remove_subscription(sub)
        assert client.get_subscription(CHANNEL) is None


async def test_failing_callback_does_not_break_delivery(server: Server) -> None:
    """A callback that raises is logged; the next callbacks and iteration still get events."""
    async with make_client(ws_url(server)) as client:
        sub = client.new_subscription(CHANNEL)

        def broken(event: PublicationEvent) -> None:
            raise RuntimeError("application bug")

        later: list[PublicationEvent] = []
        sub.on_publication(broken)
        sub.on_publication(later.append)
        await sub.subscribe()
        await client.publish(CHANNEL, {"ok": 1})
        assert (await anext(sub)).json() == {"ok": 1}
        assert len(later) == 1


async def test_client_transitions_are_reported_to_async_handlers_in_order(server: Server) -> None:
    """An async on_state handler sees connecting, ready, closed in that order."""
    client = make_client(ws_url(server))
    order: list[ClientState] = []

    async def handler(event: ClientStateChanged) -> None:
        await asyncio.sleep(0)
        order.append(event.new)

    client.on_state(handler)
    sync = Transitions(client)
    await client.connect()
    await client.ready()
    await client.disconnect()
    await until(lambda: len(order) == 3)
    assert order == sync.states == [ClientState.CONNECTING, ClientState.READY, ClientState.CLOSED]


async def test_subscribing_again_starts_a_fresh_iteration(server: Server) -> None:
    """What the last subscription left unread, its end included, does not stop an
    iteration of the next one at once."""
    async with make_client(ws_url(server)) as client:
        sub = await client.subscribe(CHANNEL)
        await client.publish(CHANNEL, {"n": 0})
        await until(lambda: sub.position.offset == 1)
        await sub.unsubscribe()
        await sub.subscribe()
        await client.publish(CHANNEL, {"n": 1})
        event = await asyncio.wait_for(anext(sub), 5)
    assert event.json() == {"n": 1}
