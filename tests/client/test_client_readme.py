"""The README's Python client example, run as a script against a live server."""

from __future__ import annotations

import asyncio
import os
import sys

from clientkit import WAIT
from conftest import ROOT, UNIT

from hubbub.server import Server

EXAMPLE = """\
import asyncio

from hubbub.client import Client


async def main() -> None:
    async with Client("ws://127.0.0.1:8000/connection/websocket") as client:
        sub = await client.subscribe("chat:lobby")
        await client.publish("chat:lobby", {"text": "hello"})
        pub = await anext(sub)
        print(pub.json())


asyncio.run(main())
"""
"""Exactly the README's example; only the port changes when the test runs it."""

START_TIMEOUT = 200 * UNIT  # a cold interpreter start: 10 s at scale 1


async def test_readme_example_runs_as_a_script(server: Server) -> None:
    """The five-line example connects, subscribes, publishes and prints what it received."""
    script = EXAMPLE.replace("127.0.0.1:8000", f"127.0.0.1:{server.websocket.port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT + WAIT)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1] == "{'text': 'hello'}"


def test_readme_shows_this_very_example() -> None:
    """The README's Python client section holds this example verbatim."""
    readme = (ROOT / "README.md").read_text()
    assert "## Python client" in readme
    assert EXAMPLE in readme
