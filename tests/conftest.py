"""Shared fixtures: settings, an in-process server on free ports, time units."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hubbub.config import Settings, load_settings
from hubbub.server import Server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chat.yaml"

UNIT = 0.05 * float(os.environ.get("HUBBUB_TEST_TIME_SCALE", "1"))
"""The unit of every wait in the tests; scale it on a slow machine."""


def chat_settings(**overrides: Any) -> Settings:
    """The example chat config on free ports, with dotted-key overrides."""
    values: dict[str, Any] = {"server.port": 0, "server.internal_port": 0}
    values.update(overrides)
    return load_settings(EXAMPLE, overrides=values, environ={})


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start in-process servers (example chat config, free ports); stopped at teardown."""
    servers: list[Server] = []

    async def start(settings: Settings | None = None, **overrides: Any) -> Server:
        server = Server(settings if settings is not None else chat_settings(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(start_server: ServerFactory) -> Server:
    """One in-process server on the example chat config."""
    return await start_server()


def ws_url(server: Server, query: str = "") -> str:
    url = f"ws://127.0.0.1:{server.websocket.port}/connection/websocket"
    return f"{url}?{query}" if query else url


EVENTUALLY = 200 * UNIT
"""How long ``eventually`` polls before it fails: 10 s at scale 1."""


async def eventually(check: Callable[[], object], timeout: float = EVENTUALLY) -> None:
    """Poll ``check`` (sync, or returning an awaitable) until it is truthy; fail after
    ``timeout`` seconds. For state that settles in the background, never for timings."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(UNIT / 5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


START_TIMEOUT = 200 * UNIT
"""Long enough for a cold interpreter to start ``hubbub``: 10 s at scale 1."""


async def spawn_hubbub(
    *args: str, env: dict[str, str] | None = None, merge_stderr: bool = False
) -> asyncio.subprocess.Process:
    """Start ``python -m hubbub.cli ARGS`` without this environment's ``HUBBUB_*``
    settings (a developer's own must not change what a test sees), plus ``env``; its
    output piped (stderr into stdout with ``merge_stderr``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hubbub.cli",
        *args,
        env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
    )
