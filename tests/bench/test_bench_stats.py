"""Latency histograms: recording in bulk, percentile summaries, merging across workers."""

from __future__ import annotations

import pytest

from hubbub.bench import stats


def test_summary_of_a_uniform_distribution() -> None:
    """1…1000 µs: p50 ≈ 500, p99 ≈ 990, within HDR's 3 significant digits."""
    hist = stats.new_histogram()
    stats.record_many(hist, list(range(1, 1001)))
    s = stats.summarize(hist)
    assert s.count == 1000
    assert s.min_us == 1
    assert s.max_us == pytest.approx(1000, rel=0.001)
    assert s.p50_us == pytest.approx(500, rel=0.002)
    assert s.p90_us == pytest.approx(900, rel=0.002)
    assert s.p99_us == pytest.approx(990, rel=0.002)
    assert s.mean_us == pytest.approx(500.5, rel=0.002)
    assert s.p99_ms == pytest.approx(s.p99_us / 1000)


def test_repeated_values_count_once_each() -> None:
    """Bulk recording counts duplicates; out-of-range values are clipped, not lost."""
    hist = stats.new_histogram()
    stats.record_many(hist, [5, 5, 5, 0, -3, 10**12])
    s = stats.summarize(hist)
    assert s.count == 6
    assert s.min_us == 1
    assert s.max_us == pytest.approx(stats.HIGHEST_US, rel=0.001)


def test_merge_of_encoded_histograms() -> None:
    """Workers' histograms travel encoded and add up in the parent; empty blobs are skipped."""
    a, b = stats.new_histogram(), stats.new_histogram()
    stats.record_many(a, [100] * 90)
    stats.record_many(b, [10_000] * 10)
    merged = stats.merge([stats.encode(a), b"", stats.encode(b)])
    s = stats.summarize(merged)
    assert s.count == 100
    assert s.p50_us == pytest.approx(100, rel=0.01)
    assert s.p99_us == pytest.approx(10_000, rel=0.01)


def test_empty_histogram_summary_is_zero() -> None:
    """No values: a zero summary rather than an error."""
    assert stats.summarize(stats.new_histogram()) == stats.Latency()
    stats.record_many(stats.new_histogram(), [])
