"""NATS engines: core NATS carries live events, JetStream keeps history and presence.

    nats://127.0.0.1:4222?prefix=hubbub&stream_replicas=1

One module per part, each saying in its docstring what it owns:

    options.py   the nats:// URL and its options
    names.py     streams, subjects and bucket under the prefix; channel names as tokens
    link.py      the connection: reconnect back-off, deadlines, NATS errors as EngineError
    state.py     the Record every message carries: the stream's state travels with it
    history.py   appends whose offsets are atomic with storing; history pages
    feed.py      one channel's live delivery, in offset order and at most once
    broker.py    NatsBroker: subscriptions and live fan-out over the above
    presence.py  NatsPresenceStore: a key-value bucket with per-entry expiry
    admin.py     drop_prefix: delete everything under a prefix

Needs nats-server 2.9+ with JetStream; per-message TTLs (2.11) are not used.
"""

from hubbub.engines.nats.admin import drop_prefix
from hubbub.engines.nats.broker import NatsBroker
from hubbub.engines.nats.feed import ChannelFeed, FeedSink
from hubbub.engines.nats.names import decode_token, encode_token
from hubbub.engines.nats.options import NatsOptions
from hubbub.engines.nats.presence import NatsPresenceStore
from hubbub.engines.nats.state import JOIN, LEAVE, MARK, PUB, Record, WireInfo

__all__ = [
    "JOIN",
    "LEAVE",
    "MARK",
    "PUB",
    "ChannelFeed",
    "FeedSink",
    "NatsBroker",
    "NatsOptions",
    "NatsPresenceStore",
    "Record",
    "WireInfo",
    "decode_token",
    "drop_prefix",
    "encode_token",
]
