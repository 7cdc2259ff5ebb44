"""Client wires: handshakes, pongs and stamped payloads, bytes in and bytes out."""

from __future__ import annotations

import msgspec
import pytest

from hubbub.bench import payload
from hubbub.bench import wire as wire_module
from hubbub.bench.wire import CentrifugeWire, Counters, PlainWire, SocketIOWire
from hubbub.codecs.registry import default_registry
from hubbub.protocol.messages import (
    PING,
    ClientInfo,
    Command,
    ConnectResult,
    Error,
    Publication,
    PublishRequest,
    Push,
    Reply,
    RPCRequest,
    SubscribeResult,
)


def test_payload_carries_its_send_time() -> None:
    """Payloads have the requested size and their stamp is found again, spaces or not."""
    body = payload.make(7, 64, stamp_ns=5_000_000)
    assert len(body) == 64
    assert msgspec.json.decode(body)["bt"] == 5_000_000
    assert payload.STAMP.findall(body + b'\n{"bt": 4000000}') == [b"5000000", b"4000000"]
    assert msgspec.json.decode(payload.make(1, 10))["p"] == ""  # too small: no padding


@pytest.mark.parametrize("codec_name", ["json", "protobuf"])
def test_centrifuge_handshake_pushes_and_pings(codec_name: str) -> None:
    """connect + subscribe go out in one frame; the subscribe reply makes the wire ready;
    pushes are counted with their latency; a ping is answered with a pong."""
    codec = default_registry().get(codec_name)
    sent: list[bytes] = []
    counters = Counters()
    wire = CentrifugeWire(codec, counters, "bench:x", sent.append)
    wire.start()
    commands = codec.decode(sent[0], Command)
    assert [c.id for c in commands] == [1, 2]
    assert commands[1].subscribe is not None and commands[1].subscribe.channel == "bench:x"

    replies = [
        Reply(id=1, connect=ConnectResult(client="c1")),
        Reply(id=2, subscribe=SubscribeResult()),
    ]
    wire.receive(codec.join([codec.encode(r) for r in replies]), now_ns=0)
    assert wire.ready and wire.client_id == "c1"

    counters.recording = True
    data = payload.make(1, 64, stamp_ns=1_000_000)
    pub = Publication(data=msgspec.Raw(data), info=ClientInfo(user="", client="c2"))
    push = codec.encode(Reply(push=Push(channel="bench:x", pub=pub)))
    frame = codec.join([push, push, codec.encode(PING)])
    assert wire.receive(frame, now_ns=3_000_000) == 2
    assert counters.delivered == 2
    assert counters.take_latencies().tolist() == [2000, 2000]
    assert codec.decode(sent[-1], Command) == [Command()]  # the pong


def _ready_json_wire(sent: list[bytes]) -> tuple[CentrifugeWire, Counters]:
    codec = default_registry().get("json")
    counters = Counters()
    wire = CentrifugeWire(codec, counters, "bench:x", sent.append)
    wire.ready = True
    return wire, counters


def _push_line(stamp_ns: int) -> bytes:
    codec = default_registry().get("json")
    data = payload.make(1, 64, stamp_ns=stamp_ns)
    return codec.encode(
        Reply(push=Push(channel="bench:x", pub=Publication(data=msgspec.Raw(data))))
    )


PING_LINE = b"{}"
ERROR_LINE = b'{"id":11,"error":{"code":109,"message":"token expired"}}'


