"""A client that stops reading is dropped as slow; memory stays bounded; others get everything.

Over WebSocket and raw TCP alike (``client_factory``).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from integration.conftest import ClientFactory
from integration.recording import RecordingConnection
from integration.wsclient import WAIT

LIMIT = 65536
CHANNEL = "chat:flood"
BODY = "x" * 4096  # ~4 KiB per publication
BATCH = 8  # publish commands per frame, well under max_message_bytes
MAX_PUBLICATIONS = 4000  # ~16 MiB: a bound on the flood, never reached in practice


def _small_socket(port: int) -> socket.socket:
    """A connected socket whose receive buffer is small, so the kernel soaks up little."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_slow_client_is_disconnected_and_memory_stays_bounded(
    client_factory: ClientFactory,
) -> None:
    """A non-reading client is closed 3008 with bounded buffers; a reader gets every message."""
    server = await client_factory.start(**{"client.write_buffer_bytes": LIMIT})

    reader = await client_factory.client(server)
    await reader.subscribe(CHANNEL)
    publisher = await client_factory.client(server)

    if client_factory.transport == "tcp":
        assert server.tcp is not None
        slow = await client_factory.open(server, sock=_small_socket(server.tcp.port))
    else:
        slow = await client_factory.open(
            server, sock=_small_socket(server.websocket.port), max_queue=1
        )
    await slow.connect()
    await slow.subscribe(CHANNEL)
    slow.stop_reading()

    # Watch the slow session from the outside: every frame it writes and what the
    # transport still holds afterwards.
    session = server.node.sessions[slow.client_id]
    recording = RecordingConnection(session.connection)
    session.connection = recording

    published = 0
    async with asyncio.timeout(10 * WAIT):
        while slow.client_id in server.node.sessions:
            assert published < MAX_PUBLICATIONS, "the slow client was never disconnected"
            replies = await publisher.batch(
                *[
                    ("publish", {"channel": CHANNEL, "data": {"n": published + i, "body": BODY}})
                    for i in range(BATCH)
                ]
            )
            assert all("publish" in r for r in replies), replies
            published += BATCH
        for i in range(BATCH):  # life goes on after the slow client is gone
            await publisher.publish(CHANNEL, {"n": published + i, "body": BODY})
        published += BATCH

    metrics = server.node.metrics.render()[0].decode()
    assert 'hubbub_disconnects_total{code="3008"} 1.0' in metrics
    assert session.closed

    frames = [len(frame) for frame in recording.frames]
    item = max(frames) if frames else 0
    assert frames, "the slow client was sent nothing"
    assert item <= LIMIT + 2 * len(BODY) + 1024  # one frame: at most the limit plus one item
    assert max(recording.backlogs, default=0) <= 2 * LIMIT + 2 * len(BODY) + 1024

    pubs: list[dict[str, Any]] = await reader.pubs(published)
    assert [p["data"]["n"] for p in pubs] == list(range(published))
    assert [p["offset"] for p in pubs] == list(range(1, published + 1))
    assert not reader.is_closed

    for client in (reader, publisher, slow):
        await client.close()
