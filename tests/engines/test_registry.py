"""Engines chosen by URL scheme: the memory ones always, the others only when installed."""

from __future__ import annotations

import pytest

from hubbub.engines.memory import MemoryBroker, MemoryPresenceStore
from hubbub.engines.registry import check_broker_url, create_broker, create_presence


def test_memory_url_builds_memory_engines() -> None:
    """memory:// gives the in-memory broker and presence store, with nothing installed."""
    assert isinstance(create_broker("memory://"), MemoryBroker)
    assert isinstance(create_presence("memory://"), MemoryPresenceStore)


@pytest.mark.parametrize("url", ["kafka://host", "localhost:6379", ""])
def test_unknown_scheme_names_the_known_ones(url: str) -> None:
    """An unknown or missing scheme is a ValueError listing the schemes that exist."""
    with pytest.raises(ValueError, match=r"memory://.*redis://"):
        create_broker(url)


def test_unknown_scheme_error_hides_the_rest_of_the_url() -> None:
    """The error names the scheme only, so a password in the URL never reaches a log."""
    with pytest.raises(ValueError) as caught:
        create_broker("kafka://user:s3cret@host")
    assert "s3cret" not in str(caught.value)


def test_unknown_scheme_has_no_presence_store() -> None:
    """An unknown scheme is refused; the error says which schemes do offer presence."""
    with pytest.raises(ValueError, match="no presence store for kafka://"):
        create_presence("kafka://localhost:9092")


@pytest.mark.parametrize(
    ("url", "extra"),
    [("redis://localhost:6379/0", "redis"), ("rediss://h", "redis"), ("nats://h", "nats")],
)
def test_missing_engine_module_names_the_extra(
    url: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine whose module or dependency is not importable asks for its pip extra."""
    import hubbub.engines.registry as registry

    def not_installed(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(registry.importlib, "import_module", not_installed)
    with pytest.raises(ValueError, match=rf"pip install 'hubbub\[{extra}\]'"):
        create_broker(url)


@pytest.mark.parametrize("url", ["nats://127.0.0.1:99999", "redis://127.0.0.1:port"])
def test_a_bad_port_is_refused_when_checked_and_when_created(url: str) -> None:
    """``config check`` and serving both refuse a URL whose port does not parse."""
    with pytest.raises(ValueError, match="bad port in the URL"):
        check_broker_url(url)
    with pytest.raises(ValueError, match="bad port in the URL"):
        create_broker(url)
    with pytest.raises(ValueError, match="bad port in the URL"):
        create_presence(url.replace("nats://", "redis://"))
