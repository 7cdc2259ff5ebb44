"""One load process: its share of the connections on picows + uvloop.

The parent drives a worker through a pipe with a few orders, each answered once:

=========================  =============================================================
``("open",)``              open every connection (WebSocket + handshake) → ``opened``
``("run", rate, secs, record)``  reopen the connections the server ended, then publish at
                           ``rate``/s (fanout, rooms) or run closed-loop round trips
                           (echo) for ``secs`` → ``started``, then ``window`` (counts,
                           CPU time, the pacer's lateness histogram, connections reopened)
``("collect",)``           stop recording, send the latency histogram → ``collected``
``("close",)``             close every connection and exit → ``closed``
=========================  =============================================================

Between orders the worker sends ``progress`` every ``PROGRESS_EVERY`` seconds. A
worker exits by itself when the pipe closes (the parent is gone) or when the run's
deadline passes, so no load process outlives its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import signal
import socket
import time
import traceback
from collections import Counter
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from hubbub.bench import payload, stats
from hubbub.bench.plan import Conn, RunConfig, fd_limit, url_for
from hubbub.bench.wire import CentrifugeWire, ClientWire, Counters, PlainWire, SocketIOWire
from hubbub.codecs.base import Codec
from hubbub.codecs.registry import default_registry

PROGRESS_EVERY = 0.25
TICK = 0.002
"""Publisher pacing period (seconds)."""
MAX_CATCH_UP = 0.1
"""A stalled pacer sends at most this many seconds' worth of messages at once; the
rest is dropped and shows as a send ratio below 1 (generator limited)."""
READ_BUFFER = 4096
"""picows' initial read buffer per connection; it grows for larger frames."""


@functools.cache
def _codec(name: str) -> Codec:
    # Building a registry scans the installed entry points: milliseconds, so once only.
    return default_registry().get(name)


def make_wire(cfg: RunConfig, conn: Conn, counters: Counters) -> ClientWire:
    """The wire for ``conn`` under the run's protocol."""
    if cfg.protocol == "centrifuge":
        return CentrifugeWire(_codec(cfg.codec), counters, conn.channel)
    if cfg.protocol == "plain":
        return PlainWire(counters, conn.channel)
    return SocketIOWire(counters, conn.channel)


class BenchListener(WSListener):
    """picows callbacks for one bench connection."""

    def __init__(self, worker: Worker, conn: Conn, wire: ClientWire) -> None:
        super().__init__()
        self.worker = worker
        self.conn = conn
        self.wire = wire
        self.transport: WSTransport | None = None
        self.settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closing = False
        self.gone = False
        """The server (or the network) ended the connection; the next window reopens it."""
        self.echoes = conn.role == "echo"

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        msg_type = WSMsgType.BINARY if self.wire.binary else WSMsgType.TEXT
        self.wire.send = partial(transport.send, msg_type)
        self.wire.start()
        self._settle()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is WSMsgType.TEXT or msg_type is WSMsgType.BINARY:
            found = self.wire.receive(frame.get_payload_as_bytes(), time.monotonic_ns())
            if not self.settled.done():
                self._settle()
            if found and self.echoes and self.worker.echoing:
                self.worker.echo_more(self, found)
        elif msg_type is WSMsgType.CLOSE:
            code = frame.get_close_code()
            if not self.closing:
                reason = frame.get_close_message().decode(errors="replace")
                self.wire.counters.errors[f"closed {int(code.value)} {reason}".strip()] += 1
            if not transport.is_close_frame_sent:
                transport.send_close(code)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.settled.done():
            self.settled.set_exception(ConnectionError(self.wire.failure or "disconnected"))
        if not self.closing:
            self.worker.lost += 1
            self.gone = True

    def _settle(self) -> None:
        if self.wire.ready:
            self.settled.set_result(None)
        elif self.wire.failure:
            self.settled.set_exception(ConnectionError(self.wire.failure))

    def close(self) -> None:
        self.closing = True
        transport = self.transport
        if transport is not None and not transport.is_disconnected:
            with contextlib.suppress(Exception):
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()


