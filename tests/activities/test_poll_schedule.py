import random

from hypothesis import given
from hypothesis import strategies as st

from activities.poll_schedule import FIRST_INTERVAL_S, JITTER, next_interval_s, nominal_interval_s


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
