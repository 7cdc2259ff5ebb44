"""How engines join the conformance suite: one ``Case`` each, found by ``discover``.

An engine joins the suite with a file ``case_<engine>.py`` in this folder defining
``BROKER`` and ``PRESENCE`` (each a ``Case`` or None); ``discover`` finds them, and
every test of ``test_broker.py`` / ``test_presence.py`` runs against each. Tests that
move time use ``broker_clock`` / ``presence_clock``; they are skipped for an engine
that keeps its own time (a server's TTLs) and so cannot take the injected clock.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from enginekit import FakeClock

from hubbub.engines.base import Broker, PresenceStore

E = TypeVar("E", Broker, PresenceStore)


@dataclass(frozen=True)
class Case(Generic[E]):
    """How to build one engine for the suite."""

    make: Callable[[FakeClock], E]
    fake_time: bool = True
    """False when the engine keeps its own time, so tests that move time are skipped."""
    unavailable: Callable[[], str | None] = lambda: None
    """The reason the engine cannot run here (its server is not reachable), or None."""


def discover() -> tuple[dict[str, Case[Broker]], dict[str, Case[PresenceStore]]]:
    """Every ``case_<engine>.py`` beside this file: its BROKER and PRESENCE cases."""
    brokers: dict[str, Case[Broker]] = {}
    stores: dict[str, Case[PresenceStore]] = {}
    for path in sorted(Path(__file__).parent.glob("case_*.py")):
        name = path.stem.removeprefix("case_")
        spec = importlib.util.spec_from_file_location(f"conformance_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if getattr(module, "BROKER", None) is not None:
            brokers[name] = module.BROKER
        if getattr(module, "PRESENCE", None) is not None:
            stores[name] = module.PRESENCE
    return brokers, stores
