"""Percentiles and a monotonic stopwatch for the bench."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence

__all__ = ["median", "percentile", "stopwatch_ns"]

stopwatch_ns = time.perf_counter_ns
"""The clock of every measurement: monotonic, nanoseconds."""


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples`` (``fraction`` 0.5 for p50)."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    """Return the median of ``samples``, the mean of the two middle ones for an even count."""
    return statistics.median(samples)
