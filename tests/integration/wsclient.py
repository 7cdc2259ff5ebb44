"""A tiny raw WebSocket client for the integration tests, on the ``websockets`` library.

It speaks the Centrifuge client protocol v2 with plain dicts: commands go out as JSON
lines or as varint-delimited Protobuf; every server frame is decoded into a list of
dicts and kept (``frames``), then handled as clientbase.py says (replies matched by id,
pushes queued, pings answered); the close code and reason are recorded.

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

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from integration.clientbase import WAIT, ClientBase

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


def read_uvarint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
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
        found = read_uvarint(frame, pos)
        assert found is not None, "frame ends inside a length prefix"
        size, pos = found
        msg = cls()
        msg.ParseFromString(frame[pos : pos + size])
        pos += size
        out.append(_to_dict(msg))
    return out


def payload(data: Any) -> Any:
    """A publication's ``data`` as a Python value on either format."""
    return json.loads(data) if isinstance(data, bytes | str) else data


class WsClient(ClientBase):
    """One raw connection; see the module docstring."""

    def __init__(self, ws: ClientConnection, protobuf: bool, auto_pong: bool) -> None:
        super().__init__(protobuf, auto_pong)
        self.ws = ws
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
                self._deliver(messages)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a frame this client cannot decode: the test must fail
            self.unexpected.append({"undecodable frame": repr(exc)})
            self.ws.transport.abort()
        finally:
            code = self.ws.close_code
            self._ended((code, self.ws.close_reason or "") if code else (1006, ""))

    def _answer_ping(self) -> None:
        asyncio.get_running_loop().create_task(self._pong())

    async def _pong(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send_raw(b"\x00" if self.protobuf else "{}")

    def stop_reading(self) -> None:
        """Stop taking frames: websockets then stops reading the socket."""
        self._reader.cancel()

    # ------------------------------------------------------------------ writing

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def send(self, *commands: dict[str, Any]) -> None:
        """Send ``commands`` in one frame."""
        if self.protobuf:
            await self.ws.send(encode_protobuf(list(commands)))
        else:
            await self.ws.send("\n".join(json.dumps(c) for c in commands))

    # ------------------------------------------------------------------ closing

    def abort(self) -> None:
        """Drop the connection without a close frame (a vanished client)."""
        self.ws.transport.abort()

    async def close(self) -> None:
        """Close from the client side; fails if the server sent an id-less non-push reply."""
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), WAIT)
        self.ws.transport.abort()  # frees the socket a stalled close leaves open; else a no-op
        self._assert_nothing_unexpected()


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
