"""The Protobuf codec: varint framing, exact bytes, presence, and conversion of every message.

The expected bytes of each case come from the generated classes, built by hand field by
field (or, for a few, written out byte by byte), never from the codec under test.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
import pytest
from msgspec import Raw

from hubbub.codecs.base import Codec
from hubbub.codecs.protobuf import ProtobufCodec, _top_plan
from hubbub.errors import ProtocolError
from hubbub.protocol import client_pb2 as pb
from hubbub.protocol import messages as m
from hubbub.protocol.varint import MAX_UVARINT, decode_uvarint, encode_uvarint

CODEC = ProtobufCodec()
U64 = MAX_UVARINT


def item(message: pb.Command | pb.Reply) -> bytes:
    """The expected item: uvarint length prefix + the generated message's bytes."""
    body = message.SerializeToString()
    return encode_uvarint(len(body)) + body


PB = TypeVar("PB", pb.Command, pb.Reply)


def _parsed(data: bytes, kind: type[PB]) -> PB:
    """The one message in a codec item, parsed by the generated class."""
    length, start = decode_uvarint(data, 0)
    assert start + length == len(data)
    return kind.FromString(data[start:])


# ------------------------------------------------------------------ cases: every message

INFO = m.ClientInfo(user="42", client="9f1c", conn_info=Raw(b'{"name":"Ann"}'), chan_info=Raw(b"1"))
PB_INFO = pb.ClientInfo(user="42", client="9f1c", conn_info=b'{"name":"Ann"}', chan_info=b"1")

FULL_PUB = m.Publication(
    data=Raw(b'{"text":"hi"}'),
    info=INFO,
    offset=U64,
    tags={"k": "v", "x": ""},
    delta=True,
    time=1_700_000_000_000,
    channel="chat:*",
    key="item",
    removed=True,
    score=-5,
    epoch="e1",
    version=2,
)
PB_FULL_PUB = pb.Publication(
    data=b'{"text":"hi"}',
    info=PB_INFO,
    offset=U64,
    tags={"k": "v", "x": ""},
    delta=True,
    time=1_700_000_000_000,
    channel="chat:*",
    key="item",
    removed=True,
    score=-5,
    epoch="e1",
    version=2,
)

SUB_REQ = m.SubscribeRequest(
    channel="chat:1",
    token="t",
    recover=True,
    epoch="xyz",
    offset=U64,
    data=Raw(b"[1,2]"),
    positioned=True,
    recoverable=True,
    join_leave=True,
    delta="fossil",
    flag=3,
    type=4,
)
PB_SUB_REQ = pb.SubscribeRequest(
    channel="chat:1",
    token="t",
    recover=True,
    epoch="xyz",
    offset=U64,
    data=b"[1,2]",
    positioned=True,
    recoverable=True,
    join_leave=True,
    delta="fossil",
    flag=3,
    type=4,
)

SUB_RES = m.SubscribeResult(
    expires=True,
    ttl=30,
    recoverable=True,
    epoch="e",
    publications=[m.Publication(data=Raw(b"1"), offset=4), m.Publication()],
    recovered=True,
    offset=3,
    positioned=True,
    data=Raw(b"x"),
    was_recovering=True,
    delta=True,
    id=-7,
    type=1,
)
PB_SUB_RES = pb.SubscribeResult(
    expires=True,
    ttl=30,
    recoverable=True,
    epoch="e",
    publications=[pb.Publication(data=b"1", offset=4), pb.Publication()],
    recovered=True,
    offset=3,
    positioned=True,
    data=b"x",
    was_recovering=True,
    delta=True,
    id=-7,
    type=1,
)

