"""The msgpack codec: varint-prefixed msgpack maps, payloads as bin, every message round-trips.

Expected bytes are built from plain dicts with msgspec's msgpack encoder, never from the
codec under test. Messages for the round trips are generated from the Structs of
messages.py, so a message type added there is covered here without a new case.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import Raw

from hubbub.codecs.base import Codec
from hubbub.codecs.msgpack import MsgpackCodec
from hubbub.errors import ProtocolError
from hubbub.protocol import messages as m
from hubbub.protocol.varint import encode_uvarint

CODEC = MsgpackCodec()
U64 = 2**64 - 1
I64_MIN = -(2**63)


def item(fields: Any) -> bytes:
    """The expected item for a message given as a plain dict (bytes become bin)."""
    body = msgspec.msgpack.encode(fields)
    return encode_uvarint(len(body)) + body


# ------------------------------------------------------------------ exact bytes


def test_is_a_binary_codec_selected_by_hubbub_msgpack() -> None:
    """Name msgpack, binary frames, subprotocol hubbub-msgpack, and the Codec protocol."""
    assert isinstance(CODEC, Codec)
    assert (CODEC.name, CODEC.binary, CODEC.subprotocol) == ("msgpack", True, "hubbub-msgpack")


def test_item_is_uvarint_length_and_a_map_with_payload_as_bin() -> None:
    """A publish is uvarint(len) + msgpack map; data is bin (0xc4), not embedded verbatim."""
    command = m.Command(id=1, publish=m.PublishRequest(channel="chat:1", data=Raw(b'{"t":1}')))
    expected = item({"id": 1, "publish": {"channel": "chat:1", "data": b'{"t":1}'}})
    assert CODEC.encode(command) == expected
    assert b"\xc4\x07" + b'{"t":1}' in expected  # bin 8, 7 bytes
    assert CODEC.decode(expected, m.Command) == [command]


def test_long_item_has_a_multibyte_length() -> None:
    """An item over 127 bytes carries a two-byte uvarint length."""
    reply = m.Reply(push=m.Push(channel="c", message=m.Message(data=Raw(b"x" * 300))))
    encoded = CODEC.encode(reply)
    assert encoded == item({"push": {"channel": "c", "message": {"data": b"x" * 300}}})
    assert encoded[0] & 0x80 and not encoded[1] & 0x80
    assert CODEC.decode(encoded, m.Reply) == [reply]


def test_ping_and_pong_are_the_single_byte_zero() -> None:
    """The empty message is the zero-length item 0x00, both ways, as in Protobuf."""
    assert CODEC.encode(m.PING) == b"\x00"
    assert CODEC.encode(m.PONG) == b"\x00"
    assert CODEC.decode(b"\x00", m.Reply) == [m.Reply()]
    assert CODEC.decode(b"\x00\x00", m.Command) == [m.Command(), m.Command()]
    assert CODEC.decode(item({}), m.Command) == [m.Command()]  # an empty map is one too


def test_present_but_empty_results_stay_present() -> None:
    """Reply{id:4, publish:{}} keeps its empty publish (presence means success)."""
    reply = m.Reply(id=4, publish=m.PublishResult())
    encoded = CODEC.encode(reply)
    assert encoded == item({"id": 4, "publish": {}})
    (decoded,) = CODEC.decode(encoded, m.Reply)
    assert decoded.publish is not None


def test_empty_payload_decodes_to_the_shared_empty() -> None:
    """An empty bin payload becomes messages.EMPTY, which encoders leave out."""
    (command,) = CODEC.decode(item({"id": 1, "publish": {"channel": "c", "data": b""}}), m.Command)
    assert command.publish is not None and command.publish.data is m.EMPTY
    assert CODEC.encode(command) == item({"id": 1, "publish": {"channel": "c"}})


def test_payloads_come_back_as_raw_everywhere() -> None:
    """data, conn_info and chan_info decode to Raw of the payload bytes at every depth."""
    info = {"user": "u", "client": "c", "conn_info": b"\x01", "chan_info": b"\x02"}
    frame = item(
        {
            "id": 3,
            "history": {
                "publications": [{"data": b"\xff", "info": info}],
                "epoch": "e",
                "offset": 1,
            },
        }
    )
    (reply,) = CODEC.decode(frame, m.Reply)
    assert reply.history is not None
    pub = reply.history.publications[0]
    assert pub.data == Raw(b"\xff")
    assert pub.info == m.ClientInfo(
        user="u", client="c", conn_info=Raw(b"\x01"), chan_info=Raw(b"\x02")
    )


def test_unknown_keys_are_ignored() -> None:
    """Fields this version does not know are skipped, as Protobuf skips unknown fields."""
    frame = item({"id": 2, "future": [1, 2], "presence": {"channel": "c", "later": True}})
    assert CODEC.decode(frame, m.Command) == [
        m.Command(id=2, presence=m.PresenceRequest(channel="c"))
    ]


def test_several_items_in_one_frame_decode_in_order() -> None:
    """join concatenates items; decode gives them back in order."""
    replies = [
        m.Reply(id=1, ping=m.PingResult()),
        m.PING,
        m.Reply(id=2, error=m.Error(code=103, message="x")),
    ]
    frame = CODEC.join([CODEC.encode(r) for r in replies])
    assert CODEC.join([CODEC.encode(replies[0])]) == CODEC.encode(replies[0])
    assert CODEC.decode(frame, m.Reply) == replies


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x05\x81",  # length past the end of the frame
        b"\xff" * 11,  # varint longer than 10 bytes
        b"\x80",  # truncated varint
        item({"id": 1, "rpc": {"data": "text, not bin"}}),
        item({"id": 1, "rpc": {"data": 5}}),
        item({"id": "1"}),
        item({"id": -1.5}),
        item([1, 2]),
        item({b"id": 1}),
        encode_uvarint(3) + b"\x81\xa2i",  # map cut short inside the item
        encode_uvarint(2) + b"\x80\x80",  # two maps in one item
        encode_uvarint(1) + b"\xc1",  # the never-used byte
    ],
    ids=[
        "empty",
        "length past end",
        "long varint",
        "truncated varint",
        "data as str",
        "data as int",
        "id as str",
        "id as float",
        "array",
        "bin map key",
        "truncated map",
        "trailing map",
        "0xc1",
    ],
)
def test_malformed_input_is_a_protocol_error(frame: bytes) -> None:
    """Malformed frames raise ProtocolError (3501 bad request), as both kinds."""
    for kind in (m.Command, m.Reply):
        with pytest.raises(ProtocolError) as caught:
            CODEC.decode(frame, kind)  # type: ignore[type-var]
        assert caught.value.disconnect.code == 3501


# ------------------------------------------------------------- every message type


def full(t: mi.Type) -> Any:
    """A value of type ``t`` with every field set to something not zero."""
    if isinstance(t, mi.IntType):
        return 7
    if isinstance(t, mi.StrType):
        return "s"
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.RawType):
        return Raw(b'{"k":[1,"\\n"]}')
    if isinstance(t, mi.StructType):
        return t.cls(**{f.name: full(f.type) for f in t.fields})
    if isinstance(t, mi.UnionType):
        return full(next(x for x in t.types if not isinstance(x, mi.NoneType)))
    if isinstance(t, mi.ListType):
        return [full(t.item_type), full(t.item_type)]
    assert isinstance(t, mi.DictType)
    return {"a": full(t.value_type), "b": full(t.value_type)}


def _fields(cls: type[msgspec.Struct]) -> dict[str, mi.Type]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return {f.name: f.type for f in info.fields if f.name != "id"}


EVERY_MESSAGE: list[Any] = [
    *(
        pytest.param(m.Command(id=1, **{name: full(t)}), id=f"command.{name}")
        for name, t in _fields(m.Command).items()
    ),
    *(
        pytest.param(m.Reply(id=1, **{name: full(t)}), id=f"reply.{name}")
        for name, t in _fields(m.Reply).items()
        if name != "push"
    ),
    *(
        pytest.param(m.Reply(push=m.Push(channel="c", **{name: full(t)})), id=f"push.{name}")
        for name, t in _fields(m.Push).items()
        if name != "channel"
    ),
    pytest.param(
        m.Reply(push=m.Push(pub=m.Publication(offset=U64, score=I64_MIN, time=U64))),
        id="64-bit extremes",
    ),
    pytest.param(m.Command(id=U64, ping=m.PingRequest()), id="max id"),
    pytest.param(m.Command(send=m.SendRequest(data=Raw(b"\x00\xff\xc1"))), id="binary send"),
]


@pytest.mark.parametrize("message", EVERY_MESSAGE)
def test_every_message_type_round_trips(message: m.Command | m.Reply) -> None:
    """Each request, result and push, every field set, decodes back to itself."""
    kind: Any = type(message)
    assert CODEC.decode(CODEC.encode(message), kind) == [message]


# ------------------------------------------------------------------ properties

TEXT = st.text(max_size=8)
RAW = st.binary(max_size=16).map(lambda data: Raw(data) if data else m.EMPTY)
"""Any payload; empty is the shared EMPTY, as decoding gives it."""


def strategy(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values of ``t``: any int msgpack holds, short text, any payload bytes."""
    if isinstance(t, mi.IntType):
        return st.just(0) | st.integers(I64_MIN, U64)
    if isinstance(t, mi.StrType):
        return TEXT
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.RawType):
        return RAW
    if isinstance(t, mi.StructType):
        return st.builds(t.cls, **{f.name: strategy(f.type) for f in t.fields})
    if isinstance(t, mi.UnionType):  # Struct | None
        return st.none() | strategy(next(x for x in t.types if not isinstance(x, mi.NoneType)))
    if isinstance(t, mi.ListType):
        return st.lists(strategy(t.item_type), max_size=3)
    assert isinstance(t, mi.DictType)
    return st.dictionaries(TEXT, strategy(t.value_type), max_size=3)


