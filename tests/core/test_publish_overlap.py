"""A session's publishes in flight together, on a broker that keeps them in order.

With ``broker.pipelines_publishes`` (the Redis broker), consecutive publish commands of
one session start without waiting for each other, are published in the order they
arrived, and any other command waits until they are done. With a publish hook, or on a
broker that does not pipeline, commands run one at a time as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from conftest import chat_settings

from hubbub.core.hooks import Allow, ClientContext, Hooks
from hubbub.core.node import Node
from hubbub.engines.base import HistoryOptions
from hubbub.engines.memory import MemoryBroker
from hubbub.protocol.messages import Publication, PublishRequest, StreamPosition

from .fakes import Client, connected, drain, turns

ROOM = "chat:room"


class HeldBroker(MemoryBroker):
    """Publishes wait until the test releases them; every call is logged as it starts."""

    def __init__(self, pipelines: bool) -> None:
        super().__init__()
        self.pipelines_publishes = pipelines
        self.calls: list[str] = []
        self.release = asyncio.Event()

    async def publish(
        self, channel: str, pub: Publication, history: HistoryOptions | None
    ) -> StreamPosition:
        self.calls.append(f"publish {bytes(pub.data).decode()}")
        await self.release.wait()
        return await super().publish(channel, pub, history)

    async def history(
        self, channel: str, **kwargs: Any
    ) -> tuple[list[Publication], StreamPosition]:
        self.calls.append("history")
        return await super().history(channel, **kwargs)


StartNode = Callable[..., Awaitable[tuple[Node, HeldBroker]]]


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """Start nodes on a HeldBroker; at teardown each broker lets go and its node stops."""
    started: list[tuple[Node, HeldBroker]] = []

    async def start(*, pipelines: bool, hooks: Hooks | None = None) -> tuple[Node, HeldBroker]:
        broker = HeldBroker(pipelines)
        node = Node(chat_settings(), hooks=hooks or Hooks(), broker=broker)
        await node.start()
        started.append((node, broker))
        return node, broker

    yield start
    for node, broker in started:
        broker.release.set()
        await node.shutdown(0)
    await turns()


@pytest.fixture
async def pipelining(start_node: StartNode) -> tuple[Node, HeldBroker]:
    return await start_node(pipelines=True)


async def subscribed(node: Node, broker: HeldBroker) -> Client:
    """A client subscribed to ROOM; the broker's log starts after its subscribe."""
    client = await connected(node)
    await client.call("subscribe", {"channel": ROOM})
    broker.calls.clear()
    return client


def publish(cid: int, n: int) -> dict[str, Any]:
    return {"id": cid, "publish": {"channel": ROOM, "data": {"n": n}}}


async def test_publishes_start_together_and_publish_in_order(
    pipelining: tuple[Node, HeldBroker],
) -> None:
    node, broker = pipelining
    subscriber = await subscribed(node, broker)
    subscriber.conn.take()
    publisher = await connected(node)
    publisher.feed(publish(2, 1), publish(3, 2), publish(4, 3))
    await turns(5)
    # all three reached the broker although none has finished
    assert broker.calls == ['publish {"n":1}', 'publish {"n":2}', 'publish {"n":3}']
    assert publisher.conn.replies() == []
    broker.release.set()
    await drain(publisher.session)
    await turns()
    assert [r.id for r in publisher.conn.replies()] == [2, 3, 4]
    pushes = [r.push.pub for r in subscriber.conn.replies() if r.push and r.push.pub]
    assert [bytes(p.data) for p in pushes] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']


async def test_other_commands_wait_for_the_publishes_in_flight(
    pipelining: tuple[Node, HeldBroker],
) -> None:
    node, broker = pipelining
    publisher = await subscribed(node, broker)
    publisher.feed(
        publish(3, 1), publish(4, 2), {"id": 5, "history": {"channel": ROOM, "limit": 10}}
    )
    await turns(5)
    assert broker.calls == ['publish {"n":1}', 'publish {"n":2}']  # history waits
    broker.release.set()
    await drain(publisher.session)
    assert broker.calls[-1] == "history"
    history = publisher.reply(5).history
    assert history is not None
    assert [bytes(p.data) for p in history.publications] == [b'{"n":1}', b'{"n":2}']


async def _waiting_hook(ctx: ClientContext, channel: str, req: PublishRequest) -> Allow:
    await asyncio.sleep(0)  # a hook may wait: a later publish must not overtake
    return Allow()


@pytest.mark.parametrize(
    ("pipelines", "on_publish"),
    [
        pytest.param(True, _waiting_hook, id="publish-hook"),
        pytest.param(False, None, id="broker-does-not-pipeline"),
    ],
)
async def test_publishes_go_one_at_a_time_when_they_may_not_overlap(
    start_node: StartNode, pipelines: bool, on_publish: Any
) -> None:
    """With a publish hook, or on a broker that does not keep them in order, the second
    publish starts only after the first is done; both are answered, in order."""
    node, broker = await start_node(pipelines=pipelines, hooks=Hooks(on_publish=on_publish))
    publisher = await connected(node)
    publisher.feed(publish(2, 1), publish(3, 2))
    await turns(8)
    assert broker.calls == ['publish {"n":1}']
    broker.release.set()
    await drain(publisher.session)
    assert [r.id for r in publisher.conn.replies()] == [2, 3]


async def test_closing_cancels_the_publishes_in_flight(
    pipelining: tuple[Node, HeldBroker],
) -> None:
    node, broker = pipelining
    publisher = await connected(node)
    publisher.feed(publish(2, 1), publish(3, 2))
    await turns(5)
    assert len(broker.calls) == 2
    publisher.session.connection_lost()
    await turns(5)
    broker.release.set()
    await turns(5)
    assert publisher.conn.replies() == []  # nobody left to answer
    assert publisher.session._worker is None
    stored, _ = await broker.history(ROOM, since=None, limit=10, reverse=False)
    assert stored == []  # cancelled before they reached the broker's store
