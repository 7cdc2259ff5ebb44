"""Maintenance of what the NATS engines keep on the server, outside any engine.

``drop_prefix`` deletes a prefix's streams and bucket: for tests, which give each run a
prefix of its own, and for retiring a deployment.
"""

from __future__ import annotations

import contextlib

import nats.js.errors

from hubbub.engines.nats.link import Link
from hubbub.engines.nats.names import Names
from hubbub.engines.nats.options import NatsOptions


async def drop_prefix(url: str) -> list[str]:
    """Delete every stream and bucket under the URL's prefix; their names.

    For tests, and for retiring a deployment: all history and presence is lost.
    """
    options = NatsOptions.from_url(url)
    names = Names(options.prefix)
    link = Link(options)
    await link.open()
    try:
        async with link.guard("cleanup"):
            js = link.jetstream()
            streams: list[str] = []
            while page := await js.streams_info(offset=len(streams)):
                streams.extend(info.config.name or "" for info in page)
            mine = [stream for stream in streams if names.owns(stream)]
            for stream in mine:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(stream)
        return mine
    finally:
        await link.close()
