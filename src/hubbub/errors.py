"""The exception hierarchy of hubbub.

    HubbubError
    ├── ProtocolError          the peer sent something the protocol forbids (remote)
    │                          carries the Disconnect to close the connection with
    ├── ReplyError             a command failed with a protocol error code (101, 103, ...)
    ├── EngineError            a broker or store could not do its job (temporary)
    └── ConfigError            a configuration file or value is wrong

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
