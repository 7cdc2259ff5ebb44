"""Recovery against a Centrifuge server, whose subscribe result says the stream's top.

A Centrifuge server answers a recovering subscribe with ``offset`` = the top of the
stream and the missed publications up to it; hubbub answers with the position they
follow. Both must deliver every missed publication, once, in order. A small fake
server here speaks Centrifuge's way, for client-side and server-side subscriptions.
"""

from __future__ import annotations

from typing import Any

import msgspec
from clientkit import FakeWsListener, FakeWsServer, make_client, until
from picows import WSListener, WSMsgType, WSTransport

from hubbub.client import PublicationEvent, SubscribedEvent, SubscriptionState

CHANNEL = "news"
EPOCH = "e1"


class CentrifugeStream(FakeWsServer):
    """One channel whose stream holds offsets 1..top, answering as Centrifuge does."""

    def __init__(self, *, server_side: bool = False) -> None:
        super().__init__()
        self.top = 0
        self.server_side = server_side
        self.requests: list[dict[str, Any]] = []
        """Every subscribe request, from a subscribe command or a connect's ``subs``."""

    def listener(self) -> WSListener:
        return _Listener(self)

    def publish(self) -> None:
        """Add a publication at the top and push it to the live connection."""
        self.top += 1
        push: dict[str, Any] = {"channel": CHANNEL, "pub": self._pub(self.top)}
        self.transports[-1].send(WSMsgType.TEXT, msgspec.json.encode({"push": push}))

    def missed_while_away(self, count: int) -> None:
        """Cut the connection, then add ``count`` publications nobody receives."""
        self.transports[-1].disconnect(graceful=False)
        self.top += count

    def result(self, request: dict[str, Any]) -> dict[str, Any]:
        """Centrifuge's subscribe result: ``offset`` is always the stream's top."""
        self.requests.append(request)
        result: dict[str, Any] = {
            "recoverable": True,
            "positioned": True,
            "epoch": EPOCH,
            "offset": self.top,
        }
        if request.get("recover"):
            since = request.get("offset", 0)
            result["was_recovering"] = True
            result["recovered"] = request.get("epoch") == EPOCH
            result["publications"] = [self._pub(n) for n in range(since + 1, self.top + 1)]
        return result

    @staticmethod
    def _pub(offset: int) -> dict[str, Any]:
        return {"data": {"n": offset}, "offset": offset}


class _Listener(FakeWsListener):
    def __init__(self, stream: CentrifugeStream) -> None:
        super().__init__(stream)
        self.stream = stream

    def command(self, transport: WSTransport, command: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": command["id"]}
        if "connect" in command:
            connect: dict[str, Any] = {"client": f"c{len(self.stream.transports)}"}
            if self.stream.server_side:
                asked = command["connect"].get("subs", {}).get(CHANNEL, {})
                connect["subs"] = {CHANNEL: self.stream.result(asked)}
            reply["connect"] = connect
        elif "subscribe" in command:
            reply["subscribe"] = self.stream.result(command["subscribe"])
        transport.send(WSMsgType.TEXT, msgspec.json.encode(reply))


async def test_subscription_delivers_what_a_centrifuge_server_recovers() -> None:
    """Publications 3 and 4, missed while away, arrive after the reconnect; then 5, live."""
    async with CentrifugeStream() as stream:
        client = make_client(stream.url)
        await client.connect()
        sub = client.new_subscription(CHANNEL)
        offsets: list[int] = []
        subscribed: list[SubscribedEvent] = []
        sub.on_publication(lambda event: offsets.append(event.offset))
        sub.on_subscribed(subscribed.append)
        await sub.subscribe()
        stream.publish()
        stream.publish()
        await until(lambda: offsets == [1, 2])
        stream.missed_while_away(2)
        await until(lambda: len(subscribed) == 2 and sub.state is SubscriptionState.SUBSCRIBED)
        stream.publish()  # behind the recovered ones on the same connection
        await until(lambda: 5 in offsets)
        await client.disconnect()
    assert stream.requests[-1]["recover"] and stream.requests[-1]["offset"] == 2
    assert subscribed[-1].recovered and not subscribed[-1].gap
    assert offsets == [1, 2, 3, 4, 5]
    assert sub.position.offset == 5


async def test_server_side_subscription_delivers_what_a_centrifuge_server_recovers() -> None:
    """The same through a connect result's ``subs``, for a server-side subscription."""
    async with CentrifugeStream(server_side=True) as stream:
        client = make_client(stream.url)
        offsets: list[int] = []
        subscribed: list[SubscribedEvent] = []

        def delivered(event: PublicationEvent) -> None:
            offsets.append(event.offset)

        client.on_server_publication(delivered)
        client.on_server_subscribed(subscribed.append)
        await client.connect()
        await client.ready()
        stream.publish()
        stream.publish()
        await until(lambda: offsets == [1, 2])
        stream.missed_while_away(2)
        await until(lambda: len(subscribed) == 2)
        stream.publish()
        await until(lambda: 5 in offsets)
        position = client.server_subscriptions[CHANNEL]
        await client.disconnect()
    assert stream.requests[-1]["recover"] and stream.requests[-1]["offset"] == 2
    assert subscribed[-1].recovered and not subscribed[-1].gap
    assert offsets == [1, 2, 3, 4, 5]
    assert position.offset == 5
