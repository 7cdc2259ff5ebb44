"""Key and Pub/Sub channel names: one hash tag per hubbub channel."""

from __future__ import annotations


class KeyNames:
    """Key and Pub/Sub channel names of one hubbub channel.

    All of a channel's names carry the same hash tag, so a Cluster keeps them in one
    slot: its scripts, its SPUBLISH and its SSUBSCRIBE all go to one primary. The tag
    opens with ``=``: a channel name starting with ``}`` would otherwise make an empty
    tag, and Redis would hash each whole key to a different slot.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _name(self, kind: str, channel: str) -> str:
        return f"{self.prefix}:{kind}:{{={channel}}}"

    def stream(self, channel: str) -> str:
        return self._name("stream", channel)

    def meta(self, channel: str) -> str:
        return self._name("meta", channel)

    def presence(self, channel: str) -> str:
        return self._name("presence", channel)

    def presence_expiry(self, channel: str) -> str:
        return self._name("presence-expiry", channel)

    def pubsub(self, channel: str) -> bytes:
        return self._name("pub", channel).encode()
