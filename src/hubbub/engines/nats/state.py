"""The ``Record``: every history and live message, carrying the stream's state with it.

Each message on a channel's history subject holds the state of the stream as of that
message: epoch, offset, the first offset still retained, and when the retained
publications expire. So the subject's last message (the *tail*, history.py) IS the
stream's metadata, and no counter kept elsewhere can run ahead of the data. Live
messages are the same records, so a node that missed one can read it from history.

Records travel as msgpack arrays; ``kind`` tells a publication from a join, a leave or a
data-less ``MARK`` that only holds the position.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec

from hubbub.protocol.messages import ClientInfo, Publication, StreamPosition, raw

PUB: Final = 0
MARK: Final = 1
"""A history record without data: holds the stream's position (remove_history, creation)."""
JOIN: Final = 2
LEAVE: Final = 3


class WireInfo(msgspec.Struct, array_like=True, frozen=True):
    user: str
    client: str
    conn_info: bytes = b""
    chan_info: bytes = b""


class Record(msgspec.Struct, array_like=True, frozen=True):
    """One message on a history or live subject (msgpack); see the module docstring."""

    kind: int
    epoch: str = ""
    offset: int = 0
    first: int = 0
    """The oldest offset of the live window: older ones were removed or expired."""
    expires: int = 0
    """Unix ms when the window's publications expire (ttl after the latest)."""
    size: int = 0
    """How many of the newest publications the window keeps."""
    data: bytes = b""
    info: WireInfo | None = None
    tags: dict[str, str] = {}
    time: int = 0

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(offset=self.offset, epoch=self.epoch)

    def window(self, now_ms: int) -> tuple[int, int]:
        """The offsets still retained and unexpired, first and last (empty if first > last)."""
        if self.expires <= now_ms:
            return 1, 0
        return max(self.first, self.offset - self.size + 1), self.offset

    def marker(self, **changes: Any) -> Record:
        """A data-less copy: the same position, for the tail to keep."""
        return msgspec.structs.replace(
            self, kind=MARK, data=b"", info=None, tags={}, time=0, **changes
        )


encode = msgspec.msgpack.Encoder().encode
decode_record = msgspec.msgpack.Decoder(Record).decode


def event(kind: int, pub: Publication, **position: Any) -> Record:
    """The record of ``pub`` (``PUB``), at ``position`` (epoch, offset, ...) if it has one."""
    return Record(
        kind=kind,
        data=bytes(pub.data),
        info=wire_info(pub.info),
        tags=pub.tags,
        time=pub.time,
        **position,
    )


def publication(record: Record) -> Publication:
    info = None if record.info is None else client_info(record.info)
    return Publication(
        data=raw(record.data), info=info, offset=record.offset, tags=record.tags, time=record.time
    )


def publications_between(records: list[Record], epoch: str, first: int, last: int) -> list[Record]:
    """The publications of ``epoch`` with offsets first..last, in the order given."""
    return [r for r in records if r.kind == PUB and r.epoch == epoch and first <= r.offset <= last]


def wire_info(info: ClientInfo | None) -> WireInfo | None:
    if info is None:
        return None
    return WireInfo(info.user, info.client, bytes(info.conn_info), bytes(info.chan_info))


def client_info(info: WireInfo | None) -> ClientInfo:
    if info is None:
        return ClientInfo(user="", client="")
    return ClientInfo(
        user=info.user,
        client=info.client,
        conn_info=raw(info.conn_info),
        chan_info=raw(info.chan_info),
    )


def now_ms() -> int:
    return int(time.time() * 1000)
