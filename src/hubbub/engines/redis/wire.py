"""What travels through Redis: publications and client infos as compact msgpack.

A Pub/Sub message is ``<kind><offset>:<body>``; the offset only on publications, where
the publish script writes it (it is known only inside the script).
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubbub.protocol.messages import ClientInfo, Publication, raw

PUB, JOIN, LEAVE = b"p", b"j", b"l"
"""The kinds of Pub/Sub message."""


class _WireInfo(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    user: str
    client: str
    conn_info: bytes = b""
    chan_info: bytes = b""


class _WirePublication(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """A Publication without its offset, which travels beside it (the script assigns it).

    Spelled out rather than derived from ``Publication``: it is encoded as an array, so
    this field order is the format of what Redis keeps in history and of what nodes of
    different versions exchange; a change to the protocol Struct must not reorder it.
    """

    data: bytes = b""
    info: _WireInfo | None = None
    tags: dict[str, str] = {}
    delta: bool = False
    time: int = 0
    channel: str = ""
    key: str = ""
    removed: bool = False
    score: int = 0
    epoch: str = ""
    version: int = 0


_PASSED = _WirePublication.__struct_fields__[2:]
"""The Publication fields that travel unchanged (payloads and info are converted)."""


class _WireUser(msgspec.Struct, array_like=True, gc=False):
    """The first field of an encoded ClientInfo: enough to count users."""

    user: str


# msgspec writes a Raw verbatim, which would splice JSON text into the msgpack:
# payloads become bytes explicitly on the way in and Raw again on the way out.
_encode = msgspec.msgpack.Encoder().encode
_decode_info = msgspec.msgpack.Decoder(_WireInfo).decode
_decode_publication = msgspec.msgpack.Decoder(_WirePublication).decode
_decode_user = msgspec.msgpack.Decoder(_WireUser).decode


def _wire_info(info: ClientInfo) -> _WireInfo:
    return _WireInfo(info.user, info.client, bytes(info.conn_info), bytes(info.chan_info))


def _client_info(wire: _WireInfo) -> ClientInfo:
    return ClientInfo(
        user=wire.user,
        client=wire.client,
        conn_info=raw(wire.conn_info),
        chan_info=raw(wire.chan_info),
    )


def encode_info(info: ClientInfo) -> bytes:
    """Our compact msgpack form of ``info``."""
    return _encode(_wire_info(info))


def decode_info(body: bytes) -> ClientInfo:
    """``body`` from ``encode_info`` as a ClientInfo."""
    return _client_info(_decode_info(body))


def decode_user(body: bytes) -> str:
    """The user of an encoded ClientInfo, without decoding the rest."""
    return _decode_user(body).user


def encode_publication(pub: Publication) -> bytes:
    """Our compact msgpack form of ``pub``, without the offset."""
    info = None if pub.info is None else _wire_info(pub.info)
    return _encode(_WirePublication(bytes(pub.data), info, *[getattr(pub, f) for f in _PASSED]))


def decode_publication(body: bytes, offset: int) -> Publication:
    """``body`` from ``encode_publication`` as the Publication at ``offset``."""
    wire = _decode_publication(body)
    info = None if wire.info is None else _client_info(wire.info)
    passed = {name: getattr(wire, name) for name in _PASSED}
    return Publication(data=raw(wire.data), info=info, offset=offset, **passed)


def resp_map(flat: list[Any]) -> dict[Any, Any]:
    """A RESP2 map (a flat list of names and values, as HGETALL and XRANGE give) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