COMMANDS: list[tuple[str, m.Command, pb.Command]] = [
    ("pong", m.Command(), pb.Command()),
    (
        "connect",
        m.Command(
            id=1,
            connect=m.ConnectRequest(
                token="T",
                data=Raw(b'{"a":1}'),
                subs={"news": m.SubscribeRequest(recover=True, epoch="e", offset=5), "x": SUB_REQ},
                name="python",
                version="1.0",
                headers={"X-A": "b"},
                flag=1,
                dictionary="d1",
                profile="mobile",
            ),
        ),
        pb.Command(
            id=1,
            connect=pb.ConnectRequest(
                token="T",
                data=b'{"a":1}',
                subs={
                    "news": pb.SubscribeRequest(recover=True, epoch="e", offset=5),
                    "x": PB_SUB_REQ,
                },
                name="python",
                version="1.0",
                headers={"X-A": "b"},
                flag=1,
                dict="d1",
                profile="mobile",
            ),
        ),
    ),
    ("subscribe", m.Command(id=2, subscribe=SUB_REQ), pb.Command(id=2, subscribe=PB_SUB_REQ)),
    (
        "unsubscribe",
        m.Command(id=3, unsubscribe=m.UnsubscribeRequest(channel="chat:1")),
        pb.Command(id=3, unsubscribe=pb.UnsubscribeRequest(channel="chat:1")),
    ),
    (
        "publish",
        m.Command(id=4, publish=m.PublishRequest(channel="chat:1", data=Raw(b"\x00\xffbin"))),
        pb.Command(id=4, publish=pb.PublishRequest(channel="chat:1", data=b"\x00\xffbin")),
    ),
    (
        "presence",
        m.Command(id=5, presence=m.PresenceRequest(channel="chat:1")),
        pb.Command(id=5, presence=pb.PresenceRequest(channel="chat:1")),
    ),
    (
        "presence_stats",
        m.Command(id=6, presence_stats=m.PresenceStatsRequest(channel="chat:1")),
        pb.Command(id=6, presence_stats=pb.PresenceStatsRequest(channel="chat:1")),
    ),
    (
        "history",
        m.Command(
            id=7,
            history=m.HistoryRequest(
                channel="chat:1",
                limit=-1,
                since=m.StreamPosition(offset=10, epoch="e"),
                reverse=True,
            ),
        ),
        pb.Command(
            id=7,
            history=pb.HistoryRequest(
                channel="chat:1",
                limit=-1,
                since=pb.StreamPosition(offset=10, epoch="e"),
                reverse=True,
            ),
        ),
    ),
    (
        "history since zero position",
        m.Command(id=7, history=m.HistoryRequest(channel="c", since=m.StreamPosition())),
        pb.Command(id=7, history=pb.HistoryRequest(channel="c", since=pb.StreamPosition())),
    ),
    ("ping", m.Command(id=8, ping=m.PingRequest()), pb.Command(id=8, ping=pb.PingRequest())),
    (
        "send",
        m.Command(send=m.SendRequest(data=Raw(b"hello"))),
        pb.Command(send=pb.SendRequest(data=b"hello")),
    ),
    (
        "rpc",
        m.Command(id=9, rpc=m.RPCRequest(data=Raw(b'{"q":1}'), method="sum")),
        pb.Command(id=9, rpc=pb.RPCRequest(data=b'{"q":1}', method="sum")),
    ),
    (
        "refresh",
        m.Command(id=10, refresh=m.RefreshRequest(token="T2")),
        pb.Command(id=10, refresh=pb.RefreshRequest(token="T2")),
    ),
    (
        "sub_refresh",
        m.Command(id=11, sub_refresh=m.SubRefreshRequest(channel="chat:1", token="S2")),
        pb.Command(id=11, sub_refresh=pb.SubRefreshRequest(channel="chat:1", token="S2")),
    ),
    (
        "max id",
        m.Command(id=2**32 - 1, unsubscribe=m.UnsubscribeRequest()),
        pb.Command(id=2**32 - 1, unsubscribe=pb.UnsubscribeRequest()),
    ),
]

