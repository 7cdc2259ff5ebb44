"""What each command does: permission checks, engine calls, the reply.

One method per command; each returns its result (None for ``send``) or raises
``ReplyError`` for an error reply and ``ProtocolError`` for a disconnect.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from hubbub.config import ChannelOptions
from hubbub.core.channels import allowed_users, is_valid_name
from hubbub.core.fanout import fits
from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny
from hubbub.core.session import Session, Subscription
from hubbub.engines.base import HistoryOptions
from hubbub.errors import EngineError, ProtocolError, ReplyError
from hubbub.protocol import codes
from hubbub.protocol.codes import Disconnect, ErrorCode, UnsubscribeCode
from hubbub.protocol.messages import (
    ConnectRequest,
    ConnectResult,
    HistoryRequest,
    HistoryResult,
    PingRequest,
    PingResult,
    PresenceRequest,
    PresenceResult,
    PresenceStatsRequest,
    PresenceStatsResult,
    Publication,
    PublishRequest,
    PublishResult,
    Push,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    RPCResult,
    SendRequest,
    StreamPosition,
    SubRefreshRequest,
    SubRefreshResult,
    Subscribe,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeRequest,
    UnsubscribeResult,
    raw,
)
from hubbub.protocol.recovery import REJECT_UNRECOVERED_FLAG, recover

_log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from hubbub.core.node import Node

SERVER_VERSION = "hubbub 0.1.0"


def _deny(decision: Deny) -> ReplyError:
    return ReplyError(decision.code, decision.text(), temporary=decision.temporary)


def _check_payloads(session: Session, pubs: list[Publication]) -> None:
    """A JSON client cannot be sent binary payloads: Centrifuge closes it with 3506."""
    if not all(fits(session.codec, pub) for pub in pubs):
        raise ProtocolError("binary payload for a JSON client", codes.INAPPROPRIATE_PROTOCOL)


def _unsubscribed_meanwhile(code: int) -> ReplyError:
    """The answer to a subscribe that a server unsubscribe overtook. The Unsubscribe push
    went first; SDKs end the subscription on a code below 2500, and for 2500 and above
    wait for this reply, which must then make them subscribe again."""
    if code >= UnsubscribeCode.INSUFFICIENT_STATE:
        return ReplyError(ErrorCode.INTERNAL, "unsubscribed while subscribing", temporary=True)
    return ReplyError(ErrorCode.PERMISSION_DENIED, "unsubscribed by the server")


def _ttl(expire_at: float) -> tuple[bool, int]:
    """(expires, ttl seconds) for the result of a connect, subscribe or refresh."""
    if not expire_at:
        return False, 0
    remaining = expire_at - time.time()
    if remaining <= 0:
        raise ReplyError(ErrorCode.TOKEN_EXPIRED)
    return True, max(1, math.ceil(remaining))


def history_options(options: ChannelOptions) -> HistoryOptions | None:
    if options.history_size > 0 and options.history_ttl > 0:
        return HistoryOptions(size=options.history_size, ttl=options.history_ttl)
    return None


class Handlers:
    """The command handlers of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # method name -> coroutine function; its result is the reply's field of that name
        # (None: no reply). The session looks the method up and awaits it directly.
        self.table: dict[str, Callable[[Session, Any], Awaitable[Any]]] = {
            "connect": self.connect,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "publish": self.publish,
            "presence": self.presence,
            "presence_stats": self.presence_stats,
            "history": self.history,
            "rpc": self.rpc,
            "send": self.send,
            "refresh": self.refresh,
            "sub_refresh": self.sub_refresh,
            "ping": self.ping,
        }

    def context(self, session: Session) -> ClientContext:
        """The hooks' view of ``session``, built once per user (the user is set at connect)."""
        ctx = session.context
        if ctx is None or ctx.user != session.user:
            conn = session.connection
            ctx = ClientContext(session.client_id, session.user, conn.transport_name, conn.remote)
            session.context = ctx
        return ctx

    def options(self, channel: str) -> ChannelOptions:
        """A channel's options; an empty name is a protocol error (3501), a malformed one
        or an unknown namespace an error reply (107, 102)."""
        if not channel:
            raise ProtocolError("empty channel")
        if not is_valid_name(channel):
            raise ReplyError(ErrorCode.BAD_REQUEST)
        options = self.node.settings.channels.options_for(channel)
        if options is None:
            raise ReplyError(ErrorCode.UNKNOWN_CHANNEL)
        return options

    # -------------------------------------------------------------------- connect

    async def connect(self, session: Session, req: ConnectRequest) -> ConnectResult:
        node = self.node
        hook = node.hooks.on_connecting
        credentials: Credentials
        if hook is not None:
            decision = await hook(self.context(session), req)
            if isinstance(decision, Disconnect):
                raise ProtocolError("connect refused", decision)
            if isinstance(decision, Deny):
                raise _deny(decision)
            credentials = decision
        elif node.settings.client.allow_anonymous:
            credentials = Credentials()
        else:
            raise ReplyError(ErrorCode.UNAUTHORIZED)
        session.user = credentials.user
        session.conn_info = credentials.info
        expires, ttl = _ttl(credentials.expire_at)
        session.expire_at = credentials.expire_at
        ping = node.settings.client.ping_interval
        result = ConnectResult(
            client=session.client_id,
            version=SERVER_VERSION,
            data=raw(credentials.data),
            # The protocol announces whole seconds; sub-second intervals (tests) round up.
            ping=max(1, round(ping)),
            pong=True,
            expires=expires,
            ttl=ttl,
        )
        if req.subs or credentials.channels:
            result.subs = await self._server_side_subs(session, req, credentials.channels)
        return result

    async def _server_side_subs(
        self, session: Session, req: ConnectRequest, channels: tuple[str, ...]
    ) -> dict[str, SubscribeResult]:
        results: dict[str, SubscribeResult] = {}
        try:
            for channel in channels:
                # A channel the application granted but no client could have (empty,
                # malformed, an unknown namespace) is left out; the connection is not.
                if not channel:
                    _log.warning("server-side channel skipped", channel=channel, error="empty")
                    continue
                sub_req = req.subs.get(channel, SubscribeRequest(channel=channel))
                sub_req.channel = channel
                try:
                    options = self.options(channel)
                    results[channel] = await self._establish(
                        session, channel, sub_req, options, b"", server_side=True
                    )
                except ReplyError as exc:
                    _log.warning("server-side channel skipped", channel=channel, error=exc.message)
                    continue
        except BaseException:  # the connect fails: the channels set up so far go too
            await asyncio.shield(self._release_all(session, list(results)))
            raise
        # One unsubscribed meanwhile (Node.unsubscribe, a gap) is not in the reply.
        return {channel: r for channel, r in results.items() if channel in session.subscriptions}

    async def _release_all(self, session: Session, channels: list[str]) -> None:
        for channel in channels:
            await self.node.remove_subscriber(session, channel)

    async def server_subscribe(
        self, session: Session, channel: str, options: ChannelOptions, data: bytes
    ) -> None:
        """Subscribe ``session`` from the server side after connect: a Subscribe push with
        the position, then what was published meanwhile. Runs in the session's turn, so
        the session is connected (a closing one cancels it)."""
        if channel in session.subscriptions:
            return  # subscribed already, by itself or by the server
        try:
            result = await self._establish(
                session, channel, SubscribeRequest(channel=channel), options, b"", server_side=True
            )
        except EngineError as exc:
            _log.warning("server-side subscribe failed", channel=channel, error=str(exc))
            return
        except ReplyError:
            return  # unsubscribed meanwhile (Node.unsubscribe, a gap): no Subscribe push
        added = Subscribe(
            recoverable=result.recoverable,
            epoch=result.epoch,
            offset=result.offset,
            positioned=result.positioned,
            data=raw(data),
        )
        session.push(session.codec.encode(Reply(push=Push(channel=channel, subscribe=added))))
        self.node.release_pending(session, channel, result)

    # ------------------------------------------------------------------ subscribe

    async def subscribe(self, session: Session, req: SubscribeRequest) -> SubscribeResult:
        channel = req.channel
        options = self.options(channel)
        if channel in session.subscriptions:
            raise ReplyError(ErrorCode.ALREADY_SUBSCRIBED)
        if len(session.subscriptions) >= self.node.settings.client.max_channels_per_client:
            raise ReplyError(ErrorCode.LIMIT_EXCEEDED)
        if req.type != 0:
            raise ReplyError(ErrorCode.NOT_AVAILABLE)
        users = allowed_users(channel)
        if users is not None and session.user not in users:
            raise ReplyError(ErrorCode.PERMISSION_DENIED)
        hook = self.node.hooks.on_subscribe
        if hook is not None:
            decision = await hook(self.context(session), channel, req)
            if isinstance(decision, Deny):
                raise _deny(decision)
        elif options.allow_subscribe or users is not None:
            decision = Allow()
        else:
            raise ReplyError(ErrorCode.PERMISSION_DENIED)
        expires, ttl = _ttl(decision.expire_at)
        if channel in session.subscriptions:  # a concurrent subscribe won the race
            raise ReplyError(ErrorCode.ALREADY_SUBSCRIBED)
        result = await self._establish(session, channel, req, options, decision.info)
        session.subscriptions[channel].expire_at = decision.expire_at
        result.data = raw(decision.data)
        result.expires, result.ttl = expires, ttl
        return result

    async def _establish(
        self,
        session: Session,
        channel: str,
        req: SubscribeRequest,
        options: ChannelOptions,
        chan_info: bytes,
        *,
        server_side: bool = False,
    ) -> SubscribeResult:
        """Join the hub, then read the stream position: nothing published in between is lost."""
        node = self.node
        history = history_options(options)
        # A client may ask for positioning or recovery; history in the namespace allows it.
        recoverable = history is not None and (options.recover or req.recoverable or req.recover)
        positioned = history is not None and (recoverable or req.positioned)
        sub = Subscription(
            channel=channel,
            join_leave=options.join_leave,
            chan_info=chan_info,
            server_side=server_side,
            establishing=True,
        )
        session.subscriptions[channel] = sub
        present = joined = False
        try:
            await node.add_subscriber(session, sub)
            result = SubscribeResult(was_recovering=req.recover)
            if positioned:
                await self._position(session, channel, req, result, recoverable=recoverable)
            if options.presence and not sub.ended_by:
                info = session.client_info(chan_info)
                present = True  # from here a release removes the entry (an add may land)
                await node.presence.add(
                    channel, session.client_id, info, node.settings.client.presence_ttl
                )
                if options.join_leave and not sub.ended_by:
                    joined = True
                    await node.broker.publish_join(channel, info)
        except BaseException:  # engine failures become 100 temporary in the session
            # Shielded: a second cancel (close, then the socket's loss) must not cut it.
            await asyncio.shield(node.abandon(session, sub, present=present, joined=joined))
            raise
        if sub.ended_by or session.closed or session.subscriptions.get(channel) is not sub:
            # The server unsubscribed it meanwhile (and pushed so), or closed the session
            # from inside this very command (a hook disconnecting the client): undo.
            await asyncio.shield(node.abandon(session, sub, present=present, joined=joined))
            raise _unsubscribed_meanwhile(sub.ended_by)
        sub.establishing = False
        return result

    async def _position(
        self,
        session: Session,
        channel: str,
        req: SubscribeRequest,
        result: SubscribeResult,
        *,
        recoverable: bool,
    ) -> None:
        """Fill in the stream position, and the missed publications when recovering."""
        node = self.node
        limits = node.settings.client
        result.recoverable = recoverable
        result.positioned = True
        if not (req.recover and recoverable):
            _, top = await node.broker.history(channel, since=None, limit=0, reverse=False)
            result.epoch, result.offset = top.epoch, top.offset
            return
        missed, top = await node.broker.history(
            channel,
            since=StreamPosition(offset=req.offset),
            limit=limits.recovery_max_limit + 1,
            reverse=False,
        )
        outcome = recover(
            client=StreamPosition(offset=req.offset, epoch=req.epoch),
            top=top,
            missed=missed,
            max_publications=limits.recovery_max_limit,
        )
        if not outcome.recovered and req.flag & REJECT_UNRECOVERED_FLAG:
            raise ReplyError(ErrorCode.UNRECOVERABLE_POSITION)
        result.epoch = top.epoch
        result.offset = outcome.offset
        result.recovered = outcome.recovered
        result.publications = outcome.publications
        _check_payloads(session, outcome.publications)

    async def unsubscribe(self, session: Session, req: UnsubscribeRequest) -> UnsubscribeResult:
        if not req.channel:
            raise ProtocolError("empty channel")
        if req.channel in session.subscriptions:
            await self.node.remove_subscriber(session, req.channel)
        return UnsubscribeResult()

    # -------------------------------------------------------------------- publish

    async def publish(self, session: Session, req: PublishRequest) -> PublishResult:
        channel = req.channel
        options = self.options(channel)
        hook = self.node.hooks.on_publish
        if hook is not None:
            decision = await hook(self.context(session), channel, req)
            if isinstance(decision, Deny):
                raise _deny(decision)
        elif not options.allow_publish:
            raise ReplyError(ErrorCode.PERMISSION_DENIED)
        info = session.client_info(
            session.subscriptions[channel].chan_info if channel in session.subscriptions else b""
        )
        position = await self.node.publish(channel, bytes(req.data), info=info, options=options)
        return PublishResult(offset=position.offset, epoch=position.epoch)

    # ---------------------------------------------------------- presence, history

    def _check_read(self, session: Session, channel: str, allowed: bool, enabled: bool) -> None:
        if not enabled:
            raise ReplyError(ErrorCode.NOT_AVAILABLE)
        if not allowed and channel not in session.subscriptions:
            raise ReplyError(ErrorCode.PERMISSION_DENIED)

    async def presence(self, session: Session, req: PresenceRequest) -> PresenceResult:
        options = self.options(req.channel)
        self._check_read(session, req.channel, options.allow_presence, options.presence)
        clients = await self.node.presence.presence(req.channel)
        return PresenceResult(presence=clients)

    async def presence_stats(
        self, session: Session, req: PresenceStatsRequest
    ) -> PresenceStatsResult:
        options = self.options(req.channel)
        self._check_read(session, req.channel, options.allow_presence, options.presence)
        num_clients, num_users = await self.node.presence.stats(req.channel)
        return PresenceStatsResult(num_clients=num_clients, num_users=num_users)

    async def history(self, session: Session, req: HistoryRequest) -> HistoryResult:
        options = self.options(req.channel)
        self._check_read(
            session, req.channel, options.allow_history, history_options(options) is not None
        )
        cap = self.node.settings.client.history_max_limit
        limit = cap if req.limit < 0 or req.limit > cap else req.limit
        since = req.since
        if since is not None and req.reverse and since.offset == 0:
            raise ReplyError(ErrorCode.BAD_REQUEST)
        pubs, top = await self.node.broker.history(
            req.channel, since=since, limit=limit, reverse=req.reverse
        )
        if since is not None and since.epoch and since.epoch != top.epoch:
            raise ReplyError(ErrorCode.UNRECOVERABLE_POSITION)
        _check_payloads(session, pubs)
        return HistoryResult(publications=pubs, epoch=top.epoch, offset=top.offset)

    # ------------------------------------------------------------ rpc, send, misc

    async def rpc(self, session: Session, req: RPCRequest) -> RPCResult:
        hooks = self.node.hooks
        handler = hooks.rpc.get(req.method)
        if handler is not None:
            answer = await handler(self.context(session), bytes(req.data))
        elif hooks.on_rpc is not None:
            answer = await hooks.on_rpc(self.context(session), req.method, bytes(req.data))
        else:
            raise ReplyError(ErrorCode.METHOD_NOT_FOUND)
        if isinstance(answer, Deny):
            raise _deny(answer)
        return RPCResult(data=raw(answer))

    async def send(self, session: Session, req: SendRequest) -> None:
        hook = self.node.hooks.on_send
        if hook is None:
            raise ProtocolError("send without a handler", codes.NOT_AVAILABLE)
        await hook(self.context(session), bytes(req.data))
        return None

    async def refresh(self, session: Session, req: RefreshRequest) -> RefreshResult:
        hook = self.node.hooks.on_refresh
        if not session.expire_at or hook is None:
            # Only expiring connections refresh; Centrifuge closes others with 3501.
            raise ProtocolError("refresh on a connection that does not expire")
        if not req.token:
            raise ProtocolError("refresh without a token")
        decision = await hook(self.context(session), req)
        if isinstance(decision, Disconnect):
            raise ProtocolError("refresh refused", decision)
        if isinstance(decision, Deny):
            raise _deny(decision)
        expires, ttl = _ttl(decision.expire_at)
        session.expire_at = decision.expire_at
        return RefreshResult(
            client=session.client_id, version=SERVER_VERSION, expires=expires, ttl=ttl
        )

    async def sub_refresh(self, session: Session, req: SubRefreshRequest) -> SubRefreshResult:
        if not req.channel:
            raise ProtocolError("empty channel")
        sub = session.subscriptions.get(req.channel)
        if sub is None:
            raise ReplyError(ErrorCode.PERMISSION_DENIED)
        hook = self.node.hooks.on_sub_refresh
        if hook is None or not sub.expire_at:
            raise ReplyError(ErrorCode.NOT_AVAILABLE)
        if not req.token:
            raise ReplyError(ErrorCode.BAD_REQUEST)
        decision = await hook(self.context(session), req.channel, req)
        if session.subscriptions.get(req.channel) is not sub:
            raise ReplyError(ErrorCode.PERMISSION_DENIED)  # it ended while the hook ran
        if isinstance(decision, Deny):
            raise _deny(decision)
        expires, ttl = _ttl(decision.expire_at)
        sub.expire_at = decision.expire_at
        return SubRefreshResult(expires=expires, ttl=ttl)

    async def ping(self, session: Session, req: PingRequest) -> PingResult:
        """Answered, unlike Centrifuge (which closes 3501): harmless and handy for probes."""
        return PingResult()
