"""Which failures are retried: one rule for connect, subscribe and token refreshes."""

from __future__ import annotations

import pytest

from hubbub.client.retry import connection_gone, refused
from hubbub.errors import ConnectionLostError, ReplyError, RequestTimeoutError


@pytest.mark.parametrize(
    ("error", "for_good"),
    [
        (ReplyError(100, temporary=True), False),  # temporary: ask again
        (ReplyError(50), False),  # below 100: the server's own trouble
        (ReplyError(109), False),  # token expired: get another one
        (ReplyError(103), True),  # permission denied
        (ReplyError(107), True),  # bad request
    ],
)
def test_which_error_replies_are_refusals_for_good(error: ReplyError, for_good: bool) -> None:
    assert refused(error) is for_good


def test_an_expired_token_is_a_refusal_only_without_a_way_to_refresh_it() -> None:
    assert not refused(ReplyError(109), can_refresh=True)
    assert refused(ReplyError(109), can_refresh=False)


@pytest.mark.parametrize(
    ("error", "gone"),
    [
        (ConnectionLostError("transport closed", code=1, temporary=True), True),
        (RequestTimeoutError("no reply"), False),  # the connection may well be alive
        (ValueError("get_token failed"), False),
    ],
)
def test_which_failures_mean_the_connection_is_gone(error: BaseException, gone: bool) -> None:
    assert connection_gone(error) is gone
