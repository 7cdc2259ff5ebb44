"""The fault proxy itself: it forwards, cuts and refuses."""

from __future__ import annotations

import asyncio

from faultproxy import FaultProxy


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def test_proxy_forwards_cuts_and_refuses() -> None:
    """Bytes pass both ways; cut() ends the connection; refuse closes new ones at once."""
    server = await _echo_server()
    port = server.sockets[0].getsockname()[1]
    async with FaultProxy(port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        await proxy.cut()
        assert await reader.read(10) == b""  # EOF: the proxy dropped us
        proxy.refuse = True
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await reader.read(10) == b""
        proxy.refuse = False
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"again")
        assert await reader.readexactly(5) == b"again"
        writer.close()
    server.close()
