"""Tests for hubbub.observability.logging."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import get_args

import pytest
import structlog

from hubbub.config import LogSettings
from hubbub.observability.logging import configure_logging


class FakeTTY(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        """Pretend a person is watching."""
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """Parse every line written to the stream as one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_event_level_timestamp_and_fields() -> None:
    """fmt=json writes one JSON object per event with level, event, UTC ISO timestamp."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger("hubbub.test").info("client connected", client="c1", n=3)
    [line] = json_lines(out)
    assert line["event"] == "client connected"
    assert line["level"] == "info"
    assert line["logger"] == "hubbub.test"
    assert line["client"] == "c1"
    assert line["n"] == 3
    stamp = datetime.fromisoformat(str(line["timestamp"]))
    assert stamp.utcoffset() == timedelta(0)


def test_level_filters_lower_events() -> None:
    """At level warning, info and debug are dropped while warning and error get through."""
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)
    log = structlog.get_logger("hubbub.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [(x["level"], x["event"]) for x in json_lines(out)] == [
        ("warning", "w"),
        ("error", "e"),
    ]


def test_debug_level_lets_debug_through() -> None:
    """--log-level debug shows debug events."""
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    structlog.get_logger("hubbub.test").debug("details")
    assert [x["level"] for x in json_lines(out)] == ["debug"]


def test_stdlib_logs_share_the_output_and_level() -> None:
    """Plain logging records come out as the same JSON, filtered by the same level."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    lib = logging.getLogger("aiohttp.server")
    lib.debug("hidden")
    lib.info("served %s", "/metrics")
    [line] = json_lines(out)
    assert line["event"] == "served /metrics"
    assert line["level"] == "info"
    assert line["logger"] == "aiohttp.server"
    assert "timestamp" in line


def test_exception_is_kept_in_a_single_json_line() -> None:
    """log.exception() puts the traceback in an 'exception' field, not on extra lines."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("hubbub.test").exception("handler failed")
    [line] = json_lines(out)
    assert line["level"] == "error"
    assert "RuntimeError: boom" in str(line["exception"])


def test_console_format_is_readable_text() -> None:
    """fmt=console writes a human line with the event, level and key=value pairs."""
    out = io.StringIO()
    configure_logging("info", "console", stream=out)
    structlog.get_logger("hubbub.test").info("node started", port=8000)
    text = out.getvalue()
    assert "node started" in text
    assert "info" in text
    assert "port=8000" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colour codes when the stream is not a terminal


def test_auto_picks_json_off_a_terminal_and_console_on_one() -> None:
    """fmt=auto writes JSON to a pipe or file, and console text to a TTY."""
    piped = io.StringIO()
    configure_logging("info", "auto", stream=piped)
    structlog.get_logger("hubbub.test").info("hello")
    assert json_lines(piped)[0]["event"] == "hello"

    tty = FakeTTY()
    configure_logging("info", "auto", stream=tty)
    structlog.get_logger("hubbub.test").info("hello")
    assert "hello" in tty.getvalue()
    assert not tty.getvalue().lstrip().startswith("{")


def test_reconfiguring_replaces_our_handler_and_changes_level() -> None:
    """A second call moves output to the new stream at the new level, without duplicates."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first)
    log = structlog.get_logger("hubbub.test")
    log.info("one")
    configure_logging("error", "json", stream=second)
    log.info("two")
    log.error("three")
    assert [x["event"] for x in json_lines(first)] == ["one"]
    assert [x["event"] for x in json_lines(second)] == ["three"]


def test_stderr_is_the_default_stream(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a stream argument, lines go to standard error."""
    configure_logging("info", "json")
    structlog.get_logger("hubbub.test").info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err.splitlines()[-1])["event"] == "to stderr"


def test_unknown_level_names_the_valid_ones() -> None:
    """A bad level raises ValueError listing debug, info, warning and error."""
    with pytest.raises(ValueError, match="verbose") as excinfo:
        configure_logging("verbose", "json", stream=io.StringIO())
    for name in ("debug", "info", "warning", "error"):
        assert name in str(excinfo.value)


def test_unknown_format_is_rejected() -> None:
    """A bad format raises ValueError listing json and console."""
    with pytest.raises(ValueError, match="json, console"):
        configure_logging("info", "xml", stream=io.StringIO())


def test_console_traceback_is_plain_and_hides_locals() -> None:
    """Off a terminal, a console traceback has no colour codes and no local variables."""
    out = io.StringIO()
    configure_logging("info", "console", stream=out)
    secret_token = "-".join(["s3", "cr3t"])  # built at run time, so not in the source lines
    try:
        raise RuntimeError(f"boom {len(secret_token)}")
    except RuntimeError:
        structlog.get_logger("hubbub.test").exception("handler failed")
    text = out.getvalue()
    assert "RuntimeError" in text
    assert "\x1b[" not in text
    assert "s3-cr3t" not in text


def test_every_level_the_config_allows_can_be_used() -> None:
    """The config schema's log levels are the ones serve can set (critical was refused)."""
    allowed = get_args(LogSettings.model_fields["level"].annotation)  # the Literal's values
    for level in allowed:
        configure_logging(level, "json", stream=io.StringIO())
    out = io.StringIO()
    configure_logging("critical", "json", stream=out)
    log = structlog.get_logger("hubbub.test")
    log.error("e")
    log.critical("c")
    assert [x["event"] for x in json_lines(out)] == ["c"]
