"""Tests for hubbub.config: defaults, YAML loading, layering and error messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from hubbub.config import (
    ChannelOptions,
    ChannelsSettings,
    EngineSettings,
    Settings,
    load_settings,
    parse_duration,
)
from hubbub.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chat.yaml"


def write(tmp_path: Path, text: str, name: str = "hubbub.yaml") -> Path:
    """Writes a config file so that its first non-empty line is line 1."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(path: Path | None, **environ: str) -> Settings:
    """Loads with an explicit environment, so the runner's HUBBUB_* cannot leak in."""
    return load_settings(path, environ=environ)


def config_error(path: Path | None, **environ: str) -> str:
    """The ConfigError message that loading must raise."""
    with pytest.raises(ConfigError) as info:
        load(path, **environ)
    return str(info.value)


# --------------------------------------------------------------------------- defaults


def test_defaults_without_a_file() -> None:
    """No file and no environment gives the documented defaults."""
    settings = load(None)
    assert settings == Settings()
    assert (settings.server.host, settings.server.port, settings.server.internal_port) == (
        "127.0.0.1",
        8000,
        8001,
    )
    assert settings.server.tcp_port is None
    assert settings.server.shutdown_timeout == 10.0
    assert settings.client.allow_anonymous is False
    assert settings.client.ping_interval == 15.0
    assert settings.client.max_missed_pongs == 3
    assert settings.client.stale_timeout == 10.0
    assert settings.client.max_message_bytes == 65536
    assert settings.client.write_buffer_bytes == 1048576
    assert settings.client.max_channels_per_client == 128
    assert settings.client.history_max_limit == 300
    assert settings.client.recovery_max_limit == 300
    assert settings.client.presence_ttl == 60.0
    assert settings.channels.default == ChannelOptions()
    assert settings.channels.default.allow_subscribe is False
    assert settings.channels.namespaces == {}
    assert settings.engine == EngineSettings(broker="memory://", presence=None, history=None)
    assert (settings.log.level, settings.log.format) == ("info", "auto")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    """A file holding only a comment is a valid config with every default."""
    assert load(write(tmp_path, "# nothing yet\n")) == Settings()


def test_section_with_everything_commented_out_is_empty(tmp_path: Path) -> None:
    """`server:` followed only by comments parses as null and means the defaults."""
    path = write(tmp_path, "server:\n  # port: 9000\nchannels:\n  namespaces:\n    chat:\n")
    settings = load(path)
    assert settings.server.port == 8000
    assert settings.channels.namespaces == {"chat": ChannelOptions()}


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after loading; the server shares one instance."""
    settings = load(None)
    with pytest.raises(pydantic.ValidationError):
        settings.server.port = 1  # type: ignore[misc, unused-ignore]


def test_example_file_loads() -> None:
    """examples/chat.yaml is valid and says what its comments promise."""
    settings = load(EXAMPLE)
    assert settings.client.allow_anonymous is True
    assert (settings.server.host, settings.server.port, settings.server.internal_port) == (
        "127.0.0.1",
        8000,
        8001,
    )
    chat = settings.channels.namespaces["chat"]
    assert chat == ChannelOptions(
        allow_subscribe=True,
        allow_publish=True,
        allow_presence=True,
        allow_history=True,
        presence=True,
        join_leave=True,
        history_size=100,
        history_ttl=600.0,
        recover=True,
    )
    assert settings.channels.default == ChannelOptions()


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("500ms", 0.5),
        ("15s", 15.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2.5s", 2.5),
        ("1m30s", 90.0),
        ("'15'", 15.0),
        ("15", 15.0),
        ("0.25", 0.25),
    ],
)
def test_duration_forms(tmp_path: Path, written: str, seconds: float) -> None:
    """Every duration spelling becomes float seconds."""
    path = write(tmp_path, f"server:\n  shutdown_timeout: {written}\n")
    value = load(path).server.shutdown_timeout
    assert isinstance(value, float)
    assert value == pytest.approx(seconds)


def test_zero_duration_is_allowed_where_it_means_off(tmp_path: Path) -> None:
    """shutdown_timeout: 0s is valid: close at once."""
    assert load(write(tmp_path, "server:\n  shutdown_timeout: 0s\n")).server.shutdown_timeout == 0


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("fast", "expected a duration like 500ms, 15s, 5m (got 'fast')"),
        ("5 parsecs", "expected a duration like 500ms, 15s, 5m (got '5 parsecs')"),
        ("'-5s'", "expected a duration >= 0 (got '-5s')"),
        ("-1", "expected a duration >= 0 (got -1)"),
        ("yes", "expected a duration like 500ms, 15s, 5m (got True)"),
        (".nan", "expected a duration like 500ms, 15s, 5m (got nan)"),
        ("[1, 2]", "expected a duration like 500ms, 15s, 5m (got [1, 2])"),
    ],
)
def test_bad_durations(tmp_path: Path, written: str, expected: str) -> None:
    """A value that is not a non-negative duration names file, line, key and the value."""
    path = write(tmp_path, f"log:\n  level: info\nserver:\n  shutdown_timeout: {written}\n")
    assert config_error(path) == f"{path}:4: server.shutdown_timeout: {expected}"


def test_parse_duration_is_public() -> None:
    """parse_duration serves other modules (CLI flags) and raises ValueError on junk."""
    assert parse_duration("250ms") == 0.25
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration("soon")


# --------------------------------------------------------------------------- validation


NAMESPACE = """channels:
  namespaces:
    chat:
      allow_subscribe: true
      {option}
