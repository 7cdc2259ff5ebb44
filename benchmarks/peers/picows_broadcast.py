"""A minimal broadcast server on picows + uvloop: the baseline hubbub is compared with.

The plain protocol (see ``hubbub.bench.wire``), text frames only:

* ``S<channel>``            subscribe; answered ``OK``
* ``P<channel>\\n<payload>``  every subscriber of the channel (the sender too, when it
                            subscribed) gets ``M<channel>\\n<payload>``, one frame each
* ``E<payload>``            the same frame goes back (echo)

What a delivery costs here is what the libraries cost: no codec, no per-client queue,
no coalescing of frames, no permissions — one ``send`` per subscriber per message.

    python benchmarks/peers/picows_broadcast.py --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

Subscribers = dict[bytes, set[WSTransport]]


class Peer(WSListener):  # type: ignore[misc]
    def __init__(self, hub: Subscribers) -> None:
        super().__init__()
        self.hub = hub
        self.channels: list[bytes] = []
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind is not WSMsgType.TEXT and kind is not WSMsgType.BINARY:
            return
        data = frame.get_payload_as_bytes()
        op = data[:1]
        if op == b"P":
            channel = data[1 : data.index(b"\n")]
            out = b"M" + data[1:]
            for subscriber in self.hub.get(channel, ()):
                subscriber.send(WSMsgType.TEXT, out)
        elif op == b"E":
            transport.send(WSMsgType.TEXT, data)
        elif op == b"S":
            channel = data[1:]
            self.hub.setdefault(channel, set()).add(transport)
            self.channels.append(channel)
            transport.send(WSMsgType.TEXT, b"OK")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for channel in self.channels:
            subscribers = self.hub.get(channel)
            if subscribers is not None:
                subscribers.discard(transport)
                if not subscribers:
                    del self.hub[channel]


async def serve(host: str, port: int, read_buffer: int, aiofastnet: bool | None) -> None:
    hub: Subscribers = {}
    server = await ws_create_server(
        lambda request: Peer(hub),
        host,
        port,
        read_buffer_init_size=read_buffer,
        use_aiofastnet=aiofastnet,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"picows broadcast on ws://{host}:{port}/", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal picows broadcast server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--read-buffer", type=int, default=16 * 1024, help="picows read_buffer_init_size"
    )
    parser.add_argument(
        "--aiofastnet",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="picows' socket layer (default: aiofastnet when installed, else uvloop's)",
    )
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.read_buffer, args.aiofastnet))


if __name__ == "__main__":
    main()
