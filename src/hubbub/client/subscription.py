"""A subscription to one channel, kept across reconnects without a gap.

A ``Subscription`` remembers the stream position (epoch, offset) of the last
publication it delivered. Whenever it has to subscribe again — after a reconnect, or
when the server pushes an unsubscribe with a code >= 2500 — it asks the server to
recover from that position, delivers what was missed before anything newer, and drops
what it already delivered. When the server cannot recover, the ``SubscribedEvent``
says so (``gap``) instead of the application silently missing publications. A
subscription the server grants only for a while is refreshed with a token from
``get_token`` before it runs out (``sub_refresh``), instead of being ended (2501).

Events reach the application two ways, both in order: callbacks (``on_publication``,
``on_join``, ...) and async iteration (``async for pub in sub`` for publications,
``sub.events()`` for everything). Iteration reads from a bounded buffer that fills from
the moment the subscription exists, so nothing published between ``subscribe()`` and
the first ``anext()`` is lost; a callback-only application can turn it off with
``buffer_size=0``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypedDict

from hubbub.client.callbacks import Callbacks, Handler
from hubbub.client.connection import Connection, local_close
from hubbub.client.events import (
    ClientInfo,
    ErrorEvent,
    HistoryPage,
    JoinEvent,
    LeaveEvent,
    Position,
    PresenceStats,
    PublicationEvent,
    SubscribedEvent,
    SubscriptionEvent,
    UnsubscribedEvent,
)
from hubbub.client.retry import connection_gone, refused
from hubbub.client.retry_timer import RetryTimer
from hubbub.client.state import (
    SUBSCRIPTION_TRANSITIONS,
    LocalCode,
    SubscriptionState,
    SubscriptionStateChanged,
    SubscriptionTrigger,
)
from hubbub.client.stateful import Stateful, deadline
from hubbub.errors import (
    ClientClosedError,
    ClientError,
    ReplyError,
    RequestTimeoutError,
)
from hubbub.protocol.codes import ErrorCode, UnsubscribeCode
from hubbub.protocol.messages import (
    Command,
    Publication,
    Push,
    Reply,
    SubRefreshRequest,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeRequest,
)

if TYPE_CHECKING:
    from hubbub.client.client import Client

_State = SubscriptionState
_Trigger = SubscriptionTrigger

DEFAULT_BUFFER_SIZE = 1000


class SubscriptionOptions(TypedDict, total=False):
    """The options of ``Client.new_subscription``, for functions that pass them on."""

    token: str | None
    get_token: Callable[[str], Awaitable[str]] | None
    data: object
    recoverable: bool
    positioned: bool
    join_leave: bool
    since: Position | None
    buffer_size: int


class Subscription(Stateful[SubscriptionState, SubscriptionTrigger]):
    """One channel of a ``Client``: subscribe, iterate, unsubscribe.

    Made by ``Client.new_subscription`` (or ``Client.subscribe``), never directly.
    """

    def __init__(
        self,
        client: Client,
        channel: str,
        *,
        token: str | None = None,
        get_token: Callable[[str], Awaitable[str]] | None = None,
        data: object = None,
        recoverable: bool = True,
        positioned: bool = False,
        join_leave: bool = False,
        since: Position | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        self.channel = channel
        self._client = client
        self._token = token or ""
        self._get_token = get_token
        self._data = client._payload(data)  # a payload a JSON connection cannot carry fails here
        self._recoverable = recoverable
        self._positioned = positioned
        self._join_leave = join_leave
        self._epoch = since.epoch if since is not None else ""
        self._offset = since.offset if since is not None else 0
        self._recover = since is not None
        """Ask the server to recover from (epoch, offset) on the next subscribe."""
        runner = client._runner
        super().__init__(SUBSCRIPTION_TRANSITIONS, _State.UNSUBSCRIBED, runner)
        self._error: BaseException | None = None
        self._ended: tuple[int, str] = (0, "unsubscribed")
        """Code and reason of the last end."""
        self._conn: Connection | None = None
        self._attempt = 0
        """Counts subscribe commands; a reply to any but the latest is ignored."""
        self._retry = RetryTimer()
        """Subscribe attempts the server refused for now: when to try again."""
        self._refresh = RetryTimer()
        self._buffer: deque[SubscriptionEvent] = deque()
        self._buffer_size = buffer_size
        self._overflowing = False
        self._arrived = asyncio.Event()
        self._on_publication = Callbacks[PublicationEvent](runner)
        self._on_join = Callbacks[JoinEvent](runner)
        self._on_leave = Callbacks[LeaveEvent](runner)
        self._on_subscribed = Callbacks[SubscribedEvent](runner)
        self._on_unsubscribed = Callbacks[UnsubscribedEvent](runner)
        self._on_error = Callbacks[ErrorEvent](runner)

    def __repr__(self) -> str:
        return f"<Subscription {self.channel!r} {self.state.value}>"

    # ------------------------------------------------------------------- reading

    @property
    def position(self) -> Position:
        """Where the last delivered publication was (what a resubscribe recovers from)."""
        return Position(self._offset, self._epoch)

    # ----------------------------------------------------------------- callbacks

    def on_publication(self, handler: Handler[PublicationEvent]) -> Callable[[], None]:
        """Call ``handler`` with every publication; returns a function that removes it."""
        return self._on_publication.add(handler)

    def on_join(self, handler: Handler[JoinEvent]) -> Callable[[], None]:
        return self._on_join.add(handler)

    def on_leave(self, handler: Handler[LeaveEvent]) -> Callable[[], None]:
        return self._on_leave.add(handler)

    def on_subscribed(self, handler: Handler[SubscribedEvent]) -> Callable[[], None]:
        """Called after every (re)subscribe; check ``event.gap`` for missed publications."""
        return self._on_subscribed.add(handler)

    def on_unsubscribed(self, handler: Handler[UnsubscribedEvent]) -> Callable[[], None]:
        return self._on_unsubscribed.add(handler)

    def on_error(self, handler: Handler[ErrorEvent]) -> Callable[[], None]:
        """Failures no call is waiting for: a refused resubscribe, a full buffer."""
        return self._on_error.add(handler)

    # ------------------------------------------------------------------ commands

    async def subscribe(self, *, timeout: float | None = None) -> None:
        """Subscribe and wait until the server has accepted it.

        On a timeout the subscription keeps trying (it completes when the client is
        ready again); call ``unsubscribe()`` to give up.

        Raises:
            ClientClosedError, ClientBrokenError: the client is not connecting or ready.
            ReplyError: the server refused (e.g. 103 permission denied).
            RequestTimeoutError: not subscribed within ``timeout`` (default: the client's).
        """
        self._client._check_open()
        if self.state is _State.UNSUBSCRIBED:
            # A new life: what the last one left unread, its end included, would stop a
            # new ``async for`` at once.
            self._buffer.clear()
            self._error = None
            self._retry.reset()
            self._machine.fire(_Trigger.SUBSCRIBE)
            conn = self._client._ready_connection()
            if conn is not None:
                self._start(conn)
        await self.ready(timeout=timeout)

    async def ready(self, *, timeout: float | None = None) -> None:
        """Wait until subscribed.

        Raises:
            ClientError, ReplyError: the subscription ended (why is in the exception).
            RequestTimeoutError: not subscribed within ``timeout``.
        """
        limit = self._client.timeout if timeout is None else timeout
        async with deadline(limit, f"{self.channel!r} not subscribed"):
            while self.state is not _State.SUBSCRIBED:
                if self.state is _State.UNSUBSCRIBED:
                    raise self._ended_error()
                await self._changes.wait()

    async def unsubscribe(self) -> None:
        """Stop receiving; iteration ends after what is already buffered."""
        if self.state is _State.UNSUBSCRIBED:
            return
        conn = self._conn
        self._end(
            _Trigger.UNSUBSCRIBE, int(LocalCode.DISCONNECT_CALLED), "unsubscribe called", None
        )
        await self._unsubscribe_on(conn)

    async def _unsubscribe_on(self, conn: Connection | None) -> None:
        """Undo the server's side of a subscription that ended on our side."""
        if conn is None or conn.is_closed:
            return  # never subscribed on a live connection: nothing to undo on the server
        command = Command(unsubscribe=UnsubscribeRequest(channel=self.channel))
        try:
            await conn.call(command, self._client.timeout)
        except (ReplyError, RequestTimeoutError) as exc:
            # The server may still hold the subscription: only a new connection is sure not to.
            conn.close(local_close(LocalCode.UNSUBSCRIBE_ERROR, reconnect=True, error=exc))
        except ClientError:
            pass  # the connection ended, and the server's subscription with it

    async def publish(self, data: object, *, timeout: float | None = None) -> Position:
        """Publish ``data`` to this channel (see ``Client.publish``)."""
        return await self._client.publish(self.channel, data, timeout=timeout)

    async def history(
        self,
        *,
        limit: int = -1,
        since: Position | None = None,
        reverse: bool = False,
        timeout: float | None = None,
    ) -> HistoryPage:
        """This channel's history (see ``Client.history``)."""
        return await self._client.history(
            self.channel, limit=limit, since=since, reverse=reverse, timeout=timeout
        )

    async def presence(self, *, timeout: float | None = None) -> dict[str, ClientInfo]:
        return await self._client.presence(self.channel, timeout=timeout)

    async def presence_stats(self, *, timeout: float | None = None) -> PresenceStats:
        return await self._client.presence_stats(self.channel, timeout=timeout)

    # ----------------------------------------------------------------- iteration

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> PublicationEvent:
        """The next publication; stops once the subscription has ended."""
        while True:
            event = await self._next_event()
            if event is None or isinstance(event, UnsubscribedEvent):
                raise StopAsyncIteration
            if isinstance(event, PublicationEvent):
                return event

    async def events(self) -> AsyncIterator[SubscriptionEvent]:
        """Every event in order, up to and including the ``UnsubscribedEvent``."""
        while (event := await self._next_event()) is not None:
            yield event
            if isinstance(event, UnsubscribedEvent):
                return

    async def _next_event(self) -> SubscriptionEvent | None:
        while not self._buffer:
            if self.state is _State.UNSUBSCRIBED:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        self._overflowing = False
        return self._buffer.popleft()

    def _queue(self, event: SubscriptionEvent) -> None:
        if self._buffer_size <= 0:
            return
        if len(self._buffer) >= self._buffer_size:
            self._buffer.popleft()
            if not self._overflowing:  # once per overflow, not once per dropped event
                self._overflowing = True
                error = ClientError(
                    f"{self.channel!r}: iteration buffer full ({self._buffer_size}), "
                    "dropping the oldest events"
                )
                self._on_error.emit(ErrorEvent(self.channel, error))
        self._buffer.append(event)
        self._arrived.set()

    # ------------------------------------------------- driven by the client

    def _start(self, conn: Connection) -> None:
        """Send the subscribe command on ``conn`` (fetching a token first if needed)."""
        self._conn = conn
        if self._get_token is not None and not self._token:
            task = asyncio.get_running_loop().create_task(self._start_with_token(conn))
            self._client._keep(task)
            return
        request = SubscribeRequest(
            channel=self.channel,
            token=self._token,
            data=self._data,
            recoverable=self._recoverable,
            positioned=self._positioned,
            join_leave=self._join_leave,
        )
        if self._recover:
            request.recover = True
            request.offset = self._offset
            request.epoch = self._epoch
        self._attempt += 1
        attempt = self._attempt
        conn.request(
            Command(subscribe=request),
            lambda outcome: self._on_reply(conn, attempt, outcome),
            self._client.timeout,
        )

    async def _start_with_token(self, conn: Connection) -> None:
        assert self._get_token is not None
        attempt = self._attempt
        try:
            token = await self._get_token(self.channel)
        except Exception as exc:
            if self._still_starting(conn, attempt):
                self._schedule_retry(exc)
            return
        if self._still_starting(conn, attempt):
            self._token = token
            if not conn.is_closed:
                self._start(conn)

    def _still_starting(self, conn: Connection, attempt: int) -> bool:
        """Is the subscribe that asked for a token still wanted?

        get_token may take long: meanwhile the subscription may have ended (and even
        begun again) or moved to another connection, which started its own fetch.
        """
        return self.state is _State.SUBSCRIBING and self._conn is conn and self._attempt == attempt

    def _on_reply(self, conn: Connection, attempt: int, outcome: Reply | ClientError) -> None:
        if self.state is not _State.SUBSCRIBING or attempt != self._attempt:
            return  # an answer to a subscribe that no longer matters
        if isinstance(outcome, RequestTimeoutError):
            # The server may or may not hold the subscription; a new connection settles it.
            conn.close(local_close(LocalCode.SUBSCRIBE_TIMEOUT, reconnect=True, error=outcome))
        elif isinstance(outcome, ClientError):
            pass  # the connection ended: the client resubscribes on the next one
        elif outcome.error is not None:
            error = outcome.error
            self._refused(ReplyError(error.code, error.message, temporary=error.temporary))
        elif outcome.subscribe is not None:
            self._subscribed(conn, outcome.subscribe)

    def _refused(self, error: ReplyError) -> None:
        if refused(error, can_refresh=self._get_token is not None):
            self._end(_Trigger.ENDED, error.code, error.message, error)
            return
        if error.code == ErrorCode.TOKEN_EXPIRED:
            self._token = ""  # the retry asks get_token for a new one
        self._schedule_retry(error)

    def _schedule_retry(self, error: BaseException) -> None:
        self._machine.fire(_Trigger.INTERRUPTED, error=error)
        self._retry.failed(self._client.backoff, self._retry_now)

    def _retry_now(self) -> None:
        conn = self._client._ready_connection()
        if self.state is _State.SUBSCRIBING and conn is not None:
            self._start(conn)

    def _subscribed(self, conn: Connection, result: SubscribeResult) -> None:
        self._retry.reset()
        positioned = result.recoverable or result.positioned
        if positioned and result.epoch != self._epoch:
            self._offset = 0  # another stream: nothing of it was delivered yet
        self._recover = result.recoverable
        self._machine.fire(_Trigger.SUBSCRIBED)
        event = SubscribedEvent.of(self.channel, result)
        self._on_subscribed.emit(event)
        self._queue(event)
        # The reply's publications are deduplicated against where we were, not against
        # the result's offset: a Centrifuge server puts the stream's top there (the
        # offset of the last missed publication), hubbub the position they follow.
        for pub in result.publications:
            self._deliver(pub)  # moves the offset on
        if positioned:
            self._epoch = result.epoch
            self._offset = max(self._offset, result.offset)
        if result.expires:
            self._expires_in(conn, result.ttl)

    # ------------------------------------------------------------ token refresh

    def _expires_in(self, conn: Connection, ttl: int) -> None:
        """Refresh the subscription token before it runs out in ``ttl`` seconds."""
        if self._get_token is None:
            return  # the server unsubscribes it (2501) when it expires; we resubscribe then
        self._refresh.expires_in(ttl, lambda: self._start_refresh(conn))

    def _start_refresh(self, conn: Connection) -> None:
        if self.state is _State.SUBSCRIBED and self._conn is conn:
            task = asyncio.get_running_loop().create_task(self._refresh_token(conn))
            self._client._keep(task)

    async def _refresh_token(self, conn: Connection) -> None:
        """Send sub_refresh with a token from get_token (centrifuge-js does the same)."""
        assert self._get_token is not None
        attempt = self._attempt
        try:
            token = await self._get_token(self.channel)
            if not self._still_subscribed(conn, attempt):
                return
            self._token = token  # also what a resubscribe sends from now on
            request = SubRefreshRequest(channel=self.channel, token=token)
            reply = await conn.call(Command(sub_refresh=request), self._client.timeout)
        except ReplyError as exc:
            if not self._still_subscribed(conn, attempt):
                return
            if refused(exc):  # end it here and on the server
                self._end(_Trigger.ENDED, exc.code, exc.message, exc)
                await self._unsubscribe_on(conn)
            else:
                self._refresh_failed(conn, exc)
            return
        except Exception as exc:  # a timeout, get_token failing, or the connection gone
            if not connection_gone(exc) and self._still_subscribed(conn, attempt):
                self._refresh_failed(conn, exc)
            return
        if not self._still_subscribed(conn, attempt):
            return
        result = reply.sub_refresh
        if result is not None and result.expires:
            self._expires_in(conn, result.ttl)

    def _refresh_failed(self, conn: Connection, error: BaseException) -> None:
        """Tell the application, and try again after a delay that grows with each failure."""
        self._on_error.emit(ErrorEvent(self.channel, error))
        self._refresh.failed(self._client.backoff, lambda: self._start_refresh(conn))

    def _still_subscribed(self, conn: Connection, attempt: int) -> bool:
        """Is the subscription whose token is being refreshed still the current one?"""
        return self.state is _State.SUBSCRIBED and self._conn is conn and self._attempt == attempt

    # ----------------------------------------------------------------- delivery

    def _deliver(self, pub: Publication) -> None:
        if pub.offset:
            if self._recover and pub.offset <= self._offset:
                return  # delivered already (a recovery overlapping the live stream)
            self._offset = pub.offset
        event = PublicationEvent.of(self.channel, pub)
        self._on_publication.emit(event)
        self._queue(event)

    def _on_push(self, push: Push) -> None:
        if push.unsubscribe is not None:
            self._unsubscribed_by_server(push.unsubscribe.code, push.unsubscribe.reason)
            return
        if self.state is not _State.SUBSCRIBED:
            return
        if push.pub is not None:
            self._deliver(push.pub)
        elif push.join is not None:
            join = JoinEvent(self.channel, ClientInfo.of(push.join.info))
            self._on_join.emit(join)
            self._queue(join)
        elif push.leave is not None:
            leave = LeaveEvent(self.channel, ClientInfo.of(push.leave.info))
            self._on_leave.emit(leave)
            self._queue(leave)

    def _unsubscribed_by_server(self, code: int, reason: str) -> None:
        if self.state is _State.UNSUBSCRIBED:
            return
        if code < UnsubscribeCode.INSUFFICIENT_STATE:
            self._end(_Trigger.ENDED, code, reason, None)
            return
        if code == UnsubscribeCode.STATE_INVALIDATED:
            self._forget_position()
        elif code == UnsubscribeCode.EXPIRED and self._get_token is not None:
            self._token = ""  # the subscription token ran out: fetch a new one
        # >= 2500: subscribe again at once, recovering from where we are.
        self._machine.fire(_Trigger.INTERRUPTED, code=code, reason=reason)
        conn = self._client._ready_connection()
        if conn is not None:
            self._start(conn)

    def _forget_position(self) -> None:
        """The server says our state is stale: drop the position, and the token if
        ``get_token`` can fetch another (a static token is all we have)."""
        if self._get_token is not None:
            self._token = ""
        self._recover = False
        self._offset, self._epoch = 0, ""

    def _connection_lost(self) -> None:
        """The client lost its connection and will reconnect."""
        self._conn = None
        self._retry.cancel()
        if self.state is _State.SUBSCRIBED:
            self._machine.fire(
                _Trigger.INTERRUPTED,
                code=int(LocalCode.TRANSPORT_CLOSED),
                reason="transport closed",
            )

    def _client_ready(self, conn: Connection) -> None:
        """The client has a new ready connection: subscribe on it if we should."""
        if self.state is _State.SUBSCRIBING:
            self._retry.reset()
            self._start(conn)

    def _client_closed(self, error: ClientError) -> None:
        """The client closed or gave up: the subscription ends (it may subscribe again later)."""
        self._conn = None
        self._retry.cancel()
        if self.state is not _State.UNSUBSCRIBED:
            self._end(_Trigger.ENDED, error.code, str(error), error)

    # ------------------------------------------------------------------- helpers

    def _end(
        self, trigger: SubscriptionTrigger, code: int, reason: str, error: BaseException | None
    ) -> None:
        self._attempt += 1  # a subscribe still in flight no longer matters
        self._retry.cancel()
        self._conn = None
        self._error = error
        self._ended = (code, reason)
        self._machine.fire(trigger, code=code, reason=reason, error=error)
        event = UnsubscribedEvent(self.channel, code, reason)
        if error is not None and trigger is _Trigger.ENDED:
            self._on_error.emit(ErrorEvent(self.channel, error))
        self._on_unsubscribed.emit(event)
        self._queue(event)
        self._arrived.set()  # iteration ends, even without a buffer

    def _ended_error(self) -> BaseException:
        if self._error is not None:
            return self._error
        code, reason = self._ended
        if code == LocalCode.DISCONNECT_CALLED:
            return ClientClosedError(f"{self.channel!r}: unsubscribe() was called")
        return ClientError(f"{self.channel!r} unsubscribed: {code} {reason}", code=code)

    def _on_transition(self, event: SubscriptionStateChanged) -> None:
        if event.new is not _State.SUBSCRIBED:
            self._refresh.cancel()  # a token for a subscription we no longer hold
        super()._on_transition(event)
        if event.new is _State.UNSUBSCRIBED:
            self._arrived.set()
