"""JSON codec: one JSON object per message, messages in a frame joined by ``\\n``."""

from __future__ import annotations

from typing import Any

import msgspec

from hubbub.codecs.base import M
from hubbub.errors import ProtocolError
from hubbub.protocol.framing import join_lines
from hubbub.protocol.messages import Command, Reply


def is_utf8(payload: bytes | memoryview) -> bool:
    """JSON text must be UTF-8 (browsers drop a WebSocket that sends them anything else)."""
    data = payload if isinstance(payload, bytes) else bytes(payload)  # e.g. msgspec.Raw
    return data.isascii() or _decodes_as_utf8(data)


def _decodes_as_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_json(payload: bytes) -> bool:
    """True when ``payload`` is one valid JSON value, so it can be embedded verbatim."""
    if not is_utf8(payload):
        return False
    try:
        msgspec.json.decode(payload, type=msgspec.Raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return True


class JsonCodec:
    """The Centrifuge JSON format: proto field names, ``bytes`` as embedded JSON."""

    name = "json"
    binary = False
    subprotocol = "centrifuge-json"

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
            Command: msgspec.json.Decoder(Command),
            Reply: msgspec.json.Decoder(Reply),
        }

    def encode(self, message: Command | Reply) -> bytes:
        item = self._encoder.encode(message)
        # msgspec escapes newlines inside strings, so a raw \n can only come from an
        # embedded payload, where valid JSON allows it only as whitespace: drop it so
        # the line framing survives. (find, not ``in``: CPython's bytes ``in`` first tries
        # the needle as an integer and builds and drops a TypeError, every call.)
        if item.find(b"\n") >= 0:
            item = item.replace(b"\n", b"")
        return item

    # The framing function itself, no wrapper: a flush calls it once per subscriber.
    join = staticmethod(join_lines)

    def decode(self, frame: bytes, kind: type[M]) -> list[M]:
        decoder = self._decoders[kind]
        # msgspec keeps ``data`` as Raw without validating it: a frame that is not UTF-8
        # would be published and then break every JSON reader of the channel, so it is
        # refused here, for every transport. ASCII (most JSON) costs one quick scan.
        if not frame.isascii() and not _decodes_as_utf8(frame):
            raise ProtocolError("JSON message is not valid UTF-8")
        try:
            if frame.find(b"\n") < 0:
                return [decoder.decode(frame)]  # one message per frame: the common case
            lines = frame.split(b"\n")
            if not lines[-1].strip():
                lines.pop()  # a trailing newline is tolerated
            return [decoder.decode(line) for line in lines]
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # An empty frame fails in msgspec too: it is named here, off the hot path.
            if not frame.strip():
                raise ProtocolError("empty frame") from None
            raise ProtocolError(f"malformed JSON message: {exc}") from None
