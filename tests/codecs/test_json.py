"""The JSON codec: exact bytes of every message, embedded raw JSON, line framing, errors."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import Raw

from hubbub.codecs.base import Codec
from hubbub.codecs.json import JsonCodec
from hubbub.errors import ProtocolError
from hubbub.protocol import messages as m

CODEC = JsonCodec()
U64 = 2**64 - 1

INFO = m.ClientInfo(
    user="42", client="9f1c", conn_info=Raw(b'{"name":"Ann"}'), chan_info=Raw(b"true")
)
INFO_JSON = b'{"user":"42","client":"9f1c","conn_info":{"name":"Ann"},"chan_info":true}'

FULL_PUB = m.Publication(
    data=Raw(b'{"text":"hi"}'),
    info=INFO,
    offset=U64,
    tags={"k": "v"},
    delta=True,
    time=1_700_000_000_000,
    channel="chat:*",
    key="item",
    removed=True,
    score=-5,
    epoch="e1",
    version=2,
)
FULL_PUB_JSON = (
    b'{"data":{"text":"hi"},"info":' + INFO_JSON + b',"offset":18446744073709551615,'
    b'"tags":{"k":"v"},"delta":true,"time":1700000000000,"channel":"chat:*","key":"item",'
    b'"removed":true,"score":-5,"epoch":"e1","version":2}'
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
SUB_REQ_JSON = (
    b'{"channel":"chat:1","token":"t","recover":true,"epoch":"xyz","offset":18446744073709551615,'
    b'"data":[1,2],"positioned":true,"recoverable":true,"join_leave":true,"delta":"fossil",'
    b'"flag":3,"type":4}'
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
    data=Raw(b'"x"'),
    was_recovering=True,
    delta=True,
    id=-7,
    type=1,
)
SUB_RES_JSON = (
    b'{"expires":true,"ttl":30,"recoverable":true,"epoch":"e",'
    b'"publications":[{"data":1,"offset":4},{}],"recovered":true,"offset":3,"positioned":true,'
    b'"data":"x","was_recovering":true,"delta":true,"id":-7,"type":1}'
)

COMMANDS: list[tuple[str, m.Command, bytes]] = [
    ("pong", m.Command(), b"{}"),
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
        b'{"id":1,"connect":{"token":"T","data":{"a":1},"subs":{"news":{"recover":true,'
        b'"epoch":"e","offset":5},"x":' + SUB_REQ_JSON + b'},"name":"python","version":"1.0",'
        b'"headers":{"X-A":"b"},"flag":1,"dict":"d1","profile":"mobile"}}',
    ),
    (
        "subscribe",
        m.Command(id=2, subscribe=SUB_REQ),
        b'{"id":2,"subscribe":' + SUB_REQ_JSON + b"}",
    ),
    (
        "unsubscribe",
        m.Command(id=3, unsubscribe=m.UnsubscribeRequest(channel="chat:1")),
        b'{"id":3,"unsubscribe":{"channel":"chat:1"}}',
    ),
    (
        "publish",
        m.Command(id=4, publish=m.PublishRequest(channel="chat:1", data=Raw(b'{"text":"yo"}'))),
        b'{"id":4,"publish":{"channel":"chat:1","data":{"text":"yo"}}}',
    ),
    (
        "presence",
        m.Command(id=5, presence=m.PresenceRequest(channel="chat:1")),
        b'{"id":5,"presence":{"channel":"chat:1"}}',
    ),
    (
        "presence_stats",
        m.Command(id=6, presence_stats=m.PresenceStatsRequest(channel="chat:1")),
        b'{"id":6,"presence_stats":{"channel":"chat:1"}}',
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
        b'{"id":7,"history":{"channel":"chat:1","limit":-1,"since":{"offset":10,"epoch":"e"},'
        b'"reverse":true}}',
    ),
    (
        "history since zero position",
        m.Command(id=7, history=m.HistoryRequest(channel="c", since=m.StreamPosition())),
        b'{"id":7,"history":{"channel":"c","since":{}}}',
    ),
    ("ping", m.Command(id=8, ping=m.PingRequest()), b'{"id":8,"ping":{}}'),
    ("send", m.Command(send=m.SendRequest(data=Raw(b'"hello"'))), b'{"send":{"data":"hello"}}'),
    (
        "rpc",
        m.Command(id=9, rpc=m.RPCRequest(data=Raw(b'{"q":1}'), method="sum")),
        b'{"id":9,"rpc":{"data":{"q":1},"method":"sum"}}',
    ),
    (
        "refresh",
        m.Command(id=10, refresh=m.RefreshRequest(token="T2")),
        b'{"id":10,"refresh":{"token":"T2"}}',
    ),
    (
        "sub_refresh",
        m.Command(id=11, sub_refresh=m.SubRefreshRequest(channel="chat:1", token="S2")),
        b'{"id":11,"sub_refresh":{"channel":"chat:1","token":"S2"}}',
    ),
]

REPLIES: list[tuple[str, m.Reply, bytes]] = [
    ("ping", m.Reply(), b"{}"),
    (
        "error",
        m.Reply(id=4, error=m.Error(code=103, message="permission denied")),
        b'{"id":4,"error":{"code":103,"message":"permission denied"}}',
    ),
    (
        "temporary error",
        m.Reply(id=4, error=m.Error(code=100, message="internal server error", temporary=True)),
        b'{"id":4,"error":{"code":100,"message":"internal server error","temporary":true}}',
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
        b'{"id":1,"connect":{"client":"9f1c","version":"0.1.0","expires":true,"ttl":60,'
        b'"data":{"motd":"hi"},"subs":{"news":{"recoverable":true,"epoch":"e","offset":3},'
        b'"b":' + SUB_RES_JSON + b'},"ping":25,"pong":true,"session":"s","node":"n",'
        b'"time":1700000000000}}',
    ),
    (
        "minimal connect",
        m.Reply(id=1, connect=m.ConnectResult(client="9f1c", ping=25, pong=True)),
        b'{"id":1,"connect":{"client":"9f1c","ping":25,"pong":true}}',
    ),
    ("subscribe", m.Reply(id=2, subscribe=SUB_RES), b'{"id":2,"subscribe":' + SUB_RES_JSON + b"}"),
    ("plain subscribe", m.Reply(id=2, subscribe=m.SubscribeResult()), b'{"id":2,"subscribe":{}}'),
    ("unsubscribe", m.Reply(id=3, unsubscribe=m.UnsubscribeResult()), b'{"id":3,"unsubscribe":{}}'),
    ("publish", m.Reply(id=4, publish=m.PublishResult()), b'{"id":4,"publish":{}}'),
    (
        "publish with hubbub's offset",
        m.Reply(id=4, publish=m.PublishResult(offset=12, epoch="e")),
        b'{"id":4,"publish":{"offset":12,"epoch":"e"}}',
    ),
    (
        "presence",
        m.Reply(
            id=5,
            presence=m.PresenceResult(
                presence={"9f1c": INFO, "c2": m.ClientInfo(user="", client="c2")}
            ),
        ),
        b'{"id":5,"presence":{"presence":{"9f1c":'
        + INFO_JSON
        + b',"c2":{"user":"","client":"c2"}}}}',
    ),
    (
        "empty presence",
        m.Reply(id=5, presence=m.PresenceResult(presence={})),
        b'{"id":5,"presence":{"presence":{}}}',
    ),
    (
        "presence_stats",
        m.Reply(id=6, presence_stats=m.PresenceStatsResult(num_clients=3, num_users=2)),
        b'{"id":6,"presence_stats":{"num_clients":3,"num_users":2}}',
    ),
    (
        "zero presence_stats",
        m.Reply(id=6, presence_stats=m.PresenceStatsResult(num_clients=0, num_users=0)),
        b'{"id":6,"presence_stats":{"num_clients":0,"num_users":0}}',
    ),
    (
        "history",
        m.Reply(
            id=7,
            history=m.HistoryResult(
                publications=[FULL_PUB, m.Publication(offset=9)], epoch="e", offset=9
            ),
        ),
        b'{"id":7,"history":{"publications":[' + FULL_PUB_JSON + b',{"offset":9}],"epoch":"e",'
        b'"offset":9}}',
    ),
    (
        "empty history",
        m.Reply(id=7, history=m.HistoryResult(publications=[], epoch="", offset=0)),
        b'{"id":7,"history":{"publications":[],"epoch":"","offset":0}}',
    ),
    ("ping result", m.Reply(id=8, ping=m.PingResult()), b'{"id":8,"ping":{}}'),
    ("rpc", m.Reply(id=9, rpc=m.RPCResult(data=Raw(b"42"))), b'{"id":9,"rpc":{"data":42}}'),
    (
        "refresh",
        m.Reply(id=10, refresh=m.RefreshResult(client="c", version="v", expires=True, ttl=60)),
        b'{"id":10,"refresh":{"client":"c","version":"v","expires":true,"ttl":60}}',
    ),
    (
        "sub_refresh",
        m.Reply(id=11, sub_refresh=m.SubRefreshResult(expires=True, ttl=60)),
        b'{"id":11,"sub_refresh":{"expires":true,"ttl":60}}',
    ),
    (
        "pub push",
        m.Reply(push=m.Push(channel="chat:1", pub=FULL_PUB)),
        b'{"push":{"channel":"chat:1","pub":' + FULL_PUB_JSON + b"}}",
    ),
    (
        "empty pub push",
        m.Reply(push=m.Push(channel="chat:1", pub=m.Publication())),
        b'{"push":{"channel":"chat:1","pub":{}}}',
    ),
    (
        "join push",
        m.Reply(push=m.Push(channel="chat:1", join=m.Join(info=INFO))),
        b'{"push":{"channel":"chat:1","join":{"info":' + INFO_JSON + b"}}}",
    ),
    (
        "leave push",
        m.Reply(
            push=m.Push(channel="chat:1", leave=m.Leave(info=m.ClientInfo(user="", client="")))
        ),
        b'{"push":{"channel":"chat:1","leave":{"info":{"user":"","client":""}}}}',
    ),
    (
        "unsubscribe push",
        m.Reply(
            push=m.Push(
                channel="chat:1", unsubscribe=m.Unsubscribe(code=2500, reason="insufficient state")
            )
        ),
        b'{"push":{"channel":"chat:1","unsubscribe":{"code":2500,"reason":"insufficient state"}}}',
    ),
    (
        "message push",
        m.Reply(push=m.Push(message=m.Message(data=Raw(b"null")))),
        b'{"push":{"message":{"data":null}}}',
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
        b'{"push":{"channel":"news","subscribe":{"recoverable":true,"epoch":"e","offset":1,'
        b'"positioned":true,"data":"x"}}}',
    ),
    (
        "disconnect push",
        m.Reply(push=m.Push(disconnect=m.Disconnect(code=3001, reason="shutdown", reconnect=True))),
        b'{"push":{"disconnect":{"code":3001,"reason":"shutdown","reconnect":true}}}',
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
def test_command_bytes_and_back(name: str, message: m.Command, expected: bytes) -> None:
    """Each command encodes to exactly the expected JSON and decodes back to itself."""
    assert CODEC.encode(message) == expected
    assert CODEC.decode(expected, m.Command) == [message]


@pytest.mark.parametrize(("name", "message", "expected"), REPLIES, ids=[r[0] for r in REPLIES])
def test_reply_bytes_and_back(name: str, message: m.Reply, expected: bytes) -> None:
    """Each reply and push encodes to exactly the expected JSON and decodes back to itself."""
    assert CODEC.encode(message) == expected
    assert CODEC.decode(expected, m.Reply) == [message]


# ------------------------------------------------------------------ embedded raw JSON

RAW_VALUES = [
    b'{"text":"hi"}',
    b'{ "a" : [1, 2.5e3, {"b": null}] }',
    b"[]",
    b'[1,"two",[3]]',
    b'"a string with \\"quotes\\" and \\u00e9"',
    b'""',
    b"0",
    b"-12.5e-3",
    b"18446744073709551616",
    b"true",
    b"false",
    b"null",
]


@pytest.mark.parametrize("raw", RAW_VALUES)
def test_data_is_taken_verbatim(raw: bytes) -> None:
    """Any JSON value in ``data`` becomes exactly its source text, whitespace and all."""
    frame = b'{"id":4,"publish":{"channel":"c","data":' + raw + b"}}"
    (command,) = CODEC.decode(frame, m.Command)
    assert command.publish is not None
    assert bytes(command.publish.data) == raw


@pytest.mark.parametrize("raw", RAW_VALUES)
def test_data_is_written_verbatim(raw: bytes) -> None:
    """Stored payload bytes are written into the reply as they are, not quoted or base64."""
    reply = m.Reply(push=m.Push(channel="c", pub=m.Publication(data=Raw(raw))))
    assert CODEC.encode(reply) == b'{"push":{"channel":"c","pub":{"data":' + raw + b"}}}"


def test_data_surrounded_by_whitespace_keeps_only_the_value() -> None:
    """Whitespace around an embedded value is not part of the payload."""
    (command,) = CODEC.decode(b'{"send":{"data":  [1, 2]  }}', m.Command)
    assert command.send is not None
    assert bytes(command.send.data) == b"[1, 2]"


def test_newlines_in_a_payload_are_dropped_on_encode() -> None:
    """A pretty-printed payload loses its raw newlines so line framing survives."""
    reply = m.Reply(push=m.Push(channel="c", pub=m.Publication(data=Raw(b'{\n  "a": "x\\ny"\n}'))))
    assert CODEC.encode(reply) == b'{"push":{"channel":"c","pub":{"data":{  "a": "x\\ny"}}}}'


def test_escaped_newlines_in_strings_stay_escaped() -> None:
    """Newlines inside strings are escaped by the encoder, so one message is one line."""
    item = CODEC.encode(m.Reply(id=1, error=m.Error(code=107, message="two\nlines")))
    assert item == b'{"id":1,"error":{"code":107,"message":"two\\nlines"}}'
    assert CODEC.decode(item, m.Reply)[0].error == m.Error(code=107, message="two\nlines")


# ------------------------------------------------------------------ always-written fields


def test_client_info_always_writes_user_and_client() -> None:
    """ClientInfo.user and .client are written even when empty (anonymous user)."""
    item = CODEC.encode(
        m.Reply(push=m.Push(channel="c", join=m.Join(info=m.ClientInfo(user="", client=""))))
    )
    assert item == b'{"push":{"channel":"c","join":{"info":{"user":"","client":""}}}}'


def test_presence_result_always_writes_presence() -> None:
    """PresenceResult.presence is written as {} when nobody is there."""
    item = CODEC.encode(m.Reply(id=1, presence=m.PresenceResult(presence={})))
    assert item == b'{"id":1,"presence":{"presence":{}}}'


def test_presence_stats_always_writes_both_counts() -> None:
    """PresenceStatsResult.num_clients and .num_users are written even when 0."""
    item = CODEC.encode(
        m.Reply(id=1, presence_stats=m.PresenceStatsResult(num_clients=0, num_users=0))
    )
    assert item == b'{"id":1,"presence_stats":{"num_clients":0,"num_users":0}}'


def test_history_result_always_writes_all_fields() -> None:
    """HistoryResult writes publications [], epoch "" and offset 0 when empty."""
    item = CODEC.encode(m.Reply(id=1, history=m.HistoryResult(publications=[], epoch="", offset=0)))
    assert item == b'{"id":1,"history":{"publications":[],"epoch":"","offset":0}}'


def test_zero_values_are_omitted() -> None:
    """Zero ids, false flags, empty strings, lists, maps and absent messages are left out."""
    reply = m.Reply(
        id=0,
        subscribe=m.SubscribeResult(expires=False, ttl=0, epoch="", publications=[], data=m.EMPTY),
    )
    assert CODEC.encode(reply) == b'{"subscribe":{}}'


def test_64_bit_integers_are_plain_numbers() -> None:
    """Offsets, times and ids are JSON numbers, never strings."""
    item = CODEC.encode(m.Reply(push=m.Push(pub=m.Publication(offset=U64, time=2**63 - 1))))
    assert item == b'{"push":{"pub":{"offset":18446744073709551615,"time":9223372036854775807}}}'


# ------------------------------------------------------------------ frames


def test_several_replies_joined_with_one_newline() -> None:
    """Replies, pushes and a ping share one frame, joined by exactly one newline."""
    items = [
        CODEC.encode(m.Reply(id=2, subscribe=m.SubscribeResult())),
        CODEC.encode(m.Reply(id=3, subscribe=m.SubscribeResult())),
        CODEC.encode(m.PING),
    ]
    frame = CODEC.join(items)
    assert frame == b'{"id":2,"subscribe":{}}\n{"id":3,"subscribe":{}}\n{}'
    assert CODEC.decode(frame, m.Reply) == [
        m.Reply(id=2, subscribe=m.SubscribeResult()),
        m.Reply(id=3, subscribe=m.SubscribeResult()),
        m.PING,
    ]


def test_join_single_item_is_the_item() -> None:
    """A single message goes out bare, with no delimiter."""
    assert CODEC.join([b"{}"]) == b"{}"


def test_several_commands_in_one_frame() -> None:
    """A client frame with two subscribes and a pong decodes into three commands."""
    frame = (
        b'{"id":2,"subscribe":{"channel":"a","flag":1}}\n{"id":3,"subscribe":{"channel":"b"}}\n{}'
    )
    assert CODEC.decode(frame, m.Command) == [
        m.Command(id=2, subscribe=m.SubscribeRequest(channel="a", flag=1)),
        m.Command(id=3, subscribe=m.SubscribeRequest(channel="b")),
        m.PONG,
    ]


def test_trailing_newline_is_tolerated() -> None:
    """One trailing newline after the last message is accepted, as Centrifuge does."""
    assert CODEC.decode(b'{"id":1,"presence":{"channel":"c"}}\n', m.Command) == [
        m.Command(id=1, presence=m.PresenceRequest(channel="c"))
    ]


def test_unknown_keys_are_ignored() -> None:
    """Keys hubbub does not model (tf, map paging, Push.id, ...) are skipped on decode."""
    frame = (
        b'{"id":2,"subscribe":{"channel":"c","tf":{"op":"and","nodes":[]},"phase":1,"asc":true}}'
    )
    assert CODEC.decode(frame, m.Command) == [
        m.Command(id=2, subscribe=m.SubscribeRequest(channel="c"))
    ]
    frame = b'{"push":{"id":7,"channel":"c","pub":{"prev_data":{"x":1},"offset":2}}}'
    assert CODEC.decode(frame, m.Reply) == [
        m.Reply(push=m.Push(channel="c", pub=m.Publication(offset=2)))
    ]


# ------------------------------------------------------------------ malformed input

MALFORMED = [
    ("empty frame", b""),
    ("only a newline", b"\n"),
    ("only whitespace", b"   "),
    ("blank line between messages", b"{}\n\n{}"),
    ("not JSON", b"hello"),
    ("truncated object", b'{"id":1,'),
    ("array instead of object", b"[1]"),
    ("wrong field type", b'{"id":"1"}'),
    ("fractional id", b'{"id":1.5}'),
    ("request is not an object", b'{"id":1,"publish":[]}'),
    ("bad second message", b'{}\n{"id":'),
    ("two values on one line", b"{}{}"),
]


@pytest.mark.parametrize("frame", [f for _, f in MALFORMED], ids=[n for n, _ in MALFORMED])
@pytest.mark.parametrize("kind", [m.Command, m.Reply])
def test_malformed_frames_raise_protocol_error(
    frame: bytes, kind: type[m.Command] | type[m.Reply]
) -> None:
    """Anything that is not one JSON object per line raises ProtocolError, nothing else."""
    with pytest.raises(ProtocolError):
        CODEC.decode(frame, kind)  # type: ignore[type-var]


@pytest.mark.parametrize("kind", [m.Command, m.Reply])
def test_invalid_utf8_raises_protocol_error(kind: type[m.Command] | type[m.Reply]) -> None:
    """Invalid UTF-8 in a string field raises ProtocolError, not UnicodeDecodeError."""
    # Command reads subscribe.channel, Reply reads push.channel.
    frame = b'{"subscribe":{"channel":"\xff"},"push":{"channel":"\xff"}}'
    with pytest.raises(ProtocolError):
        CODEC.decode(frame, kind)  # type: ignore[type-var]


@pytest.mark.parametrize(
    "frame",
    [
        b'{"id":2,"publish":{"channel":"c","data":"\xff\xfe"}}',
        b'{"id":2,"publish":{"channel":"c","data":{"k":"\xed\xa0\x80"}}}',  # a surrogate
        b'{"id":1,"presence":{"channel":"c"}}\n{"id":2,"rpc":{"data":"\xc3"}}',
    ],
    ids=["publish data", "surrogate in data", "second line"],
)
def test_invalid_utf8_in_raw_data_raises_protocol_error(frame: bytes) -> None:
    """``data`` is kept raw, unchecked by msgspec: the codec refuses a non-UTF-8 frame itself."""
    with pytest.raises(ProtocolError, match="UTF-8"):
        CODEC.decode(frame, m.Command)


def test_utf8_data_is_accepted() -> None:
    """Valid non-ASCII UTF-8 passes the check and reaches the message untouched."""
    frame = '{"id":2,"publish":{"channel":"c","data":"héllo ✓"}}'.encode()
    (command,) = CODEC.decode(frame, m.Command)
    assert command.publish is not None
    assert bytes(command.publish.data) == '"héllo ✓"'.encode()


def test_deeply_nested_payload_raises_protocol_error() -> None:
    """A payload nested deeper than the recursion limit raises ProtocolError, not RecursionError."""
    frame = b'{"id":1,"publish":{"channel":"c","data":' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    with pytest.raises(ProtocolError):
        CODEC.decode(frame, m.Command)


def test_codec_identity() -> None:
    """The codec is a Codec named json, text, selected by centrifuge-json."""
    assert isinstance(CODEC, Codec)
    assert (CODEC.name, CODEC.binary, CODEC.subprotocol) == ("json", False, "centrifuge-json")