REPLIES: list[tuple[str, m.Reply, pb.Reply]] = [
    ("ping", m.Reply(), pb.Reply()),
    (
        "error",
        m.Reply(id=4, error=m.Error(code=103, message="permission denied")),
        pb.Reply(id=4, error=pb.Error(code=103, message="permission denied")),
    ),
    (
        "temporary error",
        m.Reply(id=4, error=m.Error(code=100, message="internal server error", temporary=True)),
        pb.Reply(id=4, error=pb.Error(code=100, message="internal server error", temporary=True)),
    ),
    (
        "connect",
        m.Reply(
            id=1,
            connect=m.ConnectResult(
                client="9f1c",
                version="0.1.0",
                expires=True,
                ttl=60,
                data=Raw(b'{"motd":"hi"}'),
                subs={
                    "news": m.SubscribeResult(recoverable=True, epoch="e", offset=3),
                    "b": SUB_RES,
                },
                ping=25,
                pong=True,
                session="s",
                node="n",
                time=1_700_000_000_000,
            ),
        ),
        pb.Reply(
            id=1,
            connect=pb.ConnectResult(
                client="9f1c",
                version="0.1.0",
                expires=True,
                ttl=60,
                data=b'{"motd":"hi"}',
                subs={
                    "news": pb.SubscribeResult(recoverable=True, epoch="e", offset=3),
                    "b": PB_SUB_RES,
                },
                ping=25,
                pong=True,
                session="s",
                node="n",
                time=1_700_000_000_000,
            ),
        ),
    ),
    ("subscribe", m.Reply(id=2, subscribe=SUB_RES), pb.Reply(id=2, subscribe=PB_SUB_RES)),
    (
        "plain subscribe",
        m.Reply(id=2, subscribe=m.SubscribeResult()),
        pb.Reply(id=2, subscribe=pb.SubscribeResult()),
    ),
    (
        "unsubscribe",
        m.Reply(id=3, unsubscribe=m.UnsubscribeResult()),
        pb.Reply(id=3, unsubscribe=pb.UnsubscribeResult()),
    ),
    (
        "publish",
        m.Reply(id=4, publish=m.PublishResult()),
        pb.Reply(id=4, publish=pb.PublishResult()),
    ),
    (
        "publish with hubbub's offset",
        m.Reply(id=4, publish=m.PublishResult(offset=12, epoch="e")),
        pb.Reply(id=4, publish=pb.PublishResult(offset=12, epoch="e")),
    ),
    (
        "presence",
        m.Reply(
            id=5,
            presence=m.PresenceResult(
                presence={"9f1c": INFO, "c2": m.ClientInfo(user="", client="c2")}
            ),
        ),
        pb.Reply(
            id=5,
            presence=pb.PresenceResult(
                presence={"9f1c": PB_INFO, "c2": pb.ClientInfo(client="c2")}
            ),
        ),
    ),
    (
        "empty presence",
        m.Reply(id=5, presence=m.PresenceResult(presence={})),
        pb.Reply(id=5, presence=pb.PresenceResult()),
    ),
    (
        "presence_stats",
        m.Reply(id=6, presence_stats=m.PresenceStatsResult(num_clients=3, num_users=2)),
        pb.Reply(id=6, presence_stats=pb.PresenceStatsResult(num_clients=3, num_users=2)),
    ),
    (
        "zero presence_stats",
        m.Reply(id=6, presence_stats=m.PresenceStatsResult(num_clients=0, num_users=0)),
        pb.Reply(id=6, presence_stats=pb.PresenceStatsResult()),
    ),
    (
        "history",
        m.Reply(
            id=7,
            history=m.HistoryResult(
                publications=[FULL_PUB, m.Publication(offset=9)], epoch="e", offset=9
            ),
        ),
        pb.Reply(
            id=7,
            history=pb.HistoryResult(
                publications=[PB_FULL_PUB, pb.Publication(offset=9)], epoch="e", offset=9
            ),
        ),
    ),
    (
        "empty history",
        m.Reply(id=7, history=m.HistoryResult(publications=[], epoch="", offset=0)),
        pb.Reply(id=7, history=pb.HistoryResult()),
    ),
    ("ping result", m.Reply(id=8, ping=m.PingResult()), pb.Reply(id=8, ping=pb.PingResult())),
    (
        "rpc",
        m.Reply(id=9, rpc=m.RPCResult(data=Raw(b"42"))),
        pb.Reply(id=9, rpc=pb.RPCResult(data=b"42")),
    ),
    (
        "refresh",
        m.Reply(id=10, refresh=m.RefreshResult(client="c", version="v", expires=True, ttl=60)),
        pb.Reply(id=10, refresh=pb.RefreshResult(client="c", version="v", expires=True, ttl=60)),
    ),
    (
        "sub_refresh",
        m.Reply(id=11, sub_refresh=m.SubRefreshResult(expires=True, ttl=60)),
        pb.Reply(id=11, sub_refresh=pb.SubRefreshResult(expires=True, ttl=60)),
    ),
    (
        "pub push",
        m.Reply(push=m.Push(channel="chat:1", pub=FULL_PUB)),
        pb.Reply(push=pb.Push(channel="chat:1", pub=PB_FULL_PUB)),
    ),
    (
        "empty pub push",
        m.Reply(push=m.Push(channel="chat:1", pub=m.Publication())),
        pb.Reply(push=pb.Push(channel="chat:1", pub=pb.Publication())),
    ),
    (
        "join push",
        m.Reply(push=m.Push(channel="chat:1", join=m.Join(info=INFO))),
        pb.Reply(push=pb.Push(channel="chat:1", join=pb.Join(info=PB_INFO))),
    ),
    (
        "leave push",
        m.Reply(
            push=m.Push(channel="chat:1", leave=m.Leave(info=m.ClientInfo(user="", client="")))
        ),
        pb.Reply(push=pb.Push(channel="chat:1", leave=pb.Leave(info=pb.ClientInfo()))),
    ),
    (
        "unsubscribe push",
        m.Reply(
            push=m.Push(
                channel="chat:1", unsubscribe=m.Unsubscribe(code=2500, reason="insufficient state")
            )
        ),
        pb.Reply(
            push=pb.Push(
                channel="chat:1", unsubscribe=pb.Unsubscribe(code=2500, reason="insufficient state")
            )
        ),
    ),
    (
        "message push",
        m.Reply(push=m.Push(message=m.Message(data=Raw(b"null")))),
        pb.Reply(push=pb.Push(message=pb.Message(data=b"null"))),
    ),
    (
        "subscribe push",
        m.Reply(
            push=m.Push(
                channel="news",
                subscribe=m.Subscribe(
                    recoverable=True, epoch="e", offset=1, positioned=True, data=Raw(b'"x"')
                ),
            )
        ),
        pb.Reply(
            push=pb.Push(
                channel="news",
                subscribe=pb.Subscribe(
                    recoverable=True, epoch="e", offset=1, positioned=True, data=b'"x"'
                ),
            )
        ),
    ),
    (
        "disconnect push",
        m.Reply(push=m.Push(disconnect=m.Disconnect(code=3001, reason="shutdown", reconnect=True))),
        pb.Reply(
            push=pb.Push(disconnect=pb.Disconnect(code=3001, reason="shutdown", reconnect=True))
        ),
    ),
]


