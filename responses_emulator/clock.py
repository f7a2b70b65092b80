"""Clocks the emulator reads time from.

Every status is computed lazily from "now", so swapping the clock is all it takes to fast-forward a
response through its lifecycle, its resume window or its retention window in a test.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Source of simulated time, in Unix seconds.

    ``realtime`` tells the emulator whether waiting makes time pass: streams pace themselves with
    real sleeps only on a real-time clock, and otherwise emit what exists now and end.
    """

    @property
    def realtime(self) -> bool:
        """Whether time advances by itself while the emulator waits."""
        ...

    def now(self) -> float:
        """The current time in Unix seconds."""
        ...


class SystemClock:
    """Wall-clock time, for the served emulator and for end-to-end tests that really wait."""

    @property
    def realtime(self) -> bool:
        """Always true: wall time moves on its own."""
        return True

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()


class ManualClock:
    """Time that moves only when a test calls :meth:`advance`, so windows can be crossed instantly.

    Args:
        start: Initial time in Unix seconds; a fixed default keeps ``created_at`` reproducible.
    """

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self._now = start

    @property
    def realtime(self) -> bool:
        """Always false: only :meth:`advance` moves this clock."""
        return False

    def now(self) -> float:
        """Return the manually set time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward and return the new time.

        Raises:
            ValueError: If ``seconds`` is negative; simulated time never goes back.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go back in time")
        self._now += seconds
        return self._now

    def set(self, now: float) -> None:
        """Jump to an absolute time, which must not be earlier than the current one.

        Raises:
            ValueError: If ``now`` is earlier than the current time.
        """
        self.advance(now - self._now)
