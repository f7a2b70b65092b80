"""Clocks the emulator reads time from.

Every status is computed lazily from "now", so swapping the clock is all it takes to fast-forward a
response through its lifecycle, its resume window or its retention window in a test.

Three clocks cover the cases: :class:`SystemClock` for a served emulator that really waits,
:class:`ManualClock` for in-process tests that want no time to pass at all (streams emit what exists
and end), and :class:`ShiftedClock` for tests that need streams to stay open and paced, as in
production, yet cross minutes of a quiet stream in a moment by advancing it.
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


@runtime_checkable
class AdvanceableClock(Clock, Protocol):
    """A clock a test (or ``POST /_emulator/clock/advance``) can move forward."""

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
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


class ShiftedClock:
    """Wall-clock time plus an offset that only grows: real time that a test can fast-forward.

    Streams on it pace themselves and stay open exactly as on :class:`SystemClock`; advancing it (through
    :meth:`Emulator.advance <responses_emulator.Emulator.advance>`, which also wakes waiting streams)
    makes everything scheduled in the skipped interval due at once. A 20-minute stream whose events
    come one a minute thus runs in seconds over one open connection.

    Args:
        offset: Initial offset from ``time.time()``, in seconds.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset

    @property
    def realtime(self) -> bool:
        """Always true: wall time moves on its own, and advancing only adds to it."""
        return True

    @property
    def offset(self) -> float:
        """Seconds added to wall time so far."""
        return self._offset

    def now(self) -> float:
        """Return ``time.time()`` plus the offset."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Add ``seconds`` to the offset and return the new time.

        Raises:
            ValueError: If ``seconds`` is negative; time never goes back.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go back in time")
        self._offset += seconds
        return self.now()
