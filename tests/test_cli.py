"""``hubbub serve`` as a user runs it: flags, environment overrides, keepalive on sockets."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import EXAMPLE, START_TIMEOUT, UNIT, ServerFactory, free_port, spawn_hubbub
from integration.wsclient import http_get, open_client


@asynccontextmanager
async def _serve(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``hubbub serve`` with ``args`` and ``env`` until the block ends (SIGTERM)."""
    proc = await spawn_hubbub("serve", "--config", str(EXAMPLE), *args, env=env)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), START_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _until(check: Callable[[], object]) -> None:
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            try:
                if await check():  # type: ignore[misc]
                    return
            except OSError:
                pass
            await asyncio.sleep(2 * UNIT)


async def _status(port: int, path: str) -> int:
    status, _ = await http_get(port, path)
    return status


async def test_environment_overrides_flags_and_file() -> None:
    """HUBBUB_SERVER_PORT beats --port, which beats the file; the internal port serves metrics."""
    flag_port, env_port, internal = free_port(), free_port(), free_port()
    env = {"HUBBUB_SERVER_PORT": str(env_port), "HUBBUB_SERVER_INTERNAL_PORT": str(internal)}
    async with _serve("--port", str(flag_port), env=env) as proc:
        await _until(lambda: _ready(env_port))
        assert proc.returncode is None
        assert await _status(internal, "/metrics") == 200
        try:
            flag_status = await _status(flag_port, "/healthz")
        except OSError:
            flag_status = 0
        assert flag_status == 0  # nothing listens on the overridden flag's port


async def _ready(port: int) -> bool:
    return await _status(port, "/readyz") == 200


async def test_bad_environment_value_exits_2_naming_the_variable() -> None:
    """An invalid HUBBUB_* value stops the server before it starts, naming the variable."""
    async with _serve(env={"HUBBUB_CLIENT_PING_INTERVAL": "fast"}) as proc:
        code = await asyncio.wait_for(proc.wait(), START_TIMEOUT)
        err = (await proc.stderr.read()).decode()  # type: ignore[union-attr]
    assert code == 2
    assert "HUBBUB_CLIENT_PING_INTERVAL" in err


async def test_accepted_sockets_have_tcp_keepalive(start_server: ServerFactory) -> None:
    """The server turns TCP keepalive on for every accepted WebSocket connection."""
    server = await start_server()
    client = await open_client(f"ws://127.0.0.1:{server.websocket.port}/connection/websocket")
    session = server.node.sessions[client.client_id]
    transport = session.connection._transport  # type: ignore[attr-defined]
    sock = transport.underlying_transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    await client.close()


def test_chat_command_passes_its_options_to_the_chat_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``hubbub chat URL --channel --name --codec`` runs the chat with exactly those."""
    from typer.testing import CliRunner

    import hubbub.chat.app as chat_app
    from hubbub.cli import app

    seen: list[tuple[str, str, str, str]] = []

    def fake_run_chat(url: str, channel: str, name: str, codec: str = "json") -> int:
        seen.append((url, channel, name, codec))
        return 3

    monkeypatch.setattr(chat_app, "run_chat", fake_run_chat)
    result = CliRunner().invoke(
        app, ["chat", "ws://h/connection/websocket", "--channel", "chat:x", "--name", "al"]
    )
    assert result.exit_code == 3
    assert seen == [("ws://h/connection/websocket", "chat:x", "al", "json")]


async def test_tcp_sockets_inherit_keepalive_from_the_listener(
    start_server: ServerFactory,
) -> None:
    """Raw TCP connections get keepalive (and its idle time) from the listening socket."""
    server = await start_server(**{"server.tcp_port": 0})
    assert server.tcp is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp.port)
    writer.write(b'hubbub/1 json\n{"id":1,"connect":{}}\n')
    assert b'"connect"' in await asyncio.wait_for(reader.readline(), 100 * UNIT)
    (session,) = server.node.sessions.values()
    sock = session.connection._transport.get_extra_info("socket")  # type: ignore[attr-defined]
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
    writer.close()


# ------------------------------------------------------- bad configs: a line, no traceback


async def _hubbub(*args: str) -> tuple[int, str]:
    """Run ``hubbub ARGS`` to its end: the exit code and everything it printed."""
    proc = await spawn_hubbub(*args, merge_stderr=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.parametrize(
    "text",
    [
        b"server:\n  host: 127.0.0.1\x1b\n",
        b"engine:\n  broker: bogus://x\n",
        b"server:\n  port: 18123\n  internal_port: 18123\n",
    ],
    ids=["yaml", "engine url", "two listeners"],
)
@pytest.mark.parametrize("command", ["config check", "serve -c"])
async def test_bad_config_exits_2_naming_the_file(
    tmp_path: Path, text: bytes, command: str
) -> None:
    """One file per stage that refuses it (the YAML reader, an engine URL, a rule across
    keys): `config check` and `serve` both exit 2 with the file named, never a traceback.
    Every other bad file is a case of test_config, which runs the same loader in-process."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    code, out = await _hubbub(*command.split(), str(path))
    assert code == 2, out
    assert f"{path}:" in out
    assert "Traceback" not in out and "Error:" not in out


async def test_unreachable_broker_at_serve_names_the_key_and_url(tmp_path: Path) -> None:
    """A broker that cannot be reached ends serve with one line naming engine.broker and its
    URL (password hidden), exit 1, no traceback."""
    port = free_port()  # nothing listens there: the connection is refused
    path = tmp_path / "down.yaml"
    path.write_text(
        "server:\n  port: 0\n  internal_port: 0\n"
        f"engine:\n  broker: redis://al:sekrit@127.0.0.1:{port}/0?timeout=0.5\n"
    )
    code, out = await _hubbub("serve", "-c", str(path))
    assert code == 1, out
    assert f"engine.broker = redis://al:***@127.0.0.1:{port}/0?timeout=0.5" in out
    assert "sekrit" not in out and "Traceback" not in out
