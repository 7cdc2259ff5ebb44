"""Protobuf codec: each message is ``uvarint(len) + serialized``, items concatenated.

The generated classes of ``client.proto`` do the wire work; this module converts them
to and from the msgspec Structs of :mod:`hubbub.protocol.messages`.

* Encoding stays in C: ``msgspec.to_builtins`` turns the Struct into nested dicts of
  its non-default fields (proto field names, ``Raw`` as bytes) and the generated
  class's constructor builds the message from them. A present-but-empty sub-message
  arrives as ``{}``, which the constructor marks present, so ``Reply{id:4, publish:{}}``
  keeps its (meaningful) empty ``publish``.
* Decoding walks the fields set in the parsed message (``ListFields``) with a *plan*
  per Struct class. Proto fields the Structs do not have are dropped.

Plans are built at import from the Structs' fields and checked against the proto
descriptors, so a Struct field missing from the schema, or of another type, fails at
import rather than on a client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias

import msgspec
import msgspec.inspect as mi
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as PbMessage

from hubbub.codecs.base import M
from hubbub.errors import ProtocolError
from hubbub.protocol import client_pb2
from hubbub.protocol.framing import join_varint_items, split_varint_items, varint_item
from hubbub.protocol.messages import EMPTY, Command, Reply

_Take: TypeAlias = "Callable[[Any, _Plan], Any]"
"""Turns a proto field value, as ``ListFields`` gives it, into the Struct field value."""


class _Plan(NamedTuple):
    """How one proto message becomes one Struct class."""

    cls: type[msgspec.Struct]
    takes: dict[str, tuple[str, _Take | None, _Plan]]
    """Per proto field name: (Struct attribute, take or None for as-is, sub-plan)."""
    zeros: tuple[tuple[str, Callable[[], Any]], ...]
    """Required Struct fields (no default) with their zero, for absent proto fields."""


_NO_PLAN = _Plan(msgspec.Struct, {}, ())


# ----------------------------------------------------------------- Struct → proto


def _raw_to_bytes(obj: Any) -> bytes:
    """``to_builtins`` hook: the only non-builtin value in a message is a ``Raw``."""
    if isinstance(obj, msgspec.Raw):
        return bytes(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__} as Protobuf")


def _serialize(message: Command | Reply, pb_cls: type[PbMessage]) -> bytes:
    fields = msgspec.to_builtins(message, builtin_types=(bytes,), enc_hook=_raw_to_bytes)
    return pb_cls(**fields).SerializeToString()


# ----------------------------------------------------------------- proto → Struct


def _convert(pb: Any, plan: _Plan) -> Any:
    """A ``plan.cls`` Struct from the fields set in ``pb``; fields it lacks are dropped."""
    kwargs = {attr: zero() for attr, zero in plan.zeros}
    takes = plan.takes
    for fd, value in pb.ListFields():
        spec = takes.get(fd.name)
        if spec is not None:
            attr, take, sub = spec
            kwargs[attr] = value if take is None else take(value, sub)
    return plan.cls(**kwargs)


def _take_raw(value: bytes, sub: _Plan) -> msgspec.Raw:
    # The shared EMPTY, never Raw(b""): msgspec omits a Raw default only when it is
    # that very object, and an empty Raw would be written as invalid JSON.
    return msgspec.Raw(value) if value else EMPTY


def _take_repeated(value: Any, sub: _Plan) -> list[Any]:
    return [_convert(item, sub) for item in value]


def _take_map(value: Any, sub: _Plan) -> dict[str, str]:
    return dict(value)


def _take_map_of_structs(value: Any, sub: _Plan) -> dict[str, Any]:
    return {key: _convert(item, sub) for key, item in value.items()}


# ----------------------------------------------------------------- plans

_Spec: TypeAlias = tuple["_Take | None", _Plan]

_SCALAR_CPP_TYPES: dict[type[mi.Type], frozenset[int]] = {
    mi.IntType: frozenset(
        {
            FieldDescriptor.CPPTYPE_INT32,
            FieldDescriptor.CPPTYPE_INT64,
            FieldDescriptor.CPPTYPE_UINT32,
            FieldDescriptor.CPPTYPE_UINT64,
        }
    ),
    mi.StrType: frozenset({FieldDescriptor.CPPTYPE_STRING}),
    mi.BoolType: frozenset({FieldDescriptor.CPPTYPE_BOOL}),
}

_ZERO_FACTORIES: dict[type[mi.Type], Callable[[], Any]] = {
    mi.IntType: int,
    mi.StrType: str,
    mi.BoolType: bool,
    mi.ListType: list,
    mi.DictType: dict,
    mi.RawType: lambda: EMPTY,
}


def _plan_for(struct: mi.StructType, descriptor: Descriptor) -> _Plan:
    """Match every field of ``struct`` to its proto field, or raise TypeError."""
    takes: dict[str, tuple[str, _Take | None, _Plan]] = {}
    zeros: list[tuple[str, Callable[[], Any]]] = []
    for field in struct.fields:
        where = f"{struct.cls.__name__}.{field.name}"
        fd = descriptor.fields_by_name.get(field.encode_name)
        if fd is None:
            raise TypeError(f"{where}: no field {field.encode_name!r} in {descriptor.full_name}")
        spec = _match(field.type, fd)
        if spec is None:
            raise TypeError(f"{where}: {field.type!r} does not fit {fd.full_name}")
        take, sub = spec
        takes[field.encode_name] = (field.name, take, sub)
        if field.required:
            zeros.append((field.name, _zero_factory(field.type, sub)))
    return _Plan(struct.cls, takes, tuple(zeros))


def _match(t: mi.Type, fd: FieldDescriptor) -> _Spec | None:
    """How a Struct field of type ``t`` maps onto the proto field ``fd``; None if it does not."""
    sub = fd.message_type
    if not fd.is_repeated:
        if isinstance(t, mi.RawType):
            return (_take_raw, _NO_PLAN) if fd.type == FieldDescriptor.TYPE_BYTES else None
        if type(t) in _SCALAR_CPP_TYPES:
            fits = (
                fd.cpp_type in _SCALAR_CPP_TYPES[type(t)] and fd.type != FieldDescriptor.TYPE_BYTES
            )
            return (None, _NO_PLAN) if fits else None
        struct = _optional_struct(t) if isinstance(t, mi.UnionType) else t
        if sub is not None and isinstance(struct, mi.StructType):
            return _convert, _plan_for(struct, sub)
        return None
    if sub is None:
        return None
    if not sub.GetOptions().map_entry:
        if isinstance(t, mi.ListType) and isinstance(t.item_type, mi.StructType):
            return _take_repeated, _plan_for(t.item_type, sub)
        return None
    if not (isinstance(t, mi.DictType) and isinstance(t.key_type, mi.StrType)):
        return None
    value_fd = sub.fields_by_name["value"]
    if isinstance(t.value_type, mi.StrType) and value_fd.type == FieldDescriptor.TYPE_STRING:
        return _take_map, _NO_PLAN
    if isinstance(t.value_type, mi.StructType) and value_fd.message_type is not None:
        return _take_map_of_structs, _plan_for(t.value_type, value_fd.message_type)
    return None


def _optional_struct(t: mi.UnionType) -> mi.StructType | None:
    """The Struct of ``Struct | None``, else None."""
    if len(t.types) == 2 and isinstance(t.types[1], mi.NoneType):
        first = t.types[0]
        return first if isinstance(first, mi.StructType) else None
    return None


def _zero_factory(t: mi.Type, sub: _Plan) -> Callable[[], Any]:
    """What a required Struct field holds when its proto field is absent (proto3 zero)."""
    if isinstance(t, mi.StructType):
        return lambda: sub.cls(**{attr: zero() for attr, zero in sub.zeros})
    return _ZERO_FACTORIES.get(type(t), lambda: None)


def _top_plan(cls: type[msgspec.Struct], descriptor: Descriptor) -> _Plan:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return _plan_for(info, descriptor)


_PB_CLASSES: dict[type[Any], type[PbMessage]] = {
    Command: client_pb2.Command,
    Reply: client_pb2.Reply,
}
_PLANS: dict[type[Any], _Plan] = {
    Command: _top_plan(Command, client_pb2.Command.DESCRIPTOR),
    Reply: _top_plan(Reply, client_pb2.Reply.DESCRIPTOR),
}


class ProtobufCodec:
    """The Centrifuge Protobuf format over WebSocket binary messages."""

    name = "protobuf"
    binary = True
    subprotocol = "centrifuge-protobuf"

    def encode(self, message: Command | Reply) -> bytes:
        return varint_item(_serialize(message, _PB_CLASSES[type(message)]))

    join = staticmethod(join_varint_items)  # the framing function itself, no wrapper

    def decode(self, frame: bytes, kind: type[M]) -> list[M]:
        if not frame:
            raise ProtocolError("empty frame")
        pb_cls = _PB_CLASSES[kind]
        plan = _PLANS[kind]
        messages: list[M] = []
        for body in split_varint_items(frame):
            pb = pb_cls()
            try:
                pb.ParseFromString(body)
            except DecodeError as exc:
                raise ProtocolError(f"malformed Protobuf message: {exc}") from None
            messages.append(_convert(pb, plan))
        return messages
