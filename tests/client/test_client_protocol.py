"""The client's sans-I/O core: bytes in, replies out; commands in, frames or stream out."""

from __future__ import annotations

import pytest

from hubbub.client.protocol import ClientProtocol
from hubbub.codecs.json import JsonCodec
from hubbub.codecs.protobuf import ProtobufCodec
from hubbub.protocol.messages import (
    PING,
    Command,
    ConnectResult,
    Publication,
    PublishRequest,
    Push,
    Reply,
    raw,
)


def _pub_push(n: int) -> Reply:
    return Reply(push=Push(channel="chat:x", pub=Publication(data=raw(b'{"n":%d}' % n), offset=n)))


def test_commands_of_one_turn_share_one_frame() -> None:
    """Two commands queued before data_to_send go out as one WebSocket frame."""
    codec = JsonCodec()
    protocol = ClientProtocol(codec)
    protocol.send(Command(id=1, publish=PublishRequest(channel="chat:x", data=raw(b"1"))))
    protocol.send(Command(id=2, publish=PublishRequest(channel="chat:x", data=raw(b"2"))))
    frames = protocol.data_to_send()
    assert len(frames) == 1
    assert [c.id for c in codec.decode(frames[0], Command)] == [1, 2]
    assert protocol.data_to_send() == []


@pytest.mark.parametrize("codec", [JsonCodec(), ProtobufCodec()], ids=["json", "protobuf"])
def test_a_frame_of_replies_and_pings_gives_the_replies_and_answers_pings(codec: object) -> None:
    """Pings are counted and answered with a pong (when asked), never handed up."""
    assert isinstance(codec, JsonCodec | ProtobufCodec)
    protocol = ClientProtocol(codec)
    protocol.answer_pings = True
    items = [codec.encode(Reply(id=1, connect=ConnectResult(client="c"))), codec.encode(PING)]
    items.append(codec.encode(_pub_push(1)))
    protocol.receive_data(codec.join(items))
    replies = protocol.events_received()
    assert [r.id for r in replies] == [1, 0]
    assert protocol.pings == 1
    (frame,) = protocol.data_to_send()
    assert codec.decode(frame, Command) == [Command()]  # the pong


def test_pings_are_not_answered_unless_the_server_asked_for_pongs() -> None:
    """Without ``pong: true`` in the connect result the client sends nothing back."""
    codec = JsonCodec()
    protocol = ClientProtocol(codec)
    protocol.receive_data(b"{}")
    assert protocol.pings == 1
    assert protocol.data_to_send() == []


def test_malformed_frame_is_recorded_not_raised() -> None:
    """Garbage from the server becomes ``error``; later input is ignored."""
    protocol = ClientProtocol(JsonCodec())
    protocol.receive_data(b"{not json")
    assert protocol.error is not None
    protocol.receive_data(JsonCodec().encode(_pub_push(1)))
    assert protocol.events_received() == []


def test_json_stream_starts_with_the_preamble_and_ends_lines() -> None:
    """On TCP the first bytes are ``hubbub/1 json``, then one command per line."""
    protocol = ClientProtocol(JsonCodec(), stream=True)
    protocol.send(Command(id=1, publish=PublishRequest(channel="chat:x", data=raw(b"1"))))
    data = b"".join(protocol.data_to_send())
    assert data.startswith(b"hubbub/1 json\n")
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 2


def test_protobuf_stream_preamble_names_the_codec() -> None:
    """Binary codecs announce themselves the same way, then items follow back to back."""
    codec = ProtobufCodec()
    protocol = ClientProtocol(codec, stream=True)
    protocol.send(Command(id=7, publish=PublishRequest(channel="c")))
    data = b"".join(protocol.data_to_send())
    preamble, items = data.split(b"\n", 1)
    assert preamble == b"hubbub/1 protobuf"
    assert codec.decode(items, Command)[0].id == 7


@pytest.mark.parametrize("codec", [JsonCodec(), ProtobufCodec()], ids=["json", "protobuf"])
def test_stream_is_cut_into_messages_whatever_the_chunking(codec: object) -> None:
    """Fed one byte at a time, a stream still yields every message, in order, once."""
    assert isinstance(codec, JsonCodec | ProtobufCodec)
    replies = [_pub_push(n) for n in range(1, 6)]
    if codec.binary:
        stream = b"".join(codec.encode(r) for r in replies)
    else:
        stream = b"".join(codec.encode(r) + b"\n" for r in replies)
    protocol = ClientProtocol(codec, stream=True)
    got: list[Reply] = []
    for i in range(len(stream)):
        protocol.receive_data(stream[i : i + 1])
        got.extend(protocol.events_received())
    assert protocol.error is None
    assert [r.push.pub.offset for r in got if r.push and r.push.pub] == [1, 2, 3, 4, 5]


def test_eof_inside_a_message_is_an_error() -> None:
    """A stream that ends halfway through a line is recorded as a protocol error."""
    protocol = ClientProtocol(JsonCodec(), stream=True)
    protocol.receive_data(b'{"push":')
    protocol.receive_eof()
    assert protocol.error is not None and protocol.eof


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"hubbub/1 error unknown codec\n", "unknown codec"),
        (b"hubbub/1 error shutdown\n", "shutdown"),
    ],
)
def test_tcp_refusal_line_is_recognised(line: bytes, reason: str) -> None:
    """A server's ``hubbub/1 error <reason>`` line is kept as the refusal, split or not."""
    for codec in (JsonCodec(), ProtobufCodec()):
        protocol = ClientProtocol(codec, stream=True)
        protocol.receive_data(line[:5])
        assert protocol.error is None
        protocol.receive_data(line[5:])
        assert protocol.refusal == reason
        assert protocol.error is not None
