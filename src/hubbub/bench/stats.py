"""Latency histograms: HDR histograms in microseconds and their percentile summary.

Workers keep the stamps as they arrive and turn them into latencies a few thousand at
a time (``wire.Counters``: cheaper than ``HdrHistogram.record_value`` per delivery),
then fold them into a histogram after the step, one ``record_value(value, count)`` per
distinct value. Histograms travel to the
parent in HdrHistogram's own compressed encoding and are merged there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
HIGHEST_US = 60_000_000
"""One minute: anything slower is clipped to it (and is a failed run anyway)."""
SIGNIFICANT_DIGITS = 3

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


class Latency(msgspec.Struct, kw_only=True):
    """Percentiles of one latency distribution, in microseconds."""

    count: int = 0
    min_us: int = 0
    mean_us: float = 0.0
    p50_us: int = 0
    p90_us: int = 0
    p99_us: int = 0
    p999_us: int = 0
    max_us: int = 0

    @property
    def p99_ms(self) -> float:
        return self.p99_us / 1000.0


def new_histogram() -> HdrHistogram:
    """An empty histogram covering 1 µs to 60 s at three significant digits."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_many(hist: HdrHistogram, values_us: Sequence[int] | np.ndarray) -> None:
    """Record every value (µs); values are clipped to the histogram's range."""
    values = np.asarray(values_us, dtype=np.int64)
    if values.size == 0:
        return
    clipped = np.clip(values, LOWEST_US, HIGHEST_US)
    distinct, counts = np.unique(clipped, return_counts=True)
    for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
        hist.record_value(value, count)


def summarize(hist: HdrHistogram) -> Latency:
    """The summary of ``hist``; all zeros when it is empty."""
    count = int(hist.get_total_count())
    if count == 0:
        return Latency()
    p50, p90, p99, p999 = (int(hist.get_value_at_percentile(p)) for p in PERCENTILES)
    return Latency(
        count=count,
        min_us=int(hist.get_min_value()),
        mean_us=round(float(hist.get_mean_value()), 1),
        p50_us=p50,
        p90_us=p90,
        p99_us=p99,
        p999_us=p999,
        max_us=int(hist.get_max_value()),
    )


def encode(hist: HdrHistogram) -> bytes:
    """Compressed form for the pipe between worker and parent."""
    encoded: bytes = hist.encode()
    return encoded


def encode_values(values_us: Sequence[int] | np.ndarray) -> bytes:
    """``values_us`` as an encoded histogram for the pipe; b"" when there are none."""
    if len(values_us) == 0:
        return b""
    hist = new_histogram()
    record_many(hist, values_us)
    return encode(hist)


def merge(encoded: Iterable[bytes]) -> HdrHistogram:
    """One histogram holding every encoded histogram's values."""
    total = new_histogram()
    for blob in encoded:
        if blob:
            total.decode_and_add(blob)
    return total
