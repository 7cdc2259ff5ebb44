"""Redis engines: Pub/Sub carries publications, Streams keep history, hashes keep presence.

    redis://[:password@]host:6379/0?prefix=hubbub&pubsub_shards=4&cluster=true

The URL's options are listed in ``options.py``. The package, top down:

    broker.py         RedisBroker: publish, history, and delivery to the handler
    presence.py       RedisPresenceStore
    subscriptions.py  which Pub/Sub connection holds each channel; follows slot moves
    pubsub.py         one Pub/Sub connection: batched SUBSCRIBEs, reconnects, gaps
    cluster.py        which primary serves each hash slot (CLUSTER SHARDS)
    commands.py       commands and scripts, routed by slot on a Cluster
    scripts.py        the Lua scripts; history pages
    keys.py, wire.py  key names (one hash tag per channel); msgpack on the wire
    options.py        the URL, its options, EngineError for any Redis failure

Publishing with history is one Lua script (offset, stream, PUBLISH) so offsets have
no gaps with publishers in many processes. With ``cluster=true`` on a Redis Cluster,
each channel's keys and Pub/Sub name share one hash tag, so its scripts and
SPUBLISHes run on the primary serving that slot, and each node holds an SSUBSCRIBE
connection per ``pubsub_shards`` to every primary. When slots move (migration,
failover), the channels follow them to their new primary.

A subscriber connection that breaks is reconnected by its own reader task with capped
exponential back-off and jitter; it subscribes every channel it holds again and tells
the handler (``on_gap``) that those channels may have missed publications. Every
other Redis failure surfaces as ``EngineError``: a publish is never reported done
when Redis did not take it.
"""

from hubbub.engines.redis.broker import RECONNECT_CAP, RECONNECT_FIRST, RedisBroker
from hubbub.engines.redis.keys import KeyNames
from hubbub.engines.redis.options import RedisOptions
from hubbub.engines.redis.presence import RedisPresenceStore
from hubbub.engines.redis.wire import decode_publication, encode_publication

__all__ = [
    "RECONNECT_CAP",
    "RECONNECT_FIRST",
    "KeyNames",
    "RedisBroker",
    "RedisOptions",
    "RedisPresenceStore",
    "decode_publication",
    "encode_publication",
]
