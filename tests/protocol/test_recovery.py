"""Tests for hubbub.protocol.recovery: the subscribe-with-recovery decision (§7.2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hubbub.protocol.messages import Publication, StreamPosition
from hubbub.protocol.recovery import RecoveryOutcome, recover

EPOCH = "abc"


def pubs(*offsets: int) -> list[Publication]:
    """Publications with these offsets, in the order given."""
    return [Publication(offset=o) for o in offsets]


def decide(
    client: int,
    top: int,
    missed: list[Publication],
    *,
    epoch: str = EPOCH,
    max_publications: int = 300,
) -> RecoveryOutcome:
    """recover() for a client at ``client``/``epoch`` on a stream at ``top``/EPOCH."""
    return recover(
        client=StreamPosition(offset=client, epoch=epoch),
        top=StreamPosition(offset=top, epoch=EPOCH),
        missed=missed,
        max_publications=max_publications,
    )


def offsets(outcome: RecoveryOutcome) -> list[int]:
    """The offsets an outcome replays."""
    return [p.offset for p in outcome.publications]


def test_missed_publications_are_replayed_exactly() -> None:
    """Every publication after the client's offset up to the top is replayed, in order."""
    outcome = decide(3, 6, pubs(4, 5, 6))
    assert outcome.recovered
    assert offsets(outcome) == [4, 5, 6]


def test_recovered_result_carries_the_clients_offset() -> None:
    """The result offset is the client's own; it advances it while processing the replay."""
    assert decide(3, 6, pubs(4, 5, 6)).offset == 3


def test_client_already_at_the_top_recovers_with_nothing() -> None:
    """A client that missed nothing is recovered, with no publications and its offset."""
    assert decide(6, 6, []) == RecoveryOutcome(True, [], 6)


def test_empty_stream_and_fresh_client_recover() -> None:
    """Offset 0 on an empty stream (top 0) is "at the top", hence recovered."""
    assert decide(0, 0, []) == RecoveryOutcome(True, [], 0)


def test_wrong_epoch_is_not_recovered() -> None:
    """An offset from another incarnation of the stream is never trusted."""
    outcome = decide(3, 6, pubs(4, 5, 6), epoch="old")
    assert outcome == RecoveryOutcome(False, [], 6)


def test_wrong_epoch_is_not_recovered_even_at_the_same_offset() -> None:
    """Equal offsets in different epochs name different publications."""
    assert decide(6, 6, [], epoch="old") == RecoveryOutcome(False, [], 6)


def test_empty_client_epoch_counts_as_the_current_one() -> None:
    """A client that sends no epoch is checked by offset alone (§7.2 "epoch equal or empty")."""
    outcome = decide(3, 6, pubs(4, 5, 6), epoch="")
    assert outcome.recovered
    assert offsets(outcome) == [4, 5, 6]


def test_gap_trimmed_from_history_is_not_recovered() -> None:
    """When the oldest needed publication is gone, nothing is replayed (never a partial set)."""
    outcome = decide(2, 6, pubs(5, 6))  # 3 and 4 were trimmed
    assert outcome == RecoveryOutcome(False, [], 6)


def test_history_emptied_by_ttl_is_not_recovered() -> None:
    """Publications expired entirely: the client missed some, history has none."""
    assert decide(2, 6, []) == RecoveryOutcome(False, [], 6)


def test_too_many_missed_is_not_recovered() -> None:
    """More missed publications than the limit are not replayed, even if history has them."""
    outcome = decide(0, 6, pubs(1, 2, 3, 4, 5, 6), max_publications=5)
    assert outcome == RecoveryOutcome(False, [], 6)


def test_exactly_the_limit_is_recovered() -> None:
    """The limit is inclusive: missing exactly max_publications still recovers."""
    outcome = decide(1, 6, pubs(2, 3, 4, 5, 6), max_publications=5)
    assert outcome.recovered
    assert offsets(outcome) == [2, 3, 4, 5, 6]


def test_client_offset_beyond_the_top_is_not_recovered() -> None:
    """A position the stream never reached (history lost, epoch reused) gets the top."""
    assert decide(9, 6, []) == RecoveryOutcome(False, [], 6)


def test_non_contiguous_offsets_are_not_recovered() -> None:
    """A hole in what history returned means a lost publication: no replay."""
    assert decide(3, 6, pubs(4, 6, 7)) == RecoveryOutcome(False, [], 6)


def test_duplicated_offsets_are_not_recovered() -> None:
    """A repeated publication in what history returned is not accepted as a replay."""
    assert decide(3, 6, pubs(4, 4, 5)) == RecoveryOutcome(False, [], 6)


def test_history_starting_past_the_client_is_not_recovered() -> None:
    """History that begins after offset + 1 is a gap even when it has enough items."""
    assert decide(3, 6, pubs(5, 6, 7)) == RecoveryOutcome(False, [], 6)


def test_replay_stops_at_the_top() -> None:
    """The extra item asked for (limit + 1) to detect "too many" is never replayed."""
    outcome = decide(3, 5, pubs(4, 5, 6))
    assert outcome.recovered
    assert offsets(outcome) == [4, 5]


@given(
    first_retained=st.integers(min_value=1, max_value=30),
    retained=st.integers(min_value=0, max_value=30),
    client=st.integers(min_value=0, max_value=70),
    max_publications=st.integers(min_value=1, max_value=40),
    same_epoch=st.booleans(),
)
def test_recovery_is_all_or_nothing(
    first_retained: int, retained: int, client: int, max_publications: int, same_epoch: bool
) -> None:
    """Whatever history holds, the outcome is the full range client+1..top or nothing."""
    top = first_retained + retained - 1 if retained else first_retained - 1
    window = range(max(client + 1, first_retained), top + 1)
    missed = pubs(*window)[: max_publications + 1]  # what the broker returns
    outcome = decide(
        client,
        top,
        missed,
        epoch=EPOCH if same_epoch else "other",
        max_publications=max_publications,
    )
    if outcome.recovered:
        assert offsets(outcome) == list(range(client + 1, top + 1))
        assert outcome.offset == client
        assert same_epoch
        assert top - client <= max_publications
    else:
        assert outcome.publications == []
        assert outcome.offset == top
    can_recover = (
        same_epoch
        and client <= top
        and top - client <= max_publications
        and (client == top or first_retained <= client + 1)
    )
    assert outcome.recovered == can_recover
