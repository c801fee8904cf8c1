"""Percentiles of timing samples (linear interpolation, numpy's default method); never averages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated between order statistics.

    With few samples p95 lies between the two largest values: read it as "the slow end", not as a tail estimate.
    Raises ValueError on an empty sequence.
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Iterable[float | None]) -> dict[str, float | int] | None:
    """``{"p50", "p95", "min", "max", "n"}`` in the values' unit, rounded to 0.1; None values are skipped.

    Returns None when no value is left (a stage that never ran).
    """
    present = [float(value) for value in values if value is not None]
    if not present:
        return None
    return {
        "p50": round(percentile(present, 50), 1),
        "p95": round(percentile(present, 95), 1),
        "min": round(min(present), 1),
        "max": round(max(present), 1),
        "n": len(present),
    }


def summarize_fields(rows: Sequence[dict[str, float | None]], fields: Iterable[str]) -> dict[str, object]:
    """``summarize`` of each of ``fields`` across ``rows`` (dicts of per-turn timings)."""
    return {name: summarize(row.get(name) for row in rows) for name in fields}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 0.01, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)
