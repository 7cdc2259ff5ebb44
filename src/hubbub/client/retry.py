"""Which failures are worth another attempt: one rule for connecting, subscribing and
refreshing either's token (PROTOCOL.md §8.1, §8.4; centrifuge-js does the same).

An error reply that is temporary, or internal (code < 100), is retried after a back-off;
an expired token (109) is retried with a fresh one when there is a ``get_token`` to ask;
any other error reply is a refusal for good, which ends what was asked for. A refresh
that timed out, or whose ``get_token`` failed, is asked again; one whose connection
ended needs nothing, since the next connect or subscribe sends the new token.
"""

from __future__ import annotations

from hubbub.errors import ClientError, ReplyError, RequestTimeoutError
from hubbub.protocol.codes import ErrorCode


def refused(exc: ReplyError, *, can_refresh: bool = True) -> bool:
    """Is this error reply a refusal for good (not worth asking again)?"""
    if exc.code == ErrorCode.TOKEN_EXPIRED:
        return not can_refresh
    return not (exc.temporary or exc.code < 100)


def connection_gone(exc: BaseException) -> bool:
    """Did a refresh fail because its connection ended (nothing to retry on it)?"""
    return isinstance(exc, ClientError) and not isinstance(exc, RequestTimeoutError)
