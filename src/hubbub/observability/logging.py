"""Structured logging: JSON lines for machines, aligned columns for people.

structlog and the stdlib ``logging`` module share one handler on the root logger, so a
line from aiohttp or asyncio looks exactly like one of ours and obeys the same level.
Levels are decided by the stdlib loggers, which structlog consults first thing
(``filter_by_level``), so calling :func:`configure_logging` again changes the level and
output of loggers that already exist. Call it before the first log line: a structlog
logger used earlier caches structlog's built-in defaults and keeps printing to stdout.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

import structlog
from structlog.typing import Processor

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS: Final = ("auto", "json", "console")


class _HubbubHandler(logging.StreamHandler[TextIO]):
    """Marks the handler we install, so reconfiguring replaces it and leaves others be."""


class _BoundLogger(structlog.stdlib.BoundLogger):
    """Drops disabled low levels before building an event dict.

    ``filter_by_level`` alone costs about 3 µs per dropped call (it works by raising);
    asking the stdlib logger first, whose answer is cached, costs about 0.2 µs.
    """

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        """Log at debug level, if enabled."""
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        """Log at info level, if enabled."""
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return super().info(event, *args, **kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        """Log at warning level, if enabled."""
        if not self._logger.isEnabledFor(logging.WARNING):
            return None
        return super().warning(event, *args, **kw)


# Run on every event, ours and the stdlib's, before it is rendered.
_SHARED: Final[list[Processor]] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(
    level: str = "info", fmt: str = "auto", *, stream: TextIO | None = None
) -> None:
    """Send structlog and stdlib logs, at ``level`` and above, to ``stream``.

    Args:
        level: one of ``debug``, ``info``, ``warning``, ``error`` (any case).
        fmt: ``json``, ``console``, or ``auto``: console on a terminal, JSON otherwise.
        stream: where lines go; standard error by default.

    Raises:
        ValueError: for an unknown level or format, naming the valid ones.
    """
    levelno = _parse_level(level)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = sys.stderr if stream is None else stream
    if fmt == "auto":
        fmt = "console" if _isatty(out) else "json"

    handler = _HubbubHandler(out)
    handler.setFormatter(_formatter(fmt, colors=_isatty(out)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HubbubHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
    # picows logs every accepted connection at info: at 10^4 connections that is noise
    # and CPU. Its warnings still show; its chatter only with --log-level debug.
    logging.getLogger("picows").setLevel(max(levelno, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=_BoundLogger,
        cache_logger_on_first_use=True,
    )


def _parse_level(level: str) -> int:
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}"
        ) from None


def _formatter(fmt: str, *, colors: bool) -> structlog.stdlib.ProcessorFormatter:
    renderer: list[Processor]
    if fmt == "json":
        # A traceback becomes one string field, so an exception stays on one line.
        renderer = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # Locals in a traceback may hold tokens or message payloads: keep them out.
        tracebacks = structlog.dev.RichTracebackFormatter(
            show_locals=False, color_system="truecolor" if colors else None
        )
        renderer = [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=tracebacks)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