"""


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("server:\n  port: 70000\n", 2, "server.port", "port from 0 to 65535 (got 70000)"),
        ("server:\n  internal_port: -1\n", 2, "server.internal_port", "(got -1)"),
        ("server:\n  tcp_port: 65536\n", 2, "server.tcp_port", "(got 65536)"),
        ("server:\n  port: true\n", 2, "server.port", "expected a whole number (got True)"),
        ("server:\n  port: eighty\n", 2, "server.port", "whole number (got 'eighty')"),
        ("client:\n  ping_interval: 0s\n", 2, "client.ping_interval", "duration > 0"),
        ("client:\n  max_missed_pongs: 0\n", 2, "client.max_missed_pongs", "> 0 (got 0)"),
        ("client:\n  max_message_bytes: 0\n", 2, "client.max_message_bytes", "> 0"),
        (
            "client:\n  max_message_bytes: 4611686018427387904\n",  # 2**62: picows overflows
            2,
            "client.max_message_bytes",
            "from 1 to 1073741824 (1 GiB) (got 4611686018427387904)",
        ),
        (
            "client:\n  ping_interval: 5000000000s\n",  # past the reply's uint32
            2,
            "client.ping_interval",
            "at most 24h",
        ),
        ("client:\n  ping_interval: 24h1s\n", 2, "client.ping_interval", "at most 24h"),
        ("client:\n  write_buffer_bytes: -1\n", 2, "client.write_buffer_bytes", "> 0"),
        ("client:\n  max_channels_per_client: 0\n", 2, "client.max_channels_per_client", "> 0"),
        ("client:\n  history_max_limit: 0\n", 2, "client.history_max_limit", "> 0"),
        ("client:\n  recovery_max_limit: 0\n", 2, "client.recovery_max_limit", "> 0"),
        ("client:\n  presence_ttl: 0\n", 2, "client.presence_ttl", "duration > 0"),
        ("client:\n  stale_timeout: 0\n", 2, "client.stale_timeout", "duration > 0"),
        ("client:\n  allow_anonymous: maybe\n", 2, "client.allow_anonymous", "true or false"),
        ("log:\n  format: xml\n", 2, "log.format", "one of 'auto', 'json' or 'console'"),
        ("log:\n  level: loud\n", 2, "log.level", "(got 'loud')"),
        ("engine:\n  broker: redis\n", 2, "engine.broker", "URL like memory://"),
        # What serve would die on is refused by the engine registry's own parsing.
        ("engine:\n  broker: bogus://x\n", 2, "engine.broker", "no broker for bogus://"),
        (
            "engine:\n  broker: redis://127.0.0.1:notaport\n",
            2,
            "engine.broker",
            "bad port in the URL: port could not be cast to integer value as 'notaport'",
        ),
        ("engine:\n  broker: nats://h:99999\n", 2, "engine.broker", "port out of range"),
        ("engine:\n  broker: memory://whatever\n", 2, "engine.broker", "takes no host"),
        ("engine:\n  broker: redis://h/x\n", 2, "engine.broker", "database number"),
        (
            "engine:\n  presence: bogus://x\n",
            2,
            "engine.presence",
            "no presence store for bogus://",
        ),
        ("engine:\n  presence: memory://whatever\n", 2, "engine.presence", "takes no host"),
        (
            "server:\n  port: 9000\n  internal_port: 9000\n",
            3,
            "server.internal_port",
            "server.port is 9000 too",
        ),
        (
            "server:\n  port: 9000\n  tcp_port: 9000\n",
            3,
            "server.tcp_port",
            "server.port is 9000 too",
        ),
        (
            "server:\n  tcp_port: 9001\n  internal_port: 9001\n",
            2,
            "server.tcp_port",
            "server.internal_port is 9001 too",
        ),
        ("server: 8000\n", 1, "server", "expected a mapping of keys (got 8000)"),
        (
            NAMESPACE.format(option="history_size: 10"),
            5,
            "channels.namespaces.chat.history_ttl",
            "history_size is 10, so history_ttl must be > 0",
        ),
        (
            NAMESPACE.format(option="history_ttl: 5m"),
            5,
            "channels.namespaces.chat.history_ttl",
            "history_size must be > 0",
        ),
        (
            NAMESPACE.format(option="history_size: -1"),
            5,
            "channels.namespaces.chat.history_size",
            ">= 0 (got -1)",
        ),
        (
            NAMESPACE.format(option="join_leave: true"),
            5,
            "channels.namespaces.chat.join_leave",
            "join_leave needs presence: true",
        ),
        (
            "channels:\n  default:\n    join_leave: yes\n",
            3,
            "channels.default.join_leave",
            "needs presence",
        ),
        (
            "channels:\n  namespaces:\n    bad name: {}\n",
            3,
            "channels.namespaces.bad name",
            "namespace name of A-Z a-z 0-9 _ . - (got 'bad name')",
        ),
        (
            "channels:\n  namespaces:\n    'a:b': {}\n",
            3,
            "channels.namespaces.a:b",
            "(got 'a:b')",
        ),
        ("channels:\n  namespaces: [chat]\n", 2, "channels.namespaces", "mapping of names"),
    ],
)
def test_validation_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    """Each rule fails with `file:line: dotted.key: what was expected`."""
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}:{line}: {key}: ")
    assert fragment in message
    assert "\n" not in message


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    """A typo is an error that names the key and suggests the field it resembles."""
    path = write(tmp_path, "client:\n  allow_anonymous: true\n  pnig_interval: 5s\n")
    message = config_error(path)
    assert message.startswith(f"{path}:3: client.pnig_interval: unknown key")
    assert "did you mean 'ping_interval'?" in message
    assert "max_missed_pongs" in message


def test_unknown_section_and_namespace_option(tmp_path: Path) -> None:
    """Unknown keys are caught at the top level and inside a namespace alike."""
    path = write(tmp_path, "sever:\n  port: 1\n" + NAMESPACE.format(option="histroy_size: 3"))
    lines = config_error(path).splitlines()
    assert lines[0].startswith(f"{path}:1: sever: unknown key (did you mean 'server'?")
    assert lines[1].startswith(f"{path}:7: channels.namespaces.chat.histroy_size: unknown key")


def test_several_errors_are_all_reported_in_line_order(tmp_path: Path) -> None:
    """Every error is listed, one per line, ordered by line in the file."""
    path = write(
        tmp_path,
        """
        client:
          ping_interval: fast
        server:
          port: 99999
          host: 127.0.0.1
          internal_port: -5
        """,
    )
    lines = config_error(path).splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{path}:2", "client.ping_interval"],
        [f"{path}:4", "server.port"],
        [f"{path}:6", "server.internal_port"],
    ]


def test_engine_url_errors_do_not_repeat_the_url(tmp_path: Path) -> None:
    """A URL may hold a password: the registry's reason names the problem, not the URL."""
    path = write(tmp_path, "engine:\n  broker: redis://u:sekrit@h:1/x\n")
    message = config_error(path)
    assert message.startswith(f"{path}:2: engine.broker: redis URL path")
    assert "sekrit" not in message


