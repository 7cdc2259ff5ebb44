"""Configuration: YAML file → validated, frozen ``Settings``.

Three layers, later ones win: the YAML file, overrides from the command line (dotted
keys such as ``{"server.port": 9000}``), then ``HUBBUB_<SECTION>_<KEY>`` environment
variables. Every mistake becomes one line of a ``ConfigError`` that names where the value
came from (``file:line``, the environment variable, or the command line), the dotted key
and what was expected, so a user can fix the config without reading our code.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from hubbub.errors import ConfigError

__all__ = [
    "ChannelOptions",
    "ChannelsSettings",
    "ClientSettings",
    "EngineSettings",
    "LogSettings",
    "ServerSettings",
    "Settings",
    "load_settings",
    "parse_duration",
]

ENV_PREFIX = "HUBBUB_"

# --------------------------------------------------------------------------- value types

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_HINT = "expected a duration like 500ms, 15s, 5m"


def _fail(kind: str, message: str, got: object) -> PydanticCustomError:
    """An error whose message already says what was expected and what we got.

    The ``hubbub_`` type prefix tells ``_describe`` to use the message as it is.
    """
    return PydanticCustomError(f"hubbub_{kind}", message + " (got {got})", {"got": repr(got)})


def parse_duration(value: object) -> float:
    """Seconds from ``500ms``, ``15s``, ``5m``, ``1h``, ``1m30s`` or a plain number.

    Raises:
        ValueError: the value is not a duration or is negative.
    """
    if isinstance(value, bool):  # bool is an int, but `ping_interval: yes` is a mistake
        raise _fail("duration", _DURATION_HINT, value)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_from_text(value.strip(), value)
    else:
        raise _fail("duration", _DURATION_HINT, value)
    if not math.isfinite(seconds):
        raise _fail("duration", _DURATION_HINT, value)
    if seconds < 0:
        raise _fail("duration", "expected a duration >= 0", value)
    return seconds


def _duration_from_text(text: str, original: str) -> float:
    try:
        return float(text)  # env vars and quoted numbers: plain seconds
    except ValueError:
        pass
    unsigned = text.removeprefix("-")
    if not _DURATION.fullmatch(unsigned):
        raise _fail("duration", _DURATION_HINT, original)
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(unsigned))
    return -seconds if text.startswith("-") else seconds


def _positive_duration(seconds: float) -> float:
    if seconds <= 0:
        raise _fail("duration", "expected a duration > 0", f"{seconds:g}s")
    return seconds


MAX_PING_INTERVAL = 86400.0
"""A day: the connect reply carries the interval as a uint32 of seconds, and a client
that hears nothing for longer than this is gone, not idle."""

MAX_MESSAGE_BYTES = 1 << 30
"""1 GiB: a Protobuf message cannot pass 2 GiB, and the WebSocket frame limit is twice
this (picows overflows from 2**62)."""


def _ping_interval(seconds: float) -> float:
    if seconds > MAX_PING_INTERVAL:
        raise _fail("duration", "expected a duration of at most 24h", f"{seconds:g}s")
    return seconds


def _message_bytes(value: int) -> int:
    if value > MAX_MESSAGE_BYTES:
        raise _fail("range", f"expected a number from 1 to {MAX_MESSAGE_BYTES} (1 GiB)", value)
    return value


def _whole_number(value: object) -> object:
    # Pydantic reads True as 1; `port: yes` is a mistake, not port 1.
    if isinstance(value, bool):
        raise _fail("int", "expected a whole number", value)
    return value


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise _fail("port", "expected a port from 0 to 65535", value)
    return value


def _positive(value: int) -> int:
    if value <= 0:
        raise _fail("positive", "expected a number > 0", value)
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise _fail("not_negative", "expected a number >= 0", value)
    return value


_NAMESPACE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _namespace_name(value: str) -> str:
    if not _NAMESPACE_NAME.fullmatch(value):
        raise _fail("namespace", "expected a namespace name of A-Z a-z 0-9 _ . -", value)
    return value


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def _engine_url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise _fail("url", "expected a URL like memory://, redis://host:6379", value)
    return value


def _engine_check(check: Callable[[str], None], url: str) -> str:
    """The registry's ValueError as a config error; its wording never repeats the URL."""
    try:
        check(url)
    except ValueError as exc:
        raise PydanticCustomError("hubbub_url", "{reason}", {"reason": str(exc)}) from None
    return url


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _none_as_empty(value: object) -> object:
    """A section whose keys are all commented out parses as null; treat it as empty."""
    return {} if value is None else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as ``500ms``, ``15s``, ``5m``, ``1h`` or a number; never negative."""
PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
Port = Annotated[int, BeforeValidator(_whole_number), AfterValidator(_port)]
PositiveInt = Annotated[int, BeforeValidator(_whole_number), AfterValidator(_positive)]
NotNegativeInt = Annotated[int, BeforeValidator(_whole_number), AfterValidator(_not_negative)]
NamespaceName = Annotated[str, AfterValidator(_namespace_name)]
EngineUrl = Annotated[str, AfterValidator(_engine_url)]


# --------------------------------------------------------------------------- models


class _Section(BaseModel):
    # A typo in a key must fail loudly, not fall back to a default without a word.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """Where the server listens; the internal port serves metrics and health checks."""

    host: str = "127.0.0.1"
    port: Port = 8000
    internal_port: Port = 8001
    tcp_port: Port | None = None
    shutdown_timeout: Duration = 10.0

    @field_validator("internal_port", "tcp_port")
    @classmethod
    def _ports_differ(cls, port: int | None, info: ValidationInfo) -> int | None:
        """Two listeners on one port: the second fails to bind at start, or steals traffic."""
        if not port:  # off, or 0: a free port each
            return port
        for other in ("port", "internal_port"):
            if other != info.field_name and info.data.get(other) == port:
                raise PydanticCustomError(
                    "hubbub_conflict",
                    f"server.{other} is {port} too; each listener needs its own port",
                    {"related": other},
                )
        return port


class ClientSettings(_Section):
    """Limits and timers that apply to every client connection."""

    allow_anonymous: bool = False
    ping_interval: Annotated[PositiveDuration, AfterValidator(_ping_interval)] = 15.0
    max_missed_pongs: PositiveInt = 3
    stale_timeout: PositiveDuration = 10.0
    max_message_bytes: Annotated[PositiveInt, AfterValidator(_message_bytes)] = 65536
    write_buffer_bytes: PositiveInt = 1048576
    max_channels_per_client: PositiveInt = 128
    history_max_limit: PositiveInt = 300
    recovery_max_limit: PositiveInt = 300
    presence_ttl: PositiveDuration = 60.0
    expiry_grace: Duration = 25.0


class ChannelOptions(_Section):
    """What clients may do in a channel and what the server keeps for it."""

    allow_subscribe: bool = False
    allow_publish: bool = False
    allow_presence: bool = False
    allow_history: bool = False
    presence: bool = False
    join_leave: bool = Field(default=False, validate_default=True)
    history_size: NotNegativeInt = 0
    history_ttl: Duration = Field(default=0.0, validate_default=True)
    recover: bool = False

    @field_validator("join_leave")
    @classmethod
    def _join_leave_needs_presence(cls, join_leave: bool, info: ValidationInfo) -> bool:
        """Join/leave pushes are derived from presence, so they cannot exist without it."""
        if join_leave and info.data.get("presence") is False:
            raise PydanticCustomError(
                "hubbub_conflict", "join_leave needs presence: true", {"related": "presence"}
            )
        return join_leave

    @field_validator("history_ttl")
    @classmethod
    def _history_needs_both(cls, ttl: float, info: ValidationInfo) -> float:
        """A history without a ttl never expires, and a ttl without a size keeps nothing."""
        size = info.data.get("history_size")
        if size is None or (size > 0) == (ttl > 0):
            return ttl
        message = (
            f"history_size is {size}, so history_ttl must be > 0 too"
            if size > 0
            else "history_ttl is set, so history_size must be > 0 too"
        )
        raise PydanticCustomError("hubbub_conflict", message, {"related": "history_size"})


class ChannelsSettings(_Section):
    """Options for channels outside any namespace, and for each ``namespace:`` prefix."""

    default: Annotated[ChannelOptions, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ChannelOptions
    )
    namespaces: Annotated[
        dict[NamespaceName, Annotated[ChannelOptions, BeforeValidator(_none_as_empty)]],
        BeforeValidator(_none_as_empty),
    ] = Field(default_factory=dict)

    def options_for(self, channel: str) -> ChannelOptions | None:
        """The options of ``channel``; None when its namespace is unknown (error 102).

        ``ns:rest`` belongs to namespace ``ns`` (split at the first ``:``); a channel
        without ``:`` uses the default options. Personal channels such as ``#42`` or
        ``#42,43`` are ordinary default-namespace channels here: whether the user may
        join them is the node's check, not the config's.
        """
        namespace, sep, _ = channel.partition(":")
        if not sep:
            return self.default
        return self.namespaces.get(namespace)


class EngineSettings(_Section):
    """Engine URLs by scheme; presence and history default to the broker's URL."""

    broker: EngineUrl = "memory://"
    presence: EngineUrl | None = None
    history: EngineUrl | None = Field(default=None, validate_default=True)

    @field_validator("broker")
    @classmethod
    def _broker_is_known(cls, broker: str) -> str:
        """What serve would refuse (unknown scheme, bad port or option) fails the check too."""
        from hubbub.engines.registry import check_broker_url

        return _engine_check(check_broker_url, broker)

    @field_validator("presence")
    @classmethod
    def _presence_is_known(cls, presence: str | None) -> str | None:
        """As for the broker; an unset presence URL is the broker's, checked there."""
        from hubbub.engines.registry import check_presence_url

        return None if presence is None else _engine_check(check_presence_url, presence)

    @field_validator("history")
    @classmethod
    def _history_lives_with_the_broker(
        cls, history: str | None, info: ValidationInfo
    ) -> str | None:
        """Offsets are assigned in the same atomic step that publishes: one engine does both."""
        broker = info.data.get("broker")
        if history is None or broker is None or history == broker:
            return history
        raise PydanticCustomError(
            "hubbub_conflict",
            "history is kept by the broker (each offset is assigned in the step that "
            "publishes), so engine.history must be the broker's URL or left out",
            {"related": "broker"},
        )

    @property
    def presence_url(self) -> str:
        """The URL the presence store uses."""
        return self.presence or self.broker

    @property
    def history_url(self) -> str:
        """The URL the history store uses."""
        return self.history or self.broker


