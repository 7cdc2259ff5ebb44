"""One client connection: its protocol state, subscriptions and outgoing queue.

Inbound frames are decoded by the codec and run one command at a time (replies keep
the order a client expects). Outbound messages are items already encoded by the
codec; they wait in a queue until the end of the loop turn, when the node flushes
every session that has something, one frame each (write coalescing). The queue plus
what the transport still holds is bounded by ``write_buffer_bytes``: a client that
stops reading is disconnected as "slow" instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from hubbub.codecs.base import Codec
from hubbub.errors import EngineError, ProtocolError, ReplyError
from hubbub.protocol import codes
from hubbub.protocol.codes import Disconnect, ErrorCode, UnsubscribeCode
from hubbub.protocol.messages import (
    ClientInfo,
    Command,
    Error,
    Publication,
    Reply,
    raw,
    request_of,
)
from hubbub.protocol.state import ALLOWED, TRANSITIONS, Event, State, next_state

if TYPE_CHECKING:
    from hubbub.core.hooks import ClientContext
    from hubbub.core.node import Node

_CLOSED = State.CLOSED
_CONNECTED = State.CONNECTED
_STAY_CONNECTED = frozenset(
    event for event in Event if TRANSITIONS.get((State.CONNECTED, event)) == ALLOWED
)
"""Events the state table lets a connected session take without moving: the common
case, answered without a table lookup (the table stays the only source)."""
_TEMPORARY_FAILURE = Error(
    code=int(ErrorCode.INTERNAL), message="internal server error", temporary=True
)
_log = structlog.get_logger(__name__)

ServerAction = Callable[["Session"], Awaitable[None]]
"""Work the server does on a session's behalf (a server-side subscribe), queued with the
client's commands so that it runs in their order and stops when the session closes."""

