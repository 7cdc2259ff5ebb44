"""A pool of client connections spread over several servers, with failover.

``ClientPool([url1, url2], size=4)`` keeps four clients, placed round-robin over the
addresses. ``acquire()`` hands out a READY one (round-robin among those). Each client
reconnects by itself after a cut; one that fails ``max_retries`` attempts in a row goes
BROKEN, and the pool drops it and starts a replacement on another address — the one
with the fewest clients, other than the address that just failed. A replacement of a
replacement that never got READY waits before its first attempt, as long as one client
would have waited after that many failures: with every server down the pool retries no
faster than a single client, instead of spinning through fresh clients. A client the server
closed for good (terminal code, refused connect) is dropped without a replacement: a
new one would be refused the same way, and the pool must not spin.

The pool only needs ``state``, ``on_state``, ``connect`` and ``disconnect`` from its
clients (``PoolClient``), so its accounting is tested with fakes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from hubbub.client.backoff import Backoff
from hubbub.client.callbacks import Handler
from hubbub.client.client import DEFAULT_TIMEOUT, Client
from hubbub.client.state import ClientState, ClientStateChanged
from hubbub.client.stateful import Changes, deadline
from hubbub.errors import ClientClosedError

_log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 3


class PoolClient(Protocol):
    """What the pool uses of a client."""

    url: str

    @property
    def state(self) -> ClientState: ...

    def on_state(self, handler: Handler[ClientStateChanged]) -> Callable[[], None]: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...


C = TypeVar("C", bound=PoolClient)


@dataclass(slots=True)
class _Member:
    """What the pool keeps for one of its clients."""

    remove_handler: Callable[[], None]
    streak: int
    """How many clients before this one in its place broke in a row."""


class ClientPool(Generic[C]):
    """N connections over several server addresses; ``acquire()`` gives a READY one.

    Args:
        urls: the server addresses.
        size: how many connections to keep (default: one per address).
        max_retries: failed reconnect attempts in a row after which a connection is
            replaced by one on another address.
        timeout: how long ``acquire()`` waits by default.
        backoff: the clients' reconnect delays (default ``Backoff()``); it also spaces
            replacements that fail in a row.
        factory: makes a client for a URL (default: ``Client(url, max_retries=...,
            backoff=..., **client_options)``).
        client_options: passed to ``Client`` by the default factory.
    """

    @overload
    def __init__(
        self: ClientPool[Client],
        urls: Sequence[str],
        *,
        size: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff | None = None,
        **client_options: Any,
    ) -> None: ...

    @overload
    def __init__(
        self,
        urls: Sequence[str],
        *,
        size: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff | None = None,
        factory: Callable[[str], C],
    ) -> None: ...

    def __init__(
        self,
        urls: Sequence[str],
        *,
        size: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff | None = None,
        factory: Callable[[str], Any] | None = None,
        **client_options: Any,
    ) -> None:
        if not urls:
            raise ValueError("a pool needs at least one URL")
        if size is not None and size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.urls = list(urls)
        self.size = size if size is not None else len(self.urls)
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff if backoff is not None else Backoff()
        if factory is None:

            def factory(url: str) -> Client:
                return Client(url, max_retries=max_retries, backoff=backoff, **client_options)

        self._factory: Callable[[str], C] = cast("Callable[[str], C]", factory)
        self._clients: list[C] = []
        self._members: dict[int, _Member] = {}
        """Per client (by id): its state handler's remover and its place's broken streak."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._changes = Changes()
        self._cursor = 0
        self._closed = False
        self._started = False
        self.replaced = 0
        """Clients replaced after going BROKEN, since the start."""
        self.dropped = 0
        """Clients dropped without a replacement (closed by the server for good)."""

    def __repr__(self) -> str:
        return f"<ClientPool {self.ready_count}/{self.size} ready over {len(self.urls)} urls>"

    # ------------------------------------------------------------------- reading

    @property
    def clients(self) -> list[C]:
        """The clients in the pool now, READY or not."""
        return list(self._clients)

    @property
    def ready_count(self) -> int:
        return sum(1 for client in self._clients if client.state is ClientState.READY)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Create the clients and start connecting them; returns at once."""
        if self._started:
            return
        self._started = True
        for i in range(self.size):
            self._add(self.urls[i % len(self.urls)])

    async def close(self) -> None:
        """Disconnect every client; ``acquire()`` fails from now on."""
        self._closed = True
        self._changes.notify()
        clients, self._clients = self._clients, []
        for client in clients:
            self._forget(client)
        await asyncio.gather(*(client.disconnect() for client in clients))
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> ClientPool[C]:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------- acquire

    async def acquire(self, *, timeout: float | None = None) -> C:
        """A READY client, round-robin; waits for one within ``timeout``.

        Raises:
            ClientClosedError: the pool is closed, not started, or has no clients left.
            RequestTimeoutError: no client became READY in time.
        """
        limit = self.timeout if timeout is None else timeout
        async with deadline(limit, "no READY connection"):
            while True:
                client = self._pick()
                if client is not None:
                    return client
                await self._changes.wait()

    def _pick(self) -> C | None:
        if self._closed or not self._started:
            raise ClientClosedError(
                "the pool is closed" if self._closed else "start() was not called"
            )
        if not self._clients:
            raise ClientClosedError("every connection of the pool was closed by its server")
        ready = [client for client in self._clients if client.state is ClientState.READY]
        if not ready:
            return None
        self._cursor += 1
        return ready[self._cursor % len(ready)]

    # ------------------------------------------------------------------ accounting

    def _add(self, url: str, streak: int = 0) -> C:
        client = self._factory(url)
        self._clients.append(client)
        remove = client.on_state(lambda event: self._on_state(client, event))
        self._members[id(client)] = _Member(remove, streak)
        # The predecessors failed streak * max_retries attempts in a row: wait what one
        # client would wait before its next attempt, so that the back-off keeps growing.
        delay = self.backoff.after(streak * self.max_retries)
        task = asyncio.get_running_loop().create_task(self._connect(client, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return client

    async def _connect(self, client: C, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if not self._closed and id(client) in self._members:  # not dropped meanwhile
            await client.connect()

    def _on_state(self, client: C, event: ClientStateChanged) -> None:
        self._changes.notify()
        member = self._members.get(id(client))
        if self._closed or member is None:
            return  # closed, or dropped already
        if event.new is ClientState.READY:
            member.streak = 0
        elif event.new is ClientState.BROKEN:
            url = self._other_url(client.url)
            _log.info("pool: connection to %s broken, replaced on %s", client.url, url)
            streak = member.streak + 1
            self._drop(client)
            self.replaced += 1
            self._add(url, streak)
        elif event.new is ClientState.CLOSED:
            _log.warning("pool: %s closed the connection for good (%s)", client.url, event.code)
            self._drop(client)
            self.dropped += 1

    def _drop(self, client: C) -> None:
        self._clients.remove(client)
        self._forget(client)
        task = asyncio.get_running_loop().create_task(client.disconnect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, client: C) -> None:
        member = self._members.pop(id(client), None)
        if member is not None:
            member.remove_handler()

    def _other_url(self, failed: str) -> str:
        """The address with the fewest clients, other than ``failed`` when there is one."""
        candidates = [url for url in self.urls if url != failed] or self.urls
        counts = Counter(client.url for client in self._clients if client.url != failed)
        return min(candidates, key=lambda url: counts[url])
