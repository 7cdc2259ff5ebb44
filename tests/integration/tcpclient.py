"""A tiny raw TCP client for the integration tests, with the API of ``wsclient.WsClient``.

It opens with the preamble line ``hubbub/1 <codec>``, then speaks the client protocol
with plain dicts: JSON lines, or ``uvarint(len) + message`` items for Protobuf (the
SDK's schema, as in wsclient) and msgpack (plain msgspec maps, payloads as bin). Its
framing is written here, independent of the server's. A ``frames`` entry is what one
read delivered; messages are then handled as clientbase.py says. A Disconnect push is
the TCP close code: ``closed()`` returns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import msgspec

from integration.clientbase import WAIT, ClientBase
from integration.wsclient import decode_protobuf, encode_protobuf, read_uvarint, uvarint

NO_DISCONNECT = (1006, "")
"""What ``closed()`` gives when the server closed without a Disconnect push."""


def _bin_payloads(value: Any, key: str = "") -> Any:
    """A command dict for msgpack: ``data`` that is not bytes is sent as JSON bytes."""
    if key == "data" and not isinstance(value, bytes):
        return json.dumps(value).encode()
    if isinstance(value, dict):
        return {k: _bin_payloads(v, k) for k, v in value.items()}
    return value


def encode_commands(codec: str, commands: list[dict[str, Any]]) -> bytes:
    """``commands`` as the bytes one write sends: lines or length-prefixed items."""
    if codec == "json":
        return b"".join(json.dumps(c).encode() + b"\n" for c in commands)
    if codec == "protobuf":
        return encode_protobuf(commands)
    items = []
    for command in commands:
        body = msgspec.msgpack.encode(_bin_payloads(command)) if command else b""
        items.append(uvarint(len(body)) + body)
    return b"".join(items)


class _Stream(asyncio.Protocol):
    """Hands the client's bytes and the end of the connection over."""

    def __init__(self, client: TcpClient) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._received(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost()


class TcpClient(ClientBase):
    """One raw TCP connection; see the module docstring."""

    def __init__(self, codec: str, auto_pong: bool) -> None:
        super().__init__(codec != "json", auto_pong)  # binary, as in WsClient
        self.codec = codec
        self.disconnect: tuple[int, str] | None = None
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    @classmethod
    async def open(
        cls,
        port: int,
        *,
        protobuf: bool = False,
        codec: str | None = None,
        auto_pong: bool = True,
        sock: socket.socket | None = None,
    ) -> TcpClient:
        """Connect to 127.0.0.1:``port`` and send the preamble for ``codec`` (json, or
        protobuf when ``protobuf``)."""
        name = codec or ("protobuf" if protobuf else "json")
        client = cls(name, auto_pong)
        loop = asyncio.get_running_loop()
        if sock is not None:
            connecting = loop.create_connection(lambda: _Stream(client), sock=sock)
        else:
            connecting = loop.create_connection(lambda: _Stream(client), "127.0.0.1", port)
        transport, _ = await asyncio.wait_for(connecting, WAIT)
        client.transport = transport
        transport.write(f"hubbub/1 {name}\n".encode())
        return client

    # ------------------------------------------------------------------ reading

    def _received(self, data: bytes) -> None:
        self._buffer += data
        try:
            chunk, messages = self._split()
        except Exception as exc:  # bytes this client cannot decode: the test must fail
            self.unexpected.append({"undecodable bytes": repr(exc)})
            self.abort()
            return
        if not messages:
            return
        self.raw_frames.append(chunk if self.protobuf else chunk.decode())
        self._deliver(messages)

    def _split(self) -> tuple[bytes, list[dict[str, Any]]]:
        """Take the complete messages off the buffer: (their bytes, decoded)."""
        buf = self._buffer
        if not self.protobuf:
            end = buf.rfind(b"\n") + 1
            chunk = bytes(buf[:end])
            del buf[:end]
            return chunk, [json.loads(line) for line in chunk[:-1].split(b"\n")] if end else []
        pos = 0
        bodies: list[bytes] = []
        while (found := read_uvarint(buf, pos)) is not None:
            size, start = found
            if start + size > len(buf):
                break
            bodies.append(bytes(buf[start : start + size]))
            pos = start + size
        chunk = bytes(buf[:pos])
        del buf[:pos]
        if self.codec == "protobuf":
            return chunk, decode_protobuf(chunk)
        return chunk, [msgspec.msgpack.decode(b) if b else {} for b in bodies]

    def _dispatch(self, message: dict[str, Any]) -> None:
        push = message.get("push")
        if not message.get("id", 0) and push is not None and "disconnect" in push:
            self.disconnect = (push["disconnect"]["code"], push["disconnect"]["reason"])
        else:
            super()._dispatch(message)

    def _answer_ping(self) -> None:
        self.write(encode_commands(self.codec, [{}]))

    def _lost(self) -> None:
        self._ended(self.disconnect or NO_DISCONNECT)

    def stop_reading(self) -> None:
        """Stop taking bytes: the kernel buffers fill and the server's writes back up."""
        assert self.transport is not None
        self.transport.pause_reading()

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        """Send bytes exactly as given (framing included)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def send_raw(self, frame: bytes | str) -> None:
        """Send one unframed message: a JSON line gets its ``\\n``; binary goes as is."""
        data = frame.encode() if isinstance(frame, str) else frame
        self.write(data if self.protobuf else data + b"\n")

    async def send(self, *commands: dict[str, Any]) -> None:
        """Send ``commands`` in one write."""
        self.write(encode_commands(self.codec, list(commands)))

    # ------------------------------------------------------------------ closing

    def abort(self) -> None:
        """Drop the connection without a word (a vanished client)."""
        if self.transport is not None:
            self.transport.abort()

    async def close(self) -> None:
        """Close from the client side; fails if the server sent an id-less non-push reply."""
        if self.transport is not None:
            self.transport.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._closed), WAIT)
        self._assert_nothing_unexpected()