def _structs_in(value: object) -> set[type]:
    """Every Struct class used anywhere inside ``value``."""
    if isinstance(value, msgspec.Struct):
        found: set[type] = {type(value)}
        for name in value.__struct_fields__:
            found |= _structs_in(getattr(value, name))
        return found
    if isinstance(value, list):
        return set().union(*map(_structs_in, value)) if value else set()
    if isinstance(value, dict):
        return set().union(*map(_structs_in, value.values())) if value else set()
    return set()


def test_cases_cover_every_message_type() -> None:
    """The tables below exercise every Struct defined in messages.py."""
    defined = {
        obj
        for obj in vars(m).values()
        if isinstance(obj, type)
        and issubclass(obj, msgspec.Struct)
        and obj.__module__ == m.__name__
    }
    defined.discard(m._Message)
    used = set().union(*(_structs_in(msg) for _, msg, _ in COMMANDS + REPLIES))
    assert defined - used == set()


@pytest.mark.parametrize(("name", "message", "expected"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_command_bytes_and_back(name: str, message: m.Command, expected: pb.Command) -> None:
    """Each command encodes to the generated class's message and decodes back to itself."""
    data = CODEC.encode(message)
    assert _parsed(data, pb.Command) == expected  # map entries may come in any order
    assert CODEC.decode(item(expected), m.Command) == [message]


@pytest.mark.parametrize(("name", "message", "expected"), REPLIES, ids=[r[0] for r in REPLIES])
def test_reply_bytes_and_back(name: str, message: m.Reply, expected: pb.Reply) -> None:
    """Each reply and push encodes to the generated class's message and decodes back to itself."""
    data = CODEC.encode(message)
    assert _parsed(data, pb.Reply) == expected  # map entries may come in any order
    assert CODEC.decode(item(expected), m.Reply) == [message]


# ------------------------------------------------------------------ exact bytes


def test_ping_and_pong_are_one_zero_byte() -> None:
    """An empty Reply (ping) and an empty Command (pong) are the single byte 0x00."""
    assert CODEC.encode(m.PING) == b"\x00"
    assert CODEC.encode(m.PONG) == b"\x00"
    assert CODEC.decode(b"\x00", m.Reply) == [m.Reply()]
    assert CODEC.decode(b"\x00", m.Command) == [m.Command()]


def test_empty_result_is_written_and_present() -> None:
    """Reply{id:4, publish:{}} keeps its empty result: tag 8 with length 0 after the id."""
    data = CODEC.encode(m.Reply(id=4, publish=m.PublishResult()))
    assert data == b"\x04" + b"\x08\x04" + b"\x42\x00"
    assert CODEC.decode(data, m.Reply)[0].publish == m.PublishResult()


def test_absent_result_stays_absent() -> None:
    """A reply without a result field decodes with that field None, not an empty result."""
    data = CODEC.encode(m.Reply(id=4))
    assert data == b"\x02\x08\x04"
    assert CODEC.decode(data, m.Reply)[0].publish is None


def test_publication_push_exact_bytes() -> None:
    """The hot-path push is the Centrifuge wire layout, byte for byte."""
    message = m.Reply(
        push=m.Push(channel="chat:1", pub=m.Publication(data=Raw(b'{"text":"hi"}'), offset=7))
    )
    publication = b'\x22\x0d{"text":"hi"}' + b"\x30\x07"  # data = 4, offset = 6
    push = b"\x12\x06chat:1" + b"\x22" + bytes([len(publication)]) + publication  # channel 2, pub 4
    reply = b"\x22" + bytes([len(push)]) + push  # push = 4
    assert CODEC.encode(message) == bytes([len(reply)]) + reply
    assert CODEC.decode(bytes([len(reply)]) + reply, m.Reply) == [message]


def test_hubbub_publish_offset_uses_fields_1000_and_1001() -> None:
    """PublishResult.offset/epoch travel as fields 1000 (varint) and 1001 (string)."""
    body = b"\x42\x08" + b"\xc0\x3e\x05" + b"\xca\x3e\x02ab"  # publish = 8 { 1000: 5, 1001: "ab" }
    data = CODEC.encode(m.Reply(publish=m.PublishResult(offset=5, epoch="ab")))
    assert data == bytes([len(body)]) + body


def test_connect_dictionary_is_proto_field_dict() -> None:
    """ConnectRequest.dictionary is proto field 8, named ``dict``."""
    data = CODEC.encode(m.Command(connect=m.ConnectRequest(dictionary="d")))
    assert data == b"\x05" + b"\x22\x03" + b"\x42\x01d"
    parsed = pb.Command.FromString(data[1:])
    assert parsed.connect.dict == "d"


def test_score_is_zigzag_encoded() -> None:
    """Publication.score is sint64: -1 goes out as zigzag 1, not as ten bytes."""
    data = CODEC.encode(m.Reply(push=m.Push(pub=m.Publication(score=-1))))
    assert data == b"\x06" + b"\x22\x04" + b"\x22\x02" + b"\x68\x01"


def test_bytes_payload_is_raw_bytes() -> None:
    """Binary payloads go through untouched (no base64, no JSON check)."""
    payload = bytes(range(256))
    out = CODEC.decode(
        CODEC.encode(m.Command(id=1, publish=m.PublishRequest(data=Raw(payload)))), m.Command
    )
    assert out[0].publish is not None
    assert bytes(out[0].publish.data) == payload


def test_empty_bytes_decode_to_the_shared_empty_raw() -> None:
    """Absent bytes fields decode to messages.EMPTY itself, which JSON then omits."""
    out = CODEC.decode(b"\x04\x3a\x02\x0a\x00", m.Command)  # publish { channel: "" }
    assert out[0].publish is not None
    assert out[0].publish.data is m.EMPTY
    assert msgspec.json.encode(out[0]) == b'{"publish":{}}'


# ------------------------------------------------------------------ frames


def test_several_messages_in_one_frame() -> None:
    """Replies, pushes and pings joined into one frame decode in order."""
    push = m.Reply(push=m.Push(channel="chat:1", pub=FULL_PUB))
    pb_push = pb.Reply(push=pb.Push(channel="chat:1", pub=PB_FULL_PUB))
    replies = [m.Reply(id=2, subscribe=m.SubscribeResult()), m.PING, push, m.Reply(id=3)]
    expected = [pb.Reply(id=2, subscribe=pb.SubscribeResult()), pb.Reply(), pb_push, pb.Reply(id=3)]
    frame = CODEC.join([CODEC.encode(r) for r in replies])
    assert frame == b"".join(item(e) for e in expected)
    assert CODEC.decode(frame, m.Reply) == replies


def test_several_commands_in_one_frame() -> None:
    """A client frame with subscribes and a pong decodes into all its commands."""
    frame = (
        item(pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="a")))
        + b"\x00"
        + item(pb.Command(id=3, subscribe=pb.SubscribeRequest(channel="b", flag=1)))
    )
    assert CODEC.decode(frame, m.Command) == [
        m.Command(id=2, subscribe=m.SubscribeRequest(channel="a")),
        m.PONG,
        m.Command(id=3, subscribe=m.SubscribeRequest(channel="b", flag=1)),
    ]


