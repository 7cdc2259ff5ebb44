"""The application's callbacks: plain functions or coroutines, run in event order.

A plain function runs at once, inside the client's handling of the event, so it must
not block. A coroutine function's awaitable is queued and awaited by one task per
client, one after another, so async handlers see events in the order they happened
without holding up the connection. A failing callback is logged, never propagated:
it must not take the client down.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from hubbub.tasks import start

_log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[E], Awaitable[Any] | None]
"""A callback for events of type ``E``: a function or a coroutine function."""


class Runner:
    """Awaits the awaitables of async callbacks one after another, in submission order."""

    def __init__(self) -> None:
        self._queue: deque[Awaitable[Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def submit(self, awaitable: Awaitable[Any]) -> None:
        self._queue.append(awaitable)
        if self._task is None:
            self._task = start(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                try:
                    await self._queue.popleft()
                except Exception:
                    _log.exception("event handler failed")
        finally:
            self._task = None

    async def join(self) -> None:
        """Wait until every submitted awaitable has run."""
        while self._task is not None:
            await asyncio.shield(self._task)


class Callbacks(Generic[E]):
    """The handlers registered for one kind of event."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._handlers: list[Handler[E]] = []

    def add(self, handler: Handler[E]) -> Callable[[], None]:
        """Register ``handler``; call the returned function to remove it."""
        self._handlers.append(handler)

        def remove() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return remove

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def emit(self, event: E) -> None:
        for handler in tuple(self._handlers):
            try:
                result = handler(event)
            except Exception:
                _log.exception("%s handler failed", type(event).__name__)
                continue
            if inspect.isawaitable(result):
                self._runner.submit(result)
