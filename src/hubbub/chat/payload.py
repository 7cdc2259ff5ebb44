"""What a chat message is on the wire: ``{"name": ..., "text": ..., "time": ...}``.

``name`` and ``text`` are what every hubbub chat client reads and writes. ``time``
(Unix milliseconds, optional) is when the sender wrote it: the client API hands out
publications without the server's timestamp, so a message read back from history would
otherwise have no time to show. Payloads from other programs (not an object, no
``text``) are still shown, as their JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A publication as the chat shows it; ``name``/``sent`` are None when unknown."""

    text: str
    name: str | None = None
    sent: datetime | None = None


def encode(name: str, text: str, sent: datetime) -> dict[str, object]:
    """The payload to publish for ``text`` written by ``name`` at ``sent``."""
    return {"name": name, "text": text, "time": int(sent.timestamp() * 1000)}


def decode(data: bytes) -> ChatMessage:
    """Read a publication's payload, whatever program published it."""
    try:
        value: Any = msgspec.json.decode(data) if data else ""
    except msgspec.DecodeError:
        return ChatMessage(data.decode("utf-8", "replace"))
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return ChatMessage(value if isinstance(value, str) else msgspec.json.encode(value).decode())
    name = value.get("name")
    return ChatMessage(
        value["text"], name if isinstance(name, str) and name else None, _time(value.get("time"))
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value / 1000)
    except (OverflowError, OSError, ValueError):
        return None