def test_largest_message_size_and_ping_interval_are_valid(tmp_path: Path) -> None:
    """The upper bounds themselves are accepted."""
    path = write(tmp_path, "client:\n  max_message_bytes: 1073741824\n  ping_interval: 24h\n")
    client = load(path).client
    assert (client.max_message_bytes, client.ping_interval) == (1 << 30, 86400.0)


def test_ports_zero_and_max_are_valid(tmp_path: Path) -> None:
    """Port 0 (any free port, for tests; given twice, a different one for each listener)
    and 65535 are in range."""
    settings = load(write(tmp_path, "server: {port: 0, internal_port: 65535, tcp_port: 0}\n"))
    assert (settings.server.port, settings.server.internal_port) == (0, 65535)
    assert settings.server.tcp_port == 0


def test_history_and_presence_both_set_are_valid(tmp_path: Path) -> None:
    """history_size with history_ttl and join_leave with presence pass."""
    option = "history_size: 5\n      history_ttl: 1h\n      presence: on\n      join_leave: on"
    chat = load(write(tmp_path, NAMESPACE.format(option=option))).channels.namespaces["chat"]
    assert (chat.history_size, chat.history_ttl, chat.presence, chat.join_leave) == (
        5,
        3600.0,
        True,
        True,
    )


def test_log_level_is_case_insensitive(tmp_path: Path) -> None:
    """`level: DEBUG` is read as debug; people copy levels from logging docs."""
    assert load(write(tmp_path, "log: {level: DEBUG, format: JSON}\n")).log.level == "debug"