def test_join_single_item_is_the_item() -> None:
    """Joining one item returns it unchanged; joining several concatenates them."""
    assert CODEC.join([b"\x00"]) == b"\x00"
    assert CODEC.join([b"\x00", b"\x02\x08\x01"]) == b"\x00\x02\x08\x01"


def test_long_message_gets_multibyte_length() -> None:
    """A message of 300 bytes is prefixed by the two-byte varint 0xAC 0x02."""
    # SendRequest: 1 tag + 2 length + 294 data = 297; Command: 1 tag + 2 length + 297 = 300.
    message = m.Command(send=m.SendRequest(data=Raw(b"x" * 294)))
    data = CODEC.encode(message)
    assert data[:2] == b"\xac\x02"
    assert len(data) == 2 + 300
    assert CODEC.decode(data, m.Command) == [message]


# ------------------------------------------------------------------ fields hubbub ignores


def test_unknown_schema_fields_are_dropped_on_decode() -> None:
    """Request fields messages.py does not model (tf, map paging, shared-poll) are ignored."""
    command = pb.Command(
        id=2,
        subscribe=pb.SubscribeRequest(
            channel="c",
            tf=pb.FilterNode(op="and", nodes=[pb.FilterNode(key="k", cmp="eq", val="v")]),
            phase=1,
            cursor="cur",
            limit=10,
            asc=True,
        ),
    )
    assert CODEC.decode(item(command), m.Command) == [
        m.Command(id=2, subscribe=m.SubscribeRequest(channel="c"))
    ]
    command = pb.Command(
        id=3,
        publish=pb.PublishRequest(channel="c", type=1, key="k", removed=True),
        sub_refresh=pb.SubRefreshRequest(
            channel="c",
            type=1,
            track=[pb.TrackBatch(signature="s", items=[pb.KeyedItem(key="k", version=1)])],
            untrack=["u"],
        ),
    )
    assert CODEC.decode(item(command), m.Command) == [
        m.Command(
            id=3,
            publish=m.PublishRequest(channel="c"),
            sub_refresh=m.SubRefreshRequest(channel="c"),
        )
    ]


