"""Tests for hubbub.transports.tcp without sockets: framers fed bytes, a fake transport.

The same behaviour over real sockets is in tests/integration (test_tcp.py and the
transport-parametrized suites).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.codecs.json import JsonCodec
from hubbub.codecs.protobuf import ProtobufCodec
from hubbub.config import Settings
from hubbub.core.node import Node
from hubbub.errors import ProtocolError
from hubbub.protocol import codes
from hubbub.protocol.varint import encode_uvarint
from hubbub.transports.tcp import (
    LengthPrefixFramer,
    LineFramer,
    _TcpConnection,
    disconnect_push,
    framer_for,
    refusal,
)

LIMIT = 16
SETTINGS = settings(deadline=None, max_examples=200, database=None)


def feed_all(framer: LineFramer | LengthPrefixFramer, pieces: list[bytes]) -> list[bytes]:
    """Every chunk the framer hands out for ``pieces`` fed in order."""
    return [c for c in (framer.feed(p) for p in pieces) if c is not None]


def too_big(framer: LineFramer | LengthPrefixFramer, *pieces: bytes) -> bool:
    """True when feeding ``pieces`` ends in a "message too big" ProtocolError."""
    try:
        feed_all(framer, list(pieces))
    except ProtocolError as exc:
        return exc.disconnect is codes.MESSAGE_TOO_BIG
    return False


# ------------------------------------------------------------------ lines


def test_lines_come_out_as_one_chunk_per_read_without_the_last_newline() -> None:
    """Complete lines of one read are one chunk, joined by newlines; the rest waits."""
    framer = LineFramer(LIMIT)
    assert framer.feed(b'{"a":1}\n{"b":2}\n{"c"') == b'{"a":1}\n{"b":2}'
    assert framer.feed(b":3}") is None
    assert framer.feed(b"\n") == b'{"c":3}'


def test_blank_line_is_passed_on_for_the_codec_to_refuse() -> None:
    """A lone newline is an empty chunk (the JSON codec answers it with bad request)."""
    assert LineFramer(LIMIT).feed(b"\n") == b""


def test_line_of_exactly_the_limit_is_accepted_one_more_is_too_big() -> None:
    """A line may be max_message_bytes long, newline not counted."""
    assert LineFramer(LIMIT).feed(b"x" * LIMIT + b"\n") == b"x" * LIMIT
    assert too_big(LineFramer(LIMIT), b"x" * (LIMIT + 1) + b"\n")
    assert too_big(LineFramer(LIMIT), b"ok\n" + b"x" * (LIMIT + 1) + b"\nok\n")


def test_unfinished_line_over_the_limit_is_too_big_before_its_newline() -> None:
    """A line that is already too long is refused without waiting for its end."""
    assert too_big(LineFramer(LIMIT), b"x" * 10, b"x" * 10)
    assert too_big(LineFramer(LIMIT), b"ok\n" + b"x" * (LIMIT + 1))


@SETTINGS
@given(
    st.lists(st.binary(max_size=LIMIT).map(lambda b: b.replace(b"\n", b"")), min_size=1),
    st.data(),
)
def test_lines_survive_any_split(lines: list[bytes], data: st.DataObject) -> None:
    """However the stream is cut into reads, the same lines come out in order."""
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunks = feed_all(LineFramer(LIMIT), pieces)
    assert b"\n".join(chunks).split(b"\n") == lines


# ------------------------------------------------------------------ length prefixes


def item(body: bytes) -> bytes:
    return encode_uvarint(len(body)) + body


def test_items_come_out_whole_with_their_prefixes() -> None:
    """Complete items of one read are one chunk, prefixes kept; a partial item waits."""
    framer = LengthPrefixFramer(LIMIT)
    assert framer.feed(item(b"ab") + item(b"") + item(b"cde")[:2]) == item(b"ab") + b"\x00"
    assert framer.feed(b"de") == item(b"cde")


def test_length_prefix_split_across_reads_waits() -> None:
    """A varint cut in the middle waits for its next byte."""
    framer = LengthPrefixFramer(300)
    body = b"x" * 200
    assert framer.feed(item(body)[:1]) is None
    assert framer.feed(item(body)[1:100]) is None
    assert framer.feed(item(body)[100:]) == item(body)


def test_length_over_the_limit_is_too_big_before_the_body() -> None:
    """A prefix announcing more than the limit is refused at once."""
    assert LengthPrefixFramer(LIMIT).feed(item(b"x" * LIMIT)) == item(b"x" * LIMIT)
    assert too_big(LengthPrefixFramer(LIMIT), encode_uvarint(LIMIT + 1))
    assert too_big(LengthPrefixFramer(LIMIT), item(b"ok"), encode_uvarint(2**40))


def test_length_prefix_of_more_than_ten_bytes_is_a_bad_request() -> None:
    """11 continuation bytes can never be a length: bad request, not a wait."""
    with pytest.raises(ProtocolError) as caught:
        LengthPrefixFramer(LIMIT).feed(b"\xff" * 11)
    assert caught.value.disconnect is codes.BAD_REQUEST


@SETTINGS
@given(st.lists(st.binary(max_size=LIMIT), min_size=1), st.data())
def test_items_survive_any_split(bodies: list[bytes], data: st.DataObject) -> None:
    """However the stream is cut into reads, the same items come out in order."""
    stream = b"".join(item(b) for b in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert b"".join(feed_all(LengthPrefixFramer(LIMIT), pieces)) == stream


def test_framer_follows_the_codec_kind() -> None:
    """Text codecs get lines, binary codecs length prefixes."""
    assert isinstance(framer_for(JsonCodec(), LIMIT), LineFramer)
    assert isinstance(framer_for(ProtobufCodec(), LIMIT), LengthPrefixFramer)


def test_refusal_and_disconnect_push() -> None:
    """The refusal line and the Disconnect push carry the reason and, for the push, the code."""
    assert refusal("unknown codec") == b"hubbub/1 error unknown codec\n"
    push = JsonCodec().encode(disconnect_push(codes.SHUTDOWN))
    assert json.loads(push) == {
        "push": {"disconnect": {"code": 3001, "reason": "shutdown, reconnect", "reconnect": True}}
    }


# ------------------------------------------------------------------ the connection


class FakeTransport:
    """Records what the connection writes and how it ends."""

    def __init__(self) -> None:
        """Open, nothing written."""
        self.written = bytearray()
        self.eof = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        """Keep the bytes."""
        self.written += data

    def writelines(self, parts: Any) -> None:
        """Keep the bytes."""
        for part in parts:
            self.written += part

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """No socket, no peer."""
        return default

    def get_write_buffer_size(self) -> int:
        """Everything is taken at once."""
        return 0

    def can_write_eof(self) -> bool:
        """A TCP stream can half-close."""
        return True

    def write_eof(self) -> None:
        """Record the half-close."""
        self.eof = True

    def is_closing(self) -> bool:
        """Closing once the half-close or abort happened."""
        return self.eof or self.aborted

    def close(self) -> None:
        """Like a half-close, for these tests."""
        self.eof = True

    def abort(self) -> None:
        """Record the abort."""
        self.aborted = True


async def _connection() -> tuple[Node, _TcpConnection, FakeTransport]:
    node = Node(Settings.model_validate({"client": {"allow_anonymous": True}}))
    connection = _TcpConnection(node, set())
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return node, connection, transport


async def test_preamble_and_connect_fed_byte_by_byte() -> None:
    """A preamble and a command arriving one byte per read still open a JSON session."""
    node, connection, transport = await _connection()
    for byte in b'hubbub/1 json\n{"id":1,"connect":{}}\n':
        connection.data_received(bytes([byte]))
    async with asyncio.timeout(2):
        while not transport.written.endswith(b"\n"):
            await asyncio.sleep(0)
    reply = json.loads(transport.written)
    assert reply["id"] == 1 and reply["connect"]["client"] in node.sessions
    connection.connection_lost(None)
    assert not node.sessions


async def test_refused_connection_drops_further_input_and_half_closes() -> None:
    """After the error line the connection half-closes and ignores what the client sends."""
    _, connection, transport = await _connection()
    connection.data_received(b"hubbub/1 yaml\n")
    connection.data_received(b'{"id":1,"connect":{}}\n')
    assert bytes(transport.written) == b"hubbub/1 error unknown codec\n"
    assert transport.eof and not transport.aborted
    assert connection.eof_received() is False  # the client's EOF completes the close
    connection.connection_lost(None)


async def test_slow_client_is_aborted_not_half_closed() -> None:
    """A slow client's full buffer is not waited on: the connection is aborted."""
    node, connection, transport = await _connection()
    connection.data_received(b'hubbub/1 json\n{"id":1,"connect":{}}\n')
    async with asyncio.timeout(2):
        while not node.sessions:
            await asyncio.sleep(0)
    connection.close(codes.SLOW)
    assert transport.aborted and not transport.eof
    connection.connection_lost(None)
