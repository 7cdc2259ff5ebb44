"""Tests for hubbub.protocol.framing: bytes in, items out, no event loop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.errors import ProtocolError
from hubbub.protocol import codes
from hubbub.protocol.framing import (
    BAD_PREAMBLE,
    MAX_PREAMBLE,
    MAX_REFUSAL,
    LengthPrefixFramer,
    LineFramer,
    StreamFramer,
    format_preamble,
    format_refusal,
    join_lines,
    join_varint_items,
    may_be_refusal,
    parse_preamble,
    parse_refusal,
    split_varint_items,
    stream_framer,
    varint_item,
)
from hubbub.protocol.varint import encode_uvarint

LIMIT = 16
SETTINGS = settings(deadline=None, max_examples=200, database=None)

lines_strategy = st.lists(
    st.binary(max_size=LIMIT).map(lambda b: b.replace(b"\n", b"")), min_size=1
)
bodies_strategy = st.lists(st.binary(max_size=LIMIT), min_size=1)


def item(body: bytes) -> bytes:
    """``body`` with its length prefix, written out here rather than by the module."""
    return encode_uvarint(len(body)) + body


def cut(stream: bytes, data: st.DataObject) -> list[bytes]:
    """``stream`` cut into reads at up to eight places hypothesis picks."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def feed_all(framer: StreamFramer, pieces: list[bytes]) -> list[bytes]:
    """Every chunk the framer hands out for ``pieces`` fed in order."""
    return [c for c in (framer.feed(p) for p in pieces) if c is not None]


def too_big(framer: StreamFramer, *pieces: bytes) -> bool:
    """True when feeding ``pieces`` ends in a "message too big" ProtocolError."""
    try:
        feed_all(framer, list(pieces))
    except ProtocolError as exc:
        return exc.disconnect is codes.MESSAGE_TOO_BIG
    return False


# ------------------------------------------------------------------ varint-delimited frames


def test_varint_item_is_the_length_then_the_body() -> None:
    """An item is uvarint(len) + body: one byte of length below 128, two from 128."""
    assert varint_item(b"") == b"\x00"
    assert varint_item(b"abc") == b"\x03abc"
    assert varint_item(b"x" * 200) == b"\xc8\x01" + b"x" * 200


def test_varint_items_split_back_into_bodies_or_whole_items() -> None:
    """A joined frame gives back its bodies, or its items with ``prefixed``."""
    bodies = [b"ab", b"", b"x" * 300]
    frame = join_varint_items([varint_item(b) for b in bodies])
    assert frame == b"\x02ab\x00\xac\x02" + b"x" * 300
    assert split_varint_items(frame) == bodies
    assert split_varint_items(frame, prefixed=True) == [item(b) for b in bodies]


def test_join_of_one_item_is_that_item() -> None:
    """One item is a frame by itself: joined without a copy, in both framings."""
    single = varint_item(b"abc")
    assert join_varint_items([single]) is single
    line = b'{"id":1}'
    assert join_lines([line]) is line
    assert join_lines([b"{}", b'{"id":2}']) == b'{}\n{"id":2}'


def test_non_minimal_length_prefix_is_read_as_go_reads_it() -> None:
    """``0x80 0x00`` is a (long-winded) zero: an empty item, prefix kept whole."""
    assert split_varint_items(b"\x80\x00\x01z") == [b"", b"z"]
    assert split_varint_items(b"\x80\x00", prefixed=True) == [b"\x80\x00"]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x05abc", "runs past the end"),
        (b"\x01a\x03b", "runs past the end"),
        (b"\x80", "truncated varint"),
        (b"\xff" * 11, "longer than 10 bytes"),
    ],
)
def test_broken_varint_frame_is_a_bad_request(frame: bytes, error: str) -> None:
    """A frame that ends inside an item or a prefix is the peer's fault: bad request."""
    with pytest.raises(ProtocolError, match=error) as caught:
        split_varint_items(frame)
    assert caught.value.disconnect is codes.BAD_REQUEST


def test_frame_with_a_broken_item_gives_nothing() -> None:
    """A frame is taken whole or refused whole: no items come out of a broken one."""
    with pytest.raises(ProtocolError):
        split_varint_items(b"\x01a\x05b")


@SETTINGS
@given(bodies_strategy)
def test_varint_frames_round_trip(bodies: list[bytes]) -> None:
    """Whatever the bodies, joining their items and splitting the frame gives them back."""
    frame = join_varint_items([varint_item(b) for b in bodies])
    assert split_varint_items(frame) == bodies


# ------------------------------------------------------------------ stream: lines


def test_lines_come_out_as_one_chunk_per_read_without_the_last_newline() -> None:
    """Complete lines of one read are one chunk, joined by newlines; the rest waits."""
    framer = LineFramer(LIMIT)
    assert framer.feed(b'{"a":1}\n{"b":2}\n{"c"') == b'{"a":1}\n{"b":2}'
    assert framer.buffered == b'{"c"'
    assert framer.feed(b":3}") is None
    assert framer.feed(b"\n") == b'{"c":3}'
    assert framer.buffered == b""


def test_line_chunk_splits_into_its_lines() -> None:
    """``split`` gives the lines of a chunk, blank ones included."""
    framer = LineFramer(LIMIT)
    chunk = framer.feed(b"a\n\nb\n")
    assert chunk is not None
    assert framer.split(chunk) == [b"a", b"", b"b"]


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


def test_too_big_names_the_size() -> None:
    """The error says how long the offending message is."""
    with pytest.raises(ProtocolError, match="message of 17 bytes"):
        LineFramer(LIMIT).feed(b"x" * 17)


