"""Unusable arguments to the chat are one plain line on stderr and exit status 2."""

from __future__ import annotations

import pytest

from hubbub.chat.app import EXIT_USAGE, run_chat


@pytest.mark.parametrize(
    ("url", "codec", "says"),
    [
        ("ws://127.0.0.1:1/connection/websocket", "xml", "hubbub chat: unknown codec 'xml'"),
        ("http://127.0.0.1:1/", "json", "hubbub chat: unsupported URL scheme 'http'"),
    ],
)
def test_a_bad_codec_or_url_is_one_plain_line(
    url: str, codec: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_chat(url, "chat:lobby", "alice", codec) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(says) and err.count("\n") == 1, err
