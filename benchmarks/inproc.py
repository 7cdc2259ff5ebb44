"""The core without sockets: command dispatch rate and Python memory per session.

    python benchmarks/inproc.py dispatch [--commands 50000]
    python benchmarks/inproc.py fanout [--subscribers 1000 --publications 300 --per-frame 1]
    python benchmarks/inproc.py memory [--sessions 5000]

``dispatch`` feeds publish commands (100 sessions, each subscribed to its own channel,
publish-to-self as in `hubbub bench echo`; ``--rpc``: RPC ``echo`` commands instead;
``--per-frame K``: K commands in each frame, as a pipelining client sends them)
straight into ``Session.data_received`` and counts commands per second: the server's
per-command cost without the network stack or a load generator. ``fanout`` publishes
to one channel with N subscribers, one publication per loop turn (no coalescing: a
quiet chat room's case), and counts deliveries per second: the Python cost of one
delivery, the ``send()`` excluded.
``memory`` connects and subscribes N sessions on fake
connections and reports the Python bytes they hold (tracemalloc): hubbub's own share
of the per-connection memory, the transport libraries' share excluded.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from pathlib import Path

import uvloop

from hubbub.config import load_settings
from hubbub.core.node import Node
from hubbub.protocol.codes import Disconnect

CONFIG = Path(__file__).parent / "configs" / "hubbub-bench.yaml"
PAYLOAD = b'{"t":1234567890123,"p":"' + b"x" * 40 + b'"}'


class FakeConnection:
    """A transport that takes every frame and holds nothing back."""

    transport_name = "fake"
    remote = "127.0.0.1:1"

    def write(self, frame: bytes) -> int:
        return 0

    def close(self, disconnect: Disconnect) -> None:
        pass


async def _node() -> Node:
    settings = load_settings(
        CONFIG, overrides={"server.port": 0, "server.internal_port": 0}, environ={}
    )
    node = Node(settings)
    await node.start()
    return node


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def dispatch(commands: int, rpc: bool = False, per_frame: int = 1) -> None:
    node = await _node()

    @node.rpc("echo")
    async def echo(ctx: object, data: bytes) -> bytes:
        return data

    codec = node.codecs.get("json")
    sessions = []
    for i in range(100):
        session = node.accept(FakeConnection(), codec)
        session.data_received(b'{"id":1,"connect":{}}')
        session.data_received(b'{"id":2,"subscribe":{"channel":"bench:e%d"}}' % i)
        sessions.append(session)
    await _turns()
    frames = [
        b"\n".join(
            b'{"id":%d,"rpc":{"method":"echo","data":%s}}' % (3 + k, PAYLOAD)
            if rpc
            else b'{"id":%d,"publish":{"channel":"bench:e%d","data":%s}}' % (3 + k, i, PAYLOAD)
            for k in range(per_frame)
        )
        for i in range(100)
    ]
    start = time.perf_counter()
    for _ in range(commands // (100 * per_frame)):
        for session, frame in zip(sessions, frames, strict=True):
            session.data_received(frame)
        await _turns(2)
    elapsed = time.perf_counter() - start
    kind = "rpc" if rpc else "publish"
    print(f"dispatch: {commands / elapsed:,.0f} {kind} commands/s (100 sessions)")
    await node.shutdown(0)


async def fanout(subscribers: int, publications: int, per_frame: int = 1) -> None:
    node = await _node()
    codec = node.codecs.get("json")
    sessions = []
    for _ in range(subscribers):
        session = node.accept(FakeConnection(), codec)
        session.data_received(b'{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"bench:f"}}')
        sessions.append(session)
    await _turns()
    publisher = sessions[0]
    command = b'{"id":3,"publish":{"channel":"bench:f","data":%s}}' % PAYLOAD
    frame = b"\n".join([command] * per_frame)  # a publisher's burst, read in one turn
    start = time.perf_counter()
    for _ in range(publications // per_frame):
        publisher.data_received(frame)
        await _turns(2)
    elapsed = time.perf_counter() - start
    rate = publications * subscribers / elapsed
    print(f"fanout: {rate:,.0f} deliveries/s, {1e6 / rate:.2f} µs each ({subscribers} subscribers)")
    await node.shutdown(0)


async def memory(count: int) -> None:
    node = await _node()
    codec = node.codecs.get("json")
    keep = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(count):
        connection = FakeConnection()
        session = node.accept(connection, codec)
        session.data_received(b'{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"bench:x"}}')
        keep.append(connection)
    await _turns(10)
    gc.collect()
    after = tracemalloc.take_snapshot()
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"memory: {total / count:,.0f} Python bytes per connected, subscribed session")
    await node.shutdown(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    dis = sub.add_parser("dispatch")
    dis.add_argument("--commands", type=int, default=50_000)
    dis.add_argument("--rpc", action="store_true", help="RPC echo commands instead of publish")
    dis.add_argument("--per-frame", type=int, default=1, help="commands in each frame")
    fan = sub.add_parser("fanout")
    fan.add_argument("--subscribers", type=int, default=1_000)
    fan.add_argument("--publications", type=int, default=300)
    fan.add_argument("--per-frame", type=int, default=1, help="publish commands in each frame")
    sub.add_parser("memory").add_argument("--sessions", type=int, default=5_000)
    args = parser.parse_args()
    if args.what == "dispatch":
        uvloop.run(dispatch(args.commands, args.rpc, args.per_frame))
    elif args.what == "fanout":
        uvloop.run(fanout(args.subscribers, args.publications, args.per_frame))
    else:
        uvloop.run(memory(args.sessions))


if __name__ == "__main__":
    main()
