"""The hubbub client: one logical connection to a hubbub (or Centrifuge) server.

``Client`` keeps itself connected: after a cut it reconnects with back-off and
resubscribes every subscription with recovery, as long as the server's disconnect code
allows it (PROTOCOL.md §8.4: 3500-3999 and 4500-4999 are terminal). It moves through
the states of :mod:`hubbub.client.state`, and every move is an event
(``on_state``). Requests wait for the client to be ready, within their timeout.

    async with Client("ws://127.0.0.1:8000/connection/websocket") as client:
        sub = await client.subscribe("chat:lobby")
        await client.publish("chat:lobby", {"text": "hello"})
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Unpack

import msgspec

from hubbub.client.backoff import Backoff
from hubbub.client.callbacks import Callbacks, Handler, Runner
from hubbub.client.codecs import resolve_codec
from hubbub.client.connection import Closed, Connection, local_close
from hubbub.client.events import (
    ClientInfo,
    ErrorEvent,
    HistoryPage,
    JoinEvent,
    LeaveEvent,
    Position,
    PresenceStats,
    PublicationEvent,
    ServerMessage,
    SubscribedEvent,
    UnsubscribedEvent,
    encode_payload,
)
from hubbub.client.retry import connection_gone, refused
from hubbub.client.retry_timer import RetryTimer
from hubbub.client.server_subs import ServerSubscriptions
from hubbub.client.state import (
    CLIENT_TRANSITIONS,
    ClientState,
    ClientStateChanged,
    ClientTrigger,
    LocalCode,
    SubscriptionState,
)
from hubbub.client.stateful import Stateful, deadline
from hubbub.client.subscription import Subscription, SubscriptionOptions
from hubbub.client.transport import check_url
from hubbub.codecs.base import Codec
from hubbub.errors import (
    ClientBrokenError,
    ClientClosedError,
    ClientError,
    ConnectionLostError,
    ProtocolError,
    ReplyError,
)
from hubbub.protocol.codes import DisconnectCode, ErrorCode
from hubbub.protocol.messages import (
    Command,
    ConnectRequest,
    ConnectResult,
    HistoryRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    Push,
    RefreshRequest,
    Reply,
    RPCRequest,
    SendRequest,
    StreamPosition,
)

_log = logging.getLogger(__name__)

_State = ClientState
_Trigger = ClientTrigger

DEFAULT_NAME = "hubbub-python"
"""What the server sees as the client's name (at most 16 characters)."""
DEFAULT_TIMEOUT = 5.0
"""Seconds a request waits for its reply, as the Centrifuge SDKs."""
DEFAULT_MAX_SERVER_PING_DELAY = 10.0
"""Seconds a server may be late with its ping before it is taken for dead."""
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

TokenGetter = Callable[[], Awaitable[str]]


