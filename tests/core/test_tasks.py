"""hubbub.tasks.start: a task an eager task factory finished at once is not handed back."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.tasks import start

pytestmark = pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="eager_task_factory needs Python 3.12+"
)


async def test_start_gives_none_for_a_task_over_at_once_and_the_task_otherwise() -> None:
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        ran: list[str] = []

        async def quick() -> None:
            ran.append("quick")

        async def slow() -> None:
            await asyncio.sleep(0)
            ran.append("slow")

        assert start(quick()) is None and ran == ["quick"]
        task = start(slow())
        assert task is not None and not task.done()
        await task
        assert ran == ["quick", "slow"]
    finally:
        loop.set_task_factory(None)
