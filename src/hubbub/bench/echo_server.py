"""``python -m hubbub.bench.echo_server --config FILE``: ``hubbub serve`` plus an echo RPC.

The ``echo`` scenario's ``--mode rpc`` needs a server that answers RPC method
``echo``; ``hubbub serve`` has no RPC handlers, so this runs the same ``Server``
with one registered: it returns the request's data unchanged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hubbub.config import load_settings
from hubbub.core.hooks import ClientContext
from hubbub.core.node import Node
from hubbub.observability.logging import configure_logging
from hubbub.server import Server


def build(config: Path | None, port: int | None = None, internal_port: int | None = None) -> Server:
    """A server for ``config`` whose node answers RPC ``echo`` with its input."""
    overrides: dict[str, object] = {}
    if port is not None:
        overrides["server.port"] = port
    if internal_port is not None:
        overrides["server.internal_port"] = internal_port
    settings = load_settings(config, overrides=overrides)
    node = Node(settings)

    @node.rpc("echo")
    async def echo(ctx: ClientContext, data: bytes) -> bytes:
        return data

    return Server(settings, node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", "-c", type=Path, default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--internal-port", type=int, default=None)
    args = parser.parse_args()
    server = build(args.config, args.port, args.internal_port)
    configure_logging(server.settings.log.level, server.settings.log.format)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        import asyncio

        asyncio.run(server.run_until_signal())
    else:
        uvloop.run(server.run_until_signal())


if __name__ == "__main__":  # pragma: no cover
    main()
