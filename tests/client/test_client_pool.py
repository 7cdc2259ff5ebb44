"""Pool accounting with fake clients: spread, acquire, replace the broken, drop the closed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest
from clientkit import CountingBackoff, fast_backoff, until
from conftest import UNIT, free_port

from hubbub.client import (
    Backoff,
    ClientClosedError,
    ClientPool,
    ClientState,
    ClientStateChanged,
    ClientTrigger,
    RequestTimeoutError,
)
from hubbub.client.callbacks import Handler
from hubbub.client.state import CLIENT_TRANSITIONS, StateMachine

URLS = ["ws://a/connection/websocket", "ws://b/connection/websocket", "ws://c/connection/websocket"]


class FakeClient:
    """Implements what the pool uses; the test moves it through the real state table."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.machine = StateMachine(CLIENT_TRANSITIONS, ClientState.IDLE)
        self.handlers: list[Handler[ClientStateChanged]] = []
        self.connects = 0
        self.disconnects = 0
        self.machine.listen(self._tell)

    @property
    def state(self) -> ClientState:
        return self.machine.state

    def on_state(self, handler: Handler[ClientStateChanged]) -> Callable[[], None]:
        self.handlers.append(handler)
        return lambda: self.handlers.remove(handler)

    async def connect(self) -> None:
        self.connects += 1
        self.machine.fire(ClientTrigger.CONNECT)

    async def disconnect(self) -> None:
        self.disconnects += 1
        if self.machine.can(ClientTrigger.DISCONNECT):
            self.machine.fire(ClientTrigger.DISCONNECT)

    def ready(self) -> None:
        self.machine.fire(ClientTrigger.CONNECTED)

    def _tell(self, event: ClientStateChanged) -> None:
        for handler in list(self.handlers):
            handler(event)


class Fakes:
    def __init__(self) -> None:
        self.made: list[FakeClient] = []

    def __call__(self, url: str) -> FakeClient:
        client = FakeClient(url)
        self.made.append(client)
        return client


async def _started(size: int, urls: list[str] = URLS[:2]) -> tuple[ClientPool[FakeClient], Fakes]:
    fakes = Fakes()
    pool = ClientPool(urls, size=size, factory=fakes, timeout=20 * UNIT, backoff=fast_backoff())
    await pool.start()
    await until(lambda: all(c.state is ClientState.CONNECTING for c in fakes.made))
    return pool, fakes


def _break(client: FakeClient, attempts: int = 3) -> None:
    """The client's reconnect attempts all fail: it goes BROKEN, as a real one would."""
    if client.state is ClientState.CONNECTING:
        client.ready()
    client.machine.fire(ClientTrigger.LOST)
    for _ in range(attempts):
        client.machine.fire(ClientTrigger.ATTEMPT_FAILED)
    client.machine.fire(ClientTrigger.GIVE_UP)


async def test_start_spreads_size_clients_round_robin_over_the_urls() -> None:
    """size=5 over two addresses: 3 + 2 clients, each told to connect once."""
    pool, fakes = await _started(5)
    assert Counter(c.url for c in pool.clients) == {URLS[0]: 3, URLS[1]: 2}
    assert [c.connects for c in fakes.made] == [1] * 5
    await pool.close()


async def test_acquire_hands_out_only_ready_clients_round_robin() -> None:
    """Two of four READY: acquire alternates between those two and never the others."""
    pool, fakes = await _started(4)
    fakes.made[1].ready()
    fakes.made[2].ready()
    got = [await pool.acquire() for _ in range(6)]
    assert set(map(id, got)) == {id(fakes.made[1]), id(fakes.made[2])}
    assert got[0] is not got[1] and got[0] is got[2]
    await pool.close()


async def test_acquire_waits_for_a_client_to_become_ready() -> None:
    """With none READY, acquire blocks until one gets there, then returns it."""
    pool, fakes = await _started(2)
    waiter = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(UNIT)
    assert not waiter.done()
    fakes.made[1].ready()
    assert await waiter is fakes.made[1]
    await pool.close()


async def test_acquire_times_out_when_nothing_gets_ready() -> None:
    """No READY client within the timeout: RequestTimeoutError (also a TimeoutError)."""
    pool, _ = await _started(2)
    with pytest.raises(RequestTimeoutError):
        await pool.acquire(timeout=2 * UNIT)
    await pool.close()


async def test_a_reconnecting_client_stays_in_the_pool_but_is_not_handed_out() -> None:
    """A lost connection (CONNECTING again) keeps its place; acquire skips it meanwhile."""
    pool, fakes = await _started(2)
    first, second = fakes.made
    first.ready()
    second.ready()
    first.machine.fire(ClientTrigger.LOST)
    assert {id(await pool.acquire()) for _ in range(4)} == {id(second)}
    assert len(pool.clients) == 2 and pool.replaced == 0
    await pool.close()


