"""Request timeouts and the error hierarchy: codes, temporary flags, causes, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from clientkit import WAIT, Transitions, make_client, until, ws_url
from conftest import UNIT, ServerFactory
from faultproxy import FaultProxy

from hubbub.client import (
    Client,
    ClientBrokenError,
    ClientClosedError,
    ClientError,
    ClientState,
    ClientTrigger,
    ConnectionLostError,
    ErrorEvent,
    LocalCode,
    ReplyError,
    RequestTimeoutError,
    SubscriptionState,
)
from hubbub.core.hooks import ClientContext
from hubbub.errors import HubbubError
from hubbub.protocol import codes
from hubbub.server import Server


@pytest.fixture
async def slow_server(start_server: ServerFactory) -> AsyncIterator[tuple[Server, asyncio.Event]]:
    """A server whose RPC "slow" answers only when the test sets the event."""
    server = await start_server()
    release = asyncio.Event()

    @server.node.rpc("slow")
    async def slow(ctx: ClientContext, data: bytes) -> bytes:
        await release.wait()
        return data

    yield server, release
    release.set()


async def _ready_client(server: Server, **options: object) -> Client:
    client = make_client(ws_url(server), **options)
    await client.connect()
    await client.ready()
    return client


def _pending(client: Client) -> int:
    conn = client._ready_connection()
    return conn.pending if conn is not None else 0


async def test_request_without_a_reply_in_time_raises_request_timeout(
    slow_server: tuple[Server, asyncio.Event],
) -> None:
    """No reply in time: a temporary RequestTimeoutError; the client stays READY."""
    server, release = slow_server
    client = await _ready_client(server)
    with pytest.raises(RequestTimeoutError) as caught:
        await client.rpc("slow", "x", timeout=2 * UNIT)
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, ClientError)
    assert (error.code, error.temporary) == (LocalCode.REQUEST_TIMEOUT, True)
    assert isinstance(error.__cause__, TimeoutError)
    assert client.state is ClientState.READY and _pending(client) == 0
    release.set()
    assert await client.rpc("slow", "y") == b'"y"'
    await client.disconnect()


async def test_cancelled_request_is_cancellation_not_failure(
    slow_server: tuple[Server, asyncio.Event],
) -> None:
    """A cancelled caller gets CancelledError, the request is forgotten, the client stays."""
    server, _ = slow_server
    client = await _ready_client(server)
    task = asyncio.ensure_future(client.rpc("slow", "x"))
    await until(lambda: task.done() or bool(client._conn and client._conn.pending))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.state is ClientState.READY and _pending(client) == 0
    await client.disconnect()


async def test_disconnect_during_a_request_is_cancellation_not_failure(
    slow_server: tuple[Server, asyncio.Event],
) -> None:
    """disconnect() during a request gives ClientClosedError, never ConnectionLostError."""
    server, _ = slow_server
    client = await _ready_client(server)
    task = asyncio.ensure_future(client.rpc("slow", "x"))
    await until(lambda: bool(client._conn and client._conn.pending))
    await client.disconnect()
    with pytest.raises(ClientClosedError) as caught:
        await task
    assert not isinstance(caught.value, ConnectionLostError)
    assert (caught.value.code, caught.value.temporary) == (0, False)


@pytest.mark.parametrize(
    ("disconnect", "temporary"), [(codes.FORCE_RECONNECT, True), (codes.FORCE_DISCONNECT, False)]
)
async def test_server_closing_during_a_request_is_connection_lost(
    slow_server: tuple[Server, asyncio.Event], disconnect: codes.Disconnect, temporary: bool
) -> None:
    """A server close during a request is ConnectionLostError with the server's code."""
    server, _ = slow_server
    client = await _ready_client(server)
    task = asyncio.ensure_future(client.rpc("slow", "x"))
    await until(lambda: bool(client._conn and client._conn.pending))
    server.node.disconnect(client.client_id, disconnect)
    with pytest.raises(ConnectionLostError) as caught:
        await task
    error = caught.value
    assert (error.code, error.reason, error.temporary) == (
        disconnect.code,
        disconnect.reason,
        temporary,
    )
    await client.disconnect()