class Client(Stateful[ClientState, ClientTrigger]):
    """An asyncio client of the Centrifuge client protocol v2 (JSON, Protobuf, msgpack).

    Args:
        url: ``ws://host:port/connection/websocket`` (or ``wss://``), or
            ``tcp://host:port`` for hubbub's raw TCP transport.
        token: the connection token, if the server wants one.
        get_token: called for a (new) token when there is none, when it expired (error
            109) and before it runs out (``refresh``).
        codec: ``"json"``, ``"protobuf"``, ``"msgpack"`` or a ``Codec``.
        name, version: how the server sees this client (observability only).
        data: a payload for the server's connect hook.
        headers: extra HTTP headers for the WebSocket upgrade.
        ssl: TLS settings for ``wss://`` (and TLS over ``tcp://``).
        timeout: seconds for a request (and for one connect attempt).
        backoff: delays between reconnect attempts; also used for resubscribes.
        max_retries: failed attempts in a row after which the client gives up
            (state BROKEN); None retries forever.
        max_server_ping_delay: how late a server's ping may be before the connection
            is taken for dead and replaced.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        get_token: TokenGetter | None = None,
        codec: str | Codec = "json",
        name: str = DEFAULT_NAME,
        version: str = "",
        data: object = None,
        headers: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff | None = None,
        max_retries: int | None = None,
        max_server_ping_delay: float = DEFAULT_MAX_SERVER_PING_DELAY,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        check_url(url)
        if max_retries is not None and max_retries < 1:
            raise ValueError(f"max_retries must be >= 1 or None, got {max_retries}")
        self.url = url
        self.codec = resolve_codec(codec)
        self.name = name
        self.version = version
        self.timeout = timeout
        self.backoff = backoff if backoff is not None else Backoff()
        self.max_retries = max_retries
        self.max_server_ping_delay = max_server_ping_delay
        self._token = token or ""
        self._get_token = get_token
        self._data = encode_payload(b"" if data is None else data, self.codec)
        self._headers = dict(headers or {})
        self._ssl = ssl
        self._max_message_bytes = max_message_bytes
        self._runner = Runner()
        super().__init__(CLIENT_TRANSITIONS, _State.IDLE, self._runner)
        self._error: BaseException | None = None
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh = RetryTimer()
        self._client_id = ""
        self._subs: dict[str, Subscription] = {}
        self._server_subs = ServerSubscriptions(self._runner)
        self._held_pushes: list[Push] | None = None
        """Pushes that came after the connect reply, before the client applied it."""
        self._on_message = Callbacks[ServerMessage](self._runner)
        self._on_error = Callbacks[ErrorEvent](self._runner)

    def __repr__(self) -> str:
        return f"<Client {self.url} {self.state.value}>"

    # ------------------------------------------------------------------- reading

    @property
    def client_id(self) -> str:
        """The id the server gave the current connection ("" before the first)."""
        return self._client_id

    @property
    def error(self) -> BaseException | None:
        """Why the client is CLOSED or BROKEN, when that was not ``disconnect()``."""
        return self._error

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        return dict(self._subs)

    @property
    def server_subscriptions(self) -> dict[str, Position]:
        """The server-side subscriptions, by channel, at their last delivered position."""
        return self._server_subs.positions()

    # ----------------------------------------------------------------- callbacks

    def on_message(self, handler: Handler[ServerMessage]) -> Callable[[], None]:
        """Call ``handler`` with every asynchronous message the server sends."""
        return self._on_message.add(handler)

    def on_error(self, handler: Handler[ErrorEvent]) -> Callable[[], None]:
        """Failures no call waits for (e.g. a token refresh that failed)."""
        return self._on_error.add(handler)

    # Server-side subscriptions: channels the server subscribed this client to (at
    # connect, from its credentials, or later). Their events name their channel.

    def on_server_publication(self, handler: Handler[PublicationEvent]) -> Callable[[], None]:
        """Publications of server-side subscriptions, recovered ones first after a reconnect."""
        return self._server_subs.on_publication.add(handler)

    def on_server_join(self, handler: Handler[JoinEvent]) -> Callable[[], None]:
        return self._server_subs.on_join.add(handler)

    def on_server_leave(self, handler: Handler[LeaveEvent]) -> Callable[[], None]:
        return self._server_subs.on_leave.add(handler)

    def on_server_subscribed(self, handler: Handler[SubscribedEvent]) -> Callable[[], None]:
        """A server-side subscription began, or came back on reconnect (see ``event.gap``)."""
        return self._server_subs.on_subscribed.add(handler)

    def on_server_unsubscribed(self, handler: Handler[UnsubscribedEvent]) -> Callable[[], None]:
        """A server-side subscription ended: by the server, or by the client closing."""
        return self._server_subs.on_unsubscribed.add(handler)

    # ---------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Start connecting (and keep reconnecting); returns at once, see ``ready()``."""
        if self.state in (_State.CONNECTING, _State.READY):
            return
        self._error = None
        self._machine.fire(_Trigger.CONNECT)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def ready(self, *, timeout: float | None = None) -> None:
        """Wait until the client is READY.

        Raises:
            ClientClosedError: ``disconnect()`` was called, or ``connect()`` never was.
            ReplyError, ConnectionLostError: the server refused or closed for good.
            ClientBrokenError: reconnect attempts were exhausted.
            RequestTimeoutError: not ready within ``timeout`` (default: the client's).
        """
        limit = self.timeout if timeout is None else timeout
        async with deadline(limit, "not ready"):
            await self._wait_ready()

    async def disconnect(self) -> None:
        """Close for good: no reconnect; waiting requests get ``ClientClosedError``."""
        if self.state is _State.CLOSED:
            await self._cancel_tasks()  # closed by the server: a get_token may still run
            return
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we were cancelled ourselves, not just the run task
        conn, self._conn = self._conn, None
        self._refresh.cancel()
        if conn is not None:
            conn.close(local_close(LocalCode.DISCONNECT_CALLED, reconnect=False))
        await self._cancel_tasks()
        if not self._machine.can(_Trigger.DISCONNECT):
            return
        self._error = None
        self._machine.fire(
            _Trigger.DISCONNECT, code=int(LocalCode.DISCONNECT_CALLED), reason="disconnect called"
        )
        closed = ClientClosedError("disconnect() was called")
        for sub in list(self._subs.values()):
            sub._client_closed(closed)
        self._server_subs.end(closed.code, str(closed))

    async def __aenter__(self) -> Client:
        await self.connect()
        try:
            await self.ready()
        except BaseException:
            await self.disconnect()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    # ------------------------------------------------------------- subscriptions

    def new_subscription(
        self, channel: str, **options: Unpack[SubscriptionOptions]
    ) -> Subscription:
        """A subscription to ``channel``, not yet subscribed.

        Args (``SubscriptionOptions``, all optional):
            token, get_token: the subscription token, or how to get one (given the
                channel); get_token also gives a fresh one before it runs out
                (``sub_refresh``).
            data: a payload for the server's subscribe hook.
            recoverable: ask the server to keep a position so that a resubscribe
                recovers what was missed (granted where the channel keeps history).
                Default True.
            positioned, join_leave: ask for positioning / join and leave events.
            since: recover from this position on the first subscribe.
            buffer_size: events kept for async iteration (default 1000); 0 for
                callbacks only.

        Raises:
            ValueError: there is a subscription to ``channel`` already.
        """
        if channel in self._subs:
            raise ValueError(f"there is a subscription to {channel!r} already")
        sub = Subscription(self, channel, **options)
        self._subs[channel] = sub
        return sub

    def get_subscription(self, channel: str) -> Subscription | None:
        return self._subs.get(channel)

    async def remove_subscription(self, sub: Subscription) -> None:
        """Unsubscribe and forget ``sub``."""
        await sub.unsubscribe()
        if self._subs.get(sub.channel) is sub:
            del self._subs[sub.channel]

    async def subscribe(
        self,
        channel: str,
        *,
        timeout: float | None = None,
        **options: Unpack[SubscriptionOptions],
    ) -> Subscription:
        """The subscription to ``channel``, subscribed; made with ``options`` if new.

        Raises:
            The errors of ``Subscription.subscribe``.
        """
        sub = self._subs.get(channel)
        if sub is None:
            sub = self.new_subscription(channel, **options)
        await sub.subscribe(timeout=timeout)
        return sub

    # ------------------------------------------------------------------ requests

    async def publish(
        self, channel: str, data: object, *, timeout: float | None = None
    ) -> Position:
        """Publish ``data`` (bytes as they are, anything else as JSON) to ``channel``.

        Returns:
            The publication's place in the channel's stream (offset 0 without history).
        """
        request = PublishRequest(channel=channel, data=self._payload(data))
        reply = await self._call(Command(publish=request), timeout)
        result = reply.publish
        return Position(result.offset, result.epoch) if result is not None else Position()

    async def presence(
        self, channel: str, *, timeout: float | None = None
    ) -> dict[str, ClientInfo]:
        """Who is subscribed to ``channel``, by client id."""
        reply = await self._call(Command(presence=PresenceRequest(channel=channel)), timeout)
        result = reply.presence
        clients = result.presence if result is not None else {}
        return {client: ClientInfo.of(info) for client, info in clients.items()}

    async def presence_stats(self, channel: str, *, timeout: float | None = None) -> PresenceStats:
        """How many clients and distinct users are subscribed to ``channel``."""
        command = Command(presence_stats=PresenceStatsRequest(channel=channel))
        result = (await self._call(command, timeout)).presence_stats
        if result is None:
            return PresenceStats(0, 0)
        return PresenceStats(result.num_clients, result.num_users)

    async def history(
        self,
        channel: str,
        *,
        limit: int = -1,
        since: Position | None = None,
        reverse: bool = False,
        timeout: float | None = None,
    ) -> HistoryPage:
        """Publications kept in ``channel``'s history.

        Args:
            limit: at most this many; -1 for all the server will give, 0 for the
                position only.
            since: only publications after this position (before it with ``reverse``).
            reverse: newest first.
        """
        request = HistoryRequest(channel=channel, limit=limit, reverse=reverse)
        if since is not None:
            request.since = StreamPosition(offset=since.offset, epoch=since.epoch)
        result = (await self._call(Command(history=request), timeout)).history
        if result is None:
            raise ProtocolError("history reply without a result")
        pubs = [PublicationEvent.of(channel, pub) for pub in result.publications]
        return HistoryPage(pubs, result.offset, result.epoch)

    async def rpc(self, method: str, data: object = None, *, timeout: float | None = None) -> bytes:
        """Call the server's RPC ``method`` with ``data``; returns the answer's payload."""
        request = RPCRequest(method=method, data=self._payload(data))
        result = (await self._call(Command(rpc=request), timeout)).rpc
        return bytes(result.data) if result is not None else b""

    async def send(self, data: object, *, timeout: float | None = None) -> None:
        """Send ``data`` to the server's message handler; no reply, no confirmation.

        Waits (within ``timeout``) for the client to be ready.
        """
        payload = self._payload(data)
        conn = await self._ready_within(timeout)
        conn.send(Command(send=SendRequest(data=payload)))

    # ---------------------------------------------------- used by subscriptions

    def _ready_connection(self) -> Connection | None:
        conn = self._conn
        if self.state is _State.READY and conn is not None and not conn.is_closed:
            return conn
        return None

    def _check_open(self) -> None:
        """Raise unless the client is connecting or ready."""
        if self.state not in (_State.CONNECTING, _State.READY):
            raise self._not_open_error()

    def _payload(self, data: object) -> msgspec.Raw:
        if data is None:
            return encode_payload(b"", self.codec)
        return encode_payload(data, self.codec)

    def _keep(self, task: asyncio.Task[None]) -> None:
        """Hold a reference to a background task until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        """End the background tasks (a get_token that may never return): a closed
        client leaves nothing running."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    async def _call(self, command: Command, timeout: float | None) -> Reply:
        limit = self.timeout if timeout is None else timeout
        async with deadline(limit, "no reply", code=int(LocalCode.REQUEST_TIMEOUT)):
            await self._wait_ready()
            assert self._conn is not None
            return await self._conn.call(command, None)

    async def _ready_within(self, timeout: float | None) -> Connection:
        await self.ready(timeout=timeout)
        assert self._conn is not None
        return self._conn

    async def _wait_ready(self) -> None:
        while self._ready_connection() is None:
            if self.state not in (_State.CONNECTING, _State.READY):
                raise self._not_open_error()
            await self._changes.wait()

    def _not_open_error(self) -> BaseException:
        state = self.state
        if state is _State.IDLE:
            return ClientClosedError("connect() was not called")
        if self._error is not None:
            return self._error
        return ClientClosedError("disconnect() was called")

    def _on_transition(self, event: ClientStateChanged) -> None:
        _log.debug(
            "%s: %s -> %s (%s %s)",
            self.url,
            event.old.value,
            event.new.value,
            event.code,
            event.reason,
        )
        super()._on_transition(event)

    def _on_push(self, push: Push) -> None:
        if self._held_pushes is not None:
            self._held_pushes.append(push)
            return
        if push.message is not None:
            self._on_message.emit(ServerMessage(bytes(push.message.data)))
            return
        channel = push.channel
        sub = self._subs.get(channel)
        server_side = push.subscribe is not None or channel in self._server_subs
        # The server holds one subscription per channel and connection. A Subscription
        # that is subscribed gets its channel's events; one that is not would drop them,
        # so a server-side subscription of the same channel takes them instead.
        if sub is None or (server_side and sub.state is not SubscriptionState.SUBSCRIBED):
            self._server_subs.on_push(push)
        else:
            sub._on_push(push)
            self._server_subs.follow(push)

    def _release_pushes(self) -> None:
        """Handle the pushes held back while the connect result was not applied yet."""
        held, self._held_pushes = self._held_pushes, None
        for push in held or ():
            self._on_push(push)

    # ------------------------------------------------------------ connect loop

    async def _run(self) -> None:
        """Connect, serve, reconnect: the client's one background task."""
        try:
            await self._connect_loop()
        except Exception as exc:  # a bug: say so, and do not leave the client hanging
            _log.exception("client %s failed", self.url)
            if self._machine.can(_Trigger.TERMINAL):
                self._terminate(exc, code=int(LocalCode.CONNECT_FAILED))

    async def _connect_loop(self) -> None:
        failures = 0  # connect attempts that failed in a row
        lost = 0  # 1 once a connection was lost: even the first reconnect waits
        while True:
            if wait := self.backoff.after(lost + failures):
                await asyncio.sleep(wait)
            try:
                conn, result = await self._attempt()
            except Exception as exc:
                if _is_terminal(exc, can_refresh=self._get_token is not None):
                    self._terminate(exc, code=_code_of(exc))
                    return
                failures += 1
                if isinstance(exc, ReplyError) and exc.code == ErrorCode.TOKEN_EXPIRED:
                    self._token = ""  # get_token gives a fresh one before the next attempt
                self._machine.fire(
                    _Trigger.ATTEMPT_FAILED,
                    code=_code_of(exc),
                    reason=str(exc) or type(exc).__name__,
                    error=exc,
                )
                if self.max_retries is not None and failures >= self.max_retries:
                    self._give_up(exc, failures)
                    return
                continue
            failures = 0
            end = await self._serve(conn, result)
            if end is None:
                return
            lost = 1

    async def _attempt(self) -> tuple[Connection, ConnectResult]:
        """One connect attempt: transport, then the connect command, within the timeout."""
        conn: Connection | None = None
        # The connect reply resolves a future, and the pushes right behind it (a
        # server-side subscription's publications) would be handled before the result
        # is: hold them until _serve has applied it.
        self._held_pushes = []
        try:
            async with asyncio.timeout(self.timeout):
                if not self._token and self._get_token is not None:
                    self._token = await self._get_token()
                conn = await Connection.open(
                    self.url,
                    self.codec,
                    self._on_push,
                    headers=self._headers,
                    ssl=self._ssl,
                    max_message_bytes=self._max_message_bytes,
                )
                reply = await conn.call(Command(connect=self._connect_request()), None)
            if reply.connect is None:
                raise ProtocolError("connect reply without a result")
        except BaseException:
            self._held_pushes = None
            if conn is not None:
                conn.abort()
            raise
        return conn, reply.connect

    def _connect_request(self) -> ConnectRequest:
        return ConnectRequest(
            token=self._token,
            data=self._data,
            name=self.name,
            version=self.version,
            subs=self._server_subs.recovery_requests(),
        )

    async def _serve(self, conn: Connection, result: ConnectResult) -> Closed | None:
        """Be READY on ``conn`` until it ends; None when the client must stop."""
        self._conn = conn
        self._client_id = result.client
        conn.start_heartbeat(result.ping, self.max_server_ping_delay, pong=result.pong)
        if result.expires:
            self._expires_in(conn, result.ttl)
        self._machine.fire(_Trigger.CONNECTED)
        self._server_subs.connected(result.subs)
        self._release_pushes()
        for sub in list(self._subs.values()):
            sub._client_ready(conn)
        end = await conn.closed
        self._conn = None
        self._refresh.cancel()
        if end.by_client:
            return None
        if not end.reconnect:
            lost = end.lost_error()
            self._terminate(lost, code=end.code, reason=end.reason)
            return None
        if end.code == DisconnectCode.STATE_INVALIDATED:
            if self._get_token is not None:
                self._token = ""  # fetch a fresh one; a static token is all we have
            for sub in self._subs.values():
                sub._forget_position()
            self._server_subs.forget_positions()
        self._machine.fire(_Trigger.LOST, code=end.code, reason=end.reason, error=end.error)
        for sub in list(self._subs.values()):
            sub._connection_lost()
        return end

    def _terminate(self, error: BaseException, *, code: int, reason: str = "") -> None:
        self._error = error
        self._machine.fire(_Trigger.TERMINAL, code=code, reason=reason or str(error), error=error)
        self._end_subscriptions(error)

    def _give_up(self, last: BaseException, failures: int) -> None:
        error = ClientBrokenError(
            f"{failures} connect attempts to {self.url} failed in a row",
            code=int(LocalCode.RETRIES_EXHAUSTED),
            temporary=True,
        )
        error.__cause__ = last
        self._error = error
        self._machine.fire(
            _Trigger.GIVE_UP,
            code=int(LocalCode.RETRIES_EXHAUSTED),
            reason=str(error),
            error=error,
        )
        self._end_subscriptions(error)

    def _end_subscriptions(self, error: BaseException) -> None:
        if isinstance(error, ClientError):
            ended = error
        else:
            ended = ClientError(str(error), code=_code_of(error))
            ended.__cause__ = error
        for sub in list(self._subs.values()):
            sub._client_closed(ended)
        self._server_subs.end(ended.code, str(ended))

    # ------------------------------------------------------------ token refresh

    def _expires_in(self, conn: Connection, ttl: int) -> None:
        if self._get_token is None:
            return  # the server closes the connection when it expires; nothing to do
        self._refresh.expires_in(ttl, lambda: self._start_refresh(conn))

    def _start_refresh(self, conn: Connection) -> None:
        self._keep(asyncio.get_running_loop().create_task(self._refresh_token(conn)))

    async def _refresh_token(self, conn: Connection) -> None:
        assert self._get_token is not None
        try:
            self._token = await self._get_token()
            reply = await conn.call(
                Command(refresh=RefreshRequest(token=self._token)), self.timeout
            )
        except ReplyError as exc:
            if refused(exc):
                # A reconnect would be refused too once the token runs out: close now
                # instead of asking again forever.
                self._on_error.emit(ErrorEvent("", exc))
                conn.close(Closed(exc.code, exc.message, reconnect=False, error=exc))
            else:
                self._refresh_failed(conn, exc)
            return
        except Exception as exc:  # a timeout, get_token failing, or the connection gone
            if not connection_gone(exc):
                self._refresh_failed(conn, exc)
            return
        result = reply.refresh
        if result is not None and result.expires and not conn.is_closed:
            self._expires_in(conn, result.ttl)

    def _refresh_failed(self, conn: Connection, error: BaseException) -> None:
        """Tell the application, and try again after a delay that grows with each failure."""
        self._on_error.emit(ErrorEvent("", error))
        if not conn.is_closed:
            self._refresh.failed(self.backoff, lambda: self._start_refresh(conn))


def _is_terminal(exc: BaseException, *, can_refresh: bool) -> bool:
    """True when a failed connect attempt must not be repeated (PROTOCOL.md §8.1, §8.4)."""
    if isinstance(exc, ReplyError):
        return refused(exc, can_refresh=can_refresh)
    if isinstance(exc, ConnectionLostError):
        return not exc.temporary
    return isinstance(exc, ProtocolError)


def _code_of(exc: BaseException) -> int:
    """The protocol code behind a failed attempt; "connect failed" for socket errors."""
    if isinstance(exc, ReplyError | ClientError):
        return exc.code
    return int(LocalCode.CONNECT_FAILED)