@SETTINGS
@given(lines_strategy, st.data())
def test_lines_survive_any_split(lines: list[bytes], data: st.DataObject) -> None:
    """However the stream is cut into reads, the same lines come out in order."""
    stream = b"".join(line + b"\n" for line in lines)
    framer = LineFramer(LIMIT)
    chunks = feed_all(framer, cut(stream, data))
    assert [line for chunk in chunks for line in framer.split(chunk)] == lines
    assert framer.buffered == b""


# ------------------------------------------------------------------ stream: length prefixes


def test_items_come_out_whole_with_their_prefixes() -> None:
    """Complete items of one read are one chunk, prefixes kept; a partial item waits."""
    framer = LengthPrefixFramer(LIMIT)
    assert framer.feed(item(b"ab") + item(b"") + item(b"cde")[:2]) == item(b"ab") + b"\x00"
    assert framer.buffered == item(b"cde")[:2]
    assert framer.feed(b"de") == item(b"cde")
    assert framer.buffered == b""


def test_read_of_whole_items_is_handed_on_without_a_copy() -> None:
    """The common case, a read that ends on an item boundary, is the chunk itself."""
    data = item(b"ab") + item(b"cd")
    assert LengthPrefixFramer(LIMIT).feed(data) is data


def test_prefixed_chunk_splits_into_whole_items() -> None:
    """``split`` gives the items of a chunk, each with its prefix (what codecs decode)."""
    framer = LengthPrefixFramer(LIMIT)
    chunk = framer.feed(item(b"ab") + item(b"") + item(b"cde"))
    assert chunk is not None
    assert framer.split(chunk) == [item(b"ab"), b"\x00", item(b"cde")]


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
    framer = LengthPrefixFramer(LIMIT)
    assert framer.feed(b"\xff" * 9) is None  # may still end
    with pytest.raises(ProtocolError) as caught:
        framer.feed(b"\xff" * 2)
    assert caught.value.disconnect is codes.BAD_REQUEST


@SETTINGS
@given(bodies_strategy, st.data())
def test_items_survive_any_split(bodies: list[bytes], data: st.DataObject) -> None:
    """However the stream is cut into reads, the same items come out in order."""
    stream = b"".join(item(b) for b in bodies)
    framer = LengthPrefixFramer(LIMIT)
    chunks = feed_all(framer, cut(stream, data))
    assert b"".join(chunks) == stream
    assert [i for chunk in chunks for i in framer.split(chunk)] == [item(b) for b in bodies]
    assert framer.buffered == b""


def test_framer_follows_the_codec_kind() -> None:
    """Text codecs get lines, binary codecs length prefixes."""
    assert isinstance(stream_framer(binary=False, limit=LIMIT), LineFramer)
    assert isinstance(stream_framer(binary=True, limit=LIMIT), LengthPrefixFramer)


# ------------------------------------------------------------------ preamble and refusal


def test_preamble_names_the_codec() -> None:
    """The client's first line, and the server's reading of it: codec and line end."""
    line = format_preamble("protobuf")
    assert line == b"hubbub/1 protobuf\n"
    assert parse_preamble(line + b"\x00") == ("protobuf", len(line))
    assert parse_preamble(b"hubbub/1 json\r\n{") == ("json", 15)


def test_preamble_waits_for_its_line() -> None:
    """Without a newline, a preamble shorter than the limit is still arriving."""
    assert parse_preamble(b"") is None
    assert parse_preamble(b"hubbub/1 js") is None
    assert parse_preamble(b"h" * (MAX_PREAMBLE - 1)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"hubbub/2 json\n",
        b"hubbub/1 json extra\n",
        b"hubbub/1\n",
        b"GET / HTTP/1.1\r\n",
        b"hubbub/1 " + b"j" * 60,  # no newline within 64 bytes
        b"hubbub/1 " + b"x" * 55 + b"\n",  # 65 bytes with the newline
    ],
)
def test_bad_preamble_is_refused(data: bytes) -> None:
    """Anything but ``hubbub/1 <codec>`` within 64 bytes is a bad preamble."""
    with pytest.raises(ProtocolError, match=BAD_PREAMBLE):
        parse_preamble(data)


def test_preamble_of_exactly_the_limit_is_read() -> None:
    """A 64-byte line, newline included, is still a preamble."""
    line = b"hubbub/1 " + b"x" * 54 + b"\n"
    assert len(line) == MAX_PREAMBLE
    assert parse_preamble(line) == ("x" * 54, MAX_PREAMBLE)


def test_refusal_line_round_trips() -> None:
    """The server's refusal line and the client's reading of it."""
    line = format_refusal("unknown codec")
    assert line == b"hubbub/1 error unknown codec\n"
    assert may_be_refusal(line)
    assert parse_refusal(line) == "unknown codec"


def test_refusal_is_told_from_a_message_by_its_first_bytes() -> None:
    """A JSON or binary first message is not a refusal; a prefix of one may be."""
    assert may_be_refusal(b"")
    assert may_be_refusal(b"hubbub/1 err")
    assert not may_be_refusal(b'{"id":1}\n')
    assert not may_be_refusal(b"\x05hello")


def test_refusal_waits_for_its_line_within_a_limit() -> None:
    """An unfinished refusal line waits, up to MAX_REFUSAL bytes."""
    assert parse_refusal(b"hubbub/1 er") is None
    assert parse_refusal(b"hubbub/1 error stale") is None
    assert parse_refusal(b"hubbub/1 error " + b"x" * (MAX_REFUSAL - 15)) is None
    with pytest.raises(ProtocolError, match="too long"):
        parse_refusal(b"hubbub/1 error " + b"x" * MAX_REFUSAL)
