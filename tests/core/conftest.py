"""Fixtures of the sans-I/O core tests: a started node with hooks and settings a test picks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import chat_settings

from hubbub.core.hooks import Hooks
from hubbub.core.node import Node

from .fakes import turns


@pytest.fixture
def hooks() -> Hooks:
    """The node's hooks; a test sets the ones it needs before connecting."""
    return Hooks()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Dotted-key overrides of the example chat config; tests override the fixture."""
    return {}


@pytest.fixture
async def node(hooks: Hooks, settings_overrides: dict[str, Any]) -> AsyncIterator[Node]:
    """A started node on the example chat config (memory engines)."""
    node = Node(chat_settings(**settings_overrides), hooks=hooks)
    await node.start()
    yield node
    await node.shutdown(0)
    await turns()  # let the channel releases of closed sessions finish