class LogSettings(_Section):
    """``auto`` picks console output on a terminal and JSON lines otherwise."""

    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = "info"
    format: Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)] = "auto"


class Settings(_Section):
    """The whole configuration of one hubbub server."""

    server: Annotated[ServerSettings, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ServerSettings
    )
    client: Annotated[ClientSettings, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ClientSettings
    )
    channels: Annotated[ChannelsSettings, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ChannelsSettings
    )
    engine: Annotated[EngineSettings, BeforeValidator(_none_as_empty)] = Field(
        default_factory=EngineSettings
    )
    log: Annotated[LogSettings, BeforeValidator(_none_as_empty)] = Field(
        default_factory=LogSettings
    )


# --------------------------------------------------------------------------- origins

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class _Origin:
    """Where a value came from: a file and line, an environment variable, the CLI."""

    label: str
    line: int | None = None

    def __str__(self) -> str:
        return self.label if self.line is None else f"{self.label}:{self.line}"


_CLI = _Origin("command line")


class _Problems:
    """Errors collected across all layers, so the user sees every one in one run."""

    def __init__(self) -> None:
        self.lines: list[tuple[_Origin, str]] = []

    def add(self, origin: _Origin, message: str) -> None:
        self.lines.append((origin, message))

    def raise_if_any(self) -> None:
        if not self.lines:
            return
        # File errors in line order first; env and CLI keep the order they were found.
        ordered = sorted(self.lines, key=lambda p: (p[0].line is None, p[0].line or 0))
        raise ConfigError("\n".join(f"{origin}: {message}" for origin, message in ordered))