if sys.version_info >= (3, 12):

    def _start(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """Run a frame's commands now, inside their task, up to their first real wait:
        most never wait (the memory engine), and a task that finishes eagerly costs no
        loop turn (11 % fewer instructions per RPC command at one per frame on 3.12)."""
        return asyncio.Task(coro, loop=loop, eager_start=True)

else:

    def _start(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """Python 3.11 has no eager tasks; a hand-made trampoline would run hooks outside
        any task, where ``asyncio.timeout`` refuses to work."""
        return loop.create_task(coro)


async def _all_done(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for ``tasks`` (each replies for itself) and empty the list."""
    try:
        await asyncio.gather(*tasks)
    finally:
        tasks.clear()


class Connection(Protocol):
    """What a session needs from its transport."""

    transport_name: str

    @property
    def remote(self) -> str:
        """The peer's address (``host:port``) for hooks and logs."""
        ...

    def write(self, frame: bytes) -> int:
        """Send one frame (binary or text as the codec says); return the bytes written
        but not yet taken by the kernel (the session's back-pressure signal)."""
        ...

    def close(self, disconnect: Disconnect) -> None:
        """Close with ``disconnect``'s code and reason, after what was written."""
        ...


@dataclass(slots=True)
class Subscription:
    """One channel a session is subscribed to."""

    channel: str
    join_leave: bool = False
    chan_info: bytes = b""
    expire_at: float = 0.0
    # Granted by the server (at connect or Node.subscribe): the client cannot subscribe
    # again by itself, so a gap closes its connection (3010) rather than unsubscribing.
    server_side: bool = False
    # While the subscribe reply is being prepared live publications wait here, so the
    # reply goes out first and nothing is lost or doubled around it.
    pending: list[Publication] | None = field(default_factory=list)
    # While the command that subscribes is still awaiting engines it owns their side: an
    # unsubscribe meanwhile only detaches, and the command undoes what it did when done.
    establishing: bool = False
    # The code of a server unsubscribe that came while establishing (0: none).
    ended_by: int = 0


class Session:
    """Server side of one client connection."""

    # Slots: one of these per connection, so every byte counts at 10^4-10^5 connections.
    __slots__ = (
        "_backlog",
        "_inbox",
        "_limit",
        "_queue",
        "_queued_bytes",
        "_queued_messages",
        "_worker",
        "client_id",
        "codec",
        "conn_info",
        "connection",
        "context",
        "expire_at",
        "missed_pongs",
        "node",
        "ponged",
        "state",
        "subscriptions",
        "user",
    )

    def __init__(self, node: Node, connection: Connection, codec: Codec) -> None:
        self.node = node
        self.connection = connection
        self.codec = codec
        self.client_id = str(uuid.uuid4())
        self.user = ""
        self.conn_info = b""
        self.expire_at = 0.0  # unix time the credentials run out; 0 = never
        self.context: ClientContext | None = None  # what hooks see, cached by the handlers
        self.state = State.AWAITING_CONNECT
        self.subscriptions: dict[str, Subscription] = {}
        self.missed_pongs = 0
        self.ponged = True
        self._queue: list[bytes] = []
        """Items and frames to write; the codec joins them into one frame."""
        self._queued_bytes = 0
        self._queued_messages = 0
        self._inbox: list[Command | ServerAction] = []  # a deque: 760 bytes per connection
        self._worker: asyncio.Task[None] | None = None
        self._backlog = 0  # what the transport still held after the last flush
        self._limit = node.settings.client.write_buffer_bytes

    # ------------------------------------------------------------------ identity

    def client_info(self, chan_info: bytes = b"") -> ClientInfo:
        return ClientInfo(
            user=self.user,
            client=self.client_id,
            conn_info=raw(self.conn_info),
            chan_info=raw(chan_info),
        )

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def _move(self, event: Event) -> bool:
        """Apply ``event`` through the state table; False (and close 3501) when illegal."""
        target = next_state(self.state, event)
        if target is None:
            self.close(codes.BAD_REQUEST)
            return False
        self.state = target
        return True

    # ------------------------------------------------------------------- inbound

    def data_received(self, frame: bytes) -> None:
        """Decode one transport frame and queue its commands; bad input closes."""
        if self.state is _CLOSED:
            return
        metrics = self.node.metrics
        try:
            commands = self.codec.decode(frame, Command)
        except ProtocolError as exc:
            _log.info("malformed frame", client=self.client_id, error=str(exc))
            self.close(exc.disconnect)
            return
        metrics.messages_received += len(commands)  # counted in place: once per frame
        metrics.bytes_received += len(frame)
        for command in commands:
            # Any id-0 command but send is a pong; its request, if any, is ignored (§5).
            if command.id == 0 and command.send is None:
                self._on_pong()
                if self.state is _CLOSED:
                    return
                continue
            self._inbox.append(command)
        if self._inbox and self._worker is None:
            worker = _start(self.node.loop, self._drain_inbox())
            if not worker.done():  # finished eagerly: its ``finally`` already let go
                self._worker = worker

    def run_in_turn(self, action: ServerAction) -> bool:
        """Queue ``action`` behind the commands already received; False when closed.

        It runs in the session's worker like a command: one at a time with them, and
        cancelled (``close``) when the session closes before or while it runs.
        """
        if self.state is _CLOSED:
            return False
        self._inbox.append(action)
        if self._worker is None:
            worker = _start(self.node.loop, self._drain_inbox())
            if not worker.done():
                self._worker = worker
        return True

    def _on_pong(self) -> None:
        self.node.metrics.command("pong")
        if not self._move(Event.PONG):
            return
        # A pong with no ping outstanding is tolerated (Centrifuge would close 3501).
        self.ponged = True
        self.missed_pongs = 0

    async def _drain_inbox(self) -> None:
        """Run the queued commands one after another, except consecutive publishes on a
        broker that keeps them in order: those go in flight together, and whatever
        comes next waits for them (see ``_overlaps``)."""
        in_flight: list[asyncio.Task[None]] = []
        if sys.version_info >= (3, 12):
            # Started eagerly, the task is not yet ``_worker`` when its commands run: one
            # that queues server work (Node.subscribe in a hook) must not start a second
            # worker. (On 3.11 ``data_received`` sets it before the first step.)
            self._worker = asyncio.current_task(self.node.loop)
        try:
            while self._inbox and self.state is not _CLOSED:
                batch, self._inbox = self._inbox, []  # commands arriving meanwhile wait
                overlap = self._overlaps()
                for command in batch:
                    if self.state is _CLOSED:
                        break
                    if not isinstance(command, Command):  # the server's own work
                        if in_flight:
                            await _all_done(in_flight)
                        try:
                            await command(self)
                        except Exception:  # the commands after it still run
                            _log.exception("server action failed", client=self.client_id)
                        continue
                    if overlap and command.publish is not None:
                        in_flight.append(self.node.loop.create_task(self._dispatch(command)))
                        continue
                    if in_flight:
                        await _all_done(in_flight)
                    await self._dispatch(command)
                if in_flight:
                    await _all_done(in_flight)
        finally:
            # Publishes in flight are always awaited through ``_all_done``, whose gather
            # cancels them with this worker (the session closed): none is left here.
            self._worker = None

    def _overlaps(self) -> bool:
        """May publishes run side by side? Only when the broker applies them in the order
        they start (a Redis publish waits a round trip, on memory nothing waits) and no
        publish hook runs first: a hook that waits could let a later publish overtake."""
        node = self.node
        return node.broker.pipelines_publishes and node.hooks.on_publish is None

    async def _dispatch(self, command: Command) -> None:
        found = request_of(command)
        if found is None:
            self.close(codes.BAD_REQUEST)  # an id but no request
            return
        method, request = found
        self.node.metrics.commands[method] += 1  # request_of gives known names only
        if method == "connect":
            event = Event.CONNECT
        elif method == "send":
            event = Event.SEND
        else:
            event = Event.COMMAND
        if not (self.state is _CONNECTED and event in _STAY_CONNECTED) and not self._move(event):
            return
        try:
            result = await self.node.handlers.table[method](self, request)
            if result is None:
                reply = None
            else:
                reply = Reply(id=command.id)
                setattr(reply, method, result)  # the result's field is the method's name
        except ReplyError as exc:
            reply = Reply(
                id=command.id,
                error=Error(code=exc.code, message=exc.message, temporary=exc.temporary),
            )
            self.node.metrics.error(exc.code)
        except ProtocolError as exc:
            self.close(exc.disconnect)
            return
        except EngineError as exc:  # a broker or store is away: the client may retry
            _log.warning("engine failed", client=self.client_id, method=method, error=str(exc))
            reply = Reply(id=command.id, error=_TEMPORARY_FAILURE)
            self.node.metrics.error(int(ErrorCode.INTERNAL))
        except Exception:
            _log.exception("command failed", client=self.client_id, method=method)
            reply = Reply(id=command.id, error=_TEMPORARY_FAILURE)
            self.node.metrics.error(int(ErrorCode.INTERNAL))
        if method == "connect" and self.state is State.CONNECTING:
            ok = reply is not None and reply.error is None
            self._move(Event.CONNECT_OK if ok else Event.CONNECT_ERROR)
            if ok:
                self.node.on_connected(self)
        if reply is not None and command.id and self.state is not _CLOSED:
            self.push(self.codec.encode(reply))
            if reply.subscribe is not None:
                self.node.release_pending(self, request.channel, reply.subscribe)  # type: ignore[attr-defined]
            elif reply.connect is not None:
                for channel, result in reply.connect.subs.items():
                    self.node.release_pending(self, channel, result)

    # ------------------------------------------------------------------ outbound

    def push(self, item: bytes, count: int = 1) -> None:
        """Queue an encoded message, or a frame of ``count`` of them (``Codec.join``
        joins frames as it joins items); it goes out with the others at the end of the
        turn."""
        # Fan-out calls this once per subscriber: attribute lookups are kept to a minimum.
        if self.state is _CLOSED:
            return
        queue = self._queue
        if not queue:
            self.node.flusher.mark(self)
        queue.append(item)
        self._queued_messages += count
        self._queued_bytes += len(item)
        if self._queued_bytes + self._backlog > self._limit:
            self._slow()

    def ping(self) -> None:
        """Heartbeat visit: expire, count a missed pong, drop the client or send a ping."""
        if self.state is not State.CONNECTED:
            return
        expiring = self.expire_at or any(s.expire_at for s in self.subscriptions.values())
        if expiring and self._expire(time.time()):
            return
        if not self.ponged:
            self.missed_pongs += 1
            if self.missed_pongs >= self.node.settings.client.max_missed_pongs:
                self.close(codes.NO_PONG)
                return
        self.ponged = False
        self.push(self.node.ping_item(self.codec))

    def _expire(self, now: float) -> bool:
        """Close or unsubscribe what was not refreshed in time; True when closed."""
        grace = self.node.settings.client.expiry_grace
        if self.expire_at and now > self.expire_at + grace:
            self.close(codes.CONNECTION_EXPIRED)
            return True
        for sub in list(self.subscriptions.values()):
            if sub.expire_at and now > sub.expire_at + grace:
                self.node.unsubscribe(self, sub.channel, UnsubscribeCode.EXPIRED)
        return False

    def flush(self) -> None:
        """Write the queued messages as one frame."""
        if not self._queue:
            return
        queue = self._queue
        self._queue = []
        nbytes = self._queued_bytes
        messages = self._queued_messages
        self._queued_bytes = self._queued_messages = 0
        # A frame of one message is that message (the Codec contract): the common case
        # of a fan-out turn, one per subscriber, needs no join call.
        if len(queue) == 1:
            frame = queue[0]
        else:
            frame = self.codec.join(queue)
            nbytes = len(frame)  # with the codec's separators, as bytes_received counts
        try:
            backlog = self._backlog = self.connection.write(frame)
        except Exception as exc:  # the socket is gone; the transport reports the loss
            _log.debug("write failed", client=self.client_id, error=str(exc))
            self.close(codes.WRITE_ERROR)
            return
        metrics = self.node.metrics
        metrics.messages_sent += messages
        metrics.bytes_sent += nbytes
        if backlog > self._limit:
            self._slow()

    def _slow(self) -> None:
        _log.warning(
            "slow client disconnected",
            client=self.client_id,
            user=self.user,
            limit=self.node.settings.client.write_buffer_bytes,
        )
        self._queue.clear()
        self._queued_bytes = self._queued_messages = 0
        self.close(codes.SLOW)

    # ------------------------------------------------------------------- closing

    def close(self, disconnect: Disconnect) -> None:
        """Flush what is queued, then close the transport with ``disconnect``."""
        if self.closed:
            return
        if disconnect is not codes.SLOW and self.subscriptions:
            hub = self.node.hub
            for channel in list(self.subscriptions):  # its channels' turn so far goes too
                hub.settle(channel)
            if self.closed:  # that delivery found it slow
                return
        self.state = State.CLOSED
        worker = self._worker
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()  # a command in flight must not subscribe a closed session
        if self._queue and disconnect is not codes.SLOW:
            queue, self._queue = self._queue, []
            messages = self._queued_messages
            self._queued_bytes = self._queued_messages = 0
            with contextlib.suppress(Exception):
                frame = self.codec.join(queue)
                self.connection.write(frame)
                self.node.metrics.messages_sent += messages
                self.node.metrics.bytes_sent += len(frame)
        self.node.metrics.disconnect(disconnect.code)
        _log.debug("closing", client=self.client_id, code=disconnect.code, reason=disconnect.reason)
        self.connection.close(disconnect)
        self.node.on_closed(self)

    def connection_lost(self) -> None:
        """The transport is gone (closed by either side): release everything."""
        if not self.closed:
            self.state = State.CLOSED
            self.node.on_closed(self)
        self.node.on_lost(self)
        if self._worker is not None:
            self._worker.cancel()
        self._inbox.clear()
        self._queue.clear()
        self._queued_bytes = self._queued_messages = 0
