"""Every name the NATS engines use on the server, and the token encoding behind them.

All names sit under a ``prefix``, so deployments (and test runs) sharing a server never
meet:

    stream  <prefix>_history_<namespace>     one per channel namespace (``chat`` of ``chat:x``)
    subject <prefix>.history.<ns>.<channel>  a channel's stream; at most size + 1 messages
    subject <prefix>.live.<channel>          core NATS fan-out, every node subscribes
    bucket  <prefix>_presence                key ``<channel>.<client>``

Channel names may hold anything (spaces, ``.``, ``*``, ``>``), so they travel as tokens:
``encode_token`` keeps ``[A-Za-z0-9-]`` and writes every other UTF-8 byte as ``_XX``.
One module spells them all, so the engines and ``drop_prefix`` cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hubbub.engines.base import namespace_of

_ESCAPE = re.compile(r"[^A-Za-z0-9-]")
_TOKEN = re.compile(r"(?:[A-Za-z0-9-]|_[0-9A-F]{2})+")


@lru_cache(maxsize=8192)
def encode_token(text: str) -> str:
    """``text`` as one NATS subject token (also a valid stream, bucket and key part).

    ``[A-Za-z0-9-]`` stays; every other UTF-8 byte becomes ``_XX`` (upper-case hex); the
    empty string becomes ``_``. Distinct texts give distinct tokens.
    """
    if not text:
        return "_"
    return _ESCAPE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return "".join(f"_{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def decode_token(token: str) -> str:
    """The text ``encode_token`` made ``token`` from; ValueError if it made no such token."""
    if token == "_":
        return ""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not an encoded token: {token!r}")
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "_":
            out.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(token[i]))
            i += 1
    text = out.decode("utf-8", "surrogatepass")
    if encode_token(text) != token:  # e.g. "_41" for "A": one text, one token
        raise ValueError(f"not an encoded token: {token!r}")
    return text


def last_token(subject: str) -> str:
    """The text of a subject's last token: the channel of a live subject, the client of
    a presence key; ValueError if ``encode_token`` did not make it."""
    return decode_token(subject.rpartition(".")[2])


@dataclass(frozen=True, slots=True)
class Names:
    """The streams, subjects and bucket of one prefix."""

    prefix: str

    def stream(self, channel: str) -> str:
        """The stream keeping the history of ``channel``'s namespace."""
        return f"{self._history_stream}{_namespace_token(channel)}"

    def stream_subjects(self, channel: str) -> str:
        """The subjects the stream of ``channel``'s namespace takes."""
        return f"{self.prefix}.history.{_namespace_token(channel)}.*"

    def history(self, channel: str) -> str:
        """The subject of ``channel`` within its stream."""
        return f"{self.prefix}.history.{_namespace_token(channel)}.{encode_token(channel)}"

    def live(self, channel: str) -> str:
        return f"{self.prefix}.live.{encode_token(channel)}"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}_presence"

    @property
    def bucket_stream(self) -> str:
        """The stream JetStream keeps the bucket in."""
        return f"KV_{self.bucket}"

    def presence_key(self, channel: str, client_id: str) -> str:
        return f"$KV.{self.bucket}.{encode_token(channel)}.{encode_token(client_id)}"

    def presence_keys(self, channel: str) -> str:
        return f"$KV.{self.bucket}.{encode_token(channel)}.*"

    def owns(self, stream: str) -> bool:
        """Is ``stream`` one of this prefix's (a history stream or the bucket)?"""
        return stream.startswith(self._history_stream) or stream == self.bucket_stream

    @property
    def _history_stream(self) -> str:
        return f"{self.prefix}_history_"


def _namespace_token(channel: str) -> str:
    """The token of ``channel``'s namespace; "_" when it has none (or an empty one)."""
    return encode_token(namespace_of(channel) or "")
