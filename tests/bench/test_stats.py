"""Nearest-rank percentiles: every reported figure is a measured value."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import Summary, median, percentile


def test_nearest_rank_on_a_known_sample():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert median([3.0]) == 3.0
    assert median([]) is None


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1), st.floats(0, 100))
def test_a_percentile_is_always_one_of_the_values(values, q):
    assert percentile(values, q) in values


def test_summary_of_a_sample_and_of_nothing():
    summary = Summary.of([0.1, 0.2, 0.3, 0.4])
    assert summary == Summary(count=4, p50=0.2, p95=0.4, max=0.4)
    assert Summary.of([]) is None


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="empty sample"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"q must be within \[0, 100\]; got 101"):
        percentile([1.0], 101)
