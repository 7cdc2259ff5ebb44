"""The Codec interface: how messages become frame bytes and back.

A codec turns one message into an *item* (``encode``), joins items into one transport
frame (``join``) and splits a frame back into messages (``decode``). Items are
independent so that a publication is encoded once per codec and the same bytes are
joined into the frames of every subscriber (write coalescing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

from hubbub.protocol.messages import Command, Reply

M = TypeVar("M", Command, Reply)


@runtime_checkable
class Codec(Protocol):
    """Encodes and decodes protocol messages for one wire format."""

    name: str
    """Registry name, also what a client asks for (``json``, ``protobuf``, ...)."""

    binary: bool
    """True when frames go out as binary WebSocket messages, False for text."""

    subprotocol: str
    """The WebSocket subprotocol that selects this codec ("" when none)."""

    def encode(self, message: Command | Reply) -> bytes:
        """One message as an item ready to be joined with others."""
        ...

    def join(self, items: Sequence[bytes]) -> bytes:
        """One frame holding ``items`` in order; a frame of one item is that item's bytes
        (the session writes a lone message without calling this). Frames it made are
        items too: ``join([join(a), join(b)]) == join(a + b)``. The hub joins a channel's
        publications of one loop turn once, and each session joins that frame with
        its other messages."""
        ...

    def decode(self, frame: bytes, kind: type[M]) -> list[M]:
        """All messages of ``kind`` in ``frame``.

        Raises:
            ProtocolError: the frame is empty, malformed or holds a message that does
                not fit the schema. Never any other exception.
        """
        ...
