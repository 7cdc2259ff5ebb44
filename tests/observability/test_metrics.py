"""Tests for hubbub.observability.metrics."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubbub.observability.metrics import COMMAND_METHODS, Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """Read one sample from the registry, or None when it is not exposed."""
    return metrics.registry.get_sample_value(name, labels)


def rendered(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse render() output back into {(sample name, sorted labels): value}."""
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_known_commands_are_exposed_at_zero_before_any_traffic() -> None:
    """Pre-bound command children appear from the start, so rate() has a baseline."""
    metrics = Metrics()
    for method in COMMAND_METHODS:
        assert sample(metrics, "hubbub_commands_total", method=method) == 0.0


def test_command_counts_by_method() -> None:
    """command() increments only the counter labelled with that method."""
    metrics = Metrics()
    metrics.command("publish")
    metrics.command("publish")
    metrics.command("ping")
    assert sample(metrics, "hubbub_commands_total", method="publish") == 2.0
    assert sample(metrics, "hubbub_commands_total", method="ping") == 1.0
    assert sample(metrics, "hubbub_commands_total", method="subscribe") == 0.0


def test_unknown_command_is_folded_into_one_label() -> None:
    """Arbitrary method names count as 'unknown' instead of creating new series."""
    metrics = Metrics()
    metrics.command("evil-1")
    metrics.command("evil-2")
    assert sample(metrics, "hubbub_commands_total", method="unknown") == 2.0
    assert sample(metrics, "hubbub_commands_total", method="evil-1") is None


def test_sent_and_received_count_messages_and_bytes() -> None:
    """The four message and byte attributes show as the counters of their direction.
    (That the session adds to them per frame is test_session's business.)"""
    metrics = Metrics()
    metrics.messages_sent += 4
    metrics.bytes_sent += 150
    metrics.messages_received += 2
    metrics.bytes_received += 64
    assert sample(metrics, "hubbub_messages_sent_total") == 4.0
    assert sample(metrics, "hubbub_bytes_sent_total") == 150.0
    assert sample(metrics, "hubbub_messages_received_total") == 2.0
    assert sample(metrics, "hubbub_bytes_received_total") == 64.0


def test_connection_and_subscription_gauges_go_up_and_down() -> None:
    """The gauges track opens/closes and subscribes/unsubscribes, including bulk drops."""
    metrics = Metrics()
    metrics.connection_opened()
    metrics.connection_opened()
    metrics.connection_closed()
    metrics.subscribed()
    metrics.subscribed(4)
    metrics.unsubscribed(3)
    assert sample(metrics, "hubbub_connections") == 1.0
    assert sample(metrics, "hubbub_subscriptions") == 2.0


def test_disconnects_and_errors_are_labelled_by_code() -> None:
    """disconnect()/error() count per numeric protocol code, as a string label."""
    metrics = Metrics()
    metrics.disconnect(3008)
    metrics.disconnect(3008)
    metrics.disconnect(3012)
    metrics.error(103)
    assert sample(metrics, "hubbub_disconnects_total", code="3008") == 2.0
    assert sample(metrics, "hubbub_disconnects_total", code="3012") == 1.0
    assert sample(metrics, "hubbub_errors_total", code="103") == 1.0


def test_publications_and_delivery_histogram() -> None:
    """publication() counts; delivered() lands in the bucket matching its latency."""
    metrics = Metrics()
    metrics.publication()
    metrics.delivered(0.00004)
    metrics.delivered(0.0003)
    metrics.delivered(2.0)
    name = "hubbub_publish_to_deliver_seconds"
    assert sample(metrics, "hubbub_publications_total") == 1.0
    assert sample(metrics, f"{name}_bucket", le="5e-05") == 1.0
    assert sample(metrics, f"{name}_bucket", le="0.0005") == 2.0
    assert sample(metrics, f"{name}_bucket", le="1.0") == 2.0
    assert sample(metrics, f"{name}_bucket", le="+Inf") == 3.0
    assert sample(metrics, f"{name}_count") == 3.0
    assert sample(metrics, f"{name}_sum") == pytest.approx(2.00034)


def test_render_exposes_names_labels_and_content_type() -> None:
    """render() returns parseable Prometheus text with the hubbub_* names and labels."""
    metrics = Metrics()
    metrics.command("subscribe")
    metrics.messages_sent += 1
    metrics.bytes_sent += 10
    metrics.disconnect(3001)
    metrics.connection_opened()
    metrics.delivered(0.001)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "# TYPE hubbub_commands_total counter" in text
    assert "# TYPE hubbub_connections gauge" in text
    assert "# TYPE hubbub_publish_to_deliver_seconds histogram" in text
    samples = rendered(metrics)
    assert samples[("hubbub_commands_total", (("method", "subscribe"),))] == 1.0
    assert samples[("hubbub_messages_sent_total", ())] == 1.0
    assert samples[("hubbub_bytes_sent_total", ())] == 10.0
    assert samples[("hubbub_disconnects_total", (("code", "3001"),))] == 1.0
    assert samples[("hubbub_connections", ())] == 1.0
    assert samples[("hubbub_publish_to_deliver_seconds_count", ())] == 1.0


def test_every_metric_is_in_the_hubbub_namespace() -> None:
    """No metric escapes the hubbub_ prefix, and nothing from the global registry leaks in."""
    body, _ = Metrics().render()
    families = list(text_string_to_metric_families(body.decode()))
    assert families
    assert all(f.name.startswith("hubbub_") for f in families)


def test_two_instances_are_independent() -> None:
    """Two Metrics in one process neither clash on registration nor share values."""
    first, second = Metrics(), Metrics()
    first.command("rpc")
    first.connection_opened()
    assert sample(first, "hubbub_commands_total", method="rpc") == 1.0
    assert sample(second, "hubbub_commands_total", method="rpc") == 0.0
    assert sample(second, "hubbub_connections") == 0.0
    assert b'hubbub_commands_total{method="rpc"} 0.0' in second.render()[0]