def test_unknown_reply_fields_are_dropped_on_decode() -> None:
    """ConnectResult.flag/dict, Push.id, SubscribeResult map fields and prev_data are ignored."""
    reply = pb.Reply(
        id=1,
        connect=pb.ConnectResult(
            client="c", flag=1, dict=pb.Dictionary(id="d", data=b"z", data_b64="eg==")
        ),
        subscribe=pb.SubscribeResult(
            phase=1, cursor="x", state=[pb.Publication()], publish_debounce=100
        ),
        sub_refresh=pb.SubRefreshResult(items=[pb.Publication(offset=1)]),
        push=pb.Push(
            id=7,
            pub=pb.Publication(prev_data=b"old"),
            connect=pb.Connect(client="c"),
            refresh=pb.Refresh(),
        ),
    )
    assert CODEC.decode(item(reply), m.Reply) == [
        m.Reply(
            id=1,
            connect=m.ConnectResult(client="c"),
            subscribe=m.SubscribeResult(),
            sub_refresh=m.SubRefreshResult(),
            push=m.Push(pub=m.Publication()),
        )
    ]


def test_field_numbers_outside_the_schema_are_skipped() -> None:
    """An unknown field number (a newer server's addition) is skipped, not an error."""
    body = b"\x08\x05" + b"\xf8\x06\x01" + b"\x3a\x00"  # id 5, field 111 varint 1, unsubscribe
    assert CODEC.decode(bytes([len(body)]) + body, m.Reply) == [
        m.Reply(id=5, unsubscribe=m.UnsubscribeResult())
    ]


