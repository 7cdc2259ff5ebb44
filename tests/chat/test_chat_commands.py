"""What a typed line asks the chat for (``hubbub.chat.commands``)."""

from __future__ import annotations

import pytest

from hubbub.chat.commands import (
    DEFAULT_HISTORY,
    History,
    Join,
    Problem,
    Quit,
    Say,
    Who,
    parse,
)


def test_plain_text_is_a_message() -> None:
    """A line without a leading slash is sent as it is, without surrounding blanks."""
    assert parse("  hello there  ") == Say("hello there")


def test_blank_line_is_nothing() -> None:
    """An empty or blank line asks for nothing."""
    assert parse("") is None
    assert parse("   ") is None


def test_double_slash_sends_a_slash() -> None:
    """``//`` escapes a message that starts with a slash."""
    assert parse("//shrug") == Say("/shrug")


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("/who", Who()),
        ("/WHO", Who()),
        ("/quit", Quit()),
        ("/exit", Quit()),
        ("/history", History(DEFAULT_HISTORY)),
        ("/history 2", History(2)),
        ("/join chat:other", Join("chat:other")),
    ],
)
def test_slash_commands(line: str, command: object) -> None:
    """Each slash command parses to its command, names case-insensitive."""
    assert parse(line) == command


@pytest.mark.parametrize("line", ["/history 0", "/history x", "/history ²", "/history 1 2"])
def test_bad_history_count_says_usage(line: str) -> None:
    """``/history`` with anything but one count from 1 up explains its usage."""
    command = parse(line)
    assert isinstance(command, Problem)
    assert "usage: /history N" in command.message


@pytest.mark.parametrize("line", ["/join", "/join a b"])
def test_join_needs_one_channel(line: str) -> None:
    """``/join`` takes exactly one channel."""
    assert parse(line) == Problem("usage: /join CHANNEL")


def test_unknown_command_lists_the_commands() -> None:
    """An unknown slash command names itself and lists the known ones."""
    command = parse("/dance now")
    assert isinstance(command, Problem)
    assert command.message.startswith("unknown command /dance")
    for known in ("/who", "/history", "/join", "/quit"):
        assert known in command.message