COMMANDS = strategy(mi.type_info(m.Command))
REPLIES = strategy(mi.type_info(m.Reply))
SETTINGS = settings(deadline=None, max_examples=300, database=None)


@SETTINGS
@given(COMMANDS)
def test_command_round_trip(command: m.Command) -> None:
    """decode(encode(command)) == command."""
    assert CODEC.decode(CODEC.encode(command), m.Command) == [command]


@SETTINGS
@given(REPLIES)
def test_reply_round_trip(reply: m.Reply) -> None:
    """decode(encode(reply)) == reply."""
    assert CODEC.decode(CODEC.encode(reply), m.Reply) == [reply]


@SETTINGS
@given(st.lists(REPLIES, min_size=1, max_size=4))
def test_frame_of_many_round_trips(replies: list[m.Reply]) -> None:
    """Any replies joined into one frame decode to the same list."""
    assert CODEC.decode(CODEC.join([CODEC.encode(r) for r in replies]), m.Reply) == replies


def _decode_or_protocol_error(frame: bytes) -> None:
    """Decode ``frame`` as both kinds; ProtocolError is the only acceptable failure."""
    for kind in (m.Command, m.Reply):
        with contextlib.suppress(ProtocolError):
            CODEC.decode(frame, kind)  # type: ignore[type-var]


