"""Codec micro-benchmark: encode and decode cost and size for typical chat messages.

For every registered codec and every sample payload it measures what the server
does per message: *encode* a publication push (once per publication and codec in
the fan-out) and *decode* a publish command (once per command received), plus the
bytes each takes on the wire. Best of several repeats, ``time.perf_counter_ns``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import msgspec

from hubbub.codecs.base import Codec
from hubbub.codecs.registry import CodecRegistry, default_registry
from hubbub.protocol.messages import (
    ClientInfo,
    Command,
    Publication,
    PublishRequest,
    Push,
    Reply,
)

SAMPLES: dict[str, bytes] = {
    "short": b'{"text":"hi \\ud83d\\udc4b","user":"ana"}',
    "chat line": (
        b'{"text":"Has anyone tried the new build on staging? The login page looks '
        b'off on Safari, buttons overlap the footer.","user":"u-48213","room":"lobby",'
        b'"ts":1767225600123,"reply_to":"m-90211"}'
    ),
    "rich": (
        b'{"text":"Release notes for 2.4 attached, please review before Friday.",'
        b'"user":"u-7","room":"eng","ts":1767225600123,"mentions":["u-1","u-2","u-3"],'
        b'"attachments":['
        + b",".join(
            b'{"name":"notes-%d.pdf","size":%d,"url":"https://files.example.org/a/%d"}'
            % (i, 10_000 + i, i)
            for i in range(6)
        )
        + b'],"reactions":{"+1":4,"eyes":2}}'
    ),
}
"""Typical chat payloads (JSON, as JSON clients publish them)."""


class CodecFigures(msgspec.Struct, kw_only=True):
    """One codec on one sample payload."""

    codec: str
    sample: str
    payload_bytes: int
    encode_ns: float
    """Encoding the publication push a subscriber receives."""
    decode_ns: float
    """Decoding the publish command a client sends."""
    push_bytes: int
    command_bytes: int


def _push(data: bytes) -> Reply:
    info = ClientInfo(user="u-48213", client=str(uuid.UUID(int=7)))
    pub = Publication(data=msgspec.Raw(data), info=info, offset=1234)
    return Reply(push=Push(channel="chat:lobby", pub=pub))


def _command(data: bytes) -> Command:
    return Command(id=42, publish=PublishRequest(channel="chat:lobby", data=msgspec.Raw(data)))


def time_ns(fn: Callable[[], object], *, budget_s: float = 0.04, repeats: int = 5) -> float:
    """Best per-call time in ns over ``repeats`` runs of about ``budget_s`` each."""
    number = 1
    while True:  # calibrate: enough calls to fill the budget
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter_ns() - start
        if elapsed >= budget_s * 1e9 / 4 or number >= 1 << 20:
            break
        number *= 4
    number = max(1, int(number * budget_s * 1e9 / max(elapsed, 1)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def measure_codec(
    codec: Codec, sample: str, data: bytes, *, budget_s: float = 0.04
) -> CodecFigures:
    """Figures of one codec on one payload."""
    push = _push(data)
    command_item = codec.encode(_command(data))
    frame = codec.join([command_item])
    encode = codec.encode
    decode = codec.decode
    return CodecFigures(
        codec=codec.name,
        sample=sample,
        payload_bytes=len(data),
        encode_ns=round(time_ns(lambda: encode(push), budget_s=budget_s), 1),
        decode_ns=round(time_ns(lambda: decode(frame, Command), budget_s=budget_s), 1),
        push_bytes=len(encode(push)),
        command_bytes=len(command_item),
    )


def measure(
    registry: CodecRegistry | None = None,
    samples: dict[str, bytes] | None = None,
    *,
    budget_s: float = 0.04,
) -> list[CodecFigures]:
    """Every registered codec on every sample."""
    registry = registry or default_registry()
    samples = samples or SAMPLES
    return [
        measure_codec(registry.get(name), sample, data, budget_s=budget_s)
        for name in registry.names()
        for sample, data in samples.items()
    ]


def per_codec(figures: list[CodecFigures]) -> dict[str, dict[str, float]]:
    """Mean figures per codec over the samples: the codec's criteria values."""
    grouped: dict[str, list[CodecFigures]] = {}
    for f in figures:
        grouped.setdefault(f.codec, []).append(f)
    return {
        name: {
            "encode_ns": sum(f.encode_ns for f in group) / len(group),
            "decode_ns": sum(f.decode_ns for f in group) / len(group),
            "push_bytes": sum(f.push_bytes for f in group) / len(group),
        }
        for name, group in grouped.items()
    }
