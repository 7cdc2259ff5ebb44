"""The client under ``asyncio.eager_task_factory`` (Python 3.12+), which an application
may install: a background task can be over before ``create_task`` returns."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.client.callbacks import Runner

pytestmark = pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="eager_task_factory needs Python 3.12+"
)


async def test_async_callbacks_keep_running_when_each_finishes_at_once() -> None:
    """An async handler that never suspends finishes inside create_task; the next one
    must still be run (the runner used to keep the finished task and run no more)."""
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        seen: list[int] = []

        async def handler(n: int) -> None:
            seen.append(n)

        runner = Runner()
        for n in range(3):
            runner.submit(handler(n))
        for _ in range(5):
            await asyncio.sleep(0)
        assert seen == [0, 1, 2]
        await runner.join()
    finally:
        loop.set_task_factory(None)
