"""Deciding the outcome of a subscribe with recovery (PROTOCOL.md §7.2), as pure functions.

Recovery is all or nothing: either every publication from the client's offset + 1 up
to the top is replayed (``recovered: true``), or none is (``recovered: false``, or
error 112 when the client asked to be refused). A partial replay would look to the
application like a complete one and silently lose messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubbub.protocol.messages import Publication, StreamPosition

REJECT_UNRECOVERED_FLAG = 2
"""SubscribeRequest.flag bit: answer 112 instead of ``recovered: false``."""


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    recovered: bool
    publications: list[Publication]
    offset: int
    """The offset to put in the result: the client's when recovered, else the top."""


def recover(
    *,
    client: StreamPosition,
    top: StreamPosition,
    missed: list[Publication],
    max_publications: int,
) -> RecoveryOutcome:
    """Decide recovery from the client's last position and what history returned.

    Args:
        client: the position the client sent (its last processed offset and epoch).
        top: the stream's current top position.
        missed: the publications history returned after ``client.offset``, oldest first
            (at most ``max_publications + 1`` of them, to tell "too many" apart).
        max_publications: more missed publications than this are not replayed.
    """
    not_recovered = RecoveryOutcome(False, [], top.offset)
    if client.epoch and client.epoch != top.epoch:
        return not_recovered
    if client.offset == top.offset:
        return RecoveryOutcome(True, [], client.offset)
    if client.offset > top.offset:
        return not_recovered
    needed = top.offset - client.offset
    if needed > max_publications or len(missed) < needed:
        return not_recovered
    replay = missed[:needed]
    expected = client.offset + 1
    for pub in replay:  # contiguous offsets, nothing trimmed in between
        if pub.offset != expected:
            return not_recovered
        expected += 1
    return RecoveryOutcome(True, replay, client.offset)
