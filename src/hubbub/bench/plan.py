"""What a run asks for, and how its connections spread over processes and addresses.

One process may hold only as many sockets as its file-descriptor limit allows, and
one source address only as many connections to one server port as there are
ephemeral ports. ``layout`` therefore deals connections round-robin over enough
processes and, past one address's worth, over source addresses 127.0.0.2, .3, ….
Everything here is pure: the runner and the tests use the same functions.
"""

from __future__ import annotations

import ipaddress
import math
import resource
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Role = Literal["sub", "pub", "member", "echo"]
"""sub: subscribe only · pub: publish only · member: subscribe and publish to the same
channel (rooms) · echo: round trips (subscribed to its own channel in publish mode)."""

RESERVED_FDS = 100
"""Descriptors a worker keeps for itself: pipes, the event loop, imported files."""
PORT_HEADROOM = 0.9
"""Share of the ephemeral port range used per source address (TIME_WAIT, others)."""
FIRST_SOURCE = 2
"""127.0.0.1 is usually the server's address; extra sources start at 127.0.0.2."""
MAX_SOURCES = 250
"""Source addresses 127.0.0.2 … 127.0.0.251 at most."""

DEFAULT_PATHS = {
    "centrifuge": "/connection/websocket",
    "plain": "/",
    "socketio": "/socket.io/?EIO=4&transport=websocket",
}


