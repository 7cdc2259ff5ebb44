"""A toy third-party codec, installed only by tests/codecs/test_plugin_codec.py.

It is JSON with every line prefixed ``toy:``: different enough on the wire to show the
server really uses it, small enough to read at a glance. It touches hubbub only through
the public Codec interface and entry point group ``hubbub.codecs``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hubbub.codecs.base import M
from hubbub.codecs.json import JsonCodec
from hubbub.errors import ProtocolError
from hubbub.protocol.messages import Command, Reply

PREFIX = b"toy:"


class ToyCodec:
    """``toy:`` + one JSON message per line; text frames; subprotocol ``hubbub-toy``."""

    name = "toy"
    binary = False
    subprotocol = "hubbub-toy"

    def __init__(self) -> None:
        """Lean on the JSON codec for the messages themselves."""
        self._json = JsonCodec()

    def encode(self, message: Command | Reply) -> bytes:
        """One prefixed line."""
        return PREFIX + self._json.encode(message)

    def join(self, items: Sequence[bytes]) -> bytes:
        """Lines joined by newlines."""
        return b"\n".join(items)

    def decode(self, frame: bytes, kind: type[M]) -> list[M]:
        """Every line must carry the prefix; the rest is JSON."""
        lines = frame.rstrip(b"\n").split(b"\n")
        if not all(line.startswith(PREFIX) for line in lines):
            raise ProtocolError("a toy line without its prefix")
        return self._json.decode(b"\n".join(line[len(PREFIX) :] for line in lines), kind)
