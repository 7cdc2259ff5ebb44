"""A URL no attempt could open is refused when the Client is made, not retried for good."""

from __future__ import annotations

import pytest

from hubbub.client import Client


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8000/connection/websocket", "unsupported URL scheme"),
        ("tcp://127.0.0.1", "needs a host and a port"),
        ("tcp://127.0.0.1:port", "not a port number"),
        ("ws://:8000/connection/websocket", "no host"),
    ],
)
def test_a_url_that_cannot_work_is_a_value_error_at_once(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Client(url)


@pytest.mark.parametrize(
    "url", ["ws://localhost/connection/websocket", "wss://example.org", "tcp://127.0.0.1:8002"]
)
def test_urls_that_can_work_are_taken(url: str) -> None:
    assert Client(url).url == url