@pytest.mark.parametrize("extra", [PING_LINE, ERROR_LINE], ids=["ping", "error"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_json_frames_with_an_unstamped_line_are_scanned_in_full(extra: bytes, where: str) -> None:
    """Frames of stamped publications only skip the ping and error scan; any other line,
    wherever it is in the frame, brings the scan back: a ping there is answered, an error
    counted, and the publications around it are counted all the same."""
    sent: list[bytes] = []
    wire, counters = _ready_json_wire(sent)
    lines = [_push_line(1_000), _push_line(2_000)]
    lines.insert({"first": 0, "middle": 1, "last": 2}[where], extra)
    assert wire.receive(b"\n".join(lines), now_ns=5_000) == 2
    pong = default_registry().get("json").encode(Command())
    assert sent == ([pong] if extra == PING_LINE else [])
    assert counters.errors == ({"error 109 token expired": 1} if extra == ERROR_LINE else {})
    assert counters.delivered == 2


def test_latencies_are_computed_per_frame_at_collection() -> None:
    """Each stamp is taken from its own frame's arrival time; recording off keeps none;
    a take empties what was recorded."""
    wire, counters = _ready_json_wire([])
    wire.receive(_push_line(1_000_000), now_ns=9_000_000)  # not recording
    counters.recording = True
    wire.receive(b"\n".join([_push_line(1_000_000), _push_line(3_000_000)]), now_ns=4_000_000)
    wire.receive(_push_line(5_000_000), now_ns=12_000_000)
    assert counters.delivered == 4
    assert counters.take_latencies().tolist() == [3000, 1000, 7000]
    assert counters.take_latencies().tolist() == []


def test_centrifuge_errors_are_counted() -> None:
    """An error reply during the handshake fails the wire with its code."""
    codec = default_registry().get("json")
    counters = Counters()
    wire = CentrifugeWire(codec, counters, "nope", lambda frame: None)
    wire.start()
    error = Reply(id=2, error=Error(code=103, message="permission denied"))
    wire.receive(
        codec.encode(Reply(id=1, connect=ConnectResult(client="c"))) + b"\n" + codec.encode(error),
        0,
    )
    assert not wire.ready
    assert wire.failure == "error 103 permission denied"


def test_centrifuge_publish_and_rpc_commands() -> None:
    """Publishes and RPCs carry fresh ids and the payload verbatim."""
    codec = default_registry().get("json")
    sent: list[bytes] = []
    wire = CentrifugeWire(codec, Counters(), "", sent.append)
    wire.publish("bench:fanout", [b'{"bt":1}', b'{"bt":2}'])
    wire.echo([b'{"bt":3}'])
    first, second = codec.decode(sent[0], Command)
    assert (first.id, second.id) == (10, 11)
    assert first.publish is not None and bytes(first.publish.data) == b'{"bt":1}'
    (rpc,) = codec.decode(sent[1], Command)
    assert rpc.id == 12 and rpc.rpc is not None and rpc.rpc.method == "echo"


@pytest.mark.parametrize("codec_name", ["json", "protobuf"])
@pytest.mark.parametrize("method", ["publish", "echo"])
def test_a_burst_of_commands_is_cut_into_frames_the_server_takes(
    codec_name: str, method: str
) -> None:
    """A pacer catching up sends thousands of commands at once: every frame stays within
    the server's default message limit, and the commands arrive whole and in order."""
    codec = default_registry().get(codec_name)
    sent: list[bytes] = []
    wire = CentrifugeWire(codec, Counters(), "", sent.append)
    bodies = [payload.make(n, 128) for n in range(3_000)]  # ~450 KB of commands
    if method == "publish":
        wire.publish("bench:fanout", bodies)
    else:
        wire.echo(bodies)
    assert len(sent) > 1
    assert max(len(frame) for frame in sent) <= wire_module.MAX_FRAME_BYTES
    commands = [command for frame in sent for command in codec.decode(frame, Command)]
    assert [c.id for c in commands] == list(range(10, 10 + len(bodies)))
    requests = [c.publish if method == "publish" else c.rpc for c in commands]
    assert [bytes(r.data) for r in requests if r is not None] == bodies


def test_a_command_larger_than_a_frame_goes_alone() -> None:
    runs = list(wire_module.frames_of([b"a" * 10, b"b" * 100, b"c" * 10], limit=50))
    assert runs == [[b"a" * 10], [b"b" * 100], [b"c" * 10]]
    assert list(wire_module.frames_of([])) == []


def test_plain_wire() -> None:
    """S<channel> → OK; P<channel>\\n<payload> out; stamped frames counted."""
    sent: list[bytes] = []
    counters = Counters()
    wire = PlainWire(counters, "room", sent.append)
    wire.start()
    assert sent == [b"Sroom"]
    wire.receive(b"OK", 0)
    assert wire.ready
    wire.publish("room", [b'{"bt":1}'])
    assert sent[-1] == b'Proom\n{"bt":1}'
    assert wire.receive(b'Mroom\n{"bt":1}', 0) == 1


def test_socketio_wire() -> None:
    """Engine.IO open → 40; namespace → subscribe with ack 0; ping 2 → pong 3."""
    sent: list[bytes] = []
    wire = SocketIOWire(Counters(), "room", sent.append)
    wire.receive(b'0{"sid":"x","pingInterval":25000}', 0)
    assert sent == [b"40"]
    wire.receive(b'40{"sid":"y"}', 0)
    assert sent[-1] == b'420["subscribe", "room"]'
    wire.receive(b'430["ok"]', 0)
    assert wire.ready
    wire.receive(b"2", 0)
    assert sent[-1] == b"3"
    assert wire.receive(b'42["m",{"bt": 12, "s": 1}]', 0) == 1
    wire.echo([b'{"bt":5}'])
    assert sent[-1] == b'421["echo",{"bt":5}]'


def test_json_commands_from_the_template_equal_the_codecs_bytes() -> None:
    """The JSON wire writes publish and RPC commands from a template (the generator makes
    one per message); they must be byte for byte what the codec would write."""
    codec = default_registry().get("json")
    sent: list[bytes] = []
    wire = CentrifugeWire(codec, Counters(), "", sent.append)
    bodies = [payload.make(n, 64, stamp_ns=1_000 + n) for n in range(3)]
    channel = 'bench:"quoted" 100%s'  # a quote to escape in JSON, a % in the template
    wire.publish(channel, bodies[:2])
    wire.echo(bodies[2:])
    published = [
        Command(id=10 + n, publish=PublishRequest(channel=channel, data=msgspec.Raw(b)))
        for n, b in enumerate(bodies[:2])
    ]
    called = Command(id=12, rpc=RPCRequest(method="echo", data=msgspec.Raw(bodies[2])))
    assert sent == [codec.join([codec.encode(c) for c in published]), codec.encode(called)]


def test_latencies_folded_on_the_way_come_back_whole_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept stamps are folded every few (memory stays bounded): what a take returns is the
    same as with no fold, every stamp once, in arrival order."""
    monkeypatch.setattr(wire_module, "FOLD_STAMPS", 3)
    wire, counters = _ready_json_wire([])
    counters.recording = True
    expected = []
    for n in range(7):
        arrival = 10_000_000 + n * 1_000_000
        sends = [1_000_000 * n, 1_000_000 * n + 500_000]
        wire.receive(b"\n".join(_push_line(t) for t in sends), now_ns=arrival)
        expected += [(arrival - t) // 1000 for t in sends]
    assert len(counters.folded) == 3  # at frames 2, 4 and 6; frame 7 is still kept
    assert counters.take_latencies().tolist() == expected
    assert counters.folded == [] and counters.kept == 0
