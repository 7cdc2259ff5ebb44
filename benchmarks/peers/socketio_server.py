"""A minimal python-socketio server on uvicorn: rooms as channels.

Socket.IO events, default namespace, WebSocket transport:

* ``subscribe(channel)``        joins the room; acknowledged with ``"ok"``
* ``publish(channel, payload)`` emits ``m(payload)`` to the room (the sender too, when
                                it joined) — python-socketio encodes the packet once
* ``echo(payload)``             acknowledged with the payload

    python benchmarks/peers/socketio_server.py --port 8300
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio  # type: ignore[import-untyped]
import uvicorn

sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], cors_allowed_origins="*")
app = socketio.ASGIApp(sio)


@sio.event  # type: ignore[misc]
async def subscribe(sid: str, channel: str) -> str:
    await sio.enter_room(sid, channel)
    return "ok"


@sio.event  # type: ignore[misc]
async def publish(sid: str, channel: str, payload: Any) -> None:
    await sio.emit("m", payload, to=channel)


@sio.event  # type: ignore[misc]
async def echo(sid: str, payload: Any) -> Any:
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal python-socketio broadcast server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