@dataclass(frozen=True, slots=True)
class Conn:
    """One connection of the run."""

    index: int
    role: Role
    channel: str = ""
    """Channel to subscribe to during the handshake ("" for none)."""
    publish_to: str = ""
    source: str = ""
    """Local address to bind ("" lets the kernel choose)."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs; workers get a copy."""

    scenario: Literal["connect", "fanout", "rooms", "echo"]
    urls: tuple[str, ...]
    """The server's URLs (more than one: the nodes of one cluster). Connections are dealt
    round-robin over them; fan-out publishers always use the first."""
    protocol: Literal["centrifuge", "plain", "socketio"] = "centrifuge"
    codec: str = "json"
    label: str = ""
    connections: int = 100
    """connect: connections; fanout: subscribers; echo: connections; rooms: unused."""
    publishers: int = 1
    channels: int = 1
    """connect: channels the connections are spread over."""
    rooms: int = 10
    members: int = 10
    namespace: str = "bench"
    procs: int = 0
    """0: as few as the descriptor limit allows (fan-out: one more, for publishers)."""
    source_addrs: int = 0
    """0: as few as the ephemeral port range allows."""
    concurrency: int = 200
    """Handshakes in flight at once, per worker."""
    handshake_timeout: float = 10.0
    payload_size: int = 64
    duration: float = 5.0
    warmup: float = 1.0
    drain: float = 2.0
    hold: float = 2.0
    echo_mode: Literal["publish", "rpc"] = "publish"
    pipeline: int = 1
    server_pids: tuple[int, ...] = ()
    """The server's processes (several: the nodes, or the workers of one ``--workers
    N``), whose CPU time and RSS count as the server's; none: not measured."""
    deadline: float = 600.0
    """Seconds after which the run stops whatever it is doing."""
    publisher_cpus: tuple[int, ...] = ()
    """fanout: CPUs for the publishing worker and the coordinating parent (empty: where
    started). On a machine where the whole generator shares one core, the subscribers'
    worker would otherwise wait behind them for the CPU, and its readings count that
    wait as latency."""
    extra: dict[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("a run needs at least one server URL")

    @property
    def url(self) -> str:
        """The first server URL: the publishers' and the one results name."""
        return self.urls[0]

    @property
    def total_connections(self) -> int:
        if self.scenario == "rooms":
            return self.rooms * self.members
        if self.scenario == "fanout":
            return self.connections + self.publishers
        return self.connections


def fd_limit() -> int:
    """This process's soft descriptor limit, after raising it to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return int(soft)


def ephemeral_ports(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """How many ephemeral ports the kernel hands out (28,232 on a default Linux)."""
    try:
        low, high = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return 28232
    return high - low + 1


def procs_needed(connections: int, fds: int, requested: int = 0) -> int:
    """Worker processes: what was asked, but at least enough for the descriptor limit."""
    per_proc = max(1, fds - RESERVED_FDS)
    return max(1, requested, math.ceil(connections / per_proc))


def source_addresses(connections: int, url: str, ports: int, requested: int = 0) -> list[str]:
    """Local addresses to spread connections over; [] lets the kernel choose.

    Only for servers on loopback (every 127.x.y.z is local on Linux); elsewhere the
    addresses would have to exist on this host.
    """
    # The source addresses are IPv4, so the server must be reached over IPv4.
    if not is_loopback(urlsplit(url).hostname or "", ipv4_only=True):
        return []
    needed = math.ceil(connections / max(1, int(ports * PORT_HEADROOM)))
    count = max(requested, needed if needed > 1 else 0)
    if count > MAX_SOURCES:
        raise ValueError(
            f"{connections} connections need {count} source addresses (max {MAX_SOURCES})"
        )
    return [f"127.0.0.{FIRST_SOURCE + i}" for i in range(count)]


def is_loopback(host: str, *, ipv4_only: bool = False) -> bool:
    """Is ``host`` this machine: 127.x.y.z, ``::1`` (unless ``ipv4_only``), or a name
    such as ``localhost`` that resolves only to such addresses? Other names are not
    looked up, so a typo never turns into a DNS query."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return address.is_loopback and not (ipv4_only and address.version == 6)
    name = host.lower()
    if name != "localhost" and not name.endswith(".localhost"):
        return False
    family = socket.AF_INET if ipv4_only else socket.AF_UNSPEC
    try:
        found = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(found) and all(is_loopback(str(info[4][0])) for info in found)


def with_default_path(url: str, protocol: str) -> str:
    """``url`` with the protocol's usual path when it has none."""
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query:
        return url
    return f"{parts.scheme}://{parts.netloc}{DEFAULT_PATHS[protocol]}"


def connections_for(cfg: RunConfig) -> list[Conn]:
    """Every connection of the run, in order, without source addresses yet."""
    ns = f"{cfg.namespace}:" if cfg.namespace and cfg.protocol == "centrifuge" else ""
    if cfg.scenario == "connect":
        channels = max(1, cfg.channels)
        return [Conn(i, "sub", channel=f"{ns}conn.{i % channels}") for i in range(cfg.connections)]
    if cfg.scenario == "fanout":
        channel = f"{ns}fanout"
        subs = [Conn(i, "sub", channel=channel) for i in range(cfg.connections)]
        pubs = [Conn(cfg.connections + i, "pub", publish_to=channel) for i in range(cfg.publishers)]
        return subs + pubs
    if cfg.scenario == "rooms":
        rooms = [f"{ns}room.{i // cfg.members}" for i in range(cfg.rooms * cfg.members)]
        return [Conn(i, "member", channel=room, publish_to=room) for i, room in enumerate(rooms)]
    own = cfg.echo_mode == "publish"
    names = [f"{ns}echo.{i}" if own else "" for i in range(cfg.connections)]
    return [Conn(i, "echo", channel=name, publish_to=name) for i, name in enumerate(names)]


def url_for(cfg: RunConfig, conn: Conn) -> str:
    """The server URL ``conn`` connects to: publishers the first, others round-robin."""
    urls = cfg.urls
    if conn.role == "pub":
        return urls[0]
    return urls[conn.index % len(urls)]


def layout(
    conns: list[Conn], procs: int, sources: list[str], *, publisher_process: bool = False
) -> list[list[Conn]]:
    """Deal connections round-robin over ``procs`` workers and over ``sources``.

    With ``publisher_process`` (and two or more processes) the publish-only
    connections get the last worker to themselves: their pacing and time stamps then
    do not wait behind thousands of subscribers' frames in the same event loop.
    Otherwise round-robin keeps every worker's share even.
    """
    shares: list[list[Conn]] = [[] for _ in range(procs)]
    apart = publisher_process and procs >= 2 and any(c.role == "pub" for c in conns)
    others = procs - 1 if apart else procs
    turn = 0
    for position, conn in enumerate(conns):
        source = sources[position % len(sources)] if sources else ""
        placed = Conn(conn.index, conn.role, conn.channel, conn.publish_to, source)
        if apart and conn.role == "pub":
            shares[-1].append(placed)
        else:
            shares[turn % others].append(placed)
            turn += 1
    return shares