@SETTINGS
@given(st.binary(max_size=64))
def test_garbage_raises_only_protocol_error(frame: bytes) -> None:
    """Arbitrary bytes: messages or ProtocolError, nothing else."""
    _decode_or_protocol_error(frame)


@SETTINGS
@given(st.binary(max_size=48))
def test_garbage_inside_a_well_framed_item_raises_only_protocol_error(body: bytes) -> None:
    """Arbitrary bytes behind a correct length prefix: messages or ProtocolError."""
    _decode_or_protocol_error(encode_uvarint(len(body)) + body)


@st.composite
def _mutated(draw: st.DrawFn, frames: st.SearchStrategy[bytes]) -> bytes:
    """A valid frame with one byte changed, inserted or the tail cut off."""
    frame = draw(frames)
    at = draw(st.integers(0, len(frame)))
    byte = bytes([draw(st.integers(0, 255))])
    how = draw(st.sampled_from(["replace", "insert", "truncate"]))
    if how == "truncate":
        return frame[:at]
    if how == "insert":
        return frame[:at] + byte + frame[at:]
    return frame[:at] + byte + frame[at + 1 :]


@SETTINGS
@given(_mutated(REPLIES.map(CODEC.encode) | COMMANDS.map(CODEC.encode)))
def test_mutated_frames_raise_only_protocol_error(frame: bytes) -> None:
    """A corrupted frame decodes to something or raises ProtocolError, nothing else."""
    _decode_or_protocol_error(frame)


@pytest.mark.parametrize("field", [b"\xa4data", b"\xa6future"], ids=["payload", "unknown"])
def test_deep_nesting_is_a_protocol_error(field: bytes) -> None:
    """100k nested arrays in a payload or an unknown field: ProtocolError, no RecursionError."""
    nested = b"\x91" * 100_000 + b"\xc0"
    body = b"\x82\xa2id\x01\xa7publish\x82\xa7channel\xa1c" + field + nested
    with pytest.raises(ProtocolError):
        CODEC.decode(encode_uvarint(len(body)) + body, m.Command)
