"""The NATS engines in the conformance suite, against a real server on 127.0.0.1:4222.

Every engine gets its own prefix, so its streams and bucket are its alone, and they are
deleted when it closes. Skipped where no NATS server answers.
"""

from __future__ import annotations

import functools
import socket
import uuid

from conformance.support import Case
from hubbub.engines.nats import NatsBroker, NatsOptions, NatsPresenceStore, drop_prefix

NATS_URL = "nats://127.0.0.1:4222"


@functools.cache
def unavailable() -> str | None:
    """Why the NATS engines cannot run here, or None when a server answers."""
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1.0) as sock:
            sock.settimeout(1.0)
            if not sock.recv(4).startswith(b"INFO"):
                return "127.0.0.1:4222 is not a NATS server"
    except OSError as exc:
        return f"no NATS server on 127.0.0.1:4222 ({exc})"
    return None


def scratch_url() -> str:
    """A URL with a prefix no other test run uses; in-memory streams."""
    return f"{NATS_URL}?prefix=t{uuid.uuid4().hex[:12]}&storage=memory"


class ScratchBroker(NatsBroker):
    """A NatsBroker whose streams are deleted when it closes."""

    async def close(self) -> None:
        await super().close()
        await drop_prefix(_url(self.options))


class ScratchPresenceStore(NatsPresenceStore):
    """A NatsPresenceStore whose bucket is deleted when it closes."""

    async def close(self) -> None:
        await super().close()
        await drop_prefix(_url(self.options))


def _url(options: NatsOptions) -> str:
    return f"{options.server}?prefix={options.prefix}"


BROKER = Case(
    lambda clock: ScratchBroker.from_url(scratch_url()), fake_time=False, unavailable=unavailable
)
PRESENCE = Case(
    lambda clock: ScratchPresenceStore.from_url(scratch_url()),
    fake_time=False,
    unavailable=unavailable,
)