# --------------------------------------------------------------------------- YAML reading


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file names the path instead of raising FileNotFoundError."""
    path = tmp_path / "nope.yaml"
    message = config_error(path)
    assert message.startswith(f"{path}: cannot read config file")


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable path (here a directory) is a ConfigError naming it."""
    assert config_error(tmp_path).startswith(f"{tmp_path}: cannot read config file")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    """A syntax error reports the file and the line PyYAML stopped at."""
    path = write(tmp_path, "server:\n  port: 8000\n  host: [unclosed\nclient: {}\n")
    message = config_error(path)
    assert message.startswith(f"{path}:4: invalid YAML")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported with their line, not a decode traceback."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"server:\n  host: caf\xe9\n")
    assert config_error(path) == f"{path}:2: not UTF-8 text"


@pytest.mark.parametrize(
    ("text", "line", "character"),
    [
        (b"server:\n  host: 127.0.0.1\x1b\n", 2, "#x001b"),
        (b"server:\n  port: 8000\n\x00", 3, "#x0000"),
    ],
    ids=["escape", "NUL"],
)
def test_control_character_names_the_line(
    tmp_path: Path, text: bytes, line: int, character: str
) -> None:
    """PyYAML refuses control characters before parsing; that is a config error, one line."""
    path = tmp_path / "ctrl.yaml"
    path.write_bytes(text)
    message = config_error(path)
    assert message.startswith(f"{path}:{line}: invalid YAML: unacceptable {character}")
    assert "\n" not in message


