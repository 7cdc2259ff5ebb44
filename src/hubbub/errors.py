"""The exception hierarchy of hubbub.

    HubbubError
    ├── ProtocolError          the peer sent something the protocol forbids (remote)
    │                          carries the Disconnect to close the connection with
    ├── ReplyError             a command failed with a protocol error code (101, 103, ...)
    ├── EngineError            a broker or store could not do its job (temporary)
    ├── ConfigError            a configuration file or value is wrong
    └── ClientError            a call of the Python client (hubbub.client) did not complete;
        │                      carries ``code`` and ``temporary``, the cause in __cause__
        ├── ClientClosedError      the application closed the client: not a failure
        ├── ConnectionLostError    the connection ended before the reply came
        ├── RequestTimeoutError    no reply in time (also a TimeoutError)
        └── ClientBrokenError      every reconnect attempt failed; the client gave up

The client raises ``ReplyError`` for a command the server answered with an error, and
lets ``asyncio.CancelledError`` through untouched when the caller's task is cancelled.

Local errors (bugs in hubbub) are ordinary Python exceptions and are never raised on
purpose; a parser turns bad input into a ``ProtocolError``, never anything else.
"""

from __future__ import annotations

from hubbub.protocol.codes import (
    BAD_REQUEST,
    ERROR_MESSAGES,
    TEMPORARY_ERRORS,
    Disconnect,
    ErrorCode,
)


class HubbubError(Exception):
    """Base of every error hubbub raises on purpose."""


class ProtocolError(HubbubError):
    """The remote peer broke the protocol; the connection closes with ``disconnect``."""

    def __init__(self, message: str, disconnect: Disconnect = BAD_REQUEST) -> None:
        super().__init__(message)
        self.disconnect = disconnect


class ReplyError(HubbubError):
    """A command is answered with ``Reply.error``: a code, a message, a temporary flag."""

    def __init__(
        self, code: int, message: str | None = None, *, temporary: bool | None = None
    ) -> None:
        if message is None:
            message = (
                ERROR_MESSAGES.get(ErrorCode(code), "error")
                if code in ErrorCode._value2member_map_
                else "error"
            )
        if temporary is None:
            temporary = code in TEMPORARY_ERRORS
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.temporary = temporary


class EngineError(HubbubError):
    """A broker, presence or history engine failed; callers answer 100 temporary."""


class ConfigError(HubbubError):
    """A configuration is invalid; the message names the file, the key and the expectation."""


# ------------------------------------------------------------------ the client's errors


class ClientError(HubbubError):
    """A call of the Python client did not complete.

    ``code`` is the protocol code behind it: a disconnect code from the server (3000+),
    or one of the client's own codes (below 100, see ``hubbub.client.LocalCode``).
    ``temporary`` says whether the same call may succeed later, so an application can
    decide to retry without knowing every code.
    """

    def __init__(self, message: str, *, code: int = 0, temporary: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary


class ClientClosedError(ClientError):
    """The client is closed: ``disconnect()`` was called, or ``connect()`` never was.

    The application's own doing, never a failure: code 0, not temporary.
    """


class ConnectionLostError(ClientError):
    """The connection ended before the reply came.

    ``code`` and ``reason`` are the server's disconnect code and reason, or the client's
    own (1 transport closed, 2 no ping, ...); ``temporary`` is True when the client is
    reconnecting, so the call can be repeated once it is ready again.
    """

    def __init__(self, reason: str, *, code: int, temporary: bool) -> None:
        super().__init__(f"connection lost: {code} {reason}", code=code, temporary=temporary)
        self.reason = reason


class RequestTimeoutError(ClientError, TimeoutError):
    """No reply within the request timeout; the server may still have done the work.

    Also a ``TimeoutError``, so code written for ``asyncio.timeout`` catches it.
    """

    def __init__(self, message: str, *, code: int = 0) -> None:
        super().__init__(message, code=code, temporary=True)


class ClientBrokenError(ClientError):
    """The client gave up reconnecting after ``max_retries`` failed attempts in a row.

    ``__cause__`` is the failure of the last attempt. Temporary: the server may come
    back, and ``connect()`` starts over.
    """
