"""The codes are wire format: SDKs decide from them whether to reconnect."""

from __future__ import annotations

import pytest

from hubbub.errors import ReplyError
from hubbub.protocol import codes
from hubbub.protocol.codes import (
    ERROR_MESSAGES,
    TEMPORARY_ERRORS,
    UNSUBSCRIBE_REASONS,
    Disconnect,
    DisconnectCode,
    ErrorCode,
    UnsubscribeCode,
)

# From the public "client protocol codes" page (PROTOCOL.md §8.1).
DOCUMENTED_ERRORS = {
    100: "internal server error",
    101: "unauthorized",
    102: "unknown channel",
    103: "permission denied",
    104: "method not found",
    105: "already subscribed",
    106: "limit exceeded",
    107: "bad request",
    108: "not available",
    109: "token expired",
    110: "expired",
    111: "too many requests",
    112: "unrecoverable position",
}

# PROTOCOL.md §8.3.
DOCUMENTED_DISCONNECTS = {
    3000: "connection closed",
    3001: "shutdown",
    3004: "internal server error",
    3005: "connection expired",
    3006: "subscription expired",
    3008: "slow",
    3009: "write error",
    3010: "insufficient state",
    3011: "force reconnect",
    3012: "no pong",
    3013: "too many requests",
    3014: "state invalidated",
    3500: "invalid token",
    3501: "bad request",
    3502: "stale",
    3503: "force disconnect",
    3504: "connection limit",
    3505: "channel limit",
    3506: "inappropriate protocol",
    3507: "permission denied",
    3508: "not available",
    3509: "too many errors",
}


def test_error_codes_and_messages_are_the_documented_ones() -> None:
    """Every documented error code exists with its exact message, and no other."""
    assert {int(code): msg for code, msg in ERROR_MESSAGES.items()} == DOCUMENTED_ERRORS


def test_only_internal_and_rate_limit_errors_are_temporary() -> None:
    """100 and 111 are temporary: SDKs retry those and not the others."""
    assert {int(c) for c in TEMPORARY_ERRORS} == {100, 111}


def test_disconnect_codes_are_the_documented_ones() -> None:
    """The DisconnectCode enum holds exactly the documented codes."""
    assert {int(c) for c in DisconnectCode} == set(DOCUMENTED_DISCONNECTS)


def test_unsubscribe_codes_resubscribe_from_2500() -> None:
    """Unsubscribe codes: 2000 ends the subscription, 2500 and up ask to resubscribe."""
    assert {int(c): r for c, r in UNSUBSCRIBE_REASONS.items()} == {
        2000: "server unsubscribe",
        2500: "insufficient state",
        2501: "subscription expired",
        2502: "state invalidated",
    }
    assert all(c >= 2500 for c in UnsubscribeCode if c is not UnsubscribeCode.SERVER)


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (3001, True),
        (3499, True),
        (3500, False),
        (3999, False),
        (4000, True),
        (4499, True),
        (4500, False),
        (4999, False),
        (5000, True),
        (1009, False),
    ],
)
def test_disconnect_range_decides_reconnect(code: int, reconnect: bool) -> None:
    """3000-3499 and 4000-4499 reconnect; 3500-3999, 4500-4999 and 1009 are terminal."""
    assert Disconnect(code, "x").reconnect is reconnect


def test_shutdown_reconnects_and_bad_request_does_not() -> None:
    """The ready-made disconnects carry the codes SDKs expect."""
    assert (codes.SHUTDOWN.code, codes.SHUTDOWN.reconnect) == (3001, True)
    assert (codes.NO_PONG.code, codes.SLOW.code) == (3012, 3008)
    assert (codes.BAD_REQUEST.code, codes.BAD_REQUEST.reconnect) == (3501, False)


def test_reasons_fit_a_close_frame_and_are_not_json() -> None:
    """Reasons fit in 123 bytes and never parse as JSON (centrifuge-js tries that first)."""
    import json

    for value in vars(codes).values():
        if isinstance(value, Disconnect):
            assert len(value.reason.encode()) <= 123
            with pytest.raises(ValueError):
                json.loads(value.reason)


def test_reply_error_defaults_from_the_code() -> None:
    """A ReplyError built from a code takes the documented message and temporary flag."""
    err = ReplyError(ErrorCode.INTERNAL)
    assert (err.code, err.message, err.temporary) == (100, "internal server error", True)
    assert ReplyError(103).temporary is False
    assert ReplyError(4000, "custom").message == "custom"
