"""The ``hubbub`` command: ``serve``, ``config check``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional
from urllib.parse import urlsplit, urlunsplit

import typer

from hubbub.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from hubbub.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="hubbub real-time server")
config_app = typer.Typer(no_args_is_help=True, help="Work with configuration files")
app.add_typer(config_app, name="config")


def _mount_tools() -> None:
    """``hubbub bench`` and ``hubbub evaluate`` need the bench extra: mount them when present."""
    try:
        from hubbub.bench.cli import app as bench_app
        from hubbub.evaluate.cli import app as evaluate_app
    except ImportError:  # pragma: no cover - installed without the bench extra
        return
    app.add_typer(bench_app, name="bench", help="Load generator: connect, fanout, rooms, echo")
    app.add_typer(evaluate_app, name="evaluate", help="Codec benchmark and AHP decision matrix")


_mount_tools()

ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer reads the annotation at run time
    typer.Option("--config", "-c", help="YAML configuration file"),
]


def _load(config: Path | None, overrides: dict[str, object]) -> object:
    from hubbub.config import load_settings

    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        typer.echo(f"hubbub: invalid configuration\n{exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(help="Public WebSocket port")] = None,  # noqa: UP045
    internal_port: Annotated[
        Optional[int], typer.Option(help="Operators' port: metrics, health")  # noqa: UP045
    ] = None,
    log_level: Annotated[
        Optional[str], typer.Option(help="debug, info, warning or error")  # noqa: UP045
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Server processes sharing the ports (needs a broker)")
    ] = 1,
) -> None:
    """Run the server until SIGTERM or SIGINT."""
    overrides: dict[str, object] = {}
    for key, value in (
        ("server.host", host),
        ("server.port", port),
        ("server.internal_port", internal_port),
        ("log.level", log_level),
    ):
        if value is not None:
            overrides[key] = value
    from hubbub.config import Settings

    settings = _load(config, overrides)
    assert isinstance(settings, Settings)
    from hubbub.observability.logging import configure_logging
    from hubbub.server import run
    from hubbub.workers import Supervisor, check_workers

    try:
        check_workers(settings, workers)
    except ConfigError as exc:
        typer.echo(f"hubbub: {exc}", err=True)
        raise typer.Exit(2) from None

    try:
        configure_logging(settings.log.level, settings.log.format)
    except ValueError as exc:
        typer.echo(f"hubbub: {exc}", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        raise typer.Exit(Supervisor(settings, workers).run())
    try:
        run(settings)
    except OSError as exc:  # port in use, address not available
        typer.echo(f"hubbub: cannot listen: {exc}", err=True)
        raise typer.Exit(1) from None
    except EngineError as exc:  # the broker is down or refuses us: say which one
        typer.echo(f"hubbub: cannot start the engine ({_engine_keys(settings)}): {exc}", err=True)
        raise typer.Exit(1) from None


def _engine_keys(settings: Settings) -> str:
    """``engine.broker = URL``, plus presence when it has its own; passwords hidden."""
    keys = [f"engine.broker = {_without_password(settings.engine.broker)}"]
    presence = settings.engine.presence
    if presence is not None and presence != settings.engine.broker:
        keys.append(f"engine.presence = {_without_password(presence)}")
    return ", ".join(keys)


def _without_password(url: str) -> str:
    """The URL to show in a message: a password in it becomes ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


@app.command()
def chat(
    url: Annotated[
        str, typer.Argument(help="ws://host:port/connection/websocket or tcp://host:port")
    ],
    channel: Annotated[str, typer.Option(help="Channel to join")] = "chat:lobby",
    name: Annotated[str, typer.Option(help="Your name in the chat")] = "anonymous",
    codec: Annotated[str, typer.Option(help="json, protobuf or msgpack")] = "json",
) -> None:
    """Chat in the terminal: /who, /history N, /join CHANNEL, /quit."""
    from hubbub.chat.app import run_chat

    raise typer.Exit(run_chat(url, channel, name, codec))


@config_app.command("check")
def config_check(config: Annotated[Path, typer.Argument(help="YAML configuration file")]) -> None:
    """Validate a configuration file; exit 2 naming the file, key and line on error."""
    _load(config, {})
    typer.echo(f"{config}: ok")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
