"""Server-side subscriptions: events on the Client, positions, recovery on reconnect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from clientkit import Transitions, make_client, until, ws_url
from conftest import UNIT, ServerFactory

from hubbub.client import (
    Backoff,
    Client,
    ClientState,
    JoinEvent,
    LeaveEvent,
    Position,
    PublicationEvent,
    ReplyError,
    SubscribedEvent,
    SubscriptionState,
    UnsubscribedEvent,
)
from hubbub.client.callbacks import Runner
from hubbub.client.server_subs import NOT_RESUBSCRIBED, ServerSubscriptions
from hubbub.core.hooks import ClientContext, Credentials
from hubbub.protocol import codes
from hubbub.protocol.codes import Disconnect
from hubbub.protocol.messages import (
    ConnectRequest,
    Publication,
    Push,
    SubscribeResult,
    Unsubscribe,
    raw,
)
from hubbub.server import Server

CHANNEL = "chat:inbox"
"""The server-side channel (the example config's chat namespace: history, recover, join_leave)."""
SERVER_SIDE = "server-side"
"""Client name that the connect hook gives the server-side channels."""


class Recorder:
    """Every server-side subscription event of one client, in order."""

    def __init__(self, client: Client) -> None:
        self.events: list[Any] = []
        client.on_server_publication(self.events.append)
        client.on_server_join(self.events.append)
        client.on_server_leave(self.events.append)
        client.on_server_subscribed(self.events.append)
        client.on_server_unsubscribed(self.events.append)

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    @property
    def publications(self) -> list[PublicationEvent]:
        return self.of(PublicationEvent)

    @property
    def subscribed(self) -> list[SubscribedEvent]:
        return self.of(SubscribedEvent)

    @property
    def unsubscribed(self) -> list[UnsubscribedEvent]:
        return self.of(UnsubscribedEvent)

    def numbers(self) -> list[int]:
        return [pub.json()["n"] for pub in self.publications]


async def _start(start_server: ServerFactory, *channels: str, **overrides: Any) -> Server:
    """A server whose connect hook subscribes clients named SERVER_SIDE to ``channels``."""
    server = await start_server(**overrides)

    async def on_connecting(ctx: ClientContext, req: ConnectRequest) -> Credentials:
        if req.name == SERVER_SIDE:
            return Credentials(user="u1", channels=channels or (CHANNEL,))
        return Credentials(user="u2")

    server.node.hooks.on_connecting = on_connecting
    return server


async def _connected(server: Server, **options: Any) -> tuple[Client, Recorder]:
    client = make_client(ws_url(server), name=SERVER_SIDE, **options)
    recorder = Recorder(client)
    await client.connect()
    await client.ready()
    return client, recorder


async def _publish(server: Server, channel: str, numbers: range) -> None:
    for n in numbers:
        await server.node.publish(channel, b'{"n":%d}' % n)


async def test_publications_reach_on_server_publication(start_server: ServerFactory) -> None:
    """Publications in a server-side channel reach on_server_publication with channel and offset."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    await _publish(server, CHANNEL, range(3))
    await until(lambda: len(seen.publications) == 3)
    assert [(p.channel, p.json(), p.offset) for p in seen.publications] == [
        (CHANNEL, {"n": 0}, 1),
        (CHANNEL, {"n": 1}, 2),
        (CHANNEL, {"n": 2}, 3),
    ]
    assert client.server_subscriptions[CHANNEL].offset == 3
    assert client.subscriptions == {}  # no client-side subscription was made
    await client.disconnect()


async def test_subscribed_event_and_position_on_connect(start_server: ServerFactory) -> None:
    """The connect result's subs give one SubscribedEvent each and a known position."""
    server = await _start(start_server, CHANNEL, "chat:other")
    await _publish(server, CHANNEL, range(2))
    client, seen = await _connected(server)
    assert {e.channel for e in seen.subscribed} == {CHANNEL, "chat:other"}
    event = next(e for e in seen.subscribed if e.channel == CHANNEL)
    assert event.recoverable and event.positioned and event.offset == 2
    assert not event.was_recovering and not event.gap
    assert client.server_subscriptions[CHANNEL] == Position(2, event.epoch)
    assert set(client.server_subscriptions) == {CHANNEL, "chat:other"}
    assert seen.publications == []  # a first connect recovers nothing
    await client.disconnect()


async def test_join_and_leave_events(start_server: ServerFactory) -> None:
    """Another client subscribing and leaving gives on_server_join and on_server_leave."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    async with make_client(ws_url(server)) as other:
        await other.subscribe(CHANNEL)
        await until(lambda: len(seen.of(JoinEvent)) == 1)
        other_id = other.client_id
    await until(lambda: len(seen.of(LeaveEvent)) == 1)
    join, leave = seen.of(JoinEvent)[0], seen.of(LeaveEvent)[0]
    assert (join.channel, join.info.client, join.info.user) == (CHANNEL, other_id, "u2")
    assert (leave.channel, leave.info.client) == (CHANNEL, other_id)
    await client.disconnect()


async def test_server_unsubscribe_ends_it_and_nothing_follows(start_server: ServerFactory) -> None:
    """An unsubscribe push gives on_server_unsubscribed; later publications are not delivered."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    mine = await client.subscribe("chat:mine")
    await _publish(server, CHANNEL, range(1))
    await until(lambda: len(seen.publications) == 1)
    server.node.unsubscribe(server.node.sessions[client.client_id], CHANNEL)
    await until(lambda: len(seen.unsubscribed) == 1)
    assert seen.unsubscribed[0] == UnsubscribedEvent(CHANNEL, 2000, "server unsubscribe")
    assert client.server_subscriptions == {}
    await _publish(server, CHANNEL, range(1, 3))
    await _publish(server, "chat:mine", range(1))
    await anext(mine)  # published after the others: they had their chance to arrive
    assert seen.numbers() == [0]
    await client.disconnect()


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_reconnect_recovers_what_was_missed_in_order(
    start_server: ServerFactory, codec: str
) -> None:
    """Publications made while away arrive after a reconnect, in order, once; "recovered"."""
    server = await _start(start_server)
    slow = Backoff(initial=20 * UNIT, jitter=0)  # away long enough to miss some
    client, seen = await _connected(server, codec=codec, backoff=slow)
    await _publish(server, CHANNEL, range(3))
    await until(lambda: len(seen.publications) == 3)
    server.node.disconnect(client.client_id, codes.FORCE_RECONNECT)
    await until(lambda: client.state is ClientState.CONNECTING)
    await _publish(server, CHANNEL, range(3, 6))  # while away
    await until(lambda: len(seen.subscribed) == 2)
    await _publish(server, CHANNEL, range(6, 8))
    await until(lambda: len(seen.publications) == 8)
    assert seen.numbers() == list(range(8))
    assert [p.offset for p in seen.publications] == list(range(1, 9))
    again = seen.subscribed[1]
    assert again.channel == CHANNEL
    assert again.was_recovering and again.recovered and not again.gap
    # The recovered publications come right after the SubscribedEvent, before the live ones.
    after = seen.events[seen.events.index(again) + 1 :]
    assert [e.json()["n"] for e in after if isinstance(e, PublicationEvent)] == list(range(3, 8))
    assert client.server_subscriptions[CHANNEL].offset == 8
    await client.disconnect()


async def test_publication_right_behind_the_connect_reply_is_kept(
    start_server: ServerFactory,
) -> None:
    """A publication the server queues just behind the connect reply is delivered, not lost."""
    server = await _start(start_server)
    broker = server.node.broker
    history = broker.history
    raced: list[bool] = []

    async def history_then_publish(channel: str, **kwargs: Any) -> Any:
        result = await history(channel, **kwargs)
        if channel == CHANNEL and not raced:
            raced.append(True)  # the position is read; this one waits behind the reply
            await server.node.publish(CHANNEL, b'{"n":0}')
        return result

    broker.history = history_then_publish  # type: ignore[method-assign]
    client, seen = await _connected(server)
    await until(lambda: len(seen.publications) == 1)
    assert seen.publications[0].offset == 1 and seen.subscribed[0].offset == 0
    await client.disconnect()


async def test_disconnect_ends_server_side_subscriptions(start_server: ServerFactory) -> None:
    """disconnect() gives on_server_unsubscribed for each and forgets them."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    await client.disconnect()
    assert seen.unsubscribed == [UnsubscribedEvent(CHANNEL, 0, "disconnect() was called")]
    assert client.server_subscriptions == {}


async def test_terminal_close_ends_server_side_subscriptions(start_server: ServerFactory) -> None:
    """A terminal disconnect code ends them with that code, as it ends client-side ones."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    server.node.disconnect(client.client_id, codes.FORCE_DISCONNECT)
    await until(lambda: client.state is ClientState.CLOSED)
    assert [(e.channel, e.code) for e in seen.unsubscribed] == [(CHANNEL, 3503)]
    assert client.server_subscriptions == {}


async def test_state_invalidated_forgets_positions(start_server: ServerFactory) -> None:
    """3014: the next connect does not ask to recover; the subscription starts afresh."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    await _publish(server, CHANNEL, range(2))
    await until(lambda: len(seen.publications) == 2)
    transitions = Transitions(client)
    server.node.disconnect(client.client_id, Disconnect(3014, "state invalidated"))
    await until(lambda: len(seen.subscribed) == 2)
    assert transitions.count(ClientState.READY) == 1
    assert not seen.subscribed[1].was_recovering
    assert client.server_subscriptions[CHANNEL].offset == 2  # the top, not a recovery
    assert len(seen.publications) == 2
    await client.disconnect()


async def test_client_side_and_server_side_subscriptions_coexist(
    start_server: ServerFactory,
) -> None:
    """A client-side subscription gets its channel's events; the server-side handlers theirs."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    sub = await client.subscribe("chat:mine")
    mine: list[PublicationEvent] = []
    sub.on_publication(mine.append)
    await _publish(server, "chat:mine", range(2))
    await _publish(server, CHANNEL, range(10, 12))
    await until(lambda: len(mine) == 2 and len(seen.publications) == 2)
    assert [p.channel for p in mine] == ["chat:mine"] * 2
    assert [p.channel for p in seen.publications] == [CHANNEL] * 2
    assert seen.numbers() == [10, 11]
    assert set(client.server_subscriptions) == {CHANNEL}
    assert set(client.subscriptions) == {"chat:mine"}
    await client.disconnect()
    assert [e.channel for e in seen.unsubscribed] == [CHANNEL]


async def test_refused_subscription_to_a_server_side_channel_keeps_its_events(
    start_server: ServerFactory,
) -> None:
    """subscribe() to a server-side channel fails (105); its events still reach the client."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    with pytest.raises(ReplyError) as caught:
        await client.subscribe(CHANNEL)
    assert caught.value.code == 105  # the server holds it already
    assert client.subscriptions[CHANNEL].state is SubscriptionState.UNSUBSCRIBED
    await _publish(server, CHANNEL, range(2))
    await until(lambda: len(seen.publications) == 2)
    assert seen.numbers() == [0, 1]
    await client.disconnect()


async def test_subscribe_push_adds_one_after_connect(start_server: ServerFactory) -> None:
    """A subscribe push adds a server-side subscription; a reconnect without it ends it."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    await _publish(server, "chat:later", range(2))
    node = server.node
    assert node.subscribe(node.sessions[client.client_id], "chat:later", data=b'{"room":1}')
    await until(lambda: len(seen.subscribed) == 2)
    added = seen.subscribed[1]
    assert (added.channel, added.offset, added.was_recovering) == ("chat:later", 2, False)
    assert added.data == b'{"room":1}'
    assert set(client.server_subscriptions) == {CHANNEL, "chat:later"}
    await _publish(server, "chat:later", range(2, 4))
    await until(lambda: len(seen.publications) == 2)
    assert [(p.channel, p.offset) for p in seen.publications] == [
        ("chat:later", 3),
        ("chat:later", 4),
    ]
    # The server's credentials do not list it: after a reconnect it is gone, and we say so.
    server.node.disconnect(client.client_id, codes.FORCE_RECONNECT)
    await until(lambda: len(seen.subscribed) == 3)
    assert seen.unsubscribed == [UnsubscribedEvent("chat:later", 2000, NOT_RESUBSCRIBED)]
    assert set(client.server_subscriptions) == {CHANNEL}
    await client.disconnect()


async def test_handlers_can_be_removed(start_server: ServerFactory) -> None:
    """The function on_server_publication returns removes the handler."""
    server = await _start(start_server)
    client, seen = await _connected(server)
    late: list[PublicationEvent] = []
    remove: Callable[[], None] = client.on_server_publication(late.append)
    remove()
    await _publish(server, CHANNEL, range(1))
    await until(lambda: len(seen.publications) == 1)
    assert late == []
    await client.disconnect()


def _pub(channel: str, offset: int) -> Push:
    return Push(channel=channel, pub=Publication(offset=offset, data=raw(b"{}")))


async def test_the_clients_own_guard_drops_repeats_and_ended_channels() -> None:
    """Without the server's help (it avoids both): a publication at or below the position
    is not delivered twice, and nothing is delivered for a channel that has ended."""
    subs = ServerSubscriptions(Runner())
    offsets: list[int] = []
    subs.on_publication.add(lambda event: offsets.append(event.offset))
    recovered = SubscribeResult(
        recoverable=True,
        positioned=True,
        offset=2,  # recovered: the position we asked from; the missed ones follow
        epoch="e",
        was_recovering=True,
        recovered=True,
        publications=[
            Publication(offset=3, data=raw(b"{}")),
            Publication(offset=4, data=raw(b"{}")),
        ],
    )
    subs.connected({CHANNEL: recovered})
    for offset in (4, 3, 5):  # the live stream overlaps the recovered publications
        subs.on_push(_pub(CHANNEL, offset))
    subs.on_push(Push(channel=CHANNEL, unsubscribe=Unsubscribe(code=2000, reason="server")))
    subs.on_push(_pub(CHANNEL, 6))
    assert offsets == [3, 4, 5]
    assert CHANNEL not in subs
