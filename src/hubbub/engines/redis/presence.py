"""The Redis presence store: a hash of infos and a sorted set of expiries per channel."""

from __future__ import annotations

from typing import Self

from hubbub.engines.base import PresenceStore
from hubbub.engines.redis import scripts
from hubbub.engines.redis.commands import Commands
from hubbub.engines.redis.keys import KeyNames
from hubbub.engines.redis.options import RedisOptions, engine_errors, ms
from hubbub.engines.redis.wire import decode_info, decode_user, encode_info, resp_map
from hubbub.protocol.messages import ClientInfo


class RedisPresenceStore:
    """Presence in a hash per channel (client id → info) with a sorted set of expiries.

    Expiry is per entry and uses Redis's clock, so nodes with skewed clocks agree;
    reading drops the expired entries first. Both keys also expire as a whole once
    no entry is refreshed, so abandoned channels leave nothing behind. Every call is
    one script on the channel's two keys, so a Cluster runs it where they live.
    """

    def __init__(self, options: RedisOptions | None = None) -> None:
        self.options = options if options is not None else RedisOptions()
        self._names = KeyNames(self.options.prefix)
        self._commands = Commands(self.options, "commands")

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(RedisOptions.from_url(url))

    def _keys(self, channel: str) -> list[str]:
        return [self._names.presence(channel), self._names.presence_expiry(channel)]

    async def add(self, channel: str, client_id: str, info: ClientInfo, ttl: float) -> None:
        with engine_errors("presence add"):
            args = [client_id, encode_info(info), ms(ttl)]
            await self._commands.run(scripts.PRESENCE_ADD, self._keys(channel), args)

    async def remove(self, channel: str, client_id: str) -> None:
        with engine_errors("presence remove"):
            await self._commands.run(scripts.PRESENCE_REMOVE, self._keys(channel), [client_id])

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        with engine_errors("presence"):
            flat = await self._commands.run(scripts.PRESENCE_READ, self._keys(channel), ["hgetall"])
            return {
                client_id.decode(): decode_info(body) for client_id, body in resp_map(flat).items()
            }

    async def stats(self, channel: str) -> tuple[int, int]:
        with engine_errors("presence stats"):
            bodies = await self._commands.run(scripts.PRESENCE_READ, self._keys(channel), ["hvals"])
            return len(bodies), len({decode_user(body) for body in bodies})

    async def close(self) -> None:
        await self._commands.close()


_: type[PresenceStore] = RedisPresenceStore
