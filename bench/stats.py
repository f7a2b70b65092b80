"""Order statistics of a sample, as every figure of the benchmark reports them.

Nearest-rank percentiles: a reported p95 is a value that was actually measured, never an interpolation
between two jobs, so a reader can find the job behind any figure in the result file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values``.

    Args:
        values: The sample; not necessarily sorted.
        q: Percentile in ``[0, 100]``.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside ``[0, 100]``.
    """
    if not values:
        raise ValueError("percentile of an empty sample: measure at least one job")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within [0, 100]; got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Summary(BaseModel):
    """p50, p95, max and count of one sample."""

    model_config = ConfigDict(frozen=True)

    count: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary | None:
        """Summarise ``values``; ``None`` for an empty sample (nothing was measured)."""
        if not values:
            return None
        return cls(count=len(values), p50=percentile(values, 50), p95=percentile(values, 95), max=max(values))


def median(values: Sequence[float]) -> float | None:
    """The nearest-rank median, or ``None`` for an empty sample."""
    return percentile(values, 50) if values else None
