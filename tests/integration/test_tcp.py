"""What only the raw TCP transport has: the preamble, stream framing, Disconnect pushes.

Everything else about TCP runs in the shared integration tests (``client_factory``).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import UNIT, ServerFactory, ws_url

from hubbub.codecs.msgpack import MsgpackCodec
from hubbub.server import Server
from integration.conftest import WITH_TCP
from integration.recording import RecordingConnection
from integration.tcpclient import NO_DISCONNECT, TcpClient
from integration.wsclient import WAIT, encode_protobuf, open_client, payload, uvarint

CHANNEL = "chat:lobby"
TOO_BIG = (1009, "message too big")


def tcp_port(server: Server) -> int:
    assert server.tcp is not None
    return server.tcp.port


async def exchange(server: Server, data: bytes) -> bytes:
    """Write ``data`` on a fresh TCP connection; everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(server))
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()


# ------------------------------------------------------------------- the port


async def test_tcp_port_is_off_by_default(start_server: ServerFactory) -> None:
    """Without server.tcp_port there is no TCP listener."""
    server = await start_server()
    assert server.tcp is None


async def test_tcp_port_0_binds_a_free_port(server: Server) -> None:
    """server.tcp_port 0 listens on a free port, exposed as server.tcp.port."""
    assert tcp_port(server) > 0
    assert tcp_port(server) != server.websocket.port


# ------------------------------------------------------------------- preamble


@pytest.mark.parametrize(
    "preamble",
    [
        b"GET / HTTP/1.1\r\n",
        b"hubbub/2 json\n",
        b"hubbub/1 json extra\n",
        b"hubbub/1\n",
        b"\n",
        b"hubbub/1 " + b"j" * 60,  # no newline within 64 bytes
    ],
    ids=["http", "version", "three words", "no codec", "blank", "too long"],
)
async def test_bad_preamble_gets_one_error_line_then_the_close(
    server: Server, preamble: bytes
) -> None:
    """A first line that is not ``hubbub/1 <codec>`` gets ``hubbub/1 error bad preamble``."""
    assert await exchange(server, preamble) == b"hubbub/1 error bad preamble\n"
    assert not server.node.sessions


async def test_unknown_codec_gets_one_error_line_then_the_close(server: Server) -> None:
    """A codec nobody registered gets ``hubbub/1 error unknown codec`` and no session."""
    data = b'hubbub/1 xml\n{"id":1,"connect":{}}\n'
    assert await exchange(server, data) == b"hubbub/1 error unknown codec\n"
    assert not server.node.sessions


async def test_preamble_of_64_bytes_is_read_65_is_not(server: Server) -> None:
    """The preamble line may be 64 bytes with its newline; one more is a bad preamble."""
    line = b"hubbub/1 " + b"x" * 54 + b"\n"
    assert len(line) == 64
    assert await exchange(server, line) == b"hubbub/1 error unknown codec\n"
    longer = b"hubbub/1 " + b"x" * 55 + b"\n"
    assert await exchange(server, longer) == b"hubbub/1 error bad preamble\n"


async def test_preamble_with_crlf_and_commands_in_the_same_write(server: Server) -> None:
    """``hubbub/1 json\\r\\n`` is accepted and the commands after it in one write are run."""
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(server))
    writer.write(
        b'hubbub/1 json\r\n{"id":1,"connect":{}}\n{"id":2,"presence":{"channel":"chat:a"}}\n'
    )
    first = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
    second = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
    assert first["id"] == 1 and first["connect"]["client"]
    assert second == {"id": 2, "presence": {"presence": {}}}
    writer.close()


async def test_no_preamble_in_time_is_refused_as_stale(start_server: ServerFactory) -> None:
    """A connection that names no codec within client.stale_timeout gets ``error stale``."""
    server = await start_server(**WITH_TCP, **{"client.stale_timeout": "100ms"})
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(server))
    writer.write(b"hubbub/1 js")  # and never the rest
    assert await asyncio.wait_for(reader.read(), WAIT) == b"hubbub/1 error stale\n"
    writer.close()


