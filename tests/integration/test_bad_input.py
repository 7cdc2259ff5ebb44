"""Bad input closes the offending connection with the documented code; the server stays up.

Each case runs over WebSocket and raw TCP (where the code arrives as a Disconnect push),
except those about WebSocket frames themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from hubbub.server import Server
from integration.conftest import TRANSPORTS, Client, ClientFactory
from integration.wsclient import WsClient, encode_protobuf

CHANNEL = "chat:lobby"
BAD_REQUEST = (3501, "bad request")
TOO_BIG = (1009, "message too big")

Action = Callable[[Client], Awaitable[None]]


def raw(frame: str | bytes) -> Action:
    async def act(client: Client) -> None:
        await client.send_raw(frame)

    return act


def command(method: str, request: dict[str, object]) -> Action:
    async def act(client: Client) -> None:
        await client.send({"id": 99, method: request})

    return act


def fragmented(*parts: str | bytes, text: bool | None = None) -> Action:
    """One message in several frames; bytes go as given, as text frames with ``text``."""

    async def act(client: Client) -> None:
        assert isinstance(client, WsClient)
        await client.ws.send(iter(parts), text=text)

    return act


def text_frame(payload: bytes) -> Action:
    async def act(client: Client) -> None:
        assert isinstance(client, WsClient)
        await client.ws.send(payload, text=True)  # a text frame, its bytes unchecked

    return act


# A publish to the bystanders' channel: were it accepted, they would get it first and be
# closed 3506 (a JSON client cannot take non-UTF-8 data), and history would keep it.
NOT_UTF8 = b'{"id":7,"publish":{"channel":"chat:lobby","data":"\xff\xfe"}}'

# (name, protobuf, connect first, action, expected close)
CASES: list[tuple[str, bool, bool, Action, tuple[int, str]]] = [
    ("malformed JSON", False, True, raw("{not json"), BAD_REQUEST),
    ("malformed JSON first", False, False, raw("hello"), BAD_REQUEST),
    ("JSON that is not an object", False, True, raw("[1, 2]"), BAD_REQUEST),
    ("wrong field type", False, True, raw('{"id":"x","presence":{}}'), BAD_REQUEST),
    (
        "blank line between",
        False,
        True,
        raw('{"id":7,"presence":{"channel":"chat:a"}}\n\n{}'),
        BAD_REQUEST,
    ),
    ("truncated protobuf", True, True, raw(b"\x0a\x08\x01"), BAD_REQUEST),
    ("garbage protobuf", True, True, raw(b"\x03\xff\xff\xff"), BAD_REQUEST),
    ("unknown command", False, True, raw('{"id":5}'), BAD_REQUEST),
    ("unknown request field", False, True, raw('{"id":5,"bogus":{}}'), BAD_REQUEST),
    ("unknown command protobuf", True, True, raw(encode_protobuf([{"id": 5}])), BAD_REQUEST),
    (
        "command before connect",
        False,
        False,
        command("subscribe", {"channel": CHANNEL}),
        BAD_REQUEST,
    ),
    ("pong before connect", False, False, raw("{}"), BAD_REQUEST),
    ("second connect", False, True, command("connect", {}), BAD_REQUEST),
    ("second connect protobuf", True, True, command("connect", {}), BAD_REQUEST),
    ("empty frame", False, True, raw(""), BAD_REQUEST),
    ("text frame not UTF-8", False, True, text_frame(NOT_UTF8), BAD_REQUEST),
    # Over WebSocket a binary frame, over TCP a JSON line.
    ("JSON not UTF-8", False, True, raw(NOT_UTF8), BAD_REQUEST),
    (
        "fragmented text not UTF-8",
        False,
        True,
        fragmented(NOT_UTF8[:20], NOT_UTF8[20:], text=True),
        BAD_REQUEST,
    ),
    (
        "fragmented binary not UTF-8",
        False,
        True,
        fragmented(NOT_UTF8[:20], NOT_UTF8[20:], text=False),
        BAD_REQUEST,
    ),
    ("empty frame protobuf", True, True, raw(b""), BAD_REQUEST),
    ("empty channel subscribe", False, True, command("subscribe", {"channel": ""}), BAD_REQUEST),
    (
        "empty channel publish",
        False,
        True,
        command("publish", {"channel": "", "data": {}}),
        BAD_REQUEST,
    ),
    ("empty channel unsubscribe", False, True, command("unsubscribe", {}), BAD_REQUEST),
    ("empty channel history", False, True, command("history", {"channel": ""}), BAD_REQUEST),
    ("empty channel presence", False, True, command("presence", {}), BAD_REQUEST),
    ("empty channel presence_stats", False, True, command("presence_stats", {}), BAD_REQUEST),
    ("refresh without expiry", False, True, command("refresh", {"token": "t"}), BAD_REQUEST),
    ("send without handler", False, True, raw('{"send":{"data":{}}}'), (3508, "not available")),
    (
        "fragmented message over the limit",
        False,
        True,
        fragmented(
            '{"id":9,"publish":{"channel":"chat:x","data":"' + "x" * 40_000, "y" * 40_000 + '"}}'
        ),
        TOO_BIG,
    ),
]


# About WebSocket frames: on TCP the first two are half a message (see test_tcp.py), the
# empty protobuf frame is no bytes at all, and TCP has no fragments and no text frames.
WEBSOCKET_ONLY = {
    "truncated protobuf",
    "empty frame protobuf",
    "fragmented message over the limit",
    "text frame not UTF-8",
    "fragmented text not UTF-8",
    "fragmented binary not UTF-8",
}


@pytest.mark.parametrize(
    ("client_factory", "protobuf", "connect", "action", "expected"),
    [
        pytest.param(transport, *case[1:], id=f"{transport}-{case[0]}")
        for transport in TRANSPORTS
        for case in CASES
        if transport == "websocket" or case[0] not in WEBSOCKET_ONLY
    ],
    indirect=["client_factory"],
)
async def test_bad_input_closes_with_the_documented_code(
    server: Server,
    client_factory: ClientFactory,
    protobuf: bool,
    connect: bool,
    action: Action,
    expected: tuple[int, str],
) -> None:
    """Bad input closes that connection with the §6 code and reason; others carry on."""
    bystander = await client_factory.client(server)
    await bystander.subscribe(CHANNEL)

    bad = await client_factory.open(server, protobuf=protobuf)
    if connect:
        await bad.connect()
    await action(bad)
    assert await bad.closed() == expected

    # The server is still up: the connected client works, and a new one can connect.
    await bystander.publish(CHANNEL, {"still": "here"})
    assert (await bystander.push("pub"))["pub"]["data"] == {"still": "here"}
    newcomer = await client_factory.client(server)
    await newcomer.subscribe(CHANNEL)
    assert bad.client_id not in server.node.sessions
    metrics = server.node.metrics.render()[0].decode()
    assert f'hubbub_disconnects_total{{code="{expected[0]}"}} 1.0' in metrics
    await bystander.close()
    await newcomer.close()


OVERSIZED = '{"id":9,"publish":{"channel":"chat:x","data":"' + "x" * 70_000 + '"}}'


async def test_frame_over_the_limit_closes_1009_and_server_stays_up(
    server: Server, client_factory: ClientFactory
) -> None:
    """A single message over client.max_message_bytes closes that connection with 1009."""
    bystander = await client_factory.client(server)
    await bystander.subscribe(CHANNEL)
    bad = await client_factory.client(server)
    await bad.send_raw(OVERSIZED)
    code, _ = await bad.closed()
    assert code == 1009
    await bystander.publish(CHANNEL, {"still": "here"})
    assert (await bystander.push("pub"))["pub"]["data"] == {"still": "here"}
    await bystander.close()


async def test_frame_over_the_limit_is_closed_as_message_too_big(
    server: Server, client_factory: ClientFactory
) -> None:
    """A single oversized message gets the documented reason and counts as a 1009 disconnect."""
    bad = await client_factory.client(server)
    await bad.send_raw(OVERSIZED)
    assert await bad.closed() == TOO_BIG
    metrics = server.node.metrics.render()[0].decode()
    assert 'hubbub_disconnects_total{code="1009"} 1.0' in metrics


async def test_ping_command_is_answered(server: Server, client_factory: ClientFactory) -> None:
    """The unused ping command gets a ping result (hubbub's choice; Centrifuge closes 3501)."""
    client = await client_factory.client(server)
    reply = await client.call("ping", {})
    assert reply == {"id": reply["id"], "ping": {}}
    await client.subscribe(CHANNEL)  # still connected
    await client.close()


async def test_message_just_under_the_limit_is_accepted(
    server: Server, client_factory: ClientFactory
) -> None:
    """A message of exactly client.max_message_bytes is processed, not refused."""
    client = await client_factory.client(server)
    head = '{"id":9,"publish":{"channel":"chat:x","data":"'
    tail = '"}}'
    limit = server.settings.client.max_message_bytes
    future = client.expect(9)
    await client.send_raw(head + "x" * (limit - len(head) - len(tail)) + tail)
    reply = await future
    assert "publish" in reply and "error" not in reply
    await client.close()


async def test_connection_that_never_connects_is_closed_as_stale(
    client_factory: ClientFactory,
) -> None:
    """A connection that sends no connect within client.stale_timeout is closed 3502 stale."""
    server = await client_factory.start(**{"client.stale_timeout": "100ms"})
    idle = await client_factory.open(server)
    assert await idle.closed() == (3502, "stale")
