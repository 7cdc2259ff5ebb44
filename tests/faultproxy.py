"""A TCP proxy on 127.0.0.1 that tests can cut, to play a broker or node going away.

    async with FaultProxy(6379) as proxy:      # listens on proxy.port
        ...                                    # point the engine at proxy.url("redis")
        await proxy.cut()                      # drop every open connection
        proxy.refuse = True                    # new connections are closed at once
        proxy.refuse = False                   # and accepted again
        proxy.silence()                        # open connections drop every byte, both
                                               # ways, yet stay open (a dead route)

Only loopback traffic; every piped connection ends when the proxy closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class FaultProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>, with cut(), refuse and silence()."""

    def __init__(self, target: int, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
        self.refuse = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._silent: set[asyncio.StreamWriter] = set()

    def url(self, scheme: str, path: str = "") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()

    async def cut(self) -> None:
        """Close every connection going through the proxy, both sides."""
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        for task in list(self._pipes):
            with contextlib.suppress(BaseException):
                await task
        self._writers.clear()
        self._silent.clear()

    def silence(self) -> None:
        """Connections open now drop every byte from here on, both ways, and stay open;
        connections made later are piped as usual."""
        self._silent |= self._writers

    @property
    def connections(self) -> int:
        """Client connections currently piped (each has two pipes)."""
        return len(self._pipes) // 2

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if writer not in self._silent:
                    writer.write(data)
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._silent.discard(writer)
