"""Benchmark payloads: JSON objects that carry their send time.

A payload looks like ``{"bt":123456789012345,"s":17,"p":"xxxx"}``: ``bt`` is the
sender's ``CLOCK_MONOTONIC`` in nanoseconds (one clock for every process on the
machine), ``s`` a sequence number, ``p`` padding up to the requested size. Servers
embed it verbatim (Centrifuge JSON), carry it as raw bytes (Protobuf) or re-serialize
it (Socket.IO, which may add a space after the colon), so receivers find the stamps
with one regular expression over the whole frame instead of decoding every message.
"""

from __future__ import annotations

import re
import time

STAMP = re.compile(rb'"bt": ?(\d+)')
"""Matches the send time in a payload, whatever the server did to the JSON around it."""
_HEAD = '{{"bt":{stamp},"s":{seq},"p":"'


def make(seq: int, size: int, stamp_ns: int | None = None) -> bytes:
    """A payload of at least ``size`` bytes (exactly ``size`` when it fits)."""
    stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
    head = _HEAD.format(stamp=stamp, seq=seq)
    pad = size - len(head) - 2
    return (head + "x" * max(0, pad) + '"}').encode()


def stamps(frame: bytes) -> list[bytes]:
    """The send times (decimal digits) of every payload in ``frame``."""
    return STAMP.findall(frame)


def latencies_us(frame: bytes, now_ns: int) -> list[int]:
    """Microseconds from each payload's send time to ``now_ns``."""
    return [(now_ns - int(s)) // 1000 for s in STAMP.findall(frame)]
