"""The connection pool against two real servers, one of which is stopped mid-test."""

from __future__ import annotations

from collections import Counter

from clientkit import WAIT, fast_backoff, until, ws_url
from conftest import ServerFactory

from hubbub.client import Client, ClientPool, ClientState

CHANNEL = "chat:failover"


async def test_pool_fails_over_when_a_server_dies(start_server: ServerFactory) -> None:
    """A stopped server's connections go BROKEN and are replaced on the other server."""
    alive, doomed = await start_server(), await start_server()
    urls = [ws_url(alive), ws_url(doomed)]
    pool = ClientPool(urls, size=4, max_retries=3, timeout=WAIT, backoff=fast_backoff())
    async with pool:
        await until(lambda: pool.ready_count == 4)
        assert Counter(c.url for c in pool.clients) == {urls[0]: 2, urls[1]: 2}
        watcher = next(c for c in pool.clients if c.url == urls[0])
        sub = await watcher.subscribe(CHANNEL)
        doomed_clients = [c for c in pool.clients if c.url == urls[1]]

        await doomed.stop()  # "shutdown, reconnect" to its clients, then nobody listens

        # While the doomed connections retry, acquire() hands out only working ones.
        for n in range(10):
            client = await pool.acquire()
            assert client.state is ClientState.READY and client.url == urls[0]
            await client.publish(CHANNEL, {"n": n})

        await until(lambda: pool.replaced == 2 and pool.ready_count == 4)
        assert [c.url for c in pool.clients] == [urls[0]] * 4
        assert all(c.state is ClientState.CLOSED for c in doomed_clients)
        assert all(c not in pool.clients for c in doomed_clients)

        for client in pool.clients:  # the replacements work too
            assert isinstance(client, Client)
            await client.publish(CHANNEL, {"from": client.client_id})
        got = [(await anext(sub)).json() for _ in range(14)]
        assert [g["n"] for g in got[:10]] == list(range(10))
        assert {g["from"] for g in got[10:]} == {c.client_id for c in pool.clients}
    assert pool.clients == []
    assert all(c.state is ClientState.CLOSED for c in [watcher, *doomed_clients])
