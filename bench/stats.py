"""Percentiles of timing samples (numpy's linear interpolation); never averages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def summarize(values: Iterable[float | None], digits: int = 1) -> dict[str, float | int] | None:
    """``{"p50", "p95", "min", "max", "n"}`` in the values' unit, rounded to ``digits``; None values are skipped.

    Returns None when no value is left (a stage that never ran). With few samples p95 lies between the two largest
    values: read it as "the slow end of this run", not as a tail estimate.
    """
    present = np.array([float(value) for value in values if value is not None])
    if present.size == 0:
        return None
    p50, p95 = np.percentile(present, [50, 95])
    return {
        "p50": round(float(p50), digits),
        "p95": round(float(p95), digits),
        "min": round(float(present.min()), digits),
        "max": round(float(present.max()), digits),
        "n": int(present.size),
    }


def summarize_fields(rows: Sequence[dict[str, float | None]], fields: Iterable[str]) -> dict[str, object]:
    """``summarize`` of each of ``fields`` across ``rows`` (dicts of per-turn timings)."""
    return {name: summarize(row.get(name) for row in rows) for name in fields}


def ms_text(summary: dict[str, float | int] | dict[str, object] | None, key: str = "p50") -> str:
    """``summary[key]`` (a ``summarize`` result) as whole milliseconds for a table, "-" when absent."""
    value = summary.get(key) if summary else None
    return "-" if value is None else f"{float(value):.0f}"  # type: ignore[arg-type]
