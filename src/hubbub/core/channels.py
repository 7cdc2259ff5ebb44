"""Channel names: namespaces and personal (user-limited) channels.

``chat:lobby`` belongs to namespace ``chat``; a name without ``:`` to the default
options. A ``#`` in the part after the namespace limits the channel to the listed
user ids: ``#42`` or ``dm:#42,43`` may only be subscribed by users 42 (and 43) —
the way to address direct messages to a user.
"""

from __future__ import annotations

# Defined in the engines' layer (which may not import core), so both split names alike.
from hubbub.engines.base import NAMESPACE_SEPARATOR as NAMESPACE_SEPARATOR
from hubbub.engines.base import namespace_of as namespace_of
from hubbub.typing import UserId

USER_BOUNDARY = "#"
USER_SEPARATOR = ","
MAX_CHANNEL_LENGTH = 255


def allowed_users(channel: str) -> frozenset[UserId] | None:
    """The users a personal channel is limited to, or None for an ordinary channel."""
    head, sep, rest = channel.partition(NAMESPACE_SEPARATOR)
    if not sep:
        rest = head
    _, boundary, users = rest.partition(USER_BOUNDARY)
    if not boundary:
        return None
    return frozenset(UserId(u) for u in users.split(USER_SEPARATOR) if u)


def is_valid_name(channel: str) -> bool:
    """Non-empty, not too long; anything else is the namespace options' business."""
    return 0 < len(channel) <= MAX_CHANNEL_LENGTH
