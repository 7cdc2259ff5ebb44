"""msgpack codec: each message is ``uvarint(len) + msgpack map``, items concatenated.

The same layout as Protobuf (so the TCP transport and binary WebSocket frames treat
both alike), with msgspec's msgpack in place of the generated classes:

* Keys are the proto field names, zero values are left out (the Structs'
  ``omit_defaults``), a present-but-empty sub-message is an empty map.
* ``bytes`` fields (``data``, ``conn_info``, ``chan_info``) travel as msgpack *bin*.
  msgspec writes a ``Raw`` into msgpack verbatim, as if it already were msgpack, which
  would corrupt the stream; so encoding goes through ``to_builtins`` (``Raw`` → bytes)
  and decoding turns each ``Raw`` it got (the encoded bin) back into the payload.
* The empty message (a ping or a pong) is the zero-length item ``0x00``, as in Protobuf.

Selected on WebSocket by the ``hubbub-msgpack`` subprotocol and registered through the
``hubbub.codecs`` entry point like any third-party codec.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

from hubbub.codecs.base import M
from hubbub.errors import ProtocolError
from hubbub.protocol.framing import join_varint_items, split_varint_items, varint_item
from hubbub.protocol.messages import EMPTY, Command, Reply

_EMPTY_MAP = b"\x80"
_DECODE_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)

# How a Struct field holds payloads: a Raw itself, or Structs that (deeper) hold some.
_RAW, _ONE, _LIST, _MAP = range(4)


class _Fix(NamedTuple):
    """One field of a decoded Struct whose payloads must be turned from bin into bytes."""

    attr: str
    kind: int
    sub: tuple[_Fix, ...]


def _plan(struct: mi.StructType) -> tuple[_Fix, ...]:
    """The fields of ``struct`` that hold a ``Raw``, directly or in nested Structs."""
    fixes: list[_Fix] = []
    for field in struct.fields:
        t = field.type
        if isinstance(t, mi.RawType):
            fixes.append(_Fix(field.name, _RAW, ()))
            continue
        if isinstance(t, mi.UnionType):  # Struct | None
            t = next((x for x in t.types if isinstance(x, mi.StructType)), t)
        if isinstance(t, mi.StructType):
            kind, inner = _ONE, t
        elif isinstance(t, mi.ListType) and isinstance(t.item_type, mi.StructType):
            kind, inner = _LIST, t.item_type
        elif isinstance(t, mi.DictType) and isinstance(t.value_type, mi.StructType):
            kind, inner = _MAP, t.value_type
        else:
            continue
        sub = _plan(inner)
        if sub:
            fixes.append(_Fix(field.name, kind, sub))
    return tuple(fixes)


def _top_plan(cls: type[msgspec.Struct]) -> tuple[_Fix, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return _plan(info)


_PLANS: dict[type[Any], tuple[_Fix, ...]] = {Command: _top_plan(Command), Reply: _top_plan(Reply)}
_DECODERS: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {
    Command: msgspec.msgpack.Decoder(Command),
    Reply: msgspec.msgpack.Decoder(Reply),
}
_BIN = msgspec.msgpack.Decoder(bytes)
_ENCODER = msgspec.msgpack.Encoder()


def _raw_to_bytes(obj: Any) -> bytes:
    """``to_builtins`` hook: the only non-builtin value in a message is a ``Raw``."""
    if isinstance(obj, msgspec.Raw):
        return bytes(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__} as msgpack")


def _restore(obj: Any, plan: tuple[_Fix, ...]) -> None:
    """Replace, in place, every ``Raw`` of ``obj`` (an encoded bin) by its payload.

    Raises:
        msgspec.ValidationError: a payload was not a bin.
    """
    for attr, kind, sub in plan:
        value = getattr(obj, attr)
        if kind == _RAW:
            if value is not EMPTY:  # absent fields keep the shared EMPTY
                data = _BIN.decode(value)
                setattr(obj, attr, msgspec.Raw(data) if data else EMPTY)
        elif kind == _ONE:
            if value is not None:
                _restore(value, sub)
        else:
            for item in value.values() if kind == _MAP else value:
                _restore(item, sub)


class MsgpackCodec:
    """Protocol messages as msgpack maps, length-prefixed like Protobuf."""

    name = "msgpack"
    binary = True
    subprotocol = "hubbub-msgpack"

    def encode(self, message: Command | Reply) -> bytes:
        fields = msgspec.to_builtins(message, builtin_types=(bytes,), enc_hook=_raw_to_bytes)
        body = _ENCODER.encode(fields)
        if body == _EMPTY_MAP:
            return b"\x00"  # ping / pong: one byte, as in Protobuf
        return varint_item(body)

    join = staticmethod(join_varint_items)  # the framing function itself, no wrapper

    def decode(self, frame: bytes, kind: type[M]) -> list[M]:
        if not frame:
            raise ProtocolError("empty frame")
        decoder = _DECODERS[kind]
        plan = _PLANS[kind]
        messages: list[M] = []
        for body in split_varint_items(frame):
            if not body:
                messages.append(kind())
                continue
            try:
                message = decoder.decode(body)
                _restore(message, plan)
            except _DECODE_ERRORS as exc:
                raise ProtocolError(f"malformed msgpack message: {exc}") from None
            messages.append(message)
        return messages
