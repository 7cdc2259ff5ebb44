"""What a failed token refresh means, for a connection's token and a subscription's alike.

The rules are centrifuge-js's: a temporary error, an internal one (code < 100), an
expired token (109), a timeout or a failing ``get_token`` is asked again after a
back-off; any other error reply is a refusal for good, which ends what the token was
for; a connection that ended meanwhile needs nothing, since the next connect or
subscribe sends the new token.
"""

from __future__ import annotations

from hubbub.errors import ClientError, ReplyError, RequestTimeoutError
from hubbub.protocol.codes import ErrorCode


def refused(exc: ReplyError) -> bool:
    """Is this error reply to a refresh a refusal for good (not worth asking again)?"""
    return not (exc.temporary or exc.code < 100 or exc.code == ErrorCode.TOKEN_EXPIRED)


def connection_gone(exc: BaseException) -> bool:
    """Did the refresh fail because its connection ended (nothing to retry on it)?"""
    return isinstance(exc, ClientError) and not isinstance(exc, RequestTimeoutError)
