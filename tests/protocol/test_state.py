"""Tests for hubbub.protocol.state: the connection state table, pair by pair."""

from __future__ import annotations

import itertools

import pytest

from hubbub.protocol.state import ALLOWED, TRANSITIONS, Event, State, next_state

S, E = State, Event

# The whole table as PROTOCOL.md §6 reads it: (state, event) -> next state, None = 3501.
EXPECTED: dict[tuple[State, Event], State | None] = {
    **{(state, E.CLOSE): S.CLOSED for state in State},
    (S.AWAITING_CONNECT, E.CONNECT): S.CONNECTING,
    (S.CONNECTING, E.CONNECT_OK): S.CONNECTED,
    (S.CONNECTING, E.CONNECT_ERROR): S.UNUSABLE,
    (S.CONNECTED, E.COMMAND): S.CONNECTED,
    (S.CONNECTED, E.SEND): S.CONNECTED,
    (S.CONNECTED, E.PONG): S.CONNECTED,
}

ALL_PAIRS = list(itertools.product(State, Event))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda v: v.name)
def test_every_pair_of_the_table(state: State, event: Event) -> None:
    """Each (state, event) pair leads where §6 says, or is refused with None."""
    assert next_state(state, event) is EXPECTED.get((state, event))


def test_the_table_holds_nothing_beyond_the_documented_pairs() -> None:
    """TRANSITIONS has exactly the documented pairs, so drawing it draws the protocol."""
    assert set(TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize("event", [E.COMMAND, E.SEND, E.PONG], ids=lambda e: e.name)
def test_nothing_but_connect_before_connect(event: Event) -> None:
    """A command, a send or a pong before connect is a protocol violation."""
    assert next_state(S.AWAITING_CONNECT, event) is None


@pytest.mark.parametrize("state", [S.CONNECTING, S.CONNECTED, S.UNUSABLE, S.CLOSED])
def test_a_second_connect_is_refused(state: State) -> None:
    """Connect is allowed once: in any later state it is a protocol violation."""
    assert next_state(state, E.CONNECT) is None


@pytest.mark.parametrize(
    "event", [E.CONNECT, E.COMMAND, E.SEND, E.PONG, E.CONNECT_OK], ids=lambda e: e.name
)
def test_a_refused_connect_leaves_the_connection_unusable(event: Event) -> None:
    """After a connect error reply every later input is refused; only closing remains."""
    assert next_state(S.UNUSABLE, event) is None
    assert next_state(S.UNUSABLE, E.CLOSE) is S.CLOSED


def test_allowed_events_keep_the_state() -> None:
    """An ALLOWED entry returns the current state, never the marker itself."""
    for (state, event), target in TRANSITIONS.items():
        if target == ALLOWED:
            assert next_state(state, event) is state


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.name)
def test_closed_is_final(event: Event) -> None:
    """Nothing leaves CLOSED: closing again is a no-op, everything else is refused."""
    assert next_state(S.CLOSED, event) is (S.CLOSED if event is E.CLOSE else None)
