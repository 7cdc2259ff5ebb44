"""Fakes at the edge of the core: a recording transport, and frames in and out as JSON.

The core is tested sans I/O: bytes go into ``Session.data_received``, the loop runs a
few turns, and the test reads what the session wrote to its ``RecordingConnection``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from hubbub.codecs.base import Codec
from hubbub.codecs.json import JsonCodec
from hubbub.core.node import Node
from hubbub.core.session import Session
from hubbub.engines.memory import MemoryBroker, MemoryPresenceStore
from hubbub.errors import EngineError
from hubbub.protocol.codes import Disconnect
from hubbub.protocol.messages import ClientInfo, Reply

CODEC = JsonCodec()

MAX_TURNS = 200
"""Loop turns ``drain`` waits for a session before calling it stuck (no time involved)."""


class RecordingConnection:
    """Implements ``hubbub.core.session.Connection``; remembers every frame and the close."""

    transport_name = "test"
    remote = "203.0.113.7:50000"

    def __init__(self) -> None:
        """Start open, with an empty kernel buffer."""
        self.frames: list[bytes] = []
        self.buffered = 0
        """The backlog ``write`` reports; set it to play a client that stops reading."""
        self.closes: list[Disconnect] = []

    def write(self, frame: bytes) -> int:
        """Record one frame; report the settable backlog."""
        self.frames.append(frame)
        return self.buffered

    def close(self, disconnect: Disconnect) -> None:
        """Record the close."""
        self.closes.append(disconnect)

    @property
    def closed_with(self) -> Disconnect | None:
        """The first close asked for, or None while open."""
        return self.closes[0] if self.closes else None

    def frame_replies(self) -> list[list[Reply]]:
        """Every frame written, decoded with the JSON codec: one list per frame."""
        return [CODEC.decode(frame, Reply) for frame in self.frames]

    def replies(self) -> list[Reply]:
        """Every message written, in order, frames flattened."""
        return [reply for frame in self.frame_replies() for reply in frame]

    def messages(self) -> list[dict[str, Any]]:
        """Every message written as plain JSON objects: the wire form, omitted keys and all."""
        return [json.loads(line) for frame in self.frames for line in frame.split(b"\n")]

    def take(self) -> list[Reply]:
        """The replies written so far, forgetting them: the next call sees only newer ones."""
        replies = self.replies()
        self.frames.clear()
        return replies


def frame(*messages: dict[str, Any]) -> bytes:
    """One JSON transport frame holding ``messages``, one per line."""
    return b"\n".join(json.dumps(m, separators=(",", ":")).encode() for m in messages)


async def turns(n: int = 3) -> None:
    """Let the loop run ``n`` turns (callbacks scheduled with call_soon, ready tasks)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def drain(session: Session) -> None:
    """Run the loop until ``session`` has processed its inbox and flushed its frames."""
    for _ in range(MAX_TURNS):
        worker = session._worker
        if (worker is None or worker.done()) and not session._inbox:
            await turns(2)  # the flusher runs one turn after the last push
            return
        await asyncio.sleep(0)
    raise AssertionError("the session did not finish its commands (waiting on something?)")


class Gate:
    """A point where code under test blocks until the test opens it."""

    def __init__(self) -> None:
        """Closed, nobody waiting."""
        self.opened = asyncio.Event()
        self.reached = asyncio.Event()

    async def wait(self) -> None:
        """Called from inside the code under test: signal arrival, then block."""
        self.reached.set()
        await self.opened.wait()


class GatedBroker(MemoryBroker):
    """A memory broker whose subscribes can wait at ``gate`` or fail, and whose join
    publishes can wait at ``join_gate``, as a remote broker's round trips would; it
    records the channels it delivers to this node now (``live``)."""

    def __init__(self, *, hold_all: bool = False) -> None:
        super().__init__()
        self.gate = Gate()
        self.hold_all = hold_all
        """Every subscribe waits at ``gate``."""
        self.hold: set[str] = set()
        """Subscribes naming one of these channels wait at ``gate``."""
        self.fail: set[str] = set()
        """Subscribes naming one of these channels fail (after the gate)."""
        self.fail_once = False
        """The next subscribe fails, whatever it names."""
        self.join_gate: Gate | None = None
        self.live: set[str] = set()
        self.calls = 0
        """Subscribe calls so far."""

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await super().publish_join(channel, info)  # delivered; the reply takes a while
        if self.join_gate is not None:
            await self.join_gate.wait()

    async def subscribe(self, channels: Sequence[str]) -> None:
        self.calls += 1
        if self.hold_all or self.hold.intersection(channels):
            await self.gate.wait()
        if self.fail.intersection(channels) or self.fail_once:
            self.fail_once = False
            raise EngineError("broker away")
        await super().subscribe(channels)
        self.live.update(channels)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        await super().unsubscribe(channels)
        self.live.difference_update(channels)


class GatedPresence(MemoryPresenceStore):
    """A memory presence store whose adds can wait at ``add_gate`` and whose removes
    can wait at ``remove_gate``, as a remote store's round trips would (or forever, as
    one behind a network path that died)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_gate: Gate | None = None
        self.remove_gate: Gate | None = None

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        if self.add_gate is not None:
            await self.add_gate.wait()
        await super().add(channel, client_id, info, ttl)

    async def remove(self, channel: str, client_id: str) -> None:
        if self.remove_gate is not None:
            await self.remove_gate.wait()
        await super().remove(channel, client_id)


def pubs_of(replies: list[Reply], channel: str) -> list[int]:
    """Offsets of the publication pushes for ``channel`` in ``replies``, in order."""
    return [
        r.push.pub.offset
        for r in replies
        if r.push is not None and r.push.channel == channel and r.push.pub is not None
    ]


class Client:
    """A session on ``node`` with its RecordingConnection, driven by JSON frames."""

    def __init__(self, node: Node, codec: Codec = CODEC) -> None:
        """Accept a new connection on ``node``; nothing is sent yet."""
        self.conn = RecordingConnection()
        self.session = node.accept(self.conn, codec)
        self._last_id = 0

    def feed(self, *messages: dict[str, Any]) -> None:
        """Deliver one frame holding ``messages`` without running the loop."""
        self.session.data_received(frame(*messages))

    async def send(self, *messages: dict[str, Any]) -> None:
        """Deliver one frame and let the session process it and flush."""
        self.feed(*messages)
        await drain(self.session)

    def next_id(self) -> int:
        """A fresh command id, as SDKs count them: 1, 2, 3, ..."""
        self._last_id += 1
        return self._last_id

    async def call(self, method: str, body: dict[str, Any] | None = None) -> Reply:
        """Send one command with a fresh id and return the reply carrying that id."""
        cid = self.next_id()
        await self.send({"id": cid, method: body or {}})
        return self.reply(cid)

    async def connect(self, body: dict[str, Any] | None = None) -> Reply:
        """Send connect and return its reply."""
        return await self.call("connect", body)

    def reply(self, cid: int) -> Reply:
        """The one reply written for command ``cid``."""
        matches = [r for r in self.conn.replies() if r.id == cid]
        assert len(matches) == 1, f"expected one reply with id {cid}, got {matches}"
        return matches[0]


async def connected(node: Node) -> Client:
    """A client whose connect succeeded, with the connect reply already taken."""
    client = Client(node)
    reply = await client.connect()
    assert reply.connect is not None, reply
    client.conn.take()
    return client
