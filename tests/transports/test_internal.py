"""Tests for hubbub.transports.internal, over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hubbub.observability.metrics import Metrics
from hubbub.transports.internal import InternalServer


class Readiness:
    """A switchable ready() callback."""

    def __init__(self) -> None:
        """Start not ready, as a node does before its engines connect."""
        self.value = False

    def __call__(self) -> bool:
        """Report the current state."""
        return self.value


@pytest.fixture
def metrics() -> Metrics:
    """A fresh registry per test."""
    return Metrics()


@pytest.fixture
def readiness() -> Readiness:
    """The ready flag the server consults."""
    return Readiness()


@pytest.fixture
async def server(metrics: Metrics, readiness: Readiness) -> AsyncIterator[InternalServer]:
    """An internal server on a free loopback port."""
    srv = InternalServer(metrics, host="127.0.0.1", port=0, ready=readiness)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def url(server: InternalServer, path: str) -> str:
    """Absolute URL of a path on the server."""
    return f"http://127.0.0.1:{server.port}{path}"


async def test_port_zero_binds_a_real_port(server: InternalServer) -> None:
    """After start(), .port holds the port the OS actually picked."""
    assert server.port > 0


async def test_metrics_serves_prometheus_text(
    server: InternalServer, metrics: Metrics, http: aiohttp.ClientSession
) -> None:
    """GET /metrics returns the registry's current values with the text content type."""
    metrics.command("publish")
    metrics.connection_opened()
    async with http.get(url(server, "/metrics")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    assert 'hubbub_commands_total{method="publish"} 1.0' in text
    assert "hubbub_connections 1.0" in text


async def test_healthz_is_ok_even_when_not_ready(
    server: InternalServer, http: aiohttp.ClientSession
) -> None:
    """Liveness does not depend on readiness: 200 'ok' while ready() is False."""
    async with http.get(url(server, "/healthz")) as resp:
        assert resp.status == 200
        assert await resp.text() == "ok"


async def test_readyz_follows_the_ready_callback(
    server: InternalServer, readiness: Readiness, http: aiohttp.ClientSession
) -> None:
    """GET /readyz answers 503 while not ready and 200 once ready() turns True."""
    async with http.get(url(server, "/readyz")) as resp:
        assert resp.status == 503
    readiness.value = True
    async with http.get(url(server, "/readyz")) as resp:
        assert resp.status == 200
    readiness.value = False
    async with http.get(url(server, "/readyz")) as resp:
        assert resp.status == 503


async def test_unknown_path_is_404(server: InternalServer, http: aiohttp.ClientSession) -> None:
    """Only the documented routes exist."""
    async with http.get(url(server, "/nope")) as resp:
        assert resp.status == 404


async def test_api_sub_app_is_mounted_under_api(
    metrics: Metrics, http: aiohttp.ClientSession
) -> None:
    """An api application given to the server answers under /api."""

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"node": "n1"})

    api = web.Application()
    api.router.add_get("/info", info)
    srv = InternalServer(metrics, host="127.0.0.1", port=0, ready=lambda: True, api=api)
    await srv.start()
    try:
        async with http.get(url(srv, "/api/info")) as resp:
            assert resp.status == 200
            assert await resp.json() == {"node": "n1"}
    finally:
        await srv.stop()


async def test_stop_closes_the_port(metrics: Metrics, http: aiohttp.ClientSession) -> None:
    """After stop() the port refuses connections, and a second stop() is harmless."""
    srv = InternalServer(metrics, host="127.0.0.1", port=0, ready=lambda: True)
    await srv.start()
    async with http.get(url(srv, "/healthz")) as resp:
        assert resp.status == 200
    await srv.stop()
    await srv.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url(srv, "/healthz")):
            pass


async def test_start_twice_is_an_error(server: InternalServer) -> None:
    """A started server refuses to start again instead of leaking a second listener."""
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()
