"""The Redis engine URL and its options, and the settings every connection shares.

    redis://[:password@]host:6379/0?prefix=hubbub&pubsub_shards=4&cluster=true

Options in the URL query (anything else is refused, so a typo never passes silently):

    prefix           key and channel prefix, so several installations share a Redis
    pubsub_shards    Pub/Sub connections per node; channels spread over them by hash slot
    cluster          true: sharded Pub/Sub (SPUBLISH/SSUBSCRIBE). On a Redis Cluster the
                     URL's node is only the first contact: commands and subscriptions go
                     to the primary serving each channel's slot
    timeout          seconds a Redis command may take before it counts as failed
    max_connections  command connections per engine (per node on a Cluster); callers
                     queue beyond it
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from hubbub.errors import EngineError

_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _whole(low: int, high: int) -> Callable[[str], int | None]:
    return lambda value: int(value) if value.isdigit() and low <= int(value) <= high else None


def _seconds(value: str) -> float | None:
    with contextlib.suppress(ValueError):
        if 0 < (seconds := float(value)) < math.inf:
            return seconds
    return None


_OPTIONS: dict[str, tuple[Callable[[str], object | None], str]] = {
    "prefix": (lambda v: v if _PREFIX.fullmatch(v) else None, "1-64 letters, digits or _.:-"),
    "pubsub_shards": (_whole(1, 128), "a whole number from 1 to 128"),
    "cluster": (lambda v: _FLAGS.get(v.lower()), "true or false"),
    "timeout": (_seconds, "seconds > 0"),
    "max_connections": (_whole(1, 10_000), "a whole number from 1 to 10000"),
}
"""Each option's parser (None for a bad value) and what it expects, for the error."""


def _option(name: str, value: str) -> object:
    if name not in _OPTIONS:
        known = ", ".join(sorted(_OPTIONS))
        raise ValueError(f"unknown redis URL option {name!r}; known options: {known}")
    parse, expected = _OPTIONS[name]
    parsed = parse(value)
    if parsed is None:
        raise ValueError(f"redis URL option {name}: expected {expected}, got {value!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Where Redis is and how hubbub uses it, read from the engine URL."""

    url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    """The URL for redis-py, without hubbub's options (kept out of repr: a password)."""
    prefix: str = "hubbub"
    pubsub_shards: int = 1
    cluster: bool = False
    timeout: float = 5.0
    max_connections: int = 32

    @classmethod
    def from_url(cls, url: str) -> RedisOptions:
        """Split hubbub's options off ``url``; ValueError names a bad or unknown one."""
        parts = urlsplit(url)
        values: dict[str, Any] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in values:
                raise ValueError(f"redis URL option {name} is given twice")
            values[name] = _option(name, value)
        _check_database(parts.path, values.get("cluster", False))
        return cls(url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), **values)


def _check_database(path: str, cluster: bool) -> None:
    database = path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"redis URL path: expected a database number like /0, got {path!r}")
    if cluster and database not in ("", "0"):
        raise ValueError("redis URL option cluster=true needs database 0 (Cluster has no other)")


def connection_kwargs(options: RedisOptions, role: str) -> dict[str, Any]:
    """What every connection of ``role`` gets, besides where it goes."""
    # No retries inside redis-py: a publish whose reply was lost must not run twice,
    # and reconnecting the subscribers is this package's job (it must report the gap).
    return {
        "socket_timeout": options.timeout,
        "socket_connect_timeout": options.timeout,
        "retry": Retry(NoBackoff(), 0),
        "protocol": 2,
        "client_name": f"{options.prefix}:{role}",
    }


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn any Redis or socket failure into the EngineError the node answers 100 for."""
    try:
        yield
    except (RedisError, RedisClusterException, OSError, msgspec.DecodeError) as exc:
        raise EngineError(f"redis {action} failed: {exc}") from exc


def ms(seconds: float) -> int:
    """``seconds`` as whole milliseconds for PEXPIRE, at least 1."""
    return max(1, math.ceil(seconds * 1000))
