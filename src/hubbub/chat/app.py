"""The chat loop: a prompt at the bottom, the channel's messages printed above it.

One ``Client`` connection, one subscription at a time (``/join`` switches). Three
things print while the prompt waits for input: the pump of the current subscription
(messages, joins, leaves), the worker that runs typed commands one after another (so
the prompt never waits for the network) and the client's state callback (the
reconnecting indicator). ``patch_stdout`` keeps their lines above the prompt.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import suppress
from datetime import datetime

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from hubbub.chat import payload, render
from hubbub.chat.commands import (
    DEFAULT_HISTORY,
    HELP,
    Command,
    Help,
    History,
    Join,
    Problem,
    Quit,
    Say,
    Who,
    parse,
)
from hubbub.client import (
    Backoff,
    Client,
    ClientState,
    ClientStateChanged,
    ErrorEvent,
    HistoryPage,
    JoinEvent,
    LeaveEvent,
    Position,
    PublicationEvent,
    SubscribedEvent,
    Subscription,
    SubscriptionEvent,
    UnsubscribedEvent,
)
from hubbub.codecs.registry import UnknownCodecError
from hubbub.errors import HubbubError, ReplyError

CLIENT_NAME = "hubbub-chat"
"""How the server sees this program (the person's name travels in the connect data)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to reach the server at start before giving up."""
BACKOFF = Backoff(initial=0.5, maximum=5.0)
"""A person is waiting: retry sooner and more often than the library's default."""
REQUEST_TIMEOUT = 5.0

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_chat(
    url: str,
    channel: str,
    name: str,
    codec: str = "json",
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> int:
    """Chat in ``channel`` as ``name`` until /quit, Ctrl-D or Ctrl-C.

    Returns:
        0 when the person quits, 1 when the server cannot be reached, refuses the
        channel or closes for good, 2 for unusable arguments.
    """
    name = name.strip()
    if not name or not channel.strip():
        print("hubbub chat: --name and --channel must not be empty", file=sys.stderr)
        return EXIT_USAGE
    try:
        chat = Chat(url, name, codec)
    except (ValueError, UnknownCodecError) as exc:  # a bad URL scheme, an unknown codec
        print(f"hubbub chat: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(chat.run(channel.strip(), connect_timeout))
    except KeyboardInterrupt:
        return EXIT_OK


class Chat:
    """The state of one chat session and the tasks that keep the screen up to date."""

    def __init__(self, url: str, name: str, codec: str) -> None:
        self.url = url
        self.name = name
        self.client = Client(
            url,
            codec=codec,
            name=CLIENT_NAME,
            data={"name": name},
            backoff=BACKOFF,
            timeout=REQUEST_TIMEOUT,
        )
        self.client.on_state(self._on_state)
        self.channel = ""
        self.names: dict[str, str] = {}
        """Client id -> the name in its messages: joins and leaves carry only the id."""
        self.mine: set[str] = set()
        """Our client ids, one per connection: our own joins are not news."""
        self.count: int | None = None
        self.reconnecting = False
        self.failure = ""
        self._sub: Subscription | None = None
        self._pump: asyncio.Task[None] | None = None
        self._last_error = ""
        self._session: PromptSession[str] | None = None
        self._stopped: asyncio.Event | None = None

    # ------------------------------------------------------------------ the loop

    async def run(self, channel: str, connect_timeout: float = CONNECT_TIMEOUT) -> int:
        """Connect, join ``channel`` and read commands until the person quits."""
        self._stopped = asyncio.Event()
        self._session = PromptSession(bottom_toolbar=self._toolbar, erase_when_done=True)
        with patch_stdout():
            handler = _install_log_handler()
            try:
                return await self._run(channel, connect_timeout)
            finally:
                await self._close()
                logging.getLogger("hubbub").removeHandler(handler)

    async def _run(self, channel: str, connect_timeout: float) -> int:
        self._show(render.notice(datetime.now(), f"connecting to {self.url} as {self.name}"))
        await self.client.connect()
        try:
            await self.client.ready(timeout=connect_timeout)
        except HubbubError as exc:
            self._show(f"cannot connect to {self.url}: {self._last_error or exc}")
            return EXIT_FAILED
        try:
            await self._switch(channel)
        except HubbubError as exc:
            self._show(f"cannot join {channel}: {exc}")
            return EXIT_FAILED
        return await self._prompt_loop()

    async def _prompt_loop(self) -> int:
        commands: asyncio.Queue[Command] = asyncio.Queue()
        worker = asyncio.create_task(self._work(commands))
        try:
            status = await self._read_commands(commands)
            if status == EXIT_OK:  # "bye" then /quit: the bye still goes out
                with suppress(TimeoutError):
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        await commands.join()
            return status
        finally:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker

    async def _read_commands(self, commands: asyncio.Queue[Command]) -> int:
        """Queue what is typed until the person quits or the client closes for good."""
        while True:
            try:
                line = await self._read()
            except (EOFError, KeyboardInterrupt):
                return EXIT_OK
            if line is None:
                return EXIT_FAILED  # the server closed for good; a notice said why
            command = parse(line)
            if isinstance(command, Quit):
                return EXIT_OK
            if command is not None:
                commands.put_nowait(command)

    async def _read(self) -> str | None:
        """The next line typed, or None when the client closed for good meanwhile."""
        assert self._session is not None and self._stopped is not None
        prompt = asyncio.ensure_future(self._session.prompt_async(self._prompt))
        stopped = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait((prompt, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if prompt.done():
            return prompt.result()
        prompt.cancel()
        with suppress(asyncio.CancelledError, EOFError, KeyboardInterrupt):
            await prompt
        return None

    async def _close(self) -> None:
        await self._stop_pump()
        await self.client.disconnect()

    # -------------------------------------------------------------- the commands

    async def _work(self, commands: asyncio.Queue[Command]) -> None:
        """Run the typed commands in order, so a slow network never blocks the prompt."""
        while True:
            command = await commands.get()
            try:
                await self._execute(command)
            except HubbubError as exc:
                self._note(f"{_describe(command)} failed: {exc}")
            finally:
                commands.task_done()

    async def _execute(self, command: Command) -> None:
        if isinstance(command, Say):
            sent = payload.encode(self.name, command.text, datetime.now())
            await self.client.publish(self.channel, sent)
        elif isinstance(command, Who):
            present = await self.client.presence(self.channel)
            self._show(
                render.presence_line(
                    datetime.now(),
                    self.channel,
                    present.values(),
                    self.names,
                    self.client.client_id,
                )
            )
        elif isinstance(command, History):
            page = await self.client.history(self.channel, limit=command.count, reverse=True)
            self._show_history(self.channel, page)
        elif isinstance(command, Join):
            await self._join(command.channel)
        elif isinstance(command, Help):
            self._note(HELP)
        elif isinstance(command, Problem):
            self._note(command.message)

    async def _join(self, channel: str) -> None:
        if channel == self.channel:
            self._note(f"you are in {channel} already")
            return
        try:
            await self._switch(channel)
        except HubbubError as exc:
            self._note(f"cannot join {channel}: {exc}; still in {self.channel}")

    # ---------------------------------------------------------------- channels

    async def _switch(self, channel: str) -> None:
        """Join ``channel`` (history, then live), then leave the current one.

        The history is read first and the subscription recovers from its top, so no
        message falls between the two nor shows twice. Joining before leaving keeps
        the person where they were when the new channel refuses them.

        Raises:
            HubbubError: the server refused the new channel, or did not answer.
        """
        page = await self._last_messages(channel, DEFAULT_HISTORY)
        since = Position(page.offset, page.epoch) if page is not None and page.epoch else None
        sub = self.client.new_subscription(channel, since=since, join_leave=True)
        try:
            await sub.subscribe()
        except BaseException:
            await self.client.remove_subscription(sub)
            raise
        old, self._sub = self._sub, sub
        await self._stop_pump()
        if old is not None:
            await self.client.remove_subscription(old)
            self._note(f"you left {old.channel}")
        self.channel = channel
        self.count = await self._presence_count()
        self._show(
            render.entered(datetime.now(), self.name, self.client.client_id, channel, self.count)
        )
        if page is not None:
            self._show_history(channel, page)
        self._pump = asyncio.create_task(self._follow(sub))

    async def _last_messages(self, channel: str, count: int) -> HistoryPage | None:
        """The channel's last ``count`` messages; None where it keeps no history."""
        try:
            return await self.client.history(channel, limit=count, reverse=True)
        except ReplyError:
            return None  # not allowed or not kept; the subscribe says if the channel is usable

    async def _stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with suppress(asyncio.CancelledError):
                await pump

    async def _presence_count(self) -> int | None:
        try:
            stats = await self.client.presence_stats(self.channel)
        except HubbubError:
            return None
        return stats.num_clients

    async def _follow(self, sub: Subscription) -> None:
        """Show what happens in ``sub``'s channel until it ends."""
        async for event in sub.events():
            await self._on_event(event)

    async def _on_event(self, event: SubscriptionEvent) -> None:
        now = datetime.now()
        if isinstance(event, PublicationEvent):
            self._show_message(event, now)
        elif isinstance(event, JoinEvent | LeaveEvent):
            await self._refresh_count()
            if event.info.client not in self.mine:
                line = render.joined if isinstance(event, JoinEvent) else render.left
                self._show(line(now, render.who(event.info, self.names), self.channel, self.count))
        elif isinstance(event, SubscribedEvent):
            await self._refresh_count()
            if event.gap:
                self._note("some messages could not be recovered; /history shows what is kept")
        elif isinstance(event, UnsubscribedEvent):
            if self.client.state not in (ClientState.READY, ClientState.CONNECTING):
                return  # the client closed for good, and said so
            self._note(f"no longer in {event.channel}: {event.reason} ({event.code}); /join again")
        elif isinstance(event, ErrorEvent):
            self._note(f"problem in {event.channel}: {event.error}")

    async def _refresh_count(self) -> None:
        self.count = await self._presence_count()
        self._invalidate()

    # ------------------------------------------------------------------ showing

    def _show_message(self, event: PublicationEvent, now: datetime) -> None:
        message = payload.decode(event.data)
        if message.name and event.info is not None:
            self.names[event.info.client] = message.name
        who = render.sender(message, event.info, self.names)
        self._show(render.message_line(message.sent or now, who, message.text))

    def _show_history(self, channel: str, page: HistoryPage) -> None:
        lines = [render.history_header(channel, len(page.publications))]
        for pub in reversed(page.publications):  # asked newest first, shown oldest first
            message = payload.decode(pub.data)
            if message.name and pub.info is not None:
                self.names.setdefault(pub.info.client, message.name)
            who = render.sender(message, pub.info, self.names)
            lines.append(render.message_line(message.sent, who, message.text))
        if page.publications:
            lines.append(render.history_footer())
        self._show("\n".join(lines))

    def _note(self, text: str) -> None:
        self._show(render.notice(datetime.now(), text))

    def _show(self, text: str) -> None:
        print(text, flush=True)

    def _prompt(self) -> str:
        return f"{self.channel}> "

    def _toolbar(self) -> str:
        return render.toolbar(self.channel, self.name, self.count, self.reconnecting)

    def _invalidate(self) -> None:
        if self._session is not None:
            self._session.app.invalidate()

    # ------------------------------------------------------------ client state

    def _on_state(self, event: ClientStateChanged) -> None:
        if event.error is not None:
            self._last_error = str(event.error) or type(event.error).__name__
        if event.new is ClientState.READY:
            self.mine.add(self.client.client_id)
            if self.reconnecting:
                self.reconnecting = False
                self._note("reconnected")
        elif event.new is ClientState.CONNECTING and event.old is ClientState.READY:
            self.reconnecting = True
            self._note(f"connection lost ({event.code} {event.reason}); reconnecting...")
        elif event.new in (ClientState.CLOSED, ClientState.BROKEN) and event.code and self.mine:
            # Not our disconnect() (code 0), and after a start: run() reports a failed start.
            self.failure = event.reason or self._last_error
            self._note(f"disconnected for good: {self.failure}")
            if self._stopped is not None:
                self._stopped.set()
        self._invalidate()


def _describe(command: Command) -> str:
    if isinstance(command, Say):
        return "sending"
    return "/" + type(command).__name__.lower()


class _NoticeHandler(logging.Handler):
    """The client library's warnings, as notices in the chat instead of tracebacks."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text}: {record.exc_info[1]!r}"
        print(render.notice(datetime.now(), f"! {render.clean(text)}"), flush=True)


def _install_log_handler() -> logging.Handler:
    handler = _NoticeHandler(logging.WARNING)
    logging.getLogger("hubbub").addHandler(handler)
    return handler
