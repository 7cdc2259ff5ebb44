"""What the integration tests' raw clients share, whatever carries their bytes.

``WsClient`` (wsclient.py) and ``TcpClient`` (tcpclient.py) read and write in their own
way; each decoded message goes through ``_dispatch`` here: replies are matched by id,
pushes queued, pings counted and answered (unless ``auto_pong`` is off), anything else
kept in ``unexpected`` so that the test fails. The request helpers (``call``,
``batch``, ``connect``, ...) and the waits (``push``, ``closed``) are the same on both.
"""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import UNIT

WAIT = 40 * UNIT
"""How long a test waits for something that should come (2 s at scale 1)."""


class ClientBase:
    """Replies, pushes, pings and requests of one raw connection; see the module docstring."""

    def __init__(self, protobuf: bool, auto_pong: bool) -> None:
        self.protobuf = protobuf  # binary frames (Protobuf, or msgpack on TCP)
        self.auto_pong = auto_pong
        self.frames: list[list[dict[str, Any]]] = []
        self.raw_frames: list[bytes | str] = []
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pings = 0
        self.unexpected: list[dict[str, Any]] = []  # neither reply, push nor ping
        self.client_id = ""
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    # --------------------------------------------------------- what a transport provides

    async def send(self, *commands: dict[str, Any]) -> None:
        """Send ``commands`` in one frame (or one write)."""
        raise NotImplementedError

    def _answer_ping(self) -> None:
        """Send the pong."""
        raise NotImplementedError

    # ------------------------------------------------------------------ reading

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        """One frame's (or read's) messages, decoded."""
        self.frames.append(messages)
        for message in messages:
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        cid = message.get("id", 0)
        if cid:
            future = self._replies.pop(cid, None)
            if future is not None and not future.done():
                future.set_result(message)
        elif "push" in message:
            self.pushes.put_nowait(message["push"])
        elif not message:
            self.pings += 1
            if self.auto_pong:
                self._answer_ping()
        else:
            self.unexpected.append(message)

    def _ended(self, close: tuple[int, str]) -> None:
        """The connection is gone with ``close`` (code, reason): waiting calls fail."""
        if not self._closed.done():
            self._closed.set_result(close)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))

    # ------------------------------------------------------------------ requests

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def expect(self, cid: int) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[cid] = future
        return future

    async def call(self, method: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its reply (result or error)."""
        cid = self.next_id()
        future = self.expect(cid)
        await self.send({"id": cid, method: request or {}})
        return await asyncio.wait_for(future, WAIT)

    async def batch(self, *requests: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Send several commands in ONE frame (or write); return their replies in order."""
        commands, futures = [], []
        for method, request in requests:
            cid = self.next_id()
            futures.append(self.expect(cid))
            commands.append({"id": cid, method: request})
        await self.send(*commands)
        return [await asyncio.wait_for(f, WAIT) for f in futures]

    async def connect(self, **request: Any) -> dict[str, Any]:
        reply = await self.call("connect", request)
        assert "error" not in reply, reply
        self.client_id = reply["connect"]["client"]
        result: dict[str, Any] = reply["connect"]
        return result

    async def subscribe(self, channel: str, **request: Any) -> dict[str, Any]:
        reply = await self.call("subscribe", {"channel": channel, **request})
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["subscribe"]
        return result

    async def publish(self, channel: str, data: Any) -> dict[str, Any]:
        reply = await self.call("publish", {"channel": channel, "data": data})
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["publish"]
        return result

    # ------------------------------------------------------------------ waiting

    async def push(self, kind: str | None = None, timeout: float = WAIT) -> dict[str, Any]:
        """The next push (of ``kind`` — pub, join, leave — when given; others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                push = await self.pushes.get()
                if kind is None or kind in push:
                    return push

    async def pubs(self, n: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        """The next ``n`` publications."""
        return [(await self.push("pub", timeout))["pub"] for _ in range(n)]

    async def closed(self, timeout: float = WAIT) -> tuple[int, str]:
        """Wait for the connection to end: its close code and reason."""
        result = await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        assert not self.unexpected, f"unexpected messages: {self.unexpected}"
        return result

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    def _assert_nothing_unexpected(self) -> None:
        assert not self.unexpected, (
            f"id-less replies that are neither push nor ping: {self.unexpected}"
        )