def test_absent_required_fields_decode_as_zero() -> None:
    """A Join without info and an Error without message decode with proto3 zero values."""
    reply = pb.Reply(push=pb.Push(join=pb.Join()), error=pb.Error())
    assert CODEC.decode(item(reply), m.Reply) == [
        m.Reply(
            error=m.Error(code=0, message=""),
            push=m.Push(join=m.Join(info=m.ClientInfo(user="", client=""))),
        )
    ]


# ------------------------------------------------------------------ malformed input

MALFORMED = [
    ("empty frame", b""),
    ("truncated varint", b"\x80"),
    ("truncated varint after a message", b"\x00\xff"),
    ("varint longer than ten bytes", b"\xff" * 10 + b"\x01"),
    ("varint over 64 bits", b"\xff" * 9 + b"\x02"),
    ("length past the end", b"\x05\x08\x01"),
    ("length past the end after a message", b"\x00\x03\x08"),
    ("corrupt wire type", b"\x02\x0f\x01"),
    ("truncated field", b"\x02\x08\x80"),
    ("sub-message overruns", b"\x03\x2a\x05\x0a"),
    ("invalid utf-8 in a string", b"\x05\x2a\x03\x0a\x01\xff"),
    ("end-group without start", b"\x01\x0c"),
]


@pytest.mark.parametrize("frame", [f for _, f in MALFORMED], ids=[n for n, _ in MALFORMED])
@pytest.mark.parametrize("kind", [m.Command, m.Reply])
def test_malformed_frames_raise_protocol_error(
    frame: bytes, kind: type[m.Command] | type[m.Reply]
) -> None:
    """Bad framing or a bad message raises ProtocolError (close 3501), nothing else."""
    with pytest.raises(ProtocolError):
        CODEC.decode(frame, kind)  # type: ignore[type-var]