# --------------------------------------------------------------------------- YAML


def _read_yaml(path: Path, origins: dict[_Path, _Origin]) -> dict[str, Any]:
    """The file's data; records the line of every key in ``origins``."""
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{label}:{line}: not UTF-8 text") from exc
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(  # a str input: the reader's character is a code point
            f"{label}:{line}: invalid YAML: unacceptable #x{exc.character:04x} (control characters "
            "are not allowed)"
        ) from None
    try:
        root = loader.get_single_node()
        if root is None:  # empty file, or only comments: all defaults
            return {}
        if not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1
            sections = ", ".join(Settings.model_fields)
            raise ConfigError(f"{label}:{line}: expected a mapping of sections ({sections})")
        data = _YamlData(loader, label, origins).mapping(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark else label
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: invalid YAML: {exc}") from exc
    except RecursionError:  # PyYAML's parser recurses once per nesting level
        raise ConfigError(f"{label}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return data


class _YamlData:
    """Builds plain data from composed YAML nodes, keeping each key's line.

    Keys stay the text the user typed: PyYAML would turn a namespace named ``on`` or
    ``yes`` into the boolean True.
    """

    def __init__(self, loader: yaml.SafeLoader, label: str, origins: dict[_Path, _Origin]):
        self.loader = loader
        self.label = label
        self.origins = origins
        self.flattened: set[yaml.Node] = set()  # an alias visits the same node again
        self.open: set[yaml.Node] = set()  # nodes being built, to catch `&a [*a]`

    def value(self, node: yaml.Node, path: _Path) -> Any:
        if node in self.open:
            raise ConfigError(f"{self._origin(node)}: an alias refers to itself")
        self.open.add(node)
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, path)
            return self.loader.construct_object(node, deep=True)
        finally:
            self.open.discard(node)

    def sequence(self, node: yaml.SequenceNode, path: _Path) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.origins[(*path, index)] = self._origin(item)
            items.append(self.value(item, (*path, index)))
        return items

    def mapping(self, node: yaml.MappingNode, path: _Path) -> dict[str, Any]:
        if node not in self.flattened:
            self._reject_duplicates(node)
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor`; own keys win
            self.flattened.add(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{self._origin(key_node)}: expected a plain key name")
            key = key_node.value
            self.origins[(*path, key)] = self._origin(key_node)
            result[key] = self.value(value_node, (*path, key))
        return result

    def _reject_duplicates(self, node: yaml.MappingNode) -> None:
        # PyYAML keeps the last of two equal keys without a word; that hides typos.
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            first = seen.setdefault(key_node.value, key_node)
            if first is not key_node:
                raise ConfigError(
                    f"{self._origin(key_node)}: duplicate key {key_node.value!r} "
                    f"(first at line {first.start_mark.line + 1})"
                )

    def _origin(self, node: yaml.Node) -> _Origin:
        return _Origin(self.label, node.start_mark.line + 1)


# --------------------------------------------------------------------------- layers


def _apply_overrides(
    data: dict[str, Any], overrides: Mapping[str, object], origins: dict[_Path, _Origin]
) -> None:
    """Sets each dotted key; a mapping value merges into the section under it."""
    for dotted, value in overrides.items():
        path = tuple(dotted.split("."))
        if not all(path):
            raise ConfigError(f"command line: {dotted!r}: expected a dotted key like server.port")
        parent = data
        for depth, part in enumerate(path[:-1]):
            origins.setdefault(path[: depth + 1], _CLI)
            child = parent.setdefault(part, {})
            if child is None:
                child = parent[part] = {}
            if not isinstance(child, dict):
                prefix = ".".join(path[: depth + 1])
                raise ConfigError(f"command line: {dotted}: {prefix} is not a section")
            parent = child
        _merge(parent, path[-1], value, path, origins)


def _merge(
    parent: dict[str, Any], key: str, value: object, path: _Path, origins: dict[_Path, _Origin]
) -> None:
    origins[path] = _CLI
    if isinstance(value, Mapping) and isinstance(parent.get(key), dict):
        for sub_key, sub_value in value.items():
            _merge(parent[key], str(sub_key), sub_value, (*path, str(sub_key)), origins)
    else:
        parent[key] = dict(value) if isinstance(value, Mapping) else value


def _env_sections() -> dict[str, tuple[tuple[str, ...], type[BaseModel]]]:
    """Environment name of each section that holds plain values → its path and model."""
    sections: dict[str, tuple[tuple[str, ...], type[BaseModel]]] = {
        name: ((name,), _model_of(field.annotation))
        for name, field in Settings.model_fields.items()
        if name != "channels"
    }
    sections["channels_default"] = (("channels", "default"), ChannelOptions)
    return sections


def _apply_environ(
    data: dict[str, Any],
    environ: Mapping[str, str],
    origins: dict[_Path, _Origin],
    problems: _Problems,
) -> None:
    """Applies ``HUBBUB_<SECTION>_<KEY>``; a name that aims at a section but misses is an error."""
    sections = _env_sections()
    by_length = sorted(sections, key=len, reverse=True)
    for variable, value in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].lower()
        origin = _Origin(variable)
        section = next((s for s in by_length if name.startswith(f"{s}_")), None)
        if section is None:
            if any(name == top or name.startswith(f"{top}_") for top in Settings.model_fields):
                names = ", ".join(f"{ENV_PREFIX}{s.upper()}_<KEY>" for s in sections)
                problems.add(origin, f"cannot be set from the environment (expected {names})")
            continue
        path, model = sections[section]
        key = name[len(section) + 1 :]
        if key not in model.model_fields:
            problems.add(origin, f"{'.'.join(path)}.{key}: {_unknown_key(key, model)}")
            continue
        section_data = _section_data(data, path)
        if section_data is not None:  # else the file's own error about the section stands
            section_data[key] = _env_value(value, model, key)
            origins[(*path, key)] = origin


def _section_data(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The mapping at ``path``, created when missing; None when the file put a value there."""
    for part in path:
        child = data.get(part)
        if child is None:
            child = data[part] = {}
        if not isinstance(child, dict):
            return None
        data = child
    return data


def _env_value(value: str, model: type[BaseModel], key: str) -> object:
    """The raw string, except that an empty value or ``null`` turns an optional field off."""
    nullable = NoneType in get_args(model.model_fields[key].annotation)
    if nullable and value.strip().lower() in {"", "null", "none"}:
        return None
    return value


# --------------------------------------------------------------------------- errors


def _model_of(annotation: Any) -> type[BaseModel]:
    model = _unwrap(annotation)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def _unwrap(annotation: Any) -> Any:
    """The plain type under ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            annotation = next(a for a in get_args(annotation) if a is not NoneType)
        else:
            return annotation


def _model_at(path: _Path) -> type[BaseModel] | None:
    """The model that validates the mapping at ``path``, to list its keys in errors."""
    current: Any = Settings
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_key(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}expected one of: {', '.join(known)})"


_EXPECTED = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of names",
}


def _describe(error: ErrorDetails, path: _Path) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(str(path[-1]), _model_at(path[:-1]))
    if kind.startswith("hubbub_"):
        return error["msg"]
    ctx = error.get("ctx", {})
    if kind == "literal_error":
        expected = f"expected one of {ctx.get('expected', '')}"
    else:
        expected = _EXPECTED.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
    got = error.get("input")
    if isinstance(got, str | int | float | bool) or got is None:
        return f"{expected} (got {got!r})"
    return expected


def _locate(path: _Path, error: ErrorDetails, origins: Mapping[_Path, _Origin]) -> _Origin:
    """The origin of the key at ``path``, else its related key's, else its section's."""
    candidates = [path]
    related = error.get("ctx", {}).get("related")
    if related and path:  # a conflict: the key the user did write is the better pointer
        candidates.append((*path[:-1], related))
    candidates += [path[:depth] for depth in range(len(path) - 1, 0, -1)]
    return next((origins[c] for c in candidates if c in origins), _Origin("settings"))


def _report(exc: ValidationError, origins: Mapping[_Path, _Origin], problems: _Problems) -> None:
    for error in exc.errors():
        path = tuple(part for part in error["loc"] if part != "[key]")
        dotted = ".".join(map(str, path))
        problems.add(_locate(path, error, origins), f"{dotted}: {_describe(error, path)}")


# --------------------------------------------------------------------------- entry point


def load_settings(
    path: Path | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Reads, layers and validates the configuration.

    Args:
        path: the YAML file; None means defaults only.
        overrides: dotted keys from the command line; pass only what the user set.
        environ: the environment, ``os.environ`` by default.

    Raises:
        ConfigError: one line per problem, each naming its source, key and expectation.
    """
    origins: dict[_Path, _Origin] = {}
    data = _read_yaml(path, origins) if path is not None else {}
    if overrides:
        _apply_overrides(data, overrides, origins)
    problems = _Problems()
    _apply_environ(data, os.environ if environ is None else environ, origins, problems)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        _report(exc, origins, problems)
        problems.raise_if_any()
        raise  # unreachable: a ValidationError always carries at least one error
    problems.raise_if_any()
    return settings
