"""One live connection of a client: commands out, replies matched, silence watched.

A ``Connection`` lives exactly as long as its transport. It gives each command an id,
matches the reply to it (Centrifuge protocol v2: a reply with id > 0 answers the
command with that id; id 0 carries a push), answers pings through the sans-I/O core
and closes itself when the server stays silent for longer than the ping interval plus
the allowed delay. When it ends — whoever ends it — every request still waiting gets a
``ClientError`` and ``closed`` resolves to a ``Closed`` saying why and whether the
client should come back.

Replies are handed to their callbacks synchronously, in the order they arrived, so a
subscribe result is applied before any publication that follows it in the stream.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from hubbub.client.protocol import FATAL_REFUSALS, ClientProtocol
from hubbub.client.state import LOCAL_REASONS, LocalCode
from hubbub.client.transport import TCP_SCHEMES, ClientTransport, CloseFrame, open_transport
from hubbub.codecs.base import Codec
from hubbub.errors import (
    ClientClosedError,
    ClientError,
    ConnectionLostError,
    ReplyError,
    RequestTimeoutError,
)
from hubbub.protocol.codes import Disconnect
from hubbub.protocol.messages import Command, Push, Reply

_log = logging.getLogger(__name__)
_A = TypeVar("_A")

ReplyCallback = Callable[[Reply | ClientError], None]
"""Gets the reply to a command, or the error that ended the wait for it."""


@dataclass(frozen=True, slots=True)
class Closed:
    """How a connection ended."""

    code: int
    reason: str
    reconnect: bool
    """False for a terminal code (3500-3999, 4500-4999) or when the client closed it."""
    error: BaseException | None = None
    """The exception behind the end (a socket error, malformed data), if any."""
    by_client: bool = False
    """The application ended it with ``disconnect()``."""

    def lost_error(self) -> ClientError:
        """The error for a request that was waiting when the connection ended."""
        exc: ClientError
        if self.by_client:
            exc = ClientClosedError("disconnect() was called", code=self.code)
        else:
            exc = ConnectionLostError(self.reason, code=self.code, temporary=self.reconnect)
        exc.__cause__ = self.error
        return exc


def local_close(code: LocalCode, *, reconnect: bool, error: BaseException | None = None) -> Closed:
    """A ``Closed`` for one of the client's own reasons."""
    return Closed(
        int(code), LOCAL_REASONS[code], reconnect, error, code is LocalCode.DISCONNECT_CALLED
    )


@dataclass(slots=True)
class _Pending:
    callback: ReplyCallback
    timer: asyncio.TimerHandle | None