@pytest.mark.parametrize("depth", [500, 5000])
def test_deep_nesting_is_a_config_error(tmp_path: Path, depth: int) -> None:
    """PyYAML recurses per nesting level: too deep is a config error, not RecursionError."""
    path = write(tmp_path, "server: " + "[" * depth + "]" * depth + "\n")
    assert config_error(path) == f"{path}: invalid YAML: nested too deeply"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A list at the top is rejected with the sections it should hold."""
    path = write(tmp_path, "- server\n- client\n")
    message = config_error(path)
    assert message.startswith(f"{path}:1: expected a mapping of sections (server, client")


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    """PyYAML would keep the last of two equal keys silently; we name both lines."""
    path = write(tmp_path, "server:\n  port: 1\n  host: x\n  port: 2\n")
    assert config_error(path) == f"{path}:4: duplicate key 'port' (first at line 2)"


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    """Namespaces can share options through `<<: *anchor` and still override keys."""
    path = write(
        tmp_path,
        """
        channels:
          namespaces:
            chat: &open
              allow_subscribe: true
              allow_publish: true
            news:
              <<: *open
              allow_publish: false
        """,
    )
    namespaces = load(path).channels.namespaces
    assert namespaces["chat"].allow_publish is True
    assert namespaces["news"].allow_subscribe is True
    assert namespaces["news"].allow_publish is False


def test_merged_key_errors_point_at_the_anchor(tmp_path: Path) -> None:
    """An error in shared options is reported where the user wrote it."""
    path = write(
        tmp_path,
        """
        channels:
          namespaces:
            chat: &open
              join_leave: true
            news:
              <<: *open
        """,
    )
    lines = config_error(path).splitlines()
    assert lines == [
        f"{path}:4: channels.namespaces.chat.join_leave: join_leave needs presence: true",
        f"{path}:4: channels.namespaces.news.join_leave: join_leave needs presence: true",
    ]


def test_alias_of_a_merged_mapping_is_not_a_duplicate(tmp_path: Path) -> None:
    """Reusing a mapping that itself merged an anchor keeps its own overrides."""
    path = write(
        tmp_path,
        """
        channels:
          namespaces:
            base: &base {allow_publish: true}
            chat: &chat
              <<: *base
              allow_publish: false
            news: *chat
        """,
    )
    namespaces = load(path).channels.namespaces
    assert namespaces["base"].allow_publish is True
    assert namespaces["chat"].allow_publish is False
    assert namespaces["news"].allow_publish is False


def test_recursive_alias_is_a_config_error(tmp_path: Path) -> None:
    """A mapping that contains itself is refused instead of recursing forever."""
    path = write(tmp_path, "server: &a\n  host: *a\n")
    assert config_error(path) == f"{path}:1: an alias refers to itself"


def test_yaml_boolean_words_stay_namespace_names(tmp_path: Path) -> None:
    """A namespace called `on` stays the string 'on', not YAML 1.1's True."""
    path = write(tmp_path, "channels:\n  namespaces:\n    on: {allow_subscribe: yes}\n")
    namespaces = load(path).channels.namespaces
    assert list(namespaces) == ["on"]
    assert namespaces["on"].allow_subscribe is True


# --------------------------------------------------------------------------- layering


def test_precedence_file_then_overrides_then_environment(tmp_path: Path) -> None:
    """CLI overrides beat the file, and environment variables beat both."""
    path = write(tmp_path, "server:\n  port: 1000\n  host: 0.0.0.0\n")
    assert load_settings(path, environ={}).server.port == 1000
    with_cli = load_settings(path, overrides={"server.port": 2000}, environ={})
    assert with_cli.server.port == 2000
    assert with_cli.server.host == "0.0.0.0"
    with_env = load_settings(
        path, overrides={"server.port": 2000}, environ={"HUBBUB_SERVER_PORT": "3000"}
    )
    assert with_env.server.port == 3000
    assert with_env.server.host == "0.0.0.0"


