"""What a line typed at the prompt asks for: a message to send or a slash command.

``parse("hello")`` is ``Say("hello")``, ``parse("/history 5")`` is ``History(5)``, and
``parse("//etc")`` is ``Say("/etc")``: a doubled slash sends a line that starts with one.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HISTORY = 20
"""Messages ``/history`` shows without a count, and the chat shows on joining."""
MAX_HISTORY = 1000


@dataclass(frozen=True, slots=True)
class Say:
    """Publish ``text`` to the current channel."""

    text: str


@dataclass(frozen=True, slots=True)
class Who:
    """List who is in the current channel."""


@dataclass(frozen=True, slots=True)
class History:
    """Show the last ``count`` messages of the current channel."""

    count: int = DEFAULT_HISTORY


@dataclass(frozen=True, slots=True)
class Join:
    """Leave the current channel for ``channel``."""

    channel: str


@dataclass(frozen=True, slots=True)
class Quit:
    """Leave the chat."""


@dataclass(frozen=True, slots=True)
class Help:
    """Show the commands."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A line that is no valid command; ``message`` says what would be."""

    message: str


Command = Say | Who | History | Join | Quit | Help | Problem

HELP = (
    "commands: /who (who is here), /history [N] (last N messages), "
    "/join CHANNEL (switch channel), /quit; start a message with // to send a '/'"
)


def parse(line: str) -> Command | None:
    """The command ``line`` stands for; None for a blank line."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("//"):
        return Say(text[1:])
    if not text.startswith("/"):
        return Say(text)
    name, _, rest = text[1:].partition(" ")
    return _slash(name.lower(), rest.split())


def _slash(name: str, args: list[str]) -> Command:
    if name in ("quit", "exit", "q"):
        return Quit()
    if name in ("help", "?"):
        return Help()
    if name == "who":
        return Who() if not args else Problem("usage: /who")
    if name == "history":
        return _history(args)
    if name == "join":
        return Join(args[0]) if len(args) == 1 else Problem("usage: /join CHANNEL")
    return Problem(f"unknown command /{name}; {HELP}")


def _history(args: list[str]) -> Command:
    if not args:
        return History()
    count = args[0] if len(args) == 1 else ""
    # isdecimal, not isdigit: int() refuses some digits ("²"); the length keeps int() cheap.
    if count.isdecimal() and len(count) <= 6 and 1 <= int(count) <= MAX_HISTORY:
        return History(int(count))
    return Problem(f"usage: /history N (N from 1 to {MAX_HISTORY})")
