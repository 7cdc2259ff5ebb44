"""Socket options shared by the transports that own a TCP socket."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Protocol


class _Socket(Protocol):
    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def enable_keepalive(sock: _Socket | None) -> None:
    """TCP keepalive, so half-open connections of vanished hosts are found by the kernel."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 6)
    except OSError:
        pass


def keepalive_on_listeners(sockets: Iterable[_Socket]) -> None:
    """Set keepalive once on listening sockets: Linux copies the options to every
    accepted socket, which saves five system calls per connection."""
    for sock in sockets:
        enable_keepalive(sock)