def test_overrides_reach_namespaces_and_merge_sections(tmp_path: Path) -> None:
    """Dotted overrides can set namespace options; a mapping value merges, not replaces."""
    path = write(tmp_path, "server:\n  port: 1000\n")
    settings = load_settings(
        path,
        overrides={
            "channels.namespaces.chat.allow_publish": True,
            "server": {"internal_port": 1001},
        },
        environ={},
    )
    assert settings.channels.namespaces["chat"].allow_publish is True
    assert (settings.server.port, settings.server.internal_port) == (1000, 1001)


def test_override_errors_name_the_command_line(tmp_path: Path) -> None:
    """A bad override value is blamed on the command line, not the file."""
    path = write(tmp_path, "client:\n  ping_interval: 5s\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, overrides={"client.ping_interval": "soon"}, environ={})
    assert str(info.value) == (
        "command line: client.ping_interval: expected a duration like 500ms, 15s, 5m (got 'soon')"
    )


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("server..port", "expected a dotted key"),
        ("server.port.number", "server.port is not a section"),
    ],
)
def test_malformed_override_keys(tmp_path: Path, key: str, fragment: str) -> None:
    """An override key that cannot be a path is refused before validation."""
    path = write(tmp_path, "server:\n  port: 1\n")
    with pytest.raises(ConfigError, match="command line") as info:
        load_settings(path, overrides={key: 5}, environ={})
    assert fragment in str(info.value)


def test_environment_values_are_parsed_per_field() -> None:
    """Env strings become ints, bools, durations and URLs; empty turns an optional off."""
    settings = load(
        None,
        HUBBUB_SERVER_PORT="9000",
        HUBBUB_SERVER_TCP_PORT="",
        HUBBUB_CLIENT_PING_INTERVAL="5s",
        HUBBUB_CLIENT_ALLOW_ANONYMOUS="true",
        HUBBUB_CLIENT_MAX_MISSED_PONGS="7",
        HUBBUB_ENGINE_BROKER="redis://localhost:6379/0",
        HUBBUB_ENGINE_HISTORY="null",
        HUBBUB_LOG_FORMAT="json",
        HUBBUB_CHANNELS_DEFAULT_ALLOW_PUBLISH="1",
    )
    assert settings.server.port == 9000
    assert settings.server.tcp_port is None
    assert settings.client.ping_interval == 5.0
    assert settings.client.allow_anonymous is True
    assert settings.client.max_missed_pongs == 7
    assert settings.engine.broker == "redis://localhost:6379/0"
    assert settings.engine.history is None
    assert settings.log.format == "json"
    assert settings.channels.default.allow_publish is True


def test_environment_overrides_file_and_keeps_the_rest(tmp_path: Path) -> None:
    """An env var replaces one key; the file's other keys in that section stay."""
    path = write(tmp_path, "client:\n  ping_interval: 20s\n  max_missed_pongs: 5\n")
    settings = load(path, HUBBUB_CLIENT_PING_INTERVAL="500ms")
    assert settings.client.ping_interval == 0.5
    assert settings.client.max_missed_pongs == 5


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    """A bad env value is reported by variable name, even over a valid file value."""
    path = write(tmp_path, "server:\n  port: 8000\n")
    assert config_error(path, HUBBUB_SERVER_PORT="eighty") == (
        "HUBBUB_SERVER_PORT: server.port: expected a whole number (got 'eighty')"
    )


def test_unknown_environment_key_names_the_variable() -> None:
    """HUBBUB_<SECTION>_<typo> is an error with a suggestion, never ignored."""
    message = config_error(None, HUBBUB_CLIENT_PING_INTERVALL="5s")
    assert message.startswith("HUBBUB_CLIENT_PING_INTERVALL: client.ping_intervall: unknown key")
    assert "did you mean 'ping_interval'?" in message