async def test_broken_client_is_dropped_and_replaced_on_another_address() -> None:
    """BROKEN: disconnected, removed, and a new client on the other URL takes its place."""
    pool, fakes = await _started(2)
    broken = fakes.made[0]
    assert broken.url == URLS[0]
    _break(broken)
    assert broken not in pool.clients
    assert len(pool.clients) == 2 and pool.replaced == 1
    replacement = fakes.made[-1]
    assert replacement.url == URLS[1]
    await until(lambda: broken.disconnects == 1 and replacement.connects == 1)
    assert broken.state is ClientState.CLOSED
    await pool.close()


async def test_replacement_goes_to_the_least_used_other_address() -> None:
    """Three addresses: the replacement avoids the failed one and picks the emptiest."""
    pool, fakes = await _started(5, URLS)  # a: 2, b: 2, c: 1
    _break(next(c for c in fakes.made if c.url == URLS[0]))
    assert fakes.made[-1].url == URLS[2]
    assert Counter(c.url for c in pool.clients) == {URLS[0]: 1, URLS[1]: 2, URLS[2]: 2}
    await pool.close()


async def test_single_address_pool_replaces_on_the_same_address() -> None:
    """With one URL there is no other address: the replacement reuses it."""
    pool, fakes = await _started(1, URLS[:1])
    _break(fakes.made[0])
    assert [c.url for c in pool.clients] == [URLS[0]]
    assert pool.clients[0] is not fakes.made[0]
    await pool.close()


async def test_client_closed_by_the_server_is_dropped_without_replacement() -> None:
    """A terminal close would be refused again: dropped, not replaced, counted."""
    pool, fakes = await _started(2)
    fakes.made[0].ready()
    fakes.made[0].machine.fire(ClientTrigger.TERMINAL, code=3503)
    assert fakes.made[0] not in pool.clients
    assert (len(pool.clients), pool.dropped, pool.replaced) == (1, 1, 0)
    fakes.made[1].machine.fire(ClientTrigger.TERMINAL, code=3500)
    with pytest.raises(ClientClosedError):
        await pool.acquire()
    await pool.close()


async def test_close_disconnects_everything_and_acquire_then_fails() -> None:
    """After close() every client is disconnected and acquire raises ClientClosedError."""
    pool, fakes = await _started(3)
    fakes.made[0].ready()
    await pool.close()
    assert [c.disconnects for c in fakes.made] == [1, 1, 1]
    assert all(c.state is ClientState.CLOSED for c in fakes.made)
    assert pool.clients == []
    with pytest.raises(ClientClosedError):
        await pool.acquire()


async def test_pool_ignores_its_own_disconnects_when_closing() -> None:
    """Closing does not count the clients it disconnects as dropped or broken."""
    pool, fakes = await _started(2)
    await pool.close()
    assert (pool.dropped, pool.replaced, len(fakes.made)) == (0, 0, 2)


def _give_up(client: FakeClient, attempts: int = 3) -> None:
    """A client that never got READY fails its attempts and goes BROKEN."""
    for _ in range(attempts):
        client.machine.fire(ClientTrigger.ATTEMPT_FAILED)
    client.machine.fire(ClientTrigger.GIVE_UP)


async def test_replacements_in_a_row_continue_the_backoff() -> None:
    """Each replacement of a replacement that never got READY waits the delay one client
    would wait after all their failures (3 attempts each); READY starts over."""
    backoff = CountingBackoff(initial=UNIT / 10, factor=1.0, jitter=0.0)
    fakes = Fakes()
    pool = ClientPool(URLS[:1], size=1, max_retries=3, factory=fakes, backoff=backoff)
    await pool.start()
    await until(lambda: fakes.made[0].connects == 1)
    _give_up(fakes.made[0])  # failures 1-3: the replacement waits as before attempt 4
    await until(lambda: len(fakes.made) == 2 and fakes.made[1].connects == 1)
    _give_up(fakes.made[1])  # failures 4-6
    await until(lambda: len(fakes.made) == 3 and fakes.made[2].connects == 1)
    fakes.made[2].ready()
    _break(fakes.made[2])  # it was READY: its replacement starts a new streak
    await until(lambda: len(fakes.made) == 4 and fakes.made[3].connects == 1)
    assert backoff.asked == [2, 5, 2]
    await pool.close()


async def test_pool_with_every_server_down_does_not_spin() -> None:
    """A refused connect with max_retries=1 breaks a client at once; its replacement
    waits the back-off instead of trying (and breaking) right away, again and again."""
    url = f"ws://127.0.0.1:{free_port()}/connection/websocket"
    pool = ClientPool(
        [url], size=1, max_retries=1, backoff=Backoff(initial=3600.0, maximum=3600.0, jitter=0.0)
    )
    async with pool:
        await until(lambda: pool.replaced >= 1)
        await asyncio.sleep(10 * UNIT)  # a spinning pool replaces thousands meanwhile
        assert pool.replaced == 1
        assert [client.state for client in pool.clients] == [ClientState.IDLE]
    assert pool.clients == []


def test_pool_needs_urls_and_a_positive_size() -> None:
    """No URL or size 0 is refused at construction."""
    with pytest.raises(ValueError):
        ClientPool([])
    with pytest.raises(ValueError):
        ClientPool(URLS, size=0)
