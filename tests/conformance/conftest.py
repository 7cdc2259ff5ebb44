"""Fixtures of the engine conformance suite: one parameter per discovered engine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from enginekit import FakeClock, Recorder

from conformance.support import Case, discover
from hubbub.engines.base import Broker, PresenceStore

BROKERS, PRESENCE_STORES = discover()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def channel() -> str:
    """A fresh channel name, so engines with shared state never see another test's data."""
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=sorted(BROKERS))
def broker_case(request: pytest.FixtureRequest) -> Case[Broker]:
    case = BROKERS[request.param]
    reason = case.unavailable()
    if reason:
        pytest.skip(reason)
    return case


@pytest.fixture
async def broker(
    broker_case: Case[Broker], clock: FakeClock, events: Recorder
) -> AsyncIterator[Broker]:
    engine = broker_case.make(clock)
    await engine.start(events)
    yield engine
    await engine.close()


@pytest.fixture
def broker_clock(broker_case: Case[Broker], clock: FakeClock) -> FakeClock:
    if not broker_case.fake_time:
        pytest.skip("the engine keeps its own time")
    return clock


@pytest.fixture(params=sorted(PRESENCE_STORES))
def presence_case(request: pytest.FixtureRequest) -> Case[PresenceStore]:
    case = PRESENCE_STORES[request.param]
    reason = case.unavailable()
    if reason:
        pytest.skip(reason)
    return case


@pytest.fixture
async def presence(
    presence_case: Case[PresenceStore], clock: FakeClock
) -> AsyncIterator[PresenceStore]:
    store = presence_case.make(clock)
    yield store
    await store.close()


@pytest.fixture
def presence_clock(presence_case: Case[PresenceStore], clock: FakeClock) -> FakeClock:
    if not presence_case.fake_time:
        pytest.skip("the engine keeps its own time")
    return clock