async def test_network_cut_during_a_request_is_transport_closed(
    slow_server: tuple[Server, asyncio.Event],
) -> None:
    """A cut without a close frame is ConnectionLostError code 1 "transport closed", temporary."""
    server, _ = slow_server
    async with FaultProxy(server.websocket.port) as proxy:
        client = make_client(proxy.url("ws", "/connection/websocket"))
        await client.connect()
        await client.ready()
        task = asyncio.ensure_future(client.rpc("slow", "x"))
        await until(lambda: bool(client._conn and client._conn.pending))
        await proxy.cut()
        with pytest.raises(ConnectionLostError) as caught:
            await task
        assert (caught.value.code, caught.value.temporary) == (LocalCode.TRANSPORT_CLOSED, True)
        await client.disconnect()


async def test_requests_of_a_client_never_connected_or_disconnected_are_refused(
    server: Server,
) -> None:
    """Before connect() and after disconnect() every call raises ClientClosedError at once."""
    client = make_client(ws_url(server))
    with pytest.raises(ClientClosedError):
        await client.publish("chat:x", {})
    with pytest.raises(ClientClosedError):
        await client.new_subscription("chat:x").subscribe()
    await client.connect()
    await client.ready()
    await client.disconnect()
    with pytest.raises(ClientClosedError):
        await client.rpc("anything")
    with pytest.raises(ClientClosedError):
        await client.ready()


async def test_request_made_while_reconnecting_waits_for_ready(server: Server) -> None:
    """A publish issued while the client is CONNECTING goes out once it is READY again."""
    client = await _ready_client(server)
    server.node.disconnect(client.client_id, codes.FORCE_RECONNECT)
    await until(lambda: client.state is ClientState.CONNECTING)
    position = await client.publish("chat:x", {"during": "reconnect"})
    assert position.offset == 1 and client.state is ClientState.READY
    await client.disconnect()


async def test_refused_subscribe_raises_and_reports_an_error_event(server: Server) -> None:
    """Subscribing where it is not allowed: ReplyError 103, UNSUBSCRIBED, an ErrorEvent."""
    client = await _ready_client(server)
    sub = client.new_subscription("nonamespace")
    errors: list[ErrorEvent] = []
    sub.on_error(errors.append)
    with pytest.raises(ReplyError) as caught:
        await sub.subscribe()
    assert (caught.value.code, caught.value.temporary) == (103, False)
    assert sub.state is SubscriptionState.UNSUBSCRIBED
    assert [e.error for e in errors] == [caught.value]
    await client.disconnect()


async def test_connect_attempts_time_out_against_a_mute_server() -> None:
    """Attempts against a mute peer time out; max_retries of them make the client BROKEN."""
    held: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    listener = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        client = make_client(
            f"ws://127.0.0.1:{port}/connection/websocket", timeout=2 * UNIT, max_retries=2
        )
        seen = Transitions(client)
        await client.connect()
        with pytest.raises(ClientBrokenError) as caught:
            await client.ready(timeout=WAIT)
        assert isinstance(caught.value.__cause__, TimeoutError)
        failures = [e for e in seen.events if e.trigger is ClientTrigger.ATTEMPT_FAILED]
        assert len(failures) == 2
        await client.disconnect()
    finally:
        listener.close()
        for writer in held:
            writer.close()
        with contextlib.suppress(Exception):
            await listener.wait_closed()


def test_every_client_error_is_a_hubbub_error_with_code_and_temporary() -> None:
    """The hierarchy: ClientError under HubbubError; subclasses carry code and temporary."""
    for cls in (ClientClosedError, ConnectionLostError, RequestTimeoutError, ClientBrokenError):
        assert issubclass(cls, ClientError) and issubclass(cls, HubbubError)
    lost = ConnectionLostError("force reconnect", code=3011, temporary=True)
    assert (lost.code, lost.reason, lost.temporary) == (3011, "force reconnect", True)
    assert "3011" in str(lost)
    assert not issubclass(ClientClosedError, ConnectionLostError)
    assert not issubclass(asyncio.CancelledError, HubbubError)
