"""The client side of each protocol the bench speaks, without any I/O.

A wire gets frames (``receive``) and hands frames to ``send``; the worker glues it to
a picows connection. Three protocols:

* ``centrifuge``: Centrifuge client protocol v2 through hubbub's own codecs (JSON or
  Protobuf). Handshake: connect + subscribe in one frame (PROTOCOL.md §1.2 allows
  several commands per frame); server pings are answered with pongs (§5).
* ``plain``: the tiny protocol of the peer broadcast servers (picows, Node ``ws``):
  text frames ``S<channel>`` → ``OK``; ``P<channel>\\n<payload>`` → every subscriber
  of the channel gets ``M<channel>\\n<payload>``; ``E<payload>`` → the same frame back.
* ``socketio``: Engine.IO 4 / Socket.IO 5 over a WebSocket: ``40`` joins the default
  namespace, ``420["subscribe",channel]`` → ack ``430``, ``42["publish",channel,payload]``
  → every room member gets ``42["m",payload]``, ``42<id>["echo",payload]`` → ack
  ``43<id>[payload]``; Engine.IO pings ``2`` are answered ``3``.

Once ready, receiving is the hot path: stamped payloads are found with one regular
expression per frame (``payload.STAMP``) instead of decoding every message; only frames
that may hold something else (pings, errors) are looked at more closely.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from typing import ClassVar

import msgspec
import numpy as np
import numpy.typing as npt

from hubbub.codecs.base import Codec
from hubbub.config import ClientSettings
from hubbub.errors import ProtocolError
from hubbub.protocol.messages import (
    PONG,
    Command,
    ConnectRequest,
    PublishRequest,
    Reply,
    RPCRequest,
    SubscribeRequest,
)
from hubbub.protocol.varint import decode_uvarint

from .payload import STAMP

Send = Callable[[bytes], None]

CONNECT_ID = 1
SUBSCRIBE_ID = 2
FIRST_COMMAND_ID = 10

MAX_FRAME_BYTES: int = ClientSettings.model_fields["max_message_bytes"].default
"""The largest frame of commands a wire writes: hubbub's default
``client.max_message_bytes`` (64 KiB). A pacer catching up after a stall sends many commands
at once; in one frame they could pass the server's limit, and the server would close
the connection (it did: a 144 KB frame at 37,779 publications/s)."""

_SEPARATOR_BYTES = 1
"""Room per command for what ``Codec.join`` adds: the newline between JSON commands
(varint-delimited items, protobuf's, carry their length prefix already)."""


FOLD_STAMPS = 8_192
"""Kept stamps are turned into latencies once this many wait. A kept frame costs ~70
bytes where a latency costs 8, so memory stays bounded however long a step runs, and a
fold of this size stalls the receiving worker for only ~0.2-0.5 ms (about 23 ns per
stamp and 33 per frame here), which any frame arriving meanwhile shows as latency."""


class Counters:
    """What every connection of one worker adds to: deliveries, latencies, errors.

    While recording, a frame's stamps are kept as they came (their digits joined, one
    bytes object per frame, with the frame's arrival time and stamp count) and turned
    into latencies by numpy a few thousand at a time (``FOLD_STAMPS``): parsing each
    stamp with ``int`` as it arrived took 12.6 % of the generator's samples at 880
    publications/s to 1,000 subscribers
    (benchmarks/profiles/generator-fanout-880pubs-a902a32.txt).
    """

    __slots__ = (
        "arrivals",
        "delivered",
        "digits",
        "errors",
        "folded",
        "kept",
        "recording",
        "sent",
        "stamped",
    )

    def __init__(self) -> None:
        self.delivered = 0
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self.recording = False
        self.digits: list[bytes] = []
        """Per kept frame: its stamps' decimal digits, comma-separated."""
        self.arrivals: array[int] = array("q")
        """Per kept frame: when it arrived (``CLOCK_MONOTONIC`` ns)."""
        self.stamped: array[int] = array("q")
        """Per kept frame: how many stamps it held."""
        self.kept = 0
        """Stamps kept and not yet folded."""
        self.folded: list[npt.NDArray[np.int64]] = []
        """Latencies (µs) of the stamps folded since the last take."""

    def record(self, found: list[bytes], now_ns: int) -> None:
        """Keep the stamps of one frame that arrived at ``now_ns``."""
        self.digits.append(b",".join(found))
        self.arrivals.append(now_ns)
        self.stamped.append(len(found))
        self.kept += len(found)
        if self.kept >= FOLD_STAMPS:
            self._fold()

    def _fold(self) -> None:
        digits, arrivals, stamped = self.digits, self.arrivals, self.stamped
        self._drop_kept()
        if not digits:
            return
        sent = np.fromstring(b",".join(digits), dtype=np.int64, sep=",")
        received = np.repeat(np.frombuffer(arrivals, dtype=np.int64), stamped)
        if sent.size != received.size:
            raise ValueError(f"{sent.size} stamps parsed, {received.size} recorded")
        self.folded.append((received - sent) // 1000)

    def _drop_kept(self) -> None:
        self.digits, self.arrivals, self.stamped, self.kept = [], array("q"), array("q"), 0

    def take_latencies(self) -> npt.NDArray[np.int64]:
        """Microseconds from send to arrival of every stamp recorded since the last take."""
        self._fold()
        folded, self.folded = self.folded, []
        return np.concatenate(folded) if folded else np.empty(0, dtype=np.int64)

    def clear_latencies(self) -> None:
        """Forget what was recorded (a new window starts)."""
        self._drop_kept()
        self.folded = []


class ClientWire:
    """Base of the protocol wires: readiness, counters and the stamp scan."""

    protocol: ClassVar[str] = ""

    def __init__(self, counters: Counters, channel: str = "", send: Send | None = None) -> None:
        self.binary = False
        """Frames go out as binary WebSocket messages (else text)."""
        self.subprotocol = ""
        """The WebSocket subprotocol to offer ("" for none)."""
        self.counters = counters
        self.channel = channel
        self.send: Send = send or _nowhere
        self.ready = False
        self.failure = ""

    def start(self) -> None:
        """The WebSocket is open: send the opening frames."""

    def receive(self, frame: bytes, now_ns: int) -> int:
        """Take one frame; returns how many stamped payloads it held."""
        raise NotImplementedError

    def publish(self, channel: str, payloads: list[bytes]) -> None:
        raise NotImplementedError

    def echo(self, payloads: list[bytes]) -> None:
        raise NotImplementedError

    def _count(self, found: list[bytes], now_ns: int) -> int:
        """Count the stamps ``found`` in a frame that arrived at ``now_ns``."""
        if not found:
            return 0
        counters = self.counters
        counters.delivered += len(found)
        if counters.recording:
            counters.record(found, now_ns)
        return len(found)

    def _fail(self, reason: str) -> None:
        self.failure = self.failure or reason
        self.counters.errors[reason] += 1


def frames_of(commands: list[bytes], limit: int = MAX_FRAME_BYTES) -> Iterator[list[bytes]]:
    """``commands`` in order, in runs that fit one frame of ``limit`` bytes each once
    joined; a command bigger than ``limit`` goes alone (the server says what it thinks)."""
    run: list[bytes] = []
    size = 0
    for command in commands:
        cost = len(command) + _SEPARATOR_BYTES
        if run and size + cost > limit:
            yield run
            run, size = [], 0
        run.append(command)
        size += cost
    if run:
        yield run


def _nowhere(frame: bytes) -> None:
    raise RuntimeError("wire is not connected")


# --------------------------------------------------------------------- centrifuge


class CentrifugeWire(ClientWire):
    """Centrifuge protocol v2 through one of hubbub's codecs."""

    protocol = "centrifuge"

    def __init__(
        self,
        codec: Codec,
        counters: Counters,
        channel: str = "",
        send: Send | None = None,
        *,
        rpc_method: str = "echo",
    ) -> None:
        super().__init__(counters, channel, send)
        self.codec = codec
        self.binary = codec.binary
        self.subprotocol = codec.subprotocol if codec.binary else ""
        self.rpc_method = rpc_method
        self.client_id = ""
        self._next_id = FIRST_COMMAND_ID
        self._pong = codec.encode(PONG)
        self._echo_channel = channel
        # JSON commands are written from a template: the generator makes one per message
        # and msgspec Structs per command cost more than the server's work on them.
        self._json = codec.name == "json"
        self._templates: dict[tuple[bytes, str], bytes] = {}

    def start(self) -> None:
        commands = [Command(id=CONNECT_ID, connect=ConnectRequest(name="hubbub-bench"))]
        if self.channel:
            commands.append(
                Command(id=SUBSCRIBE_ID, subscribe=SubscribeRequest(channel=self.channel))
            )
        self.send(self.codec.join([self.codec.encode(c) for c in commands]))

    # ------------------------------------------------------------------ receiving

    def receive(self, frame: bytes, now_ns: int) -> int:
        if not self.ready:
            return self._handshake(frame, now_ns)
        found = STAMP.findall(frame)
        if self.binary:
            self._scan_protobuf(frame)
        elif frame.count(b"\n") >= len(found):
            # A line without a stamp (a reply, a ping, a push of something else) needs the
            # full scan. A frame of stamped publications only, one per line, the bulk of
            # any fan-out, does not: that scan took 28.4 % of the generator's samples in
            # the profile named in ``Counters``.
            self._scan_json(frame)
        return self._count(found, now_ns)

    def _handshake(self, frame: bytes, now_ns: int) -> int:
        try:
            replies = self.codec.decode(frame, Reply)
        except ProtocolError as exc:
            self._fail(f"bad frame: {exc}")
            return 0
        for reply in replies:
            if reply.error is not None:
                self._fail(f"error {reply.error.code} {reply.error.message}")
            elif reply.id == CONNECT_ID and reply.connect is not None:
                self.client_id = reply.connect.client
                self.ready = not self.channel
            elif reply.id == SUBSCRIBE_ID and reply.subscribe is not None:
                self.ready = True
            elif reply.id == 0 and reply.push is None:
                self.send(self._pong)
        return self._count(STAMP.findall(frame), now_ns)

    def _scan_json(self, frame: bytes) -> None:
        # Pings are lines that are exactly "{}" (PROTOCOL.md §1.2). ``find`` rather than
        # ``in``: bytes ``in`` raises and drops a TypeError inside CPython on every call.
        if frame.find(b"{}") >= 0:
            for line in frame.split(b"\n"):
                if line == b"{}":
                    self.send(self._pong)
                    break
        if frame.find(b'"error":') >= 0:
            self._errors(frame)

    def _scan_protobuf(self, frame: bytes) -> None:
        pos, end = 0, len(frame)
        pinged = False
        while pos < end:
            size, pos = decode_uvarint(frame, pos)
            if size == 0:
                pinged = True
                continue
            # Reply.id is field 1 (tag 0x08), Reply.error field 2 (tag 0x12).
            if frame[pos] == 0x08:
                _, after = decode_uvarint(frame, pos + 1)
                if after < pos + size and frame[after] == 0x12:
                    self._errors(frame[pos - _varint_len(size) : pos + size])
            pos += size
        if pinged:
            self.send(self._pong)

    def _errors(self, frame: bytes) -> None:
        try:
            replies = self.codec.decode(frame, Reply)
        except ProtocolError as exc:
            self.counters.errors[f"bad frame: {exc}"] += 1
            return
        for reply in replies:
            if reply.error is not None:
                self.counters.errors[f"error {reply.error.code} {reply.error.message}"] += 1

    # -------------------------------------------------------------------- sending

    def _ids(self, count: int) -> range:
        first = self._next_id
        self._next_id += count
        return range(first, first + count)

    def _template(self, head: bytes, text: str, tail: bytes) -> bytes:
        """``head``, ``text`` as a JSON string, ``tail``: one command with two holes left
        (id, payload), made once per name; a ``%`` in the name is escaped."""
        key = (head, text)
        template = self._templates.get(key)
        if template is None:
            quoted = msgspec.json.encode(text).replace(b"%", b"%%")
            template = self._templates[key] = head + quoted + tail
        return template

    def _send_json(self, template: bytes, payloads: list[bytes]) -> None:
        ids = self._ids(len(payloads))
        commands = [template % (i, p) for i, p in zip(ids, payloads, strict=True)]
        for run in frames_of(commands):
            self.send(b"\n".join(run))

    def _send_encoded(
        self, command: Callable[[int, msgspec.Raw], Command], payloads: list[bytes]
    ) -> None:
        ids = self._ids(len(payloads))
        encode = self.codec.encode
        items = [encode(command(i, msgspec.Raw(p))) for i, p in zip(ids, payloads, strict=True)]
        for run in frames_of(items):
            self.send(self.codec.join(run))

    def publish(self, channel: str, payloads: list[bytes]) -> None:
        if self._json:
            head = b'{"id":%d,"publish":{"channel":'
            self._send_json(self._template(head, channel, b',"data":%s}}'), payloads)
            return
        self._send_encoded(
            lambda i, data: Command(id=i, publish=PublishRequest(channel=channel, data=data)),
            payloads,
        )

    def echo(self, payloads: list[bytes]) -> None:
        if self._echo_channel:  # publish-to-self: the round trip ends at the push
            self.publish(self._echo_channel, payloads)
            return
        method = self.rpc_method
        if self._json:
            head = b'{"id":%d,"rpc":{"data":%s,"method":'
            self._send_json(self._template(head, method, b"}}"), payloads)
            return
        self._send_encoded(
            lambda i, data: Command(id=i, rpc=RPCRequest(method=method, data=data)), payloads
        )


def _varint_len(value: int) -> int:
    length = 1
    while value >= 0x80:
        value >>= 7
        length += 1
    return length


# -------------------------------------------------------------------------- plain


class PlainWire(ClientWire):
    """The one-letter protocol of the peer broadcast servers."""

    protocol = "plain"

    def start(self) -> None:
        if self.channel:
            self.send(b"S" + self.channel.encode())
        else:
            self.ready = True

    def receive(self, frame: bytes, now_ns: int) -> int:
        if not self.ready:
            if frame == b"OK":
                self.ready = True
                return 0
            if frame.startswith(b"ERR"):
                self._fail(frame.decode(errors="replace"))
                return 0
        return self._count(STAMP.findall(frame), now_ns)

    def publish(self, channel: str, payloads: list[bytes]) -> None:
        head = b"P" + channel.encode() + b"\n"
        for payload in payloads:
            self.send(head + payload)

    def echo(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.send(b"E" + payload)


# ----------------------------------------------------------------------- socketio


class SocketIOWire(ClientWire):
    """Socket.IO 5 over Engine.IO 4, WebSocket transport only, default namespace."""

    protocol = "socketio"

    def __init__(self, counters: Counters, channel: str = "", send: Send | None = None) -> None:
        super().__init__(counters, channel, send)
        self._ack = 1

    def receive(self, frame: bytes, now_ns: int) -> int:
        if frame == b"2":  # Engine.IO ping
            self.send(b"3")
            return 0
        if not self.ready:
            return self._handshake(frame)
        if frame.startswith(b"44"):
            self._fail(f"connect error {frame[2:80].decode(errors='replace')}")
        return self._count(STAMP.findall(frame), now_ns)

    def _handshake(self, frame: bytes) -> int:
        if frame.startswith(b"0{"):  # Engine.IO open
            self.send(b"40")
        elif frame.startswith(b"40"):  # namespace joined
            if self.channel:
                self.send(b"420" + json.dumps(["subscribe", self.channel]).encode())
            else:
                self.ready = True
        elif frame.startswith(b"430"):
            self.ready = True
        elif frame.startswith(b"44"):
            self._fail(f"connect error {frame[2:80].decode(errors='replace')}")
        return 0

    def publish(self, channel: str, payloads: list[bytes]) -> None:
        head = b'42["publish",' + json.dumps(channel).encode() + b","
        for payload in payloads:
            self.send(head + payload + b"]")

    def echo(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            ack = self._ack
            self._ack += 1
            self.send(b"42%d" % ack + b'["echo",' + payload + b"]")
