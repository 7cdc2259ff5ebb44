"""Engines by URL scheme, imported only when asked for.

Each scheme names a ``"module:attr"`` factory that takes the whole URL, so ``redis://``
needs the ``redis`` package installed only when a configuration uses it. Errors are
``ValueError``s worded for a person reading a configuration error.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import reduce
from typing import Any
from urllib.parse import urlsplit

from hubbub.engines.base import Broker, PresenceStore

BROKERS: Mapping[str, str] = {
    "memory": "hubbub.engines.memory:MemoryBroker.from_url",
    "redis": "hubbub.engines.redis:RedisBroker.from_url",
    "rediss": "hubbub.engines.redis:RedisBroker.from_url",
    "nats": "hubbub.engines.nats:NatsBroker.from_url",
}

PRESENCE_STORES: Mapping[str, str] = {
    "memory": "hubbub.engines.memory:MemoryPresenceStore.from_url",
    "redis": "hubbub.engines.redis:RedisPresenceStore.from_url",
    "rediss": "hubbub.engines.redis:RedisPresenceStore.from_url",
    "nats": "hubbub.engines.nats:NatsPresenceStore.from_url",
}

EXTRAS: Mapping[str, str] = {"redis": "redis", "rediss": "redis", "nats": "nats"}
"""The ``hubbub[...]`` extra that brings each scheme's dependencies."""


def create_broker(url: str) -> Broker:
    """A new, not yet started broker for ``url`` (``memory://``, ``redis://...``, ...)."""
    broker: Broker = _factory(BROKERS, url, "broker")(url)
    return broker


def create_presence(url: str) -> PresenceStore:
    """A new presence store for ``url`` (``memory://``, ``redis://...``)."""
    store: PresenceStore = _factory(PRESENCE_STORES, url, "presence store")(url)
    return store


def check_broker_url(url: str) -> None:
    """Raise the ValueError that ``create_broker(url)`` would, for configuration checks:
    creating an engine does no I/O (it connects in ``start``), so one is made and dropped,
    and the engine's own parsing decides."""
    create_broker(url)


def check_presence_url(url: str) -> None:
    """Raise the ValueError that ``create_presence(url)`` would (see ``check_broker_url``)."""
    create_presence(url)


def _factory(table: Mapping[str, str], url: str, kind: str) -> Any:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - the property parses the port, for every scheme
    except ValueError as exc:
        message = str(exc)
        raise ValueError(f"bad port in the URL: {message[:1].lower()}{message[1:]}") from None
    scheme = parts.scheme
    reference = table.get(scheme)
    if reference is None:
        # Name the scheme only: the rest of a URL may hold a password.
        known = ", ".join(f"{name}://" for name in sorted(table))
        given = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ValueError(f"no {kind} for {given}; use one of {known}")
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get(scheme)
        hint = f"; install it with: pip install 'hubbub[{extra}]'" if extra else ""
        raise ValueError(f"the {scheme}:// {kind} is not available ({exc}){hint}") from exc
    return reduce(getattr, attribute.split("."), module)