async def test_shutdown_refuses_connections_still_in_their_preamble(server: Server) -> None:
    """On stop, a connection that has not named its codec gets ``error shutdown`` and EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port(server))
    writer.write(b"hubbub/1")
    await writer.drain()
    async with asyncio.timeout(WAIT):  # the server has taken the connection in
        while server.tcp is not None and not server.tcp._pending:
            await asyncio.sleep(UNIT / 5)
    await server.stop()
    assert await asyncio.wait_for(reader.read(), WAIT) == b"hubbub/1 error shutdown\n"
    writer.close()


# --------------------------------------------------------------------- framing


async def test_disconnect_push_is_the_last_line_before_the_close(server: Server) -> None:
    """A close on TCP is a Disconnect push (code, reason; false reconnect omitted), then EOF."""
    data = b'hubbub/1 json\n{"id":1,"connect":{}}\n{"id":2,"connect":{}}\n'
    received = await exchange(server, data)
    assert received.endswith(b"\n")
    lines = received.decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["connect"]["client"]
    assert json.loads(lines[1]) == {"push": {"disconnect": {"code": 3501, "reason": "bad request"}}}


async def test_publications_in_one_turn_are_one_write_of_lines(server: Server) -> None:
    """Publications of one loop turn leave in one write: one line each, newline-terminated."""
    client = await TcpClient.open(tcp_port(server))
    await client.connect()
    await client.subscribe(CHANNEL)
    session = server.node.sessions[client.client_id]
    recording = RecordingConnection(session.connection)
    session.connection = recording
    writes = recording.frames
    for i in range(5):  # the memory broker never suspends: all five in this turn
        await server.node.publish(CHANNEL, json.dumps({"n": i}).encode())
    pubs = await client.pubs(5)  # the client parses complete lines only: each had its \n
    assert [p["data"]["n"] for p in pubs] == list(range(5))
    assert len(writes) == 1
    assert len(writes[0].split(b"\n")) == 5
    await client.close()


@pytest.mark.parametrize("codec", ["protobuf", "msgpack"])
async def test_binary_length_over_the_limit_closes_before_the_body(
    server: Server, codec: str
) -> None:
    """A length prefix over client.max_message_bytes closes 1009 without waiting for the body."""
    server.node.codecs.register(MsgpackCodec())
    client = await TcpClient.open(tcp_port(server), codec=codec)
    await client.connect()
    client.write(uvarint(server.settings.client.max_message_bytes + 1))
    assert await client.closed() == TOO_BIG


async def test_garbage_length_prefix_is_a_bad_request(server: Server) -> None:
    """A length prefix of more than 10 bytes is malformed: 3501 bad request."""
    client = await TcpClient.open(tcp_port(server), protobuf=True)
    await client.connect()
    client.write(b"\xff" * 11)
    assert await client.closed() == (3501, "bad request")


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_half_a_message_then_eof_runs_nothing(server: Server, protobuf: bool) -> None:
    """EOF in the middle of a message: the connection is dropped and the half never runs."""
    client = await TcpClient.open(tcp_port(server), protobuf=protobuf)
    await client.connect()
    publish = {"id": 9, "publish": {"channel": "chat:half", "data": {"n": 1}}}
    whole = encode_protobuf([publish]) if protobuf else json.dumps(publish).encode() + b"\n"
    client.write(whole[: len(whole) // 2])
    assert client.transport is not None
    client.transport.write_eof()
    assert await client.closed() == NO_DISCONNECT
    assert client.client_id not in server.node.sessions
    observer = await open_client(ws_url(server))
    history = await observer.call("history", {"channel": "chat:half", "limit": -1})
    assert history["history"]["publications"] == []
    await observer.close()


# --------------------------------------------------------------------- msgpack


async def test_msgpack_client_talks_to_json_and_websocket_clients(server: Server) -> None:
    """A msgpack TCP client connects, pings, publishes and receives alongside a JSON WebSocket."""
    server.node.codecs.register(MsgpackCodec())  # until the entry point is installed
    m = await TcpClient.open(tcp_port(server), codec="msgpack")
    await m.connect()
    j = await open_client(ws_url(server))
    await m.subscribe(CHANNEL)
    await j.subscribe(CHANNEL)
    await m.publish(CHANNEL, {"from": "msgpack"})
    await j.publish(CHANNEL, {"from": "json"})
    for client in (m, j):
        pubs = await client.pubs(2)
        assert [payload(p["data"]) for p in pubs] == [{"from": "msgpack"}, {"from": "json"}]
    await m.publish(CHANNEL, b"\x00\xff binary")  # msgpack carries any bytes
    assert (await m.push("pub"))["pub"]["data"] == b"\x00\xff binary"
    assert await j.closed() == (3506, "inappropriate protocol")
    await m.send({"id": 99, "connect": {}})  # a second connect: 3501 as a msgpack push
    assert await m.closed() == (3501, "bad request")
