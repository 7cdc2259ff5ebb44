"""A tiny raw TCP client for the integration tests, with the API of ``wsclient.WsClient``.

It opens with the preamble line ``hubbub/1 <codec>``, then speaks the client protocol
with plain dicts: JSON lines, or ``uvarint(len) + message`` items for Protobuf (the
SDK's schema, as in wsclient) and msgpack (plain msgspec maps, payloads as bin). Its
framing is written here, independent of the server's. A ``frames`` entry is what one
read delivered. A Disconnect push is the TCP close code: ``closed()`` returns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import msgspec

from integration.wsclient import WAIT, decode_protobuf, encode_protobuf, uvarint

NO_DISCONNECT = (1006, "")
"""What ``closed()`` gives when the server closed without a Disconnect push."""


def _read_uvarint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when the varint is not complete yet."""
    result = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
    return None


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


class TcpClient:
    """One raw TCP connection; see the module docstring."""

    def __init__(self, codec: str, auto_pong: bool) -> None:
        self.codec = codec
        self.protobuf = codec != "json"  # binary, as in WsClient
        self.auto_pong = auto_pong
        self.frames: list[list[dict[str, Any]]] = []
        self.raw_frames: list[bytes | str] = []
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pings = 0
        self.unexpected: list[dict[str, Any]] = []
        self.client_id = ""
        self.disconnect: tuple[int, str] | None = None
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

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
        self.frames.append(messages)
        for message in messages:
            self._dispatch(message)

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
        while (found := _read_uvarint(buf, pos)) is not None:
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
        cid = message.get("id", 0)
        if cid:
            future = self._replies.pop(cid, None)
            if future is not None and not future.done():
                future.set_result(message)
        elif "push" in message and "disconnect" in message["push"]:
            disconnect = message["push"]["disconnect"]
            self.disconnect = (disconnect["code"], disconnect["reason"])
        elif "push" in message:
            self.pushes.put_nowait(message["push"])
        elif not message:
            self.pings += 1
            if self.auto_pong:
                self.write(encode_commands(self.codec, [{}]))
        else:
            self.unexpected.append(message)

    def _lost(self) -> None:
        if not self._closed.done():
            self._closed.set_result(self.disconnect or NO_DISCONNECT)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))

    def stop_reading(self) -> None:
        """Stop taking bytes: the kernel buffers fill and the server's writes back up."""
        assert self.transport is not None
        self.transport.pause_reading()

    # ------------------------------------------------------------------ writing

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

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

    def expect(self, cid: int) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[cid] = future
        return future

    async def call(self, method: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its reply (result or error)."""
        cid = self.next_id()
        future = self.expect(cid)
        await self.send({"id": cid, method: request or {}})
        return await asyncio.wait_for(future, WAIT)

    async def batch(self, *requests: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Send several commands in ONE write; return their replies in order."""
        commands, futures = [], []
        for method, request in requests:
            cid = self.next_id()
            futures.append(self.expect(cid))
            commands.append({"id": cid, method: request})
        await self.send(*commands)
        return [await asyncio.wait_for(f, WAIT) for f in futures]

    async def connect(self, **request: Any) -> dict[str, Any]:
        reply = await self.call("connect", request)
        assert "error" not in reply, reply
        self.client_id = reply["connect"]["client"]
        result: dict[str, Any] = reply["connect"]
        return result

    async def subscribe(self, channel: str, **request: Any) -> dict[str, Any]:
        reply = await self.call("subscribe", {"channel": channel, **request})
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["subscribe"]
        return result

    async def publish(self, channel: str, data: Any) -> dict[str, Any]:
        reply = await self.call("publish", {"channel": channel, "data": data})
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["publish"]
        return result

    # ------------------------------------------------------------------ waiting

    async def push(self, kind: str | None = None, timeout: float = WAIT) -> dict[str, Any]:
        """The next push (of ``kind`` — pub, join, leave — when given; others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                push = await self.pushes.get()
                if kind is None or kind in push:
                    return push

    async def pubs(self, n: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        """The next ``n`` publications."""
        return [(await self.push("pub", timeout))["pub"] for _ in range(n)]

    async def closed(self, timeout: float = WAIT) -> tuple[int, str]:
        """Wait for the connection to end: the Disconnect push's code and reason."""
        result = await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        assert not self.unexpected, f"unexpected messages: {self.unexpected}"
        return result

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

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
        assert not self.unexpected, (
            f"id-less replies that are neither push nor ping: {self.unexpected}"
        )