@pytest.mark.parametrize("variable", ["HUBBUB_CHANNELS_NAMESPACES_CHAT_RECOVER", "HUBBUB_SERVER"])
def test_environment_cannot_reach_namespaces(variable: str) -> None:
    """Variables aimed at a section but at no settable key are errors naming the variable."""
    message = config_error(None, **{variable: "1"})
    assert message.startswith(f"{variable}: cannot be set from the environment")


def test_unrelated_environment_variables_are_ignored() -> None:
    """HUBBUB_ names outside the sections (such as a config path) and others pass."""
    settings = load(None, HUBBUB_CONFIG="/etc/hubbub.yaml", PATH="/bin", hubbub_server_port="1")
    assert settings == Settings()


def test_file_and_environment_errors_are_reported_together(tmp_path: Path) -> None:
    """One run shows the file's errors and the environment's, one per line."""
    path = write(tmp_path, "client:\n  max_missed_pongs: 0\n")
    lines = config_error(path, HUBBUB_SERVER_PORT="x", HUBBUB_LOG_COLOUR="red").splitlines()
    assert lines[0].startswith(f"{path}:2: client.max_missed_pongs:")
    assert sorted(line.split(":")[0] for line in lines[1:]) == [
        "HUBBUB_LOG_COLOUR",
        "HUBBUB_SERVER_PORT",
    ]


def test_environment_conflict_points_at_the_variable_that_caused_it() -> None:
    """history_size from env without a ttl blames that variable."""
    message = config_error(None, HUBBUB_CHANNELS_DEFAULT_HISTORY_SIZE="10")
    assert message == (
        "HUBBUB_CHANNELS_DEFAULT_HISTORY_SIZE: channels.default.history_ttl: "
        "history_size is 10, so history_ttl must be > 0 too"
    )


def test_default_environ_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit environ the process environment applies."""
    monkeypatch.setenv("HUBBUB_SERVER_INTERNAL_PORT", "9101")
    assert load_settings().server.internal_port == 9101


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def channels() -> ChannelsSettings:
    """Default options that differ from the one namespace's, so `is` tells them apart."""
    return ChannelsSettings(
        default=ChannelOptions(allow_subscribe=True),
        namespaces={"chat": ChannelOptions(allow_publish=True)},
    )


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("lobby", "default"),
        ("#42", "default"),
        ("#42,43", "default"),
        ("chat:lobby", "chat"),
        ("chat:room:1", "chat"),
        ("chat:", "chat"),
        ("news:today", None),
        (":lobby", None),
    ],
)
def test_options_for(channels: ChannelsSettings, channel: str, expected: str | None) -> None:
    """`ns:rest` uses namespace ns, no colon (personal `#` too) uses default, unknown is None."""
    options = channels.options_for(channel)
    if expected is None:
        assert options is None
    elif expected == "default":
        assert options is channels.default
    else:
        assert options is channels.namespaces[expected]


def test_engine_urls_default_to_the_broker() -> None:
    """presence_url and history_url fall back to the broker unless set on their own."""
    engine = EngineSettings(broker="redis://r:6379", presence="nats://n:4222")
    assert engine.presence_url == "nats://n:4222"
    assert engine.history_url == "redis://r:6379"


def test_history_url_other_than_the_broker_is_refused(tmp_path: Path) -> None:
    """engine.history must be the broker's URL: the broker assigns offsets as it publishes."""
    path = tmp_path / "engine.yaml"
    path.write_text("engine:\n  broker: redis://127.0.0.1:6379/0\n  history: nats://h:4222\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "engine.history" in str(err.value) and ":3:" in str(err.value)
    same = tmp_path / "same.yaml"
    same.write_text("engine:\n  broker: nats://h:4222\n  history: nats://h:4222\n")
    assert load_settings(same, environ={}).engine.history_url == "nats://h:4222"