def test_deep_nesting_raises_protocol_error() -> None:
    """A FilterNode nested thousands deep hits the parser's depth limit as a ProtocolError."""
    body = b""
    for _ in range(5000):
        body = b"\x32" + encode_uvarint(len(body)) + body  # FilterNode.nodes = 6
    body = b"\x6a" + encode_uvarint(len(body)) + body  # SubscribeRequest.tf = 13
    body = b"\x2a" + encode_uvarint(len(body)) + body  # Command.subscribe = 5
    with pytest.raises(ProtocolError):
        CODEC.decode(encode_uvarint(len(body)) + body, m.Command)


# ------------------------------------------------------------------ the codec itself


def test_codec_identity() -> None:
    """The codec is a Codec named protobuf, binary, selected by centrifuge-protobuf."""
    assert isinstance(CODEC, Codec)
    assert (CODEC.name, CODEC.binary, CODEC.subprotocol) == (
        "protobuf",
        True,
        "centrifuge-protobuf",
    )


def test_struct_field_missing_from_the_schema_fails_at_import() -> None:
    """A Struct field with no proto field of that name is rejected when plans are built."""

    class Extra(msgspec.Struct):
        channel: str = ""
        colour: str = ""

    with pytest.raises(TypeError, match="colour"):
        _top_plan(Extra, pb.UnsubscribeRequest.DESCRIPTOR)


def test_struct_field_of_the_wrong_type_fails_at_import() -> None:
    """A Struct field whose type does not fit its proto field (str vs bytes) is rejected."""

    class Wrong(msgspec.Struct):
        data: str = ""

    with pytest.raises(TypeError, match="data"):
        _top_plan(Wrong, pb.SendRequest.DESCRIPTOR)


def test_out_of_range_value_is_a_local_error() -> None:
    """Encoding a value the schema cannot hold (negative uint32 id) fails loudly."""
    with pytest.raises(ValueError):
        CODEC.encode(m.Reply(id=-1))


# ------------------------------------------------------------------ varint


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2**32 - 1, b"\xff\xff\xff\xff\x0f"),
        (MAX_UVARINT, b"\xff" * 9 + b"\x01"),
    ],
)
def test_uvarint_known_values(value: int, encoded: bytes) -> None:
    """uvarint matches Go's binary.PutUvarint at the byte-length boundaries."""
    assert encode_uvarint(value) == encoded
    assert decode_uvarint(encoded) == (value, len(encoded))
    assert decode_uvarint(b"junk" + encoded + b"\x99", 4) == (value, 4 + len(encoded))


def test_uvarint_accepts_non_minimal_encoding() -> None:
    """A padded varint (0x80 0x00) is 0, as Go's binary.Uvarint reads it."""
    assert decode_uvarint(b"\x80\x00") == (0, 2)


@pytest.mark.parametrize("value", [-1, MAX_UVARINT + 1])
def test_uvarint_encode_rejects_out_of_range(value: int) -> None:
    """Only 0 ≤ value < 2**64 can be encoded; anything else is a local bug."""
    with pytest.raises(ValueError):
        encode_uvarint(value)


@pytest.mark.parametrize(
    "data", [b"", b"\x80", b"\xff\xff", b"\xff" * 10, b"\xff" * 9 + b"\x02", b"\x80" * 11 + b"\x00"]
)
def test_uvarint_decode_rejects_truncated_and_overlong(data: bytes) -> None:
    """Truncated, longer than 10 bytes or over 64 bits: ProtocolError."""
    with pytest.raises(ProtocolError):
        decode_uvarint(data)
