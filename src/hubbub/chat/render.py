"""The lines and the status bar the chat shows: pure functions of what happened.

Every line starts with the time (``HH:MM``, local). A message line names its sender;
everything else (joins, leaves, the connection, answers to commands) is a notice
marked with ``*``. Text from the network is cleaned of control characters first, so a
peer cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime

from hubbub.chat.payload import ChatMessage
from hubbub.client import ClientInfo

UNKNOWN_TIME = "--:--"
"""Shown for a message from history that does not say when it was written."""


def clock(when: datetime | None) -> str:
    """``HH:MM`` of ``when``, or ``--:--`` when it is unknown."""
    return when.strftime("%H:%M") if when is not None else UNKNOWN_TIME


def clean(text: str) -> str:
    """``text`` with control characters (escapes, newlines, ...) made harmless."""
    if text.isprintable():
        return text
    return "".join(ch if _shown(ch) else " " if ch in "\t\n\r" else "?" for ch in text)


def _shown(ch: str) -> bool:
    return ch.isprintable() or unicodedata.category(ch) == "Zs"


def short_id(client: str) -> str:
    """How a client nobody has named is shown: ``#`` and the start of its id."""
    return "#" + client[:8]


def who(info: ClientInfo | None, names: Mapping[str, str]) -> str:
    """The best name for a client: learned from its messages, its user id, its id."""
    if info is None:
        return "server"
    name = names.get(info.client)
    if name:
        return clean(name)
    return clean(info.user) if info.user else short_id(info.client)


def sender(message: ChatMessage, info: ClientInfo | None, names: Mapping[str, str]) -> str:
    """Who wrote ``message``: the name in it, else whoever published it."""
    return clean(message.name) if message.name else who(info, names)


def message_line(when: datetime | None, name: str, text: str) -> str:
    """``12:03 alice: hello``."""
    return f"{clock(when)} {name}: {clean(text)}"


def notice(when: datetime, text: str) -> str:
    """``12:03 * text``: anything that is not a message."""
    return f"{clock(when)} * {text}"


def online(count: int | None) -> str:
    return "? online" if count is None else f"{count} online"


def joined(when: datetime, name: str, channel: str, count: int | None) -> str:
    return notice(when, f"{name} joined {channel} ({online(count)})")


def left(when: datetime, name: str, channel: str, count: int | None) -> str:
    return notice(when, f"{name} left {channel} ({online(count)})")


def entered(when: datetime, name: str, client: str, channel: str, count: int | None) -> str:
    """The line for our own joining; our id lets others match the ``#id joined`` they see."""
    return notice(
        when, f"you joined {channel} as {clean(name)} ({short_id(client)}, {online(count)})"
    )


def history_header(channel: str, shown: int) -> str:
    if shown == 0:
        return f"--- no recent messages in {channel} ---"
    noun = "message" if shown == 1 else "messages"
    return f"--- last {shown} {noun} in {channel} ---"


def history_footer() -> str:
    return "--- end of history ---"


def presence_line(
    when: datetime, channel: str, present: Iterable[ClientInfo], names: Mapping[str, str], me: str
) -> str:
    """``12:03 * 2 online in chat:lobby: alice (you), bob``."""
    shown = sorted(
        f"{who(info, names)} (you)" if info.client == me else who(info, names) for info in present
    )
    return notice(when, f"{len(shown)} online in {channel}: {', '.join(shown)}")


def toolbar(channel: str, name: str, count: int | None, reconnecting: bool) -> str:
    """The status bar: channel, presence count or the reconnecting indicator, our name."""
    status = "reconnecting..." if reconnecting else online(count)
    return f" {channel} | {status} | {clean(name)} | /help"
