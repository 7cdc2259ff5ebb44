"""Finding a codec by name, through the same registry (and entry points) as the server."""

from __future__ import annotations

from functools import cache

from hubbub.codecs.base import Codec
from hubbub.codecs.registry import CodecRegistry, default_registry


@cache
def _registry() -> CodecRegistry:
    # Scanning entry points costs milliseconds; once per process is enough.
    return default_registry()


def resolve_codec(codec: str | Codec) -> Codec:
    """The codec named ``codec`` (``json``, ``protobuf``, ``msgpack``, ...), or ``codec`` itself.

    Raises:
        UnknownCodecError: no codec of that name is installed (a ``KeyError``).
    """
    if isinstance(codec, str):
        return _registry().get(codec)
    return codec


def codec_names() -> list[str]:
    """The names of the installed codecs."""
    return _registry().names()