class Worker:
    """The connections of one process and the orders from the parent."""

    def __init__(self, index: int, cfg: RunConfig, conns: list[Conn], pipe: Connection) -> None:
        self.index = index
        self.cfg = cfg
        self.conns = conns
        self.pipe = pipe
        self.counters = Counters()
        self.listeners: list[BenchListener] = []
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.lost = 0
        self.echoing = False
        self._seq = 0
        self.pace_late_us: list[int] = []
        """Per batch of this window: how late (µs) the pacer sent its earliest message."""
        self._done: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- plumbing

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        loop.add_reader(self.pipe.fileno(), self._on_pipe)
        reporter = loop.create_task(self._report_progress())
        try:
            await asyncio.wait_for(self._done, self.cfg.deadline + 30)
        except TimeoutError:
            pass
        finally:
            reporter.cancel()
            loop.remove_reader(self.pipe.fileno())
            for listener in self.listeners:
                listener.close()
            await asyncio.sleep(0.05)

    def _reply(self, *message: Any) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(message)

    def _on_pipe(self) -> None:
        try:
            while self.pipe.poll():
                order = self.pipe.recv()
                self._spawn(self._obey(order))
        except (EOFError, OSError):
            self._finish()  # the parent is gone

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            text = "".join(traceback.format_exception(exc))
            self._reply("failed", self.index, text)

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def _obey(self, order: tuple[Any, ...]) -> None:
        kind = order[0]
        if kind == "open":
            await self._open_all()
        elif kind == "run":
            _, rate, seconds, record = order
            await self._window(float(rate), float(seconds), bool(record))
        elif kind == "collect":
            self._collect()
        elif kind == "close":
            for listener in self.listeners:
                listener.close()
            await asyncio.sleep(0.1)
            self._reply("closed", self.index)
            self._finish()

    async def _report_progress(self) -> None:
        while True:
            c = self.counters
            self._reply(
                "progress", self.index, len(self.listeners), self.failed, c.delivered, c.sent
            )
            await asyncio.sleep(PROGRESS_EVERY)

    # ------------------------------------------------------------------ opening

    async def _open_all(self) -> None:
        started = time.monotonic()
        await self._open_many(self.conns)
        elapsed = time.monotonic() - started
        roles = Counter(listener.conn.role for listener in self.listeners)
        self._reply("opened", self.index, dict(roles), self.failed, dict(self.failures), elapsed)

    async def _open_many(self, conns: list[Conn]) -> None:
        """Open ``conns``, at most ``concurrency`` handshakes at a time."""
        gate = asyncio.Semaphore(max(1, self.cfg.concurrency))

        async def one(conn: Conn) -> None:
            async with gate:
                await self._open(conn)

        await asyncio.gather(*(one(conn) for conn in conns))

    async def _open(self, conn: Conn) -> None:
        cfg = self.cfg
        wire = make_wire(cfg, conn, self.counters)
        listener: BenchListener | None = None

        def factory() -> BenchListener:
            nonlocal listener
            listener = BenchListener(self, conn, wire)
            return listener

        extra: dict[str, Any] = {}
        if conn.source:
            # An IPv4 source: reach the server over IPv4 too (localhost may be ::1 first).
            extra.update(local_addr=(conn.source, 0), family=socket.AF_INET)
        headers = {"Sec-WebSocket-Protocol": wire.subprotocol} if wire.subprotocol else None
        try:
            async with asyncio.timeout(cfg.handshake_timeout):
                await ws_connect(
                    factory,
                    url_for(cfg, conn),
                    extra_headers=headers,
                    websocket_handshake_timeout=cfg.handshake_timeout,
                    enable_auto_pong=True,
                    read_buffer_init_size=READ_BUFFER,
                    max_frame_size=64 * 1024 * 1024,
                    **extra,
                )
                assert listener is not None
                await listener.settled
        except Exception as exc:
            self.failed += 1
            self.failures[_describe(exc)] += 1
            if listener is not None:
                listener.close()
            return
        self.listeners.append(listener)

    # ------------------------------------------------------------------- windows

    async def _reopen_gone(self) -> int:
        """Open again the connections the server ended since the last window, so each
        window runs on the whole set: a step that lost its publisher would otherwise
        leave every later step, and the half-rate one, silent. Returns how many."""
        gone = [listener for listener in self.listeners if listener.gone]
        if gone:
            self.listeners = [listener for listener in self.listeners if not listener.gone]
            await self._open_many([listener.conn for listener in gone])
        return len(gone)

    async def _window(self, rate: float, seconds: float, record: bool) -> None:
        reopened = await self._reopen_gone()
        counters = self.counters
        counters.clear_latencies()
        counters.recording = record
        delivered0, sent0, lost0 = counters.delivered, counters.sent, self.lost
        cpu0 = time.process_time()
        self.pace_late_us = []
        self._reply("started", self.index)  # the runner lets publishers start after this
        if self.cfg.scenario == "echo":
            await self._echo_window(seconds)
        else:
            await self._pace(rate, seconds)
        self._reply(
            "window",
            self.index,
            counters.sent - sent0,
            counters.delivered - delivered0,
            self.lost - lost0,
            delivered0,
            time.process_time() - cpu0,
            stats.encode_values(self.pace_late_us),  # b"" when nothing was paced
            reopened,
        )

    def _payloads(self, count: int, stamp: int | None = None) -> list[bytes]:
        size = self.cfg.payload_size
        first = self._seq
        self._seq += count
        return [payload.make(first + i, size, stamp) for i in range(count)]

    async def _pace(self, rate: float, seconds: float) -> None:
        publishers = [x for x in self.listeners if x.conn.publish_to and not x.closing]
        loop = asyncio.get_running_loop()
        if not publishers or rate <= 0:
            await asyncio.sleep(seconds)
            return
        start = loop.time()
        end = start + seconds
        total = math.ceil(seconds * rate)  # message k is due at start + k / rate
        owed = 0  # messages scheduled so far, sent or dropped
        turn = 0
        counters = self.counters
        late = self.pace_late_us
        while (now := loop.time()) < end and owed < total:
            due = min(int((now - start) * rate) + 1, total) - owed
            if due > 0:
                # Stamps stay the real send time (publish → deliver); how far the pacer
                # is behind its schedule is kept apart, so a stalled generator shows.
                late.append(int((now - (start + owed / rate)) * 1e6))
                owed += due
                due = min(due, max(1, int(rate * MAX_CATCH_UP)))
                stamp = time.monotonic_ns()
                if len(publishers) == 1:
                    pub = publishers[0]
                    pub.wire.publish(pub.conn.publish_to, self._payloads(due, stamp))
                else:
                    for _ in range(due):
                        pub = publishers[turn % len(publishers)]
                        turn += 1
                        pub.wire.publish(pub.conn.publish_to, self._payloads(1, stamp))
                counters.sent += due
            await asyncio.sleep(TICK)

    async def _echo_window(self, seconds: float) -> None:
        self.echoing = True
        depth = max(1, self.cfg.pipeline)
        for listener in self.listeners:
            if listener.echoes and not listener.closing:
                listener.wire.echo(self._payloads(depth))
                self.counters.sent += depth
        await asyncio.sleep(seconds)
        self.echoing = False

    def echo_more(self, listener: BenchListener, count: int) -> None:
        """``count`` round trips of ``listener`` completed: start as many again."""
        listener.wire.echo(self._payloads(count))
        self.counters.sent += count

    def _collect(self) -> None:
        counters = self.counters
        counters.recording = False
        blob = stats.encode_values(counters.take_latencies())
        self._reply(
            "collected", self.index, counters.delivered, blob, dict(counters.errors), self.lost
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "TimeoutError: handshake took too long"
    return f"{name}: {text[:120]}" if text else name


def place(cfg: RunConfig, conns: list[Conn]) -> None:
    """A worker that only publishes moves to ``cfg.publisher_cpus`` when given."""
    if cfg.publisher_cpus and conns and all(c.role == "pub" for c in conns):
        os.sched_setaffinity(0, cfg.publisher_cpus)


def run_worker(index: int, cfg: RunConfig, conns: list[Conn], pipe: Connection) -> None:
    """Process entry point: raise the fd limit, then serve orders on uvloop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through the pipe
    fd_limit()
    place(cfg, conns)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(Worker(index, cfg, conns, pipe).serve())
    else:
        uvloop.run(Worker(index, cfg, conns, pipe).serve())
