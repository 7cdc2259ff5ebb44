"""The lines the chat shows, and the message payload (``hubbub.chat.render``, ``payload``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from hubbub.chat import payload, render
from hubbub.chat.payload import ChatMessage
from hubbub.client import ClientInfo

NOON = datetime(2024, 5, 1, 12, 3, 59)
CLIENT = "0123456789abcdef"


def test_message_line_has_time_and_sender() -> None:
    """A message shows ``HH:MM sender: text``."""
    assert render.message_line(NOON, "alice", "hi") == "12:03 alice: hi"


def test_unknown_time_is_dashes() -> None:
    """A message that does not say when it was written shows ``--:--``."""
    assert render.message_line(None, "bob", "old") == "--:-- bob: old"


def test_control_characters_are_neutralised() -> None:
    """Escapes and newlines from the network cannot drive the terminal."""
    assert render.clean("a\x1b[2Jb\nc") == "a?[2Jb c"
    assert render.message_line(NOON, "x", "\x07") == "12:03 x: ?"


def test_sender_prefers_the_name_in_the_message() -> None:
    """The payload's name wins over what is known of the publishing client."""
    info = ClientInfo(user="u1", client=CLIENT)
    assert render.sender(ChatMessage("t", "alice"), info, {CLIENT: "other"}) == "alice"


def test_sender_falls_back_to_learned_name_user_then_short_id() -> None:
    """Without a name: a name learned earlier, the user id, then ``#`` and the client id."""
    anonymous = ClientInfo(user="", client=CLIENT)
    assert render.sender(ChatMessage("t"), anonymous, {CLIENT: "bob"}) == "bob"
    assert render.sender(ChatMessage("t"), ClientInfo("u1", CLIENT), {}) == "u1"
    assert render.sender(ChatMessage("t"), anonymous, {}) == "#01234567"
    assert render.sender(ChatMessage("t"), None, {}) == "server"


def test_join_and_leave_lines_carry_the_count() -> None:
    """Join and leave notices name the person, the channel and how many are online."""
    assert render.joined(NOON, "bob", "chat:lobby", 2) == "12:03 * bob joined chat:lobby (2 online)"
    assert render.left(NOON, "bob", "chat:lobby", None) == "12:03 * bob left chat:lobby (? online)"


def test_entered_line_shows_our_short_id() -> None:
    """Our own join line shows the id others see for us."""
    line = render.entered(NOON, "alice", CLIENT, "chat:lobby", 1)
    assert line == "12:03 * you joined chat:lobby as alice (#01234567, 1 online)"


def test_presence_line_marks_us_and_sorts() -> None:
    """``/who`` lists everyone, sorted, with ``(you)`` after our own name."""
    present = [ClientInfo("", "b" * 16), ClientInfo("", CLIENT)]
    names = {CLIENT: "alice", "b" * 16: "bob"}
    line = render.presence_line(NOON, "chat:lobby", present, names, me=CLIENT)
    assert line == "12:03 * 2 online in chat:lobby: alice (you), bob"


def test_history_header_counts_messages() -> None:
    """The history block says how many messages it shows, or that there are none."""
    assert render.history_header("chat:x", 0) == "--- no recent messages in chat:x ---"
    assert render.history_header("chat:x", 1) == "--- last 1 message in chat:x ---"
    assert render.history_header("chat:x", 3) == "--- last 3 messages in chat:x ---"


def test_toolbar_shows_count_or_reconnecting() -> None:
    """The status bar shows the presence count, replaced by the indicator while reconnecting."""
    assert render.toolbar("chat:lobby", "alice", 3, False) == (
        " chat:lobby | 3 online | alice | /help"
    )
    assert "reconnecting..." in render.toolbar("chat:lobby", "alice", 3, True)


def test_payload_round_trip() -> None:
    """What ``encode`` publishes, ``decode`` reads back: name, text and minute."""
    data = msgspec.json.encode(payload.encode("alice", "hi", NOON))
    message = payload.decode(data)
    assert (message.name, message.text) == ("alice", "hi")
    assert message.sent is not None and render.clock(message.sent) == "12:03"


def test_foreign_payloads_still_show() -> None:
    """Payloads of other programs show as text: a string, other JSON, non-JSON bytes."""
    assert payload.decode(b'"plain"') == ChatMessage("plain")
    assert payload.decode(b'{"n": 1}') == ChatMessage('{"n":1}')
    assert payload.decode(b"\xff raw") == ChatMessage("\ufffd raw")
    assert payload.decode(b'{"text": "t", "name": 5, "time": "soon"}') == ChatMessage("t")
