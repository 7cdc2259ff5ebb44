"""What a ``nats://`` URL says: the server, and how the engines use it.

    nats://[user:password@]host[:port][?option=value&...]

Every field of ``NatsOptions`` but ``server`` is a query option, parsed to the field's
type; anything else is refused, so a typo never passes silently. Float options are all
numbers of seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, get_type_hints
from urllib.parse import parse_qs, urlsplit

_PREFIX = re.compile(r"[A-Za-z0-9-]{1,32}")
"""Letters, digits and '-' only: ``_`` and ``.`` separate the parts of names (names.py)."""


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Where the server is and how the engines use it, from a ``nats://`` URL."""

    server: str = "nats://127.0.0.1:4222"
    prefix: str = "hubbub"
    stream_replicas: int = 1
    storage: str = "file"
    timeout: float = 5.0
    """Seconds any one engine call may take before it fails with EngineError."""
    reorder_wait: float = 0.2
    """Seconds a missing offset may lag behind a later one before it is read from history."""
    reconnect_wait: float = 0.1
    reconnect_max_wait: float = 5.0

    @classmethod
    def from_url(cls, url: str) -> NatsOptions:
        """Parse ``nats://[user:password@]host[:port][?option=value&...]``."""
        parts = urlsplit(url)
        if parts.scheme != "nats":
            raise ValueError("a NATS URL starts with nats://")
        if not parts.hostname:
            raise ValueError("nats:// needs a host, e.g. nats://127.0.0.1:4222")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("nats:// takes no path; options go in the query: ?prefix=hubbub")
        values = _query(parts.query)
        options = cls(server=f"nats://{parts.netloc}", **values)
        options._check()
        return options

    def _check(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError("nats:// prefix must be 1-32 letters, digits or '-'")
        if not 1 <= self.stream_replicas <= 5:
            raise ValueError("nats:// stream_replicas must be 1 to 5")
        if self.storage not in ("file", "memory"):
            raise ValueError("nats:// storage must be 'file' or 'memory'")
        for name, kind in _OPTION_TYPES.items():
            if kind is float and not getattr(self, name) > 0:
                raise ValueError(f"nats:// {name} must be a number of seconds > 0")


_OPTION_TYPES: dict[str, type[int] | type[float] | type[str]] = {
    field.name: get_type_hints(NatsOptions)[field.name]
    for field in fields(NatsOptions)
    if field.name != "server"
}
"""Each query option and the type its value is parsed to, in field order."""


def _query(query: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, given in parse_qs(query, keep_blank_values=True, strict_parsing=False).items():
        kind = _OPTION_TYPES.get(name)
        if kind is None:
            known = ", ".join(sorted(_OPTION_TYPES))
            raise ValueError(f"unknown nats:// option {name!r}; known options: {known}")
        if len(given) > 1:
            raise ValueError(f"nats:// option {name!r} is given more than once")
        try:
            value = kind(given[0])
        except ValueError:
            raise ValueError(f"nats:// option {name!r} must be {kind.__name__}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"nats:// option {name!r} must be finite")
        values[name] = value
    return values
