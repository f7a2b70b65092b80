import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.poll_schedule import (
    FIRST_INTERVAL_S,
    JITTER,
    elapsed_interval_s,
    next_interval_s,
    nominal_interval_s,
)


def test_first_polls_are_fast_then_grow_to_the_cap() -> None:
    intervals = [nominal_interval_s(n, cap_s=30) for n in range(1, 20)]
    assert intervals[0] == FIRST_INTERVAL_S
    assert intervals == sorted(intervals)
    assert intervals[-1] == 30


@given(polls=st.integers(min_value=0, max_value=10**9), cap=st.floats(min_value=0.1, max_value=3600))
def test_interval_never_exceeds_the_cap_and_stays_positive(polls: int, cap: float) -> None:
    interval = next_interval_s(polls, cap, rng=random.Random(polls))
    assert 0 < interval <= cap


def test_jitter_spreads_intervals_within_bounds() -> None:
    rng = random.Random(7)
    samples = {next_interval_s(5, 1000, rng=rng) for _ in range(200)}
    nominal = nominal_interval_s(5, 1000)
    assert len(samples) > 100
    assert all(nominal * (1 - JITTER) <= s <= nominal * (1 + JITTER) for s in samples)


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 0.0


@given(
    lateness=st.lists(st.floats(min_value=0, max_value=60), min_size=1, max_size=40),
    cap=st.floats(min_value=1, max_value=600),
)
def test_late_polls_skip_the_intervals_they_slept_through(lateness: list[float], cap: float) -> None:
    """However late each poll runs (a backlog on the poll queue), the next interval is at least the one an
    on-time schedule has reached by then: a job that waited is never sent back to sub-second polls."""
    rng = _NoJitter()
    now = 0.0
    for polls, late in enumerate(lateness, start=1):
        now += late  # this poll ran ``late`` seconds after it was due
        interval = next_interval_s(polls, cap, elapsed_s=now, rng=rng)
        assert interval >= elapsed_interval_s(now, cap) - 1e-9
        assert interval >= nominal_interval_s(polls, cap) - 1e-9
        assert interval <= cap
        now += interval


def test_on_time_polls_keep_the_geometric_schedule() -> None:
    """Polls that run when due see exactly the attempt-based schedule: time adds nothing."""
    rng = _NoJitter()
    now = 0.0
    for polls in range(1, 25):
        interval = next_interval_s(polls, 120, elapsed_s=now, rng=rng)
        assert interval == pytest.approx(nominal_interval_s(polls, 120))
        now += interval


def test_a_job_that_waited_a_minute_does_not_poll_at_half_a_second() -> None:
    assert next_interval_s(1, 120, elapsed_s=60, rng=_NoJitter()) == pytest.approx(
        FIRST_INTERVAL_S + 0.5 * 60
    )
