"""Conformance: every PresenceStore keeps these promises."""

from __future__ import annotations

from enginekit import FakeClock, client
from msgspec import Raw

from hubbub.engines.base import PresenceStore
from hubbub.protocol.messages import ClientInfo

# ---------------------------------------------------------------------------- presence


async def test_presence_lists_added_clients(presence: PresenceStore, channel: str) -> None:
    """presence() maps each added client id to the ClientInfo it was added with."""
    a = ClientInfo(user="u1", client="c1", chan_info=Raw(b'{"role":"admin"}'))
    b = client("u2", "c2")
    await presence.add(channel, "c1", a, 60.0)
    await presence.add(channel, "c2", b, 60.0)
    assert await presence.presence(channel) == {"c1": a, "c2": b}


async def test_presence_of_an_empty_channel(presence: PresenceStore, channel: str) -> None:
    """A channel nobody joined has no presence and zero stats."""
    assert await presence.presence(channel) == {}
    assert await presence.stats(channel) == (0, 0)


async def test_presence_remove(presence: PresenceStore, channel: str) -> None:
    """remove() takes a client out; removing an absent one is not an error."""
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    await presence.add(channel, "c2", client("u2", "c2"), 60.0)
    await presence.remove(channel, "c1")
    await presence.remove(channel, "c1")
    await presence.remove(channel + ":other", "c9")
    assert list(await presence.presence(channel)) == ["c2"]


async def test_presence_re_add_replaces_the_info(presence: PresenceStore, channel: str) -> None:
    """Adding a client again updates its entry instead of adding a second one."""
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    newer = ClientInfo(user="u1", client="c1", conn_info=Raw(b'{"v":2}'))
    await presence.add(channel, "c1", newer, 60.0)
    assert await presence.presence(channel) == {"c1": newer}
    assert await presence.stats(channel) == (1, 1)


async def test_presence_channels_are_separate(presence: PresenceStore, channel: str) -> None:
    """A client added to one channel is not present in another."""
    other = channel + ":other"
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    assert await presence.presence(other) == {}
    assert await presence.stats(other) == (0, 0)


async def test_presence_stats_count_unique_users(presence: PresenceStore, channel: str) -> None:
    """stats() counts clients, and users once however many connections they have."""
    await presence.add(channel, "c1", client("u1", "c1"), 60.0)
    await presence.add(channel, "c2", client("u1", "c2"), 60.0)
    await presence.add(channel, "c3", client("u2", "c3"), 60.0)
    await presence.add(channel, "c4", client("", "c4"), 60.0)
    await presence.add(channel, "c5", client("", "c5"), 60.0)
    assert await presence.stats(channel) == (5, 3)


async def test_presence_expires_ttl_after_the_last_add(
    presence: PresenceStore, presence_clock: FakeClock, channel: str
) -> None:
    """An entry disappears ttl seconds after it was last added; re-adding refreshes it."""
    await presence.add(channel, "c1", client("u1", "c1"), 10.0)
    await presence.add(channel, "c2", client("u2", "c2"), 10.0)
    presence_clock.advance(9)
    await presence.add(channel, "c1", client("u1", "c1"), 10.0)
    presence_clock.advance(1)
    assert list(await presence.presence(channel)) == ["c1"]
    assert await presence.stats(channel) == (1, 1)
    presence_clock.advance(9)
    assert await presence.presence(channel) == {}
    assert await presence.stats(channel) == (0, 0)
