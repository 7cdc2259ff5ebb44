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
_PAD = b"x" * 4096


def make(seq: int, size: int, stamp_ns: int | None = None) -> bytes:
    """A payload of at least ``size`` bytes (exactly ``size`` when it fits)."""
    # The echo scenario makes one per round trip: bytes formatting, no str round trip.
    stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
    head = b'{"bt":%d,"s":%d,"p":"' % (stamp, seq)
    pad = size - len(head) - 2
    if pad <= 0:
        return head + b'"}'
    return head + (_PAD[:pad] if pad <= len(_PAD) else b"x" * pad) + b'"}'
