"""hubbub client against a real hubbub server: every request, every codec, both transports.

Publish/receive, presence, presence stats, history, RPC and send, with JSON, Protobuf
and msgpack, over WebSocket and raw TCP.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator

import pytest
from clientkit import WAIT, OpenClient, make_client, tcp_url, until, ws_url
from conftest import ServerFactory

from hubbub.client import (
    Client,
    ClientInfo,
    JoinEvent,
    LeaveEvent,
    Position,
    PresenceStats,
    PublicationEvent,
    ReplyError,
)
from hubbub.client.codecs import resolve_codec
from hubbub.codecs.base import Codec
from hubbub.core.hooks import ClientContext
from hubbub.server import Server

CHANNEL = "chat:requests"
HAS_TCP = importlib.util.find_spec("hubbub.transports.tcp") is not None


def _codec(name: str) -> Codec:
    if name != "msgpack":
        return resolve_codec(name)
    if importlib.util.find_spec("hubbub.codecs.msgpack") is None:
        pytest.skip("hubbub.codecs.msgpack does not exist yet")
    from hubbub.codecs.msgpack import MsgpackCodec

    return MsgpackCodec()


@pytest.fixture(params=["json", "protobuf", "msgpack"])
def codec(request: pytest.FixtureRequest) -> Codec:
    """Each codec the client speaks."""
    return _codec(request.param)


@pytest.fixture(params=["websocket", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport the client speaks."""
    if request.param == "tcp" and not HAS_TCP:
        pytest.skip("hubbub.transports.tcp does not exist yet")
    return str(request.param)


@pytest.fixture
async def hub(start_server: ServerFactory, codec: Codec, transport: str) -> Server:
    """A chat server that knows ``codec`` (registered if no entry point does), TCP port on."""
    server = await start_server(**({"server.tcp_port": 0} if HAS_TCP else {}))
    if codec.name not in server.node.codecs.names():
        server.node.codecs.register(codec)

    @server.node.rpc("echo")
    async def echo(ctx: ClientContext, data: bytes) -> bytes:
        return data

    return server


@pytest.fixture
async def connect(hub: Server, codec: Codec, transport: str) -> AsyncIterator[OpenClient]:
    """Opens READY clients of the chosen codec and transport; all closed at teardown."""
    clients: list[Client] = []
    url = ws_url(hub) if transport == "websocket" else tcp_url(hub)

    async def open_client(**options: object) -> Client:
        client = make_client(url, codec=codec, **options)
        clients.append(client)
        await client.connect()
        await client.ready()
        return client

    yield open_client
    for client in clients:
        await client.disconnect()


async def test_publish_reaches_a_subscriber_with_its_offset(
    connect: OpenClient, codec: Codec
) -> None:
    """A publication from one client reaches another's subscription, offsets increasing."""
    alice, bob = await connect(), await connect()
    sub = await bob.subscribe(CHANNEL)
    first = await alice.publish(CHANNEL, {"text": "one"})
    second = await alice.publish(CHANNEL, {"text": "two"})
    assert second.offset == first.offset + 1 and first.epoch == second.epoch != ""
    got = [await anext(sub), await anext(sub)]
    assert [p.json() for p in got] == [{"text": "one"}, {"text": "two"}]
    assert [p.offset for p in got] == [first.offset, second.offset]
    assert got[0].info is not None and got[0].info.client == alice.client_id
    assert sub.position == Position(second.offset, second.epoch)


async def test_bytes_payloads_follow_the_codec(connect: OpenClient, codec: Codec) -> None:
    """Binary codecs carry any bytes untouched; JSON refuses non-JSON bytes before sending."""
    alice, bob = await connect(), await connect()
    sub = await bob.subscribe(CHANNEL)
    if codec.binary:
        await alice.publish(CHANNEL, b"\x00\xffbinary")
        assert (await anext(sub)).data == b"\x00\xffbinary"
    else:
        with pytest.raises(ValueError):
            await alice.publish(CHANNEL, b"\x00not json")
        await alice.publish(CHANNEL, b'"bytes that are JSON"')
        assert (await anext(sub)).json() == "bytes that are JSON"


