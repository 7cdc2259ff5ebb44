"""What ``Client`` and ``Subscription`` share: a state to follow and to wait for.

Both move through a transition table of :mod:`hubbub.client.state`. Every step reaches
the application's ``on_state`` handlers and wakes the coroutines waiting for a state
(``ready()``); such a wait, like a request, runs under a ``deadline`` that turns its
expiry into a ``RequestTimeoutError`` saying what did not happen in time. ``ClientPool``
waits the same way for one of its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from enum import Enum
from typing import Generic, TypeVar

from hubbub.client.callbacks import Callbacks, Handler, Runner
from hubbub.client.state import StateMachine, Transition
from hubbub.errors import RequestTimeoutError

S = TypeVar("S", bound=Enum)
T = TypeVar("T", bound=Enum)


class Changes:
    """Wakes everything waiting, at every change: an ``asyncio.Event`` renewed once set."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        """Return at the next ``notify``."""
        await self._event.wait()


@contextlib.asynccontextmanager
async def deadline(limit: float, what: str, *, code: int = 0) -> AsyncIterator[None]:
    """Run the block within ``limit`` seconds.

    Raises:
        RequestTimeoutError: the time ran out; its message is ``what`` followed by
            "within <limit> s", its ``code`` is ``code``. A TimeoutError of the block's
            own passes unchanged.
    """
    try:
        async with asyncio.timeout(limit) as timer:
            yield
    except TimeoutError as exc:
        if timer.expired():
            raise RequestTimeoutError(f"{what} within {limit:g} s", code=code) from exc
        raise


class Stateful(Generic[S, T]):
    """Owns a state machine; tells the ``on_state`` handlers and the waiters every step."""

    def __init__(self, table: Mapping[tuple[S, T], S], initial: S, runner: Runner) -> None:
        self._machine: StateMachine[S, T] = StateMachine(table, initial)
        self._machine.listen(self._on_transition)
        self._changes = Changes()
        self._on_state = Callbacks[Transition[S, T]](runner)

    @property
    def state(self) -> S:
        return self._machine.state

    def on_state(self, handler: Handler[Transition[S, T]]) -> Callable[[], None]:
        """Call ``handler`` with every state transition, including those that keep the
        state (a failed attempt, a retry); returns a function that removes it."""
        return self._on_state.add(handler)

    def _on_transition(self, event: Transition[S, T]) -> None:
        self._changes.notify()
        self._on_state.emit(event)
