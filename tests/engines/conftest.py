"""Fixtures the engine tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, TypeVar

import pytest
from enginekit import Recorder

from hubbub.engines.base import Broker

AnyBroker = TypeVar("AnyBroker", bound=Broker)


class StartBroker(Protocol):
    async def __call__(self, broker: AnyBroker, handler: Recorder | None = None) -> AnyBroker:
        """Start ``broker`` with ``handler`` (by default a fresh Recorder); return it."""
        ...


@pytest.fixture
async def start_broker() -> AsyncIterator[StartBroker]:
    """Start brokers for a test; every one started is closed at teardown."""
    started: list[Broker] = []

    async def start(broker: AnyBroker, handler: Recorder | None = None) -> AnyBroker:
        await broker.start(handler if handler is not None else Recorder())
        started.append(broker)
        return broker

    yield start
    for broker in started:
        await broker.close()
