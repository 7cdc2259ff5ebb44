"""A tiny raw WebSocket client for the integration tests, on the ``websockets`` library.

It speaks the Centrifuge client protocol v2 with plain dicts: commands go out as JSON
lines or as varint-delimited Protobuf; every server frame is decoded into a list of
dicts and kept (``frames``), replies are matched by id, pushes are queued, pings are
answered (unless ``auto_pong`` is off) and the close code and reason are recorded.

Protobuf uses centrifuge-python's copy of the schema, loaded into a private descriptor
pool: independent of the server's generated module and clash-free with both.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from conftest import UNIT
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

WAIT = 40 * UNIT
"""How long a test waits for something that should come (2 s at scale 1)."""

_PKG = "centrifugal.centrifuge.protocol"
_pb_classes: dict[str, Any] = {}


def _pb(name: str) -> Any:
    """The message class ``name`` of the SDK's client.proto (private pool)."""
    if not _pb_classes:
        from google.protobuf import descriptor_pool, message_factory

        spec = importlib.util.find_spec("centrifuge")
        assert spec is not None and spec.submodule_search_locations
        source = Path(spec.submodule_search_locations[0], "protocol", "client_pb2.py")
        blob = next(
            ast.literal_eval(node.args[0])
            for node in ast.walk(ast.parse(source.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile"
        )
        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(blob)
        for kind in ("Command", "Reply"):
            desc = pool.FindMessageTypeByName(f"{_PKG}.{kind}")
            _pb_classes[kind] = message_factory.GetMessageClass(desc)
    return _pb_classes[name]


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fill(msg: Any, values: dict[str, Any]) -> None:
    """Set a Protobuf message from a dict; ``data`` that is not bytes is sent as JSON."""
    msg.SetInParent()
    for key, value in values.items():
        field = msg.DESCRIPTOR.fields_by_name[key]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(msg, key)
            for k, v in value.items():
                if isinstance(v, dict):
                    _fill(target[k], v)
                else:
                    target[k] = v
        elif field.message_type is not None:
            _fill(getattr(msg, key), value)
        elif field.type == field.TYPE_BYTES and not isinstance(value, bytes):
            setattr(msg, key, json.dumps(value).encode())
        else:
            setattr(msg, key, value)


def _to_dict(msg: Any) -> dict[str, Any]:
    """A Protobuf message as a dict of its set fields; bytes stay bytes, present
    empty sub-messages stay ``{}``."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vfield = field.message_type.fields_by_name["value"]
            out[field.name] = {
                k: (_to_dict(v) if vfield.message_type is not None else v) for k, v in value.items()
            }
        elif field.message_type is not None:
            if field.is_repeated:
                out[field.name] = [_to_dict(v) for v in value]
            else:
                out[field.name] = _to_dict(value)
        elif field.is_repeated:
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def encode_protobuf(commands: list[dict[str, Any]]) -> bytes:
    cls = _pb("Command")
    items = []
    for command in commands:
        msg = cls()
        _fill(msg, command)
        body = msg.SerializeToString()
        items.append(uvarint(len(body)) + body)
    return b"".join(items)


def decode_protobuf(frame: bytes) -> list[dict[str, Any]]:
    cls = _pb("Reply")
    out, pos = [], 0
    while pos < len(frame):
        size, pos = _read_uvarint(frame, pos)
        msg = cls()
        msg.ParseFromString(frame[pos : pos + size])
        pos += size
        out.append(_to_dict(msg))
    return out


def payload(data: Any) -> Any:
    """A publication's ``data`` as a Python value on either format."""
    return json.loads(data) if isinstance(data, bytes | str) else data


class WsClient:
    """One raw connection; see the module docstring."""

    def __init__(self, ws: ClientConnection, protobuf: bool, auto_pong: bool) -> None:
        self.ws = ws
        self.protobuf = protobuf
        self.auto_pong = auto_pong
        self.frames: list[list[dict[str, Any]]] = []
        self.raw_frames: list[bytes | str] = []
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pings = 0
        self.unexpected: list[dict[str, Any]] = []  # neither reply, push nor ping
        self.client_id = ""
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        protobuf: bool = False,
        subprotocols: list[str] | None = None,
        auto_pong: bool = True,
        **kwargs: Any,
    ) -> WsClient:
        """Open a connection; ``protobuf`` offers the centrifuge-protobuf subprotocol
        unless ``subprotocols`` says otherwise (e.g. [] with ``?format=protobuf``)."""
        if subprotocols is None:
            subprotocols = ["centrifuge-protobuf"] if protobuf else []
        ws = await connect(
            url,
            subprotocols=subprotocols or None,  # type: ignore[arg-type]
            ping_interval=None,
            max_size=None,
            open_timeout=WAIT,
            close_timeout=WAIT,
            **kwargs,
        )
        return cls(ws, protobuf, auto_pong)

    # ------------------------------------------------------------------ reading

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.raw_frames.append(frame)
                if self.protobuf:
                    assert isinstance(frame, bytes), "Protobuf frames must be binary"
                    messages = decode_protobuf(frame)
                else:
                    assert isinstance(frame, str), "JSON frames must be text"
                    messages = [json.loads(line) for line in frame.split("\n")]
                self.frames.append(messages)
                for message in messages:
                    self._dispatch(message)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a frame this client cannot decode: the test must fail
            self.unexpected.append({"undecodable frame": repr(exc)})
            self.ws.transport.abort()
        finally:
            if not self._closed.done():
                code = self.ws.close_code
                self._closed.set_result((code, self.ws.close_reason or "") if code else (1006, ""))
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        cid = message.get("id", 0)
        if cid:
            future = self._replies.pop(cid, None)
            if future is not None and not future.done():
                future.set_result(message)
        elif "push" in message:
            self.pushes.put_nowait(message["push"])
        elif not message:
            self.pings += 1
            if self.auto_pong:
                asyncio.get_running_loop().create_task(self._pong())
        else:
            self.unexpected.append(message)

    async def _pong(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send_raw(b"\x00" if self.protobuf else "{}")

    def stop_reading(self) -> None:
        """Stop taking frames: websockets then stops reading the socket."""
        self._reader.cancel()

    # ------------------------------------------------------------------ writing

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def send(self, *commands: dict[str, Any]) -> None:
        """Send ``commands`` in one frame."""
        if self.protobuf:
            await self.ws.send(encode_protobuf(list(commands)))
        else:
            await self.ws.send("\n".join(json.dumps(c) for c in commands))

    def expect(self, cid: int) -> asyncio.Future[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        self._replies[cid] = future
        return future

    async def call(self, method: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its reply (result or error)."""
        cid = self.next_id()
        future = self.expect(cid)
        await self.send({"id": cid, method: request or {}})
        return await asyncio.wait_for(future, WAIT)

    async def batch(self, *requests: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Send several commands in ONE frame; return their replies in order."""
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
        return reply["connect"]

    async def subscribe(self, channel: str, **request: Any) -> dict[str, Any]:
        reply = await self.call("subscribe", {"channel": channel, **request})
        assert "error" not in reply, reply
        return reply["subscribe"]

    async def publish(self, channel: str, data: Any) -> dict[str, Any]:
        reply = await self.call("publish", {"channel": channel, "data": data})
        assert "error" not in reply, reply
        return reply["publish"]

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
        """Wait for the connection to end: the close code and reason received."""
        result = await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        assert not self.unexpected, f"unexpected messages: {self.unexpected}"
        return result

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    def abort(self) -> None:
        """Drop the connection without a close frame (a vanished client)."""
        self.ws.transport.abort()

    async def close(self) -> None:
        """Close from the client side; fails if the server sent an id-less non-push reply."""
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), WAIT)
        self.ws.transport.abort()  # frees the socket a stalled close leaves open; else a no-op
        assert not self.unexpected, (
            f"id-less replies that are neither push nor ping: {self.unexpected}"
        )


async def open_client(url: str, **kwargs: Any) -> WsClient:
    """Open a connection and send connect."""
    client = await WsClient.open(url, **kwargs)
    await client.connect()
    return client


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET on 127.0.0.1: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
        return status, body
    finally:
        writer.close()
