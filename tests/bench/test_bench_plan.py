"""Spreading connections over processes and source addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub.bench.plan import (
    RunConfig,
    connections_for,
    ephemeral_ports,
    is_loopback,
    layout,
    procs_needed,
    source_addresses,
    with_default_path,
)

URL = "ws://127.0.0.1:8000/connection/websocket"


def test_processes_follow_the_descriptor_limit() -> None:
    """20,000 descriptors per process: 15k connections fit one, 45k need three."""
    assert procs_needed(15_000, 20_000) == 1
    assert procs_needed(45_000, 20_000) == 3
    assert procs_needed(10, 20_000, requested=4) == 4


def test_source_addresses_only_when_ports_run_out() -> None:
    """One address carries ~25k connections; beyond that 127.0.0.2, .3, … are used."""
    assert source_addresses(20_000, URL, ports=28_232) == []
    assert source_addresses(60_000, URL, ports=28_232) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert source_addresses(10, URL, ports=28_232, requested=2) == ["127.0.0.2", "127.0.0.3"]
    assert source_addresses(60_000, "ws://10.0.0.5:8000/", ports=28_232) == []
    with pytest.raises(ValueError):
        source_addresses(10_000_000, URL, ports=28_232)


def test_ephemeral_port_range_is_read(tmp_path: Path) -> None:
    """The kernel's range decides how many connections one address carries."""
    path = tmp_path / "range"
    path.write_text("32768\t60999\n")
    assert ephemeral_ports(path) == 28232
    assert ephemeral_ports(tmp_path / "missing") == 28232


def test_layout_deals_round_robin() -> None:
    """Publishers and subscribers spread evenly over workers and addresses."""
    cfg = RunConfig(scenario="fanout", urls=(URL,), connections=6, publishers=2)
    shares = layout(connections_for(cfg), 2, ["127.0.0.2", "127.0.0.3"])
    assert [len(s) for s in shares] == [4, 4]
    assert [c.role for c in shares[0]] == ["sub", "sub", "sub", "pub"]
    assert {c.source for c in shares[0]} == {"127.0.0.2"}
    assert all(c.channel == "bench:fanout" for s in shares for c in s if c.role == "sub")
    assert all(c.publish_to == "bench:fanout" for s in shares for c in s if c.role == "pub")


def test_rooms_and_echo_channels() -> None:
    """Room members publish to their own room; echo connections to their own channel."""
    rooms = connections_for(RunConfig(scenario="rooms", urls=(URL,), rooms=2, members=3))
    assert [c.channel for c in rooms] == ["bench:room.0"] * 3 + ["bench:room.1"] * 3
    assert all(c.publish_to == c.channel for c in rooms)
    echo = connections_for(RunConfig(scenario="echo", urls=(URL,), connections=2))
    assert [c.channel for c in echo] == ["bench:echo.0", "bench:echo.1"]
    rpc = connections_for(RunConfig(scenario="echo", urls=(URL,), connections=1, echo_mode="rpc"))
    assert rpc[0].channel == ""
    plain = connections_for(
        RunConfig(scenario="fanout", urls=(URL,), protocol="plain", connections=1)
    )
    assert plain[0].channel == "fanout"


def test_default_paths() -> None:
    """A bare host:port gets the protocol's usual path."""
    assert with_default_path("ws://127.0.0.1:8000", "centrifuge") == URL
    assert with_default_path("ws://127.0.0.1:9/", "plain") == "ws://127.0.0.1:9/"
    assert with_default_path("ws://h:1", "socketio").endswith(
        "/socket.io/?EIO=4&transport=websocket"
    )
    assert with_default_path("ws://h:1/x", "centrifuge") == "ws://h:1/x"


def test_publishers_may_get_a_process_of_their_own() -> None:
    """With publisher_process the pub connections share the last worker with nobody."""
    cfg = RunConfig(scenario="fanout", urls=(URL,), connections=4, publishers=2)
    shares = layout(connections_for(cfg), 3, [], publisher_process=True)
    assert [c.role for c in shares[2]] == ["pub", "pub"]
    assert [len(s) for s in shares[:2]] == [2, 2]
    assert all(c.role == "sub" for s in shares[:2] for c in s)


def test_url_for_spreads_subscribers_over_nodes_and_keeps_publishers_on_the_first() -> None:
    from hubbub.bench.plan import RunConfig, connections_for, url_for

    cfg = RunConfig(scenario="fanout", urls=("ws://a", "ws://b"), connections=4, publishers=2)
    conns = connections_for(cfg)
    subs = [url_for(cfg, c) for c in conns if c.role == "sub"]
    pubs = [url_for(cfg, c) for c in conns if c.role == "pub"]
    assert subs == ["ws://a", "ws://b", "ws://a", "ws://b"]
    assert pubs == ["ws://a", "ws://a"]
    assert cfg.url == "ws://a"
    with pytest.raises(ValueError, match="at least one server URL"):
        RunConfig(scenario="fanout", urls=())
    single = RunConfig(scenario="fanout", urls=("ws://a",))
    assert all(url_for(single, c) == "ws://a" for c in connections_for(single))


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1"])
def test_localhost_gets_source_addresses_like_127_0_0_1(host: str) -> None:
    """localhost resolves to loopback: --source-addrs is honoured, not silently dropped."""
    url = f"ws://{host}:8000/connection/websocket"
    assert source_addresses(10, url, ports=28_232, requested=2) == ["127.0.0.2", "127.0.0.3"]
    assert source_addresses(60_000, url, ports=28_232) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


@pytest.mark.parametrize(
    ("host", "local", "over_ipv4"),
    [
        ("127.0.0.1", True, True),
        ("127.9.8.7", True, True),
        ("localhost", True, True),
        ("LOCALHOST", True, True),
        ("::1", True, False),
        ("10.0.0.5", False, False),
        ("0.0.0.0", False, False),
        ("127.example.com", False, False),
        ("example.com", False, False),
        ("", False, False),
    ],
)
def test_what_counts_as_this_machine(host: str, local: bool, over_ipv4: bool) -> None:
    """The bench's remote-load guard and its source addresses ask the same question;
    only the source addresses also need IPv4."""
    assert is_loopback(host) is local
    assert is_loopback(host, ipv4_only=True) is over_ipv4


@pytest.mark.parametrize("scenario", ["connect", "fanout", "rooms", "echo"])
def test_total_connections_counts_what_connections_for_lists(scenario: str) -> None:
    """The runner sizes the source addresses from the total before listing connections."""
    cfg = RunConfig(scenario=scenario, urls=(URL,), connections=7, publishers=3, rooms=4, members=5)  # type: ignore[arg-type]
    assert cfg.total_connections == len(connections_for(cfg))
