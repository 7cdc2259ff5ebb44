"""Codec registry: built-ins plus whatever the ``hubbub.codecs`` entry points add."""

from __future__ import annotations

from importlib.metadata import entry_points

import structlog

from hubbub.codecs.base import Codec

ENTRY_POINT_GROUP = "hubbub.codecs"
_log = structlog.get_logger(__name__)


class UnknownCodecError(KeyError):
    """No codec of that name is registered. A ``KeyError`` for callers that look names up,
    but printed as its message: ``str(KeyError(...))`` would quote it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CodecRegistry:
    """Codecs by name and by WebSocket subprotocol."""

    def __init__(self) -> None:
        self._by_name: dict[str, Codec] = {}

    def register(self, codec: Codec) -> None:
        if not isinstance(codec, Codec):
            raise TypeError(f"{codec!r} does not implement the Codec protocol")
        self._by_name[codec.name] = codec

    def get(self, name: str) -> Codec:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise UnknownCodecError(f"unknown codec {name!r} (known: {known})") from None

    def by_subprotocol(self, subprotocol: str) -> Codec | None:
        for codec in self._by_name.values():
            if codec.subprotocol and codec.subprotocol == subprotocol:
                return codec
        return None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def load_entry_points(self) -> None:
        """Register every codec that an installed package declares; log the broken ones."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._by_name:
                continue
            try:
                factory = ep.load()
                self.register(factory())
            except Exception as exc:  # a broken plug-in must not stop the server
                _log.warning("codec entry point failed", entry_point=ep.name, error=str(exc))


def default_registry() -> CodecRegistry:
    """JSON always; Protobuf and the rest through entry points."""
    from hubbub.codecs.json import JsonCodec

    registry = CodecRegistry()
    registry.register(JsonCodec())
    registry.load_entry_points()
    return registry
