"""Which primary serves each hash slot, read from CLUSTER SHARDS.

Redis 7 answers CLUSTER SHARDS (sharded Pub/Sub needs Redis 7 anyway): per shard,
its slot ranges and its nodes with their role. A node without Cluster support owns
every slot itself, so ``cluster=true`` on a standalone Redis 7 needs no special case.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from redis.exceptions import RedisError, ResponseError

from hubbub.engines.redis.pubsub import Connection
from hubbub.engines.redis.wire import resp_map
from hubbub.errors import EngineError

Address = tuple[str, int]
"""A node's host and port."""

SLOTS = 16384


class SlotMap:
    """The primary serving each slot, as the last CLUSTER SHARDS said; at first the seed."""

    def __init__(self, seed: Address, connect: Callable[[Address], Connection], tls: bool) -> None:
        self.seed = seed
        self._connect = connect
        self._tls = tls
        self._owners: list[Address] = [seed] * SLOTS

    def owner(self, slot: int) -> Address:
        return self._owners[slot]

    def primaries(self) -> list[Address]:
        """Every node serving a slot, in slot order."""
        return list(dict.fromkeys(self._owners))

    async def refresh(self, first: Iterable[Address] = ()) -> None:
        """Ask ``first``, the known primaries, then the seed, until one answers.

        Raises EngineError when none does. Slots no node claims keep their old owner.
        """
        failure = "no node to ask"
        for address in dict.fromkeys([*first, *self.primaries(), self.seed]):
            try:
                reply = await self._ask(address)
            except ResponseError as exc:
                if "cluster support disabled" not in str(exc):
                    failure = f"{_where(address)}: {exc}"
                    continue
                self._owners = [address] * SLOTS
                return
            except (RedisError, OSError) as exc:
                failure = f"{_where(address)}: {exc}"
                continue
            self._read_shards(reply, address)
            return
        raise EngineError(f"no redis node told the cluster's slots ({failure})")

    async def _ask(self, address: Address) -> Any:
        conn = self._connect(address)
        try:
            await conn.connect()
            await conn.send_command("CLUSTER", "SHARDS")
            return await conn.read_response()
        finally:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    def _read_shards(self, reply: list[Any], asked: Address) -> None:
        owners = list(self._owners)
        for shard in reply:
            fields = resp_map(shard)
            primaries = [node for node in map(resp_map, fields[b"nodes"]) if _is_primary(node)]
            if not primaries:
                continue
            # A failed primary may still be listed beside the replica that replaced it.
            primary = next((n for n in primaries if n.get(b"health") == b"online"), primaries[0])
            address = self._address(primary, asked)
            ranges = fields[b"slots"]
            for start, end in zip(ranges[::2], ranges[1::2], strict=True):
                owners[int(start) : int(end) + 1] = [address] * (int(end) - int(start) + 1)
        self._owners = owners

    def _address(self, node: dict[bytes, Any], asked: Address) -> Address:
        host = node.get(b"endpoint") or node.get(b"ip") or b"?"
        port = node.get(b"tls-port") if self._tls else None
        # "?" or "": the node does not know its address; it is the one we asked.
        text = asked[0] if host in (b"?", b"") else host.decode()
        return text, int(port or node[b"port"])


def _is_primary(node: dict[bytes, Any]) -> bool:
    return node.get(b"role") == b"master"


def _where(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