async def test_callbacks_see_publications_and_join_leave(connect: OpenClient) -> None:
    """on_publication, on_join and on_leave (sync and async handlers) see the channel's life."""
    watcher, other = await connect(), await connect()
    sub = watcher.new_subscription(CHANNEL, join_leave=True, buffer_size=0)
    pubs: list[PublicationEvent] = []
    joins: list[JoinEvent] = []
    leaves: list[LeaveEvent] = []
    sub.on_publication(pubs.append)
    sub.on_join(joins.append)

    async def on_leave(event: LeaveEvent) -> None:
        await asyncio.sleep(0)
        leaves.append(event)

    sub.on_leave(on_leave)
    await sub.subscribe()
    other_sub = await other.subscribe(CHANNEL)
    await other.publish(CHANNEL, {"n": 1})
    await other_sub.unsubscribe()
    await until(lambda: len(pubs) == 1 and len(leaves) == 1)
    assert pubs[0].json() == {"n": 1}
    assert other.client_id in {j.info.client for j in joins}
    assert leaves[0].info.client == other.client_id


async def test_presence_and_presence_stats_list_the_subscribers(connect: OpenClient) -> None:
    """Two subscribed clients appear in presence by client id; stats count them."""
    alice, bob = await connect(), await connect()
    await alice.subscribe(CHANNEL)
    sub = await bob.subscribe(CHANNEL)
    presence = await sub.presence()
    assert set(presence) == {alice.client_id, bob.client_id}
    assert presence[alice.client_id] == ClientInfo(user="", client=alice.client_id)
    assert await bob.presence_stats(CHANNEL) == PresenceStats(num_clients=2, num_users=1)


async def test_history_returns_publications_oldest_first_or_reversed(connect: OpenClient) -> None:
    """history() pages through the channel: all, limited, reversed, since a position."""
    client = await connect()
    positions = [await client.publish(CHANNEL, {"n": n}) for n in range(5)]
    page = await client.history(CHANNEL)
    assert [p.json()["n"] for p in page.publications] == [0, 1, 2, 3, 4]
    assert (page.offset, page.epoch) == (positions[-1].offset, positions[-1].epoch)
    newest = await client.history(CHANNEL, limit=2, reverse=True)
    assert [p.json()["n"] for p in newest.publications] == [4, 3]
    after = await client.history(CHANNEL, since=positions[2])
    assert [p.json()["n"] for p in after.publications] == [3, 4]
    top = await client.history(CHANNEL, limit=0)
    assert top.publications == [] and top.offset == positions[-1].offset


async def test_rpc_echo_returns_the_payload(connect: OpenClient) -> None:
    """rpc("echo", data) returns the payload the server's handler gave back."""
    client = await connect()
    assert await client.rpc("echo", {"ping": [1, 2, 3]}) == b'{"ping":[1,2,3]}'


async def test_rpc_of_an_unknown_method_is_a_reply_error(connect: OpenClient) -> None:
    """A method without a handler is ReplyError 104, not temporary; the client stays READY."""
    client = await connect()
    with pytest.raises(ReplyError) as caught:
        await client.rpc("nope")
    assert (caught.value.code, caught.value.temporary) == (104, False)
    assert await client.rpc("echo", "still fine") == b'"still fine"'


async def test_send_reaches_the_servers_message_handler(connect: OpenClient, hub: Server) -> None:
    """send() is fire-and-forget: the server's on_send hook receives the payload."""
    received: list[bytes] = []

    async def on_send(ctx: ClientContext, data: bytes) -> None:
        received.append(data)

    hub.node.hooks.on_send = on_send
    client = await connect()
    await client.send({"hello": "server"})
    await until(lambda: received == [b'{"hello":"server"}'], WAIT)


async def test_permission_denied_is_a_reply_error_with_its_code(connect: OpenClient) -> None:
    """Publishing where the config forbids it raises ReplyError 102 / 103 with the code."""
    client = await connect()
    with pytest.raises(ReplyError) as caught:
        await client.publish("nonamespace", {"x": 1})
    assert caught.value.code == 103
    with pytest.raises(ReplyError) as unknown:
        await client.publish("nosuch:room", {"x": 1})
    assert unknown.value.code == 102
