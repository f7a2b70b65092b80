"""How long to wait between two polls of a background response.

The first polls are fast, because many background jobs finish in seconds and a user is waiting; the
interval then grows geometrically to a cap set by the job type's policy, because an hour-long job polled
every second costs requests and rate limit for nothing. Jitter spreads the polls of jobs that started
together, so a burst of submissions does not become a burst of polls forever.

The interval is also never shorter than the one the schedule has reached *in time*: a poll that came late
(a busy worker, a backlog of checks on the task queue, a worker restart) does not leave its job on the
fast early intervals it slept through. Without that, a worker that falls behind keeps every new job on
sub-second polls for longer, which is more load on the worker that is already behind; with it, late jobs
skip the polls they missed and a backlog drains.
"""

from __future__ import annotations

import random

FIRST_INTERVAL_S = 0.5
"""Delay before the second poll."""

GROWTH = 1.5
"""Factor between consecutive intervals."""

JITTER = 0.2
"""Each interval is drawn within plus or minus this fraction of its nominal value."""


def nominal_interval_s(polls: int, cap_s: float) -> float:
    """The interval after ``polls`` polls, without jitter.

    Args:
        polls: How many polls were made so far (at least 1).
        cap_s: The job type's largest interval.

    Returns:
        ``min(FIRST_INTERVAL_S * GROWTH ** (polls - 1), cap_s)``.
    """
    exponent = max(0, polls - 1)
    # Bound the exponent so that a job polled for days cannot overflow a float.
    return min(FIRST_INTERVAL_S * GROWTH ** min(exponent, 64), cap_s)


def elapsed_interval_s(elapsed_s: float, cap_s: float) -> float:
    """The interval an on-time schedule has reached after waiting ``elapsed_s`` seconds, without jitter.

    On time, the polls before the n-th took ``FIRST * (GROWTH**(n-1) - 1) / (GROWTH - 1)`` seconds and
    the interval after it is ``FIRST * GROWTH**(n-1)``: that is ``FIRST + (GROWTH - 1) * elapsed``.

    Args:
        elapsed_s: Seconds since the first poll of the wait was due.
        cap_s: The job type's largest interval.
    """
    return min(FIRST_INTERVAL_S + (GROWTH - 1) * max(0.0, elapsed_s), cap_s)


def next_interval_s(
    polls: int, cap_s: float, *, elapsed_s: float = 0.0, rng: random.Random | None = None
) -> float:
    """The interval after ``polls`` polls, with jitter, never above the cap.

    Args:
        polls: How many polls were made so far.
        cap_s: The job type's largest interval.
        elapsed_s: Seconds since the first poll of the wait was due; the interval is at least the one an
            on-time schedule reaches by then (:func:`elapsed_interval_s`), so late polls do not add up.
        rng: Source of jitter; tests pass a seeded one.

    Returns:
        Seconds to wait before the next poll.
    """
    nominal = max(nominal_interval_s(polls, cap_s), elapsed_interval_s(elapsed_s, cap_s))
    spread = (rng or random).uniform(-JITTER, JITTER)
    return max(0.05, min(nominal * (1 + spread), cap_s))
