"""The terminal chat driven through a pseudo-terminal, against an in-process server.

Each chat is a real ``python -m hubbub.chat`` process on a pty (TERM=dumb, so the
output is plain lines). pexpect's blocking calls run in a thread (``asyncio.to_thread``)
so the server in this event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pexpect
import pytest
from conftest import UNIT, ServerFactory, chat_settings, ws_url

from hubbub.client import Client
from hubbub.server import Server

WAIT = 100 * UNIT
"""How long a line may take to show; reconnecting takes the longest (back-off <= 0.75 s)."""
CPR_REQUEST, CPR_ANSWER = "\x1b[6n", "\x1b[1;1R"
"""prompt_toolkit asks where the cursor is; without an answer it shows no bottom toolbar."""


class Chat:
    """One chat process on a pty, with async wrappers around pexpect."""

    def __init__(self, url: str, name: str, channel: str, term: str, *extra: str) -> None:
        env = dict(os.environ, TERM=term, NO_COLOR="1")
        args = ["-m", "hubbub.chat", url, "--channel", channel, "--name", name, *extra]
        self.child = pexpect.spawn(
            sys.executable, args, env=env, encoding="utf-8", timeout=WAIT, dimensions=(24, 160)
        )

    async def expect(self, text: str) -> str:
        """Wait for ``text`` to show; returns what showed before it."""
        await asyncio.to_thread(self._expect, re.escape(text))
        return str(self.child.before)

    async def expect_re(self, pattern: str) -> re.Match[str]:
        await asyncio.to_thread(self._expect, pattern)
        match = self.child.match
        assert isinstance(match, re.Match)
        return match

    def _expect(self, pattern: str) -> None:
        """Expect ``pattern``, answering cursor position requests (a real terminal would)."""
        while self.child.expect([pattern, re.escape(CPR_REQUEST)]) == 1:
            self.child.send(CPR_ANSWER)

    async def joined(self) -> str:
        """Wait for our own join line; returns our short client id (``#1a2b3c4d``)."""
        return (await self.expect_re(r"you joined \S+ as \S+ \((#[0-9a-f]{8}),")).group(1)

    def send(self, line: str) -> None:
        self.child.sendline(line)

    async def exit_status(self) -> int | None:
        """Wait for the process to end; its exit status."""
        await asyncio.to_thread(self.child.expect, pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


SpawnChat = Callable[..., Awaitable[Chat]]


@pytest.fixture
async def spawn_chat() -> AsyncIterator[SpawnChat]:
    """Start chat processes; any still running at teardown is killed."""
    chats: list[Chat] = []

    async def spawn(
        url: str, name: str, channel: str = "chat:lobby", *extra: str, term: str = "dumb"
    ) -> Chat:
        chat = Chat(url, name, channel, term, *extra)
        chats.append(chat)
        return chat

    yield spawn
    for chat in chats:
        chat.kill()


async def publish(url: str, channel: str, *messages: tuple[str, str]) -> None:
    async with Client(url) as client:
        for name, text in messages:
            await client.publish(channel, {"name": name, "text": text})


async def test_history_is_shown_on_join(server: Server, spawn_chat: SpawnChat) -> None:
    """Joining shows the channel's earlier messages, oldest first, with their senders."""
    url = ws_url(server)
    await publish(url, "chat:lobby", ("zed", "first"), ("yan", "second"), ("zed", "third"))
    alice = await spawn_chat(url, "alice")
    await alice.joined()
    await alice.expect("--- last 3 messages in chat:lobby ---")
    await alice.expect("zed: first")
    await alice.expect("yan: second")
    await alice.expect("zed: third")
    await alice.expect("--- end of history ---")
    alice.send("/quit")
    assert await alice.exit_status() == 0


async def test_two_chats_talk_join_leave_and_who(server: Server, spawn_chat: SpawnChat) -> None:
    """Two chats see each other join, talk, appear in /who, and leave, with the count."""
    url = ws_url(server)
    alice = await spawn_chat(url, "alice")
    await alice.expect("1 online)")
    bob = await spawn_chat(url, "bob")
    bob_id = await bob.joined()
    await alice.expect(f"{bob_id} joined chat:lobby (2 online)")
    bob.send("hello alice")
    await alice.expect_re(r"\d\d:\d\d bob: hello alice")
    alice.send("hi bob")
    await bob.expect_re(r"\d\d:\d\d alice: hi bob")
    alice.send("/who")
    await alice.expect("2 online in chat:lobby: alice (you), bob")
    bob.send("bye")
    bob.send("/quit")
    assert await bob.exit_status() == 0
    await alice.expect("bob: bye")
    await alice.expect("bob left chat:lobby (1 online)")
    alice.send("/quit")
    assert await alice.exit_status() == 0


async def test_history_command_shows_last_n(server: Server, spawn_chat: SpawnChat) -> None:
    """``/history 2`` prints only the two newest messages."""
    url = ws_url(server)
    alice = await spawn_chat(url, "alice")
    await alice.joined()
    await publish(url, "chat:lobby", ("zed", "one"), ("zed", "two"), ("zed", "three"))
    await alice.expect("zed: three")
    alice.send("/history 2")
    await alice.expect("--- last 2 messages in chat:lobby ---")
    shown = await alice.expect("--- end of history ---")
    assert "zed: two" in shown and "zed: three" in shown and "zed: one" not in shown
    alice.send("/quit")
    assert await alice.exit_status() == 0


async def test_join_switches_channel(server: Server, spawn_chat: SpawnChat) -> None:
    """``/join`` leaves the current channel for another; a refused channel keeps the old."""
    url = ws_url(server)
    await publish(url, "chat:other", ("zed", "over here"))
    alice = await spawn_chat(url, "alice")
    await alice.joined()
    alice.send("/join nowhere")
    await alice.expect("cannot join nowhere")
    await alice.expect("still in chat:lobby")
    alice.send("/join chat:other")
    await alice.expect("you left chat:lobby")
    await alice.expect("you joined chat:other as alice")
    await alice.expect("zed: over here")
    await publish(url, "chat:lobby", ("zed", "lobby news"))
    await publish(url, "chat:other", ("zed", "other news"))
    seen = await alice.expect("zed: other news")
    assert "lobby news" not in seen
    alice.send("/quit")
    assert await alice.exit_status() == 0


async def test_unknown_command_helps(server: Server, spawn_chat: SpawnChat) -> None:
    """An unknown slash command answers with the list of commands; /quit exits 0."""
    alice = await spawn_chat(ws_url(server), "alice")
    await alice.joined()
    alice.send("/dance")
    await alice.expect("unknown command /dance")
    await alice.expect("/who")
    alice.send("/quit")
    assert await alice.exit_status() == 0


async def test_reconnecting_indicator(start_server: ServerFactory, spawn_chat: SpawnChat) -> None:
    """Stopping the server shows the reconnecting indicator; a server back on the port clears it."""
    first = await start_server()
    port = first.websocket.port
    url = ws_url(first)
    alice = await spawn_chat(url, "alice")
    await alice.joined()
    await first.stop()
    await alice.expect("reconnecting...")
    await start_server(chat_settings(**{"server.port": port}))
    await alice.expect("reconnected")
    alice.send("still here")
    await alice.expect("alice: still here")
    alice.send("/quit")
    assert await alice.exit_status() == 0


async def test_toolbar_shows_count_and_reconnecting(
    start_server: ServerFactory, spawn_chat: SpawnChat
) -> None:
    """On a real terminal the bottom toolbar shows the count, then the reconnecting indicator."""
    first = await start_server()
    port = first.websocket.port
    alice = await spawn_chat(ws_url(first), "alice", term="xterm")
    await alice.expect("| 1 online | alice |")
    await first.stop()
    await alice.expect("| reconnecting... | alice |")
    await start_server(chat_settings(**{"server.port": port}))
    await alice.expect("| 1 online | alice |")
    alice.child.sendcontrol("d")
    assert await alice.exit_status() == 0


async def test_unreachable_server_exits_1(spawn_chat: SpawnChat) -> None:
    """A server that cannot be reached at start ends the chat with status 1 and the reason."""
    url = "ws://127.0.0.1:9/connection/websocket"
    alice = await spawn_chat(url, "alice", "chat:lobby", "--connect-timeout", str(10 * UNIT))
    await alice.expect(f"cannot connect to {url}")
    assert await alice.exit_status() == 1


async def test_disconnect_for_good_exits_1(server: Server, spawn_chat: SpawnChat) -> None:
    """A server closing the connection with a terminal code ends the chat with status 1."""
    alice = await spawn_chat(ws_url(server), "alice")
    await alice.joined()
    for client_id in list(server.node.sessions):
        server.node.disconnect(client_id)
    await alice.expect("disconnected for good")
    assert await alice.exit_status() == 1
