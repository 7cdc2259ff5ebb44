"""check_workers: which configurations --workers N refuses, without starting processes."""

from __future__ import annotations

import pytest
from conftest import chat_settings

from hubbub.errors import ConfigError
from hubbub.workers import check_workers

REDIS = "redis://127.0.0.1:6379/0"


def test_one_worker_runs_on_anything() -> None:
    check_workers(chat_settings(), 1)


@pytest.mark.parametrize("broker", ["memory://", "MEMORY://"])
def test_several_workers_refuse_an_in_process_broker(broker: str) -> None:
    with pytest.raises(ConfigError, match=r"engine\.broker"):
        check_workers(chat_settings(**{"engine.broker": broker}), 2)


def test_several_workers_refuse_in_process_presence() -> None:
    settings = chat_settings(**{"engine.broker": REDIS, "engine.presence": "memory://"})
    with pytest.raises(ConfigError, match=r"engine\.presence"):
        check_workers(settings, 2)


def test_several_workers_on_a_shared_broker_pass() -> None:
    check_workers(chat_settings(**{"engine.broker": REDIS}), 2)


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ConfigError, match="--workers"):
        check_workers(chat_settings(), 0)
