"""Starting a background task that may already be over when ``create_task`` returns.

Under an eager task factory (``asyncio.eager_task_factory``, Python 3.12+, which an
application may install for speed) a coroutine runs inside ``create_task`` until it
first suspends, and one that never does is finished by then. Code that keeps "the task
running now" in an attribute, cleared by the task itself when it ends, would keep that
finished task for good and never start another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` as a task of the running loop; None when it has already finished."""
    task = asyncio.get_running_loop().create_task(coro)
    return None if task.done() else task
