"""Codecs from other packages arrive through the ``hubbub.codecs`` entry point group.

Each test "installs" a distribution the way pip would leave it: a ``*.dist-info``
directory with ``METADATA`` and ``entry_points.txt`` on ``sys.path``, so
``importlib.metadata`` really discovers it and ``default_registry()`` really loads it.
The toy codec lives in ``tests/plugin_codec``; msgpack is loaded the same way, as any
third-party codec would be.
"""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import ServerFactory, ws_url
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from hubbub.codecs.msgpack import MsgpackCodec
from hubbub.codecs.registry import ENTRY_POINT_GROUP, UnknownCodecError, default_registry
from hubbub.protocol.varint import encode_uvarint

TESTS = Path(__file__).resolve().parent.parent
WAIT = 2.0
TOY = {"toy": "plugin_codec:ToyCodec"}
MSGPACK = {"msgpack": "hubbub.codecs.msgpack:MsgpackCodec"}


def install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dist: str, eps: dict[str, str]
) -> None:
    """Make ``dist`` look installed, declaring ``eps`` in the hubbub.codecs group."""
    info = tmp_path / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in eps.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(TESTS))  # where plugin_codec is importable from
    monkeypatch.syspath_prepend(str(tmp_path))


# ------------------------------------------------------------------ discovery


def test_toy_entry_point_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """importlib.metadata sees the toy distribution's hubbub.codecs entry point."""
    install(tmp_path, monkeypatch, "hubbub_toy_codec", TOY)
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert found["toy"] == "plugin_codec:ToyCodec"


def test_default_registry_loads_the_toy_codec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """default_registry() registers the toy codec by name and by subprotocol."""
    assert "toy" not in default_registry().names()  # not installed: not there
    install(tmp_path, monkeypatch, "hubbub_toy_codec", TOY)
    registry = default_registry()
    codec = registry.get("toy")
    assert type(codec).__name__ == "ToyCodec"
    assert registry.by_subprotocol("hubbub-toy") is codec
    assert {"json", "protobuf", "toy"} <= set(registry.names())


def test_msgpack_loads_through_the_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msgpack registers through hubbub.codecs like any third-party codec."""
    install(tmp_path, monkeypatch, "hubbub_msgpack_probe", MSGPACK)
    registry = default_registry()
    assert isinstance(registry.get("msgpack"), MsgpackCodec)
    assert registry.by_subprotocol("hubbub-msgpack") is registry.get("msgpack")


def test_an_unknown_name_says_what_is_known_without_quotes() -> None:
    """Callers catch a KeyError; people read the message as it is, not repr'd."""
    with pytest.raises(KeyError) as raised:
        default_registry().get("xml")
    assert isinstance(raised.value, UnknownCodecError)
    message = str(raised.value)
    assert message.startswith("unknown codec 'xml' (known: ") and "json, " in message


def test_broken_entry_point_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plug-in that fails to import is logged and skipped; the rest still load."""
    install(tmp_path, monkeypatch, "hubbub_broken_codec", {"broken": "plugin_codec:Missing", **TOY})
    registry = default_registry()
    assert "broken" not in registry.names()
    assert "toy" in registry.names() and "json" in registry.names()


# ------------------------------------------------------------------ served


async def test_server_serves_a_websocket_client_with_the_toy_codec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_server: ServerFactory
) -> None:
    """A server with the default registry speaks the toy codec to a hubbub-toy client."""
    install(tmp_path, monkeypatch, "hubbub_toy_codec", TOY)
    server = await start_server()
    toy = [Subprotocol("hubbub-toy")]
    async with connect(ws_url(server), subprotocols=toy, open_timeout=WAIT) as ws:
        assert ws.subprotocol == "hubbub-toy"
        await ws.send('toy:{"id":1,"connect":{}}\ntoy:{"id":2,"subscribe":{"channel":"chat:t"}}')
        replies: list[str] = []
        async with asyncio.timeout(WAIT):
            while len(replies) < 2:
                frame = await ws.recv()
                assert isinstance(frame, str)  # a text codec: text frames
                replies.extend(frame.split("\n"))
        assert all(line.startswith("toy:") for line in replies)
        connect_reply, subscribe_reply = (json.loads(line[4:]) for line in replies)
        assert connect_reply["id"] == 1 and connect_reply["connect"]["client"]
        assert subscribe_reply["id"] == 2 and "subscribe" in subscribe_reply


async def test_server_speaks_the_toy_codec_over_tcp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_server: ServerFactory
) -> None:
    """A plug-in codec is also reachable by name in the TCP preamble."""
    install(tmp_path, monkeypatch, "hubbub_toy_codec", TOY)
    server = await start_server(**{"server.tcp_port": 0})
    assert server.tcp is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp.port)
    writer.write(b'hubbub/1 toy\ntoy:{"id":1,"connect":{}}\n')
    line = await asyncio.wait_for(reader.readline(), WAIT)
    assert line.startswith(b"toy:") and line.endswith(b"\n")
    assert json.loads(line[4:])["connect"]["client"]
    writer.close()


async def test_server_serves_a_websocket_client_with_msgpack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_server: ServerFactory
) -> None:
    """hubbub-msgpack selects msgpack: binary frames of uvarint-prefixed msgpack maps."""
    install(tmp_path, monkeypatch, "hubbub_msgpack_probe", MSGPACK)
    server = await start_server()
    connect_cmd = msgspec.msgpack.encode({"id": 1, "connect": {}})
    publish_cmd = msgspec.msgpack.encode(
        {"id": 2, "publish": {"channel": "chat:m", "data": b'{"n":1}'}}
    )
    frame = b"".join(encode_uvarint(len(c)) + c for c in (connect_cmd, publish_cmd))
    msgpack = [Subprotocol("hubbub-msgpack")]
    async with connect(ws_url(server), subprotocols=msgpack, open_timeout=WAIT) as ws:
        assert ws.subprotocol == "hubbub-msgpack"
        await ws.send(frame)
        replies: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT):
            while len(replies) < 2:
                data = await ws.recv()
                assert isinstance(data, bytes)  # binary frames
                pos = 0
                while pos < len(data):
                    size, pos = data[pos], pos + 1  # replies here are under 128 bytes
                    replies.append(msgspec.msgpack.decode(data[pos : pos + size]))
                    pos += size
        assert replies[0]["id"] == 1 and replies[0]["connect"]["client"]
        assert replies[1]["id"] == 2 and replies[1]["publish"]["offset"] == 1