class Connection:
    """Commands and replies over one transport, until it closes."""

    def __init__(self, codec: Codec, on_push: Callable[[Push], None], *, stream: bool) -> None:
        self.codec = codec
        self._on_push = on_push
        self._protocol = ClientProtocol(codec, stream=stream)
        self._transport: ClientTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, _Pending] = {}
        self._last_id = 0
        self._flush_handle: asyncio.Handle | None = None
        self._last_seen = self._loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        self._end: Closed | None = None
        self.closed: asyncio.Future[Closed] = self._loop.create_future()

    @classmethod
    async def open(
        cls,
        url: str,
        codec: Codec,
        on_push: Callable[[Push], None],
        *,
        headers: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> Connection:
        """Open the transport to ``url``; the caller bounds the time it takes."""
        conn = cls(codec, on_push, stream=urlsplit(url).scheme in TCP_SCHEMES)
        conn._transport = await open_transport(
            url, codec, conn, headers=headers, ssl=ssl, max_message_bytes=max_message_bytes
        )
        if conn._end is not None:  # lost during the handshake
            raise conn._end.lost_error()
        conn._flush()  # the TCP preamble
        return conn

    @property
    def is_closed(self) -> bool:
        return self._end is not None

    @property
    def pending(self) -> int:
        """Requests waiting for their reply."""
        return len(self._pending)

    # ------------------------------------------------------------------- commands

    def request(self, command: Command, callback: ReplyCallback, timeout: float | None) -> int:
        """Send ``command`` with a fresh id; ``callback`` gets the reply or the error."""
        if self._end is not None:
            callback(self._end.lost_error())
            return 0
        self._last_id += 1
        command.id = self._last_id
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, self._expire, command.id, timeout)
        self._pending[command.id] = _Pending(callback, timer)
        self._send(command)
        return command.id

    async def call(self, command: Command, timeout: float | None) -> Reply:
        """Send ``command`` and wait for its reply.

        Raises:
            ReplyError: the server answered with an error.
            RequestTimeoutError: no reply within ``timeout`` seconds.
            ConnectionLostError, ClientClosedError: the connection ended first.
        """
        future: asyncio.Future[Reply] = self._loop.create_future()

        def settle(outcome: Reply | ClientError) -> None:
            if future.done():
                return
            if isinstance(outcome, ClientError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        cid = self.request(command, settle, timeout)
        try:
            reply = await future
        finally:
            self.forget(cid)  # the caller was cancelled: a late reply goes nowhere
        if reply.error is not None:
            error = reply.error
            raise ReplyError(error.code, error.message, temporary=error.temporary)
        return reply

    def send(self, command: Command) -> None:
        """Send a command that gets no reply (``send``, which has no id)."""
        if self._end is not None:
            raise self._end.lost_error()
        self._send(command)

    def forget(self, cid: int) -> None:
        """Stop waiting for the reply to ``cid``."""
        pending = self._pending.pop(cid, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()

    def _send(self, command: Command) -> None:
        self._protocol.send(command)
        if self._flush_handle is None:
            # Commands issued in one loop turn share a frame.
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self._transport is None or self._end is not None:
            return
        for data in self._protocol.data_to_send():
            try:
                self._transport.write(data)
            except Exception as exc:  # the socket is gone; connection_lost follows
                self.close(local_close(LocalCode.TRANSPORT_CLOSED, reconnect=True, error=exc))
                return

    def _expire(self, cid: int, timeout: float) -> None:
        pending = self._pending.pop(cid, None)
        if pending is not None:
            pending.callback(
                RequestTimeoutError(
                    f"no reply within {timeout:g} s", code=int(LocalCode.REQUEST_TIMEOUT)
                )
            )

    # ------------------------------------------------------------------ heartbeat

    def start_heartbeat(self, ping_interval: float, max_delay: float, *, pong: bool) -> None:
        """Answer pings when asked to; close when silent for ``ping_interval + max_delay``."""
        self._protocol.answer_pings = pong
        if ping_interval <= 0 or self._end is not None:
            return  # the server announced no pings: nothing to watch
        limit = ping_interval + max_delay
        self._last_seen = self._loop.time()
        self._watchdog = self._loop.call_later(limit, self._check_silence, limit)

    def _check_silence(self, limit: float) -> None:
        silent = self._loop.time() - self._last_seen
        if silent >= limit:
            _log.info("server silent for %.3f s, reconnecting", silent)
            self.close(local_close(LocalCode.NO_PING, reconnect=True))
        else:
            self._watchdog = self._loop.call_later(limit - silent, self._check_silence, limit)

    # ---------------------------------------------------------- transport events

    def data_received(self, data: bytes) -> None:
        self._last_seen = self._loop.time()
        self._protocol.receive_data(data)
        self._dispatch()

    def eof_received(self) -> None:
        self._protocol.receive_eof()
        self._dispatch()

    def connection_lost(self, close: CloseFrame | None, exc: BaseException | None) -> None:
        if close is not None and close.code:
            disconnect = Disconnect(close.code, close.reason)
            end = Closed(close.code, close.reason, disconnect.reconnect, exc)
        else:
            end = local_close(LocalCode.TRANSPORT_CLOSED, reconnect=True, error=exc)
        self._finish(end)

    def _dispatch(self) -> None:
        for reply in self._protocol.events_received():
            if self._end is not None:
                break
            if reply.id:
                pending = self._pending.pop(reply.id, None)
                if pending is not None:  # else: an answer nobody waits for any more
                    if pending.timer is not None:
                        pending.timer.cancel()
                    _guard(pending.callback, reply)
            elif reply.push is not None:
                self._on_push_reply(reply.push)
        error = self._protocol.error
        refusal = self._protocol.refusal
        if refusal is not None and self._end is None:
            reconnect = refusal not in FATAL_REFUSALS
            code = int(LocalCode.TRANSPORT_CLOSED if reconnect else LocalCode.BAD_PROTOCOL)
            self.close(Closed(code, f"refused: {refusal}", reconnect, error))
        elif error is not None and self._end is None:
            _log.warning("malformed data from the server: %s", error)
            self.close(local_close(LocalCode.BAD_PROTOCOL, reconnect=False, error=error))
        elif self._end is None:
            self._flush()  # pongs

    def _on_push_reply(self, push: Push) -> None:
        if push.disconnect is not None:
            # Transports without close frames (TCP) say goodbye with a Disconnect push.
            code, reason = push.disconnect.code, push.disconnect.reason
            self.close(Closed(code, reason, Disconnect(code, reason).reconnect))
            return
        _guard(self._on_push, push)

    # -------------------------------------------------------------------- closing

    def close(self, end: Closed) -> None:
        """End the connection for ``end``'s reason; waiting requests fail now."""
        if self._end is not None:
            return
        self._finish(end)
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the transport without a goodbye (used when an attempt is abandoned)."""
        self._finish(local_close(LocalCode.TRANSPORT_CLOSED, reconnect=True))
        if self._transport is not None:
            self._transport.abort()

    def _finish(self, end: Closed) -> None:
        if self._end is not None:
            return
        self._end = end
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if entry.timer is not None:
                entry.timer.cancel()
            _guard(entry.callback, end.lost_error())
        if not self.closed.done():
            self.closed.set_result(end)


def _guard(callback: Callable[[_A], None], arg: _A) -> None:
    """Call ``callback``; a bug in it must not take the connection down."""
    try:
        callback(arg)
    except Exception:
        _log.exception("reply handler failed")
