"""A stand-in between a session and its transport that notes what the session writes."""

from __future__ import annotations

from typing import Any


class RecordingConnection:
    """Wraps a session's ``Connection``: every frame written and the backlog it left."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.frames: list[bytes] = []
        self.backlogs: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, frame: bytes) -> int:  # the backlog comes back from every flush
        self.frames.append(frame)
        backlog: int = self._inner.write(frame)
        self.backlogs.append(backlog)
        return backlog
