"""Socket options shared by the transports that own a TCP socket."""

from __future__ import annotations

import socket


def enable_keepalive(sock: socket.socket | None) -> None:
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
