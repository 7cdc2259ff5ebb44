"""Named types for the values that travel through hubbub.

They are ``NewType``s: free at run time, but mypy keeps a channel name from being
passed where a client id is expected.
"""

from typing import NewType

ChannelName = NewType("ChannelName", str)
"""A channel, ``namespace:rest`` or a bare name in the default namespace."""

ClientId = NewType("ClientId", str)
"""The unique id the server gives one connection (a UUID4 string)."""

UserId = NewType("UserId", str)
"""The application's user id; ``""`` is an anonymous user."""

Epoch = NewType("Epoch", str)
"""One incarnation of a channel's stream; offsets are only comparable within an epoch."""
