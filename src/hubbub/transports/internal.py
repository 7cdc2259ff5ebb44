"""The operators' internal HTTP port: metrics, liveness and readiness (aiohttp).

It is kept off the public port so that scrapes and probes never compete with client
traffic and the server API is never exposed to browsers by accident. The server API
is mounted here as a sub-application under ``/api`` once it exists.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from hubbub.observability.metrics import Metrics


class InternalServer:
    """Serves ``/metrics``, ``/healthz``, ``/readyz`` and, if given, ``/api``."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        host: str,
        port: int,
        ready: Callable[[], bool],
        api: web.Application | None = None,
    ) -> None:
        """Build the routes; nothing listens until :meth:`start`.

        Args:
            metrics: the node's metrics, rendered on every scrape.
            host: address to bind; give one address when ``port`` is 0, since each
                address of a name like ``localhost`` would get its own free port.
            port: TCP port; 0 picks a free one, readable from :attr:`port` after start.
            ready: whether the node takes traffic now: started (its engines connected
                at start) and not shutting down. A broker lost later does not make it
                unready: clients then get temporary errors and recover once it is back,
                and every node would go unready at once on the same broker.
            api: the HTTP server API, mounted under ``/api``.
        """
        self.host = host
        self.port = port
        self._metrics = metrics
        self._ready = ready
        self._app = web.Application()
        self._app.router.add_get("/metrics", self._handle_metrics)
        self._app.router.add_get("/healthz", self._handle_healthz)
        self._app.router.add_get("/readyz", self._handle_readyz)
        if api is not None:
            self._app.add_subapp("/api", api)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on ``host:port`` and set :attr:`port` to the port actually bound."""
        if self._runner is not None:
            raise RuntimeError("internal server already started")
        # Probes and scrapes arrive every few seconds; an access line for each is noise.
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the listening socket and open requests; a second call does nothing."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _handle_healthz(self, request: web.Request) -> web.Response:
        # Liveness: answering at all proves the event loop is turning.
        return web.Response(text="ok")

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ready")
        return web.Response(status=503, text="not ready")
