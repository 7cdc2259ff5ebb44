"""The Lua scripts, and how history pages are asked for and read.

Publishing with history runs one script: HINCRBY the top offset, XADD to the stream
with MAXLEN, PUBLISH (or SPUBLISH), all atomically, so offsets have no gaps even with
publishers in many processes, and every node sees them in offset order. A script's
keys and the Pub/Sub channel it publishes to share one hash tag, so on a Cluster the
script runs on the primary serving that slot, and Redis 7 lets it SPUBLISH there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hubbub.engines.redis.wire import decode_publication, resp_map
from hubbub.protocol.messages import Publication, StreamPosition


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script, run by its SHA1 (EVALSHA) once a node has it."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())


PUBLISH = Script("""
-- KEYS: stream, meta. ARGV: body, size, ttl ms, meta ttl ms, fresh epoch,
--       publish command, pub/sub channel. Returns {offset, epoch}.
local epoch = redis.call('hget', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('del', KEYS[1])  -- publications of a lost epoch must not mix with the new one
  redis.call('hset', KEYS[2], 'epoch', epoch)
end
local top = redis.call('hincrby', KEYS[2], 'top', 1)
redis.call('pexpire', KEYS[2], ARGV[4])
redis.call('xadd', KEYS[1], 'maxlen', ARGV[2], top .. '-0', 'd', ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[3])
redis.call(ARGV[6], ARGV[7], 'p' .. top .. ':' .. ARGV[1])
return {top, epoch}
""")

HISTORY = Script("""
-- KEYS: stream, meta. ARGV: fresh epoch, meta ttl ms, '1' to (re)set the meta ttl,
--       'xrange' or 'xrevrange', first bound, second bound, count (-1 all, 0 none).
-- Returns {top, epoch, entries}: the page and the top are read in one atomic step.
local epoch = redis.call('hget', KEYS[2], 'epoch')
local top = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('del', KEYS[1])
  redis.call('hset', KEYS[2], 'epoch', epoch, 'top', 0)
  redis.call('pexpire', KEYS[2], ARGV[2])
else
  top = tonumber(redis.call('hget', KEYS[2], 'top')) or 0
  if ARGV[3] == '1' then redis.call('pexpire', KEYS[2], ARGV[2]) end
end
local count = tonumber(ARGV[7])
local entries = {}
if count > 0 then
  entries = redis.call(ARGV[4], KEYS[1], ARGV[5], ARGV[6], 'count', count)
elseif count < 0 then
  entries = redis.call(ARGV[4], KEYS[1], ARGV[5], ARGV[6])
end
return {top, epoch, entries}
""")

_NOW_MS = """
local now = redis.call('time')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

PRESENCE_ADD = Script(
    _NOW_MS
    + """
-- KEYS: hash, expiry zset. ARGV: client id, encoded info, ttl ms.
local ttl = tonumber(ARGV[3])
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], now_ms + ttl, ARGV[1])
for _, key in ipairs(KEYS) do  -- only ever extend: others may have added with longer ttls
  if redis.call('pttl', key) < ttl then redis.call('pexpire', key, ttl) end
end
"""
)

PRESENCE_READ = Script(
    _NOW_MS
    + """
-- KEYS: hash, expiry zset. ARGV: 'hgetall' or 'hvals'. Drops expired entries first.
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now_ms)
for i = 1, #expired, 1000 do
  redis.call('hdel', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
end
if #expired > 0 then redis.call('zremrangebyscore', KEYS[2], '-inf', now_ms) end
return redis.call(ARGV[1], KEYS[1])
"""
)

PRESENCE_REMOVE = Script("""
-- KEYS: hash, expiry zset. ARGV: client id. A script rather than MULTI, so a Cluster
-- routes it by its keys' slot like every other presence call.
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
""")


def history_range(
    since: StreamPosition | None, limit: int, reverse: bool
) -> tuple[str, str, str, int]:
    """The XRANGE/XREVRANGE command, its bounds and count for a history page.

    Stream entry ids are ``<offset>-0``, so offsets are ids and bounds need no lookup.
    """
    if not reverse:
        return "xrange", "-" if since is None else str(since.offset + 1), "+", limit
    if since is None:
        return "xrevrange", "+", "-", limit
    if since.offset <= 1:  # nothing comes before offset 1
        return "xrevrange", "+", "-", 0
    return "xrevrange", str(since.offset - 1), "-", limit


def page(entries: list[Any]) -> list[Publication]:
    """The stream entries the history script returned, as publications."""
    pubs = []
    for entry_id, fields in entries:
        fields_by_name = resp_map(fields)
        offset = int(entry_id.partition(b"-")[0])
        pubs.append(decode_publication(fields_by_name[b"d"], offset))
    return pubs
