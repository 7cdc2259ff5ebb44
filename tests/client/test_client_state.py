"""The client's and the subscription's transition tables, and the events they emit."""

from __future__ import annotations

import itertools

import pytest

from hubbub.client import (
    ClientState,
    ClientTrigger,
    SubscriptionState,
    SubscriptionTrigger,
    Transition,
)
from hubbub.client.state import (
    CLIENT_TRANSITIONS,
    SUBSCRIPTION_TRANSITIONS,
    InvalidTransition,
    StateMachine,
)

C, T = ClientState, ClientTrigger
EXPECTED_CLIENT = {
    (C.IDLE, T.CONNECT): C.CONNECTING,
    (C.IDLE, T.DISCONNECT): C.CLOSED,
    (C.CONNECTING, T.CONNECTED): C.READY,
    (C.CONNECTING, T.ATTEMPT_FAILED): C.CONNECTING,
    (C.CONNECTING, T.GIVE_UP): C.BROKEN,
    (C.CONNECTING, T.TERMINAL): C.CLOSED,
    (C.CONNECTING, T.DISCONNECT): C.CLOSED,
    (C.READY, T.LOST): C.CONNECTING,
    (C.READY, T.TERMINAL): C.CLOSED,
    (C.READY, T.DISCONNECT): C.CLOSED,
    (C.BROKEN, T.CONNECT): C.CONNECTING,
    (C.BROKEN, T.DISCONNECT): C.CLOSED,
    (C.CLOSED, T.CONNECT): C.CONNECTING,
}

S, ST = SubscriptionState, SubscriptionTrigger
EXPECTED_SUBSCRIPTION = {
    (S.UNSUBSCRIBED, ST.SUBSCRIBE): S.SUBSCRIBING,
    (S.SUBSCRIBING, ST.SUBSCRIBED): S.SUBSCRIBED,
    (S.SUBSCRIBING, ST.INTERRUPTED): S.SUBSCRIBING,
    (S.SUBSCRIBING, ST.UNSUBSCRIBE): S.UNSUBSCRIBED,
    (S.SUBSCRIBING, ST.ENDED): S.UNSUBSCRIBED,
    (S.SUBSCRIBED, ST.INTERRUPTED): S.SUBSCRIBING,
    (S.SUBSCRIBED, ST.UNSUBSCRIBE): S.UNSUBSCRIBED,
    (S.SUBSCRIBED, ST.ENDED): S.UNSUBSCRIBED,
}


def test_client_table_is_exactly_the_documented_one() -> None:
    """IDLE -> CONNECTING -> READY -> ..., BROKEN and CLOSED: no more, no fewer moves."""
    assert dict(CLIENT_TRANSITIONS) == EXPECTED_CLIENT


def test_subscription_table_is_exactly_the_documented_one() -> None:
    """UNSUBSCRIBED -> SUBSCRIBING -> SUBSCRIBED and back: no more, no fewer moves."""
    assert dict(SUBSCRIPTION_TRANSITIONS) == EXPECTED_SUBSCRIPTION


@pytest.mark.parametrize(("start", "trigger"), list(EXPECTED_CLIENT), ids=str)
def test_every_client_transition_moves_and_emits_one_event(
    start: ClientState, trigger: ClientTrigger
) -> None:
    """Each allowed (state, trigger) lands in its target and tells every listener once."""
    machine = StateMachine(CLIENT_TRANSITIONS, start)
    seen: list[Transition[ClientState, ClientTrigger]] = []
    also: list[Transition[ClientState, ClientTrigger]] = []
    machine.listen(seen.append)
    machine.listen(also.append)
    error = RuntimeError("why")
    event = machine.fire(trigger, code=3011, reason="force reconnect", error=error)
    target = EXPECTED_CLIENT[(start, trigger)]
    assert machine.state is target
    assert seen == also == [event]
    assert (event.old, event.new, event.trigger) == (start, target, trigger)
    assert (event.code, event.reason, event.error) == (3011, "force reconnect", error)


@pytest.mark.parametrize(("start", "trigger"), list(EXPECTED_SUBSCRIPTION), ids=str)
def test_every_subscription_transition_moves_and_emits_one_event(
    start: SubscriptionState, trigger: SubscriptionTrigger
) -> None:
    """Each allowed (state, trigger) of a subscription lands in its target, one event."""
    machine = StateMachine(SUBSCRIPTION_TRANSITIONS, start)
    seen: list[Transition[SubscriptionState, SubscriptionTrigger]] = []
    machine.listen(seen.append)
    machine.fire(trigger)
    assert machine.state is EXPECTED_SUBSCRIPTION[(start, trigger)]
    assert [(e.old, e.new, e.trigger) for e in seen] == [(start, machine.state, trigger)]


FORBIDDEN_CLIENT = [
    pair for pair in itertools.product(ClientState, ClientTrigger) if pair not in EXPECTED_CLIENT
]


@pytest.mark.parametrize(("start", "trigger"), FORBIDDEN_CLIENT, ids=str)
def test_client_moves_outside_the_table_are_refused(
    start: ClientState, trigger: ClientTrigger
) -> None:
    """A (state, trigger) missing from the table raises, keeps the state, emits nothing."""
    machine = StateMachine(CLIENT_TRANSITIONS, start)
    seen: list[object] = []
    machine.listen(seen.append)
    assert not machine.can(trigger)
    with pytest.raises(InvalidTransition):
        machine.fire(trigger)
    assert machine.state is start
    assert seen == []


def test_only_disconnect_or_connect_leave_the_end_states() -> None:
    """BROKEN and CLOSED are left only by connect() (start over) or disconnect()."""
    for state in (ClientState.BROKEN, ClientState.CLOSED):
        leaving = {t for (s, t) in CLIENT_TRANSITIONS if s is state}
        assert leaving <= {ClientTrigger.CONNECT, ClientTrigger.DISCONNECT}


def test_every_state_is_reachable_from_idle() -> None:
    """Walking the table from IDLE reaches all five client states."""
    reached = {ClientState.IDLE}
    frontier = [ClientState.IDLE]
    while frontier:
        state = frontier.pop()
        for (source, _), target in CLIENT_TRANSITIONS.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(ClientState)


def test_a_sequence_of_moves_is_reported_in_order() -> None:
    """Listeners see connect, a failed attempt, ready, lost, ready, disconnect in order."""
    machine = StateMachine(CLIENT_TRANSITIONS, ClientState.IDLE)
    seen: list[Transition[ClientState, ClientTrigger]] = []
    machine.listen(seen.append)
    for trigger in (T.CONNECT, T.ATTEMPT_FAILED, T.CONNECTED, T.LOST, T.CONNECTED, T.DISCONNECT):
        machine.fire(trigger)
    assert [e.new for e in seen] == [
        C.CONNECTING,
        C.CONNECTING,
        C.READY,
        C.CONNECTING,
        C.READY,
        C.CLOSED,
    ]
