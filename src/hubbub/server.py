"""Running a node as a server process: ports, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import signal
from contextlib import suppress

import structlog

from hubbub.config import Settings
from hubbub.core.node import Node
from hubbub.transports.internal import InternalServer
from hubbub.transports.tcp import TcpServer
from hubbub.transports.websocket import WebSocketServer

_log = structlog.get_logger(__name__)


class Server:
    """A node with its public WebSocket port, its internal operators' port and, when
    ``server.tcp_port`` is set, a raw TCP port for native clients."""

    def __init__(
        self, settings: Settings, node: Node | None = None, *, reuse_port: bool = False
    ) -> None:
        """``reuse_port``: share the public ports with sibling worker processes."""
        self.settings = settings
        self.node = node if node is not None else Node(settings)
        self._ready = False
        self.websocket = WebSocketServer(
            self.node,
            host=settings.server.host,
            port=settings.server.port,
            ready=lambda: self._ready,
            reuse_port=reuse_port,
        )
        tcp_port = settings.server.tcp_port
        self.tcp: TcpServer | None = None
        if tcp_port is not None:
            self.tcp = TcpServer(
                self.node, host=settings.server.host, port=tcp_port, reuse_port=reuse_port
            )
        self.internal = InternalServer(
            self.node.metrics,
            host=settings.server.host,
            port=settings.server.internal_port,
            ready=lambda: self._ready,
        )
        self._stopping = False

    async def start(self) -> None:
        """Start the node and every listener; if one cannot start (a port taken), what
        did start is stopped again before the error goes up: nothing is left serving."""
        await self.node.start()
        try:
            await self.websocket.start()
            if self.tcp is not None:
                await self.tcp.start()
            await self.internal.start()
        except BaseException:
            await self.stop(timeout=0)
            raise
        self._ready = True
        host = self.settings.server.host
        addresses = {"websocket": f"ws://{host}:{self.websocket.port}/connection/websocket"}
        if self.tcp is not None:
            addresses["tcp"] = f"tcp://{host}:{self.tcp.port}"
        _log.info("hubbub listening", **addresses, internal=f"http://{host}:{self.internal.port}")

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, send every client "shutdown, reconnect", wait (``timeout``, by
        default the configured shutdown_timeout), close."""
        if self._stopping:  # a second signal while the first shutdown runs
            return
        self._stopping = True
        self._ready = False
        _log.info("shutting down", connections=len(self.node.sessions))
        self.websocket.stop_accepting()
        if self.tcp is not None:
            self.tcp.stop_accepting()
        await self.node.shutdown(timeout)
        await self.internal.stop()

    async def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        settle_garbage_collector()
        await stop.wait()
        await self.stop()
        _log.info("stopped")


def settle_garbage_collector() -> None:
    """Keep the collector off the objects of start-up and rarer under connection churn.

    Profiles of a 15,000-connection ramp spent a fifth of the time in gen-2 collections
    that walk every long-lived session; what was built at start-up is frozen out of
    them, and young collections run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def run(settings: Settings, *, reuse_port: bool = False) -> None:
    """Run a server in this process on uvloop until a signal stops it."""
    server = Server(settings, reuse_port=reuse_port)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(server.run_until_signal())
    else:
        uvloop.run(server.run_until_signal())
