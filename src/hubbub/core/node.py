"""The node: sessions, channels, engines and hooks of one hubbub process.

``Node`` is what an application embeds: give it settings (or take the defaults),
register hooks and RPC handlers, and hand it to a transport. It owns the one timer
wheel for heartbeats, the fan-out hub and the engines (memory unless configured).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from hubbub.codecs.base import Codec
from hubbub.codecs.json import is_json
from hubbub.codecs.registry import CodecRegistry, default_registry
from hubbub.config import ChannelOptions, Settings
from hubbub.core.fanout import Flusher, Hub, push_item
from hubbub.core.handlers import Handlers, history_options
from hubbub.core.heartbeat import TimerWheel
from hubbub.core.hooks import Hooks, RpcHandler
from hubbub.core.session import Connection, Session, Subscription
from hubbub.engines.base import Broker, PresenceStore
from hubbub.engines.registry import create_broker, create_presence
from hubbub.errors import EngineError, ReplyError
from hubbub.observability.looplag import watch_loop_lag
from hubbub.observability.metrics import Metrics
from hubbub.protocol import codes
from hubbub.protocol.codes import UNSUBSCRIBE_REASONS, Disconnect, ErrorCode, UnsubscribeCode
from hubbub.protocol.messages import (
    PING,
    ClientInfo,
    Publication,
    Push,
    Reply,
    StreamPosition,
    SubscribeResult,
    Unsubscribe,
    raw,
)
from hubbub.protocol.state import State

_log = structlog.get_logger(__name__)


class Node:
    """One hubbub process: accepts sessions from transports and runs their commands."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        hooks: Hooks | None = None,
        broker: Broker | None = None,
        presence: PresenceStore | None = None,
        codecs: CodecRegistry | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        engine = self.settings.engine
        self.broker = broker if broker is not None else create_broker(engine.broker)
        self.presence = (
            presence if presence is not None else create_presence(engine.presence or engine.broker)
        )
        self.codecs = codecs if codecs is not None else default_registry()
        self.metrics = metrics if metrics is not None else Metrics()
        self.hooks = hooks if hooks is not None else Hooks()
        self.handlers = Handlers(self)
        self.flusher = Flusher(lambda: self.loop)
        self.hub = Hub(self.metrics, self.flusher)
        self.sessions: dict[str, Session] = {}
        self._awaiting: dict[Session, float] = {}  # not yet connected → accepted at, in order
        self._open: set[Session] = set()  # sessions whose socket is still there
        self._pings: dict[Codec, bytes] = {}
        self._wheel: TimerWheel[Session] = TimerWheel(
            self.settings.client.ping_interval, Session.ping
        )
        self._housekeeping: asyncio.Task[None] | None = None
        self._loop_lag: asyncio.Task[None] | None = None
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live: set[str] = set()  # channels the broker delivers to this node
        self._syncing: dict[str, asyncio.Task[None]] = {}  # per channel: see _sync_broker
        self._releasing: set[asyncio.Task[None]] = set()  # see _in_background

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, asked once: ``get_running_loop()`` costs a getpid() each time."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._started:
            return
        await self.broker.start(self.hub)
        self._wheel.start()
        loop = asyncio.get_running_loop()
        self._housekeeping = loop.create_task(self._keep_house())
        self._loop_lag = loop.create_task(watch_loop_lag(self.metrics))
        self._started = True

    async def shutdown(self, timeout: float | None = None) -> None:
        """Tell every client to come back later, wait for them to go, stop the engines."""
        if timeout is None:
            timeout = self.settings.server.shutdown_timeout
        for session in [*self._awaiting, *self.sessions.values()]:  # all not yet closing
            session.close(codes.SHUTDOWN)
        deadline = time.monotonic() + timeout
        while self._open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._open:
            _log.warning("clients still connected at shutdown", count=len(self._open))
        if self._releasing:  # presence removals and leaves: before the engines close
            _, late = await asyncio.wait(
                set(self._releasing), timeout=max(0.0, deadline - time.monotonic())
            )
            if late:
                _log.warning("channel releases unfinished at shutdown", count=len(late))
        self._wheel.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._loop_lag is not None:
            self._loop_lag.cancel()
        await self.broker.close()
        await self.presence.close()
        self._started = False

    # ----------------------------------------------------------------- embedding

    def rpc(self, method: str) -> Callable[[RpcHandler], RpcHandler]:
        """Decorator registering an RPC handler: ``@node.rpc("echo")``."""

        def register(handler: RpcHandler) -> RpcHandler:
            self.hooks.rpc[method] = handler
            return handler

        return register

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        info: ClientInfo | None = None,
        options: ChannelOptions | None = None,
        tags: dict[str, str] | None = None,
    ) -> StreamPosition:
        """Publish ``data`` (encoded payload, JSON text for JSON clients) to ``channel``."""
        if options is None:
            options = self.settings.channels.options_for(channel)
            if options is None:
                raise ReplyError(ErrorCode.UNKNOWN_CHANNEL)
        pub = Publication(data=raw(data), info=info, tags=tags or {}, time=int(time.time() * 1000))
        position = await self.broker.publish(channel, pub, history_options(options))
        self.metrics.publication()
        return position

    # ------------------------------------------------------------------ sessions

    def accept(self, connection: Connection, codec: Codec) -> Session:
        """A transport has a new connection: make its session."""
        session = Session(self, connection, codec)
        self._awaiting[session] = time.monotonic()
        self._open.add(session)
        self.metrics.connection_opened()
        return session

    def on_connected(self, session: Session) -> None:
        self._awaiting.pop(session, None)
        self.sessions[session.client_id] = session
        self._wheel.add(session)

    def on_lost(self, session: Session) -> None:
        """The session's socket is gone."""
        self._open.discard(session)

    def on_closed(self, session: Session) -> None:
        """The session is closing (the session calls this once): forget it now, release its
        channels in the background."""
        self._awaiting.pop(session, None)
        self.metrics.connection_closed()
        self.sessions.pop(session.client_id, None)
        self._wheel.discard(session)
        if session.subscriptions:
            self._in_background(self._release(session))

    def _in_background(self, release: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a channel release as a task that shutdown waits for (within its timeout).

        It starts on the loop's next turn whatever task factory the application set: a
        close comes from inside a fan-out (a slow or unfit subscriber), and a release
        run at once there (``eager_task_factory``) would change the subscriber table
        being walked and publish a leave in the middle of that delivery."""
        task: asyncio.Task[None] = asyncio.Task(release, loop=self.loop)
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    async def _release(self, session: Session) -> None:
        for channel in list(session.subscriptions):
            try:
                await self.remove_subscriber(session, channel)
            except Exception:
                _log.exception("releasing a channel failed", channel=channel)

    async def add_subscriber(self, session: Session, sub: Subscription) -> None:
        """Join the hub; return once the broker delivers the channel to this node.

        A subscriber arriving while a broker subscribe or unsubscribe of the channel is
        in flight waits for it: reading history before the broker delivers could miss a
        publication made in between.
        """
        channel = sub.channel
        self.metrics.subscribed()
        self.hub.add(session, sub)
        if channel in self._live and channel not in self._syncing:
            return  # the common case: the broker delivers the channel already
        await asyncio.shield(self._sync_broker(channel))

    def _sync_broker(self, channel: str) -> asyncio.Task[None]:
        """The task that brings the broker's subscription of ``channel`` in line with the
        hub; one per channel at a time, so subscribes and unsubscribes never cross."""
        task = self._syncing.get(channel)
        if task is None:
            task = self.loop.create_task(self._follow_hub(channel))
            if not task.done():  # an eager task factory may have finished it already
                self._syncing[channel] = task
        return task

    async def _follow_hub(self, channel: str) -> None:
        """Subscribe or unsubscribe the broker until it matches the hub. The node owns
        this work, not a session: a closing client must not cancel a broker call that
        others wait for. A failed subscribe fails every waiter (100, they may retry)."""
        try:
            while True:
                wanted = self.hub.subscribers(channel) > 0
                if wanted == (channel in self._live):
                    return
                if wanted:
                    try:
                        await self.broker.subscribe([channel])
                    except Exception as exc:
                        raise EngineError(f"subscribing {channel!r} failed: {exc}") from exc
                    self._live.add(channel)
                else:
                    self._live.discard(channel)
                    try:
                        await self.broker.unsubscribe([channel])
                    except Exception as exc:  # a stale subscription costs deliveries only
                        _log.warning("broker unsubscribe failed", channel=channel, error=str(exc))
        finally:
            if self._syncing.get(channel) is asyncio.current_task():
                del self._syncing[channel]

    async def remove_subscriber(self, session: Session, channel: str) -> None:
        sub = session.subscriptions.get(channel)
        if sub is None:
            return
        self._detach(session, channel)
        if not sub.establishing:  # else the command establishing it releases it
            await self._release_channel(session, sub)

    def abandon(
        self, session: Session, sub: Subscription, *, present: bool, joined: bool
    ) -> asyncio.Task[None]:
        """Undo a subscription whose establishing failed or was ended meanwhile: end its
        establishing and detach it now, if still attached, and return the task releasing
        the engine side (the presence entry only when ``present``: it was added; a leave
        only when ``joined``). Detaching before any await keeps the release single: a
        close's release that comes later finds nothing left to release."""
        sub.establishing = False
        if session.subscriptions.get(sub.channel) is sub:
            self._detach(session, sub.channel)
        # else detached meanwhile; whoever did it left the engine side to us
        return self._in_background(
            self._release_channel(session, sub, present=present, joined=joined)
        )

    def _detach(self, session: Session, channel: str) -> None:
        """Stop delivery to ``session`` at once; the engine side follows (_release_channel)."""
        session.subscriptions.pop(channel, None)
        self.metrics.unsubscribed()
        self.hub.remove(session, channel)

    async def _release_channel(
        self, session: Session, sub: Subscription, *, present: bool = True, joined: bool = True
    ) -> None:
        """The engine side of an unsubscribe: broker, presence, leave.

        The client is already detached; an engine failure here is logged, not raised:
        a presence entry then expires by its TTL, a stale broker subscription only
        costs a delivery nobody takes. What is decided here is decided now, not when
        the client was detached: by then it may have subscribed again.
        """
        channel = sub.channel
        try:
            if self.hub.subscribers(channel) == 0 and (
                channel in self._live or channel in self._syncing
            ):
                await asyncio.shield(self._sync_broker(channel))
            if channel in session.subscriptions:
                return  # subscribed again meanwhile: its presence entry is the new one's
            options = self.settings.channels.options_for(channel)
            if present and options is not None and options.presence:
                await self.presence.remove(channel, session.client_id)
                if joined and options.join_leave and channel not in session.subscriptions:
                    await self.broker.publish_leave(channel, session.client_info(sub.chan_info))
        except EngineError as exc:
            _log.warning("engine cleanup after unsubscribe failed", channel=channel, error=str(exc))

    def release_pending(self, session: Session, channel: str, result: SubscribeResult) -> None:
        """The subscribe reply is queued: deliver what was published meanwhile, once."""
        sub = session.subscriptions.get(channel)
        if sub is None or sub.pending is None:
            return
        self.hub.settle(channel)  # the turn's publications so far join the pending ones
        pending, sub.pending = sub.pending, None
        last = result.publications[-1].offset if result.publications else result.offset
        for pub in pending:
            if result.positioned and pub.offset and pub.offset <= last:
                continue  # the reply carries it already
            item = push_item(session.codec, channel, pub)
            if item is None:
                session.close(codes.INAPPROPRIATE_PROTOCOL)
                return
            session.push(item)

    def ping_item(self, codec: Codec) -> bytes:
        item = self._pings.get(codec)
        if item is None:
            item = self._pings[codec] = codec.encode(PING)
        return item

    # -------------------------------------------------------------- housekeeping

    async def _keep_house(self) -> None:
        """Close connections that never sent connect; refresh presence entries.

        The refresh runs beside this loop, one at a time: a presence store that hangs
        (each call waiting out its timeout) must not hold up the stale sweep.
        """
        client = self.settings.client
        period = min(client.stale_timeout, client.presence_ttl / 3) / 2
        last_presence = time.monotonic()
        refresh: asyncio.Task[None] | None = None
        try:
            while True:
                await asyncio.sleep(period)
                now = time.monotonic()
                for session, accepted in list(self._awaiting.items()):
                    if now - accepted <= client.stale_timeout:
                        break  # in order of arrival: the rest are younger
                    session.close(codes.STALE)
                if now - last_presence >= client.presence_ttl / 3 and (
                    refresh is None or refresh.done()
                ):
                    last_presence = now
                    refresh = self.loop.create_task(self._refresh_presence())
        finally:
            if refresh is not None:
                refresh.cancel()

    async def _refresh_presence(self) -> None:
        """Renew the presence entries of the subscriptions held now. The walk awaits the
        store between entries, so each one is checked just before its add, and after it:
        one released meanwhile must not come back as a ghost until its TTL."""
        ttl = self.settings.client.presence_ttl
        for session in list(self.sessions.values()):
            for channel, sub in list(session.subscriptions.items()):
                options = self.settings.channels.options_for(channel)
                if options is None or not options.presence or not self._holds(session, sub):
                    continue
                try:
                    await self.presence.add(
                        channel, session.client_id, session.client_info(sub.chan_info), ttl
                    )
                    if not self._holds(session, sub) and channel not in session.subscriptions:
                        await self.presence.remove(channel, session.client_id)
                except Exception:
                    _log.warning("presence refresh failed", channel=channel)

    @staticmethod
    def _holds(session: Session, sub: Subscription) -> bool:
        """``sub`` is established and still the session's (whose connection is open)."""
        return (
            not session.closed
            and not sub.establishing
            and session.subscriptions.get(sub.channel) is sub
        )

    def subscribe(self, session: Session, channel: str, *, data: bytes = b"") -> bool:
        """Subscribe a connected client to ``channel`` from the server side: a Subscribe
        push with the stream position, then the channel's publications (a user added to
        a room gets it on every connection without asking).

        It is queued with the client's own commands and runs in their order; nothing
        happens when the client is subscribed already. The client's permissions, the
        subscribe hook and the per-client channel limit are not consulted (as for the
        channels granted at connect): the server decides.

        An engine failure while subscribing (a broker away) is logged and leaves the
        client unsubscribed, with nothing sent: call again once the engine is back.

        Returns:
            False when the client is not connected (or has closed).

        Raises:
            ReplyError: at once, for a channel no client may have (empty or over-long
                name, unknown namespace).
            ValueError: ``data`` that is not JSON, for a client on a JSON connection.
        """
        if data and not session.codec.binary and not is_json(data):
            raise ValueError("a JSON connection carries JSON data only; these bytes are not")
        if not channel:  # from a client a protocol error; from the server a bad request
            raise ReplyError(ErrorCode.BAD_REQUEST)
        handlers = self.handlers
        options = handlers.options(channel)
        if session.state is not State.CONNECTED:
            return False
        return session.run_in_turn(lambda s: handlers.server_subscribe(s, channel, options, data))

    def unsubscribe(
        self, session: Session, channel: str, code: UnsubscribeCode = UnsubscribeCode.SERVER
    ) -> None:
        """End one subscription from the server side: an Unsubscribe push, then release.

        Delivery stops at once. A subscribe still in flight (the client's own, or one
        from ``subscribe``) ends too: the client's gets an error reply after the push,
        temporary for a ``code`` of 2500 and above, which asks it to subscribe again.
        """
        sub = session.subscriptions.get(channel)
        if sub is None:
            return
        self._detach(session, channel)  # nothing may follow the push
        push = Unsubscribe(code=int(code), reason=UNSUBSCRIBE_REASONS[code])
        session.push(session.codec.encode(Reply(push=Push(channel=channel, unsubscribe=push))))
        if sub.establishing:  # its command is awaiting engines: it answers and releases
            sub.ended_by = int(code)
            return
        self._in_background(self._release_channel(session, sub))

    def disconnect(self, client_id: str, disconnect: Disconnect = codes.FORCE_DISCONNECT) -> bool:
        """Close one client's connection; False when it is not connected here."""
        session = self.sessions.get(client_id)
        if session is None:
            return False
        session.close(disconnect)
        return True
