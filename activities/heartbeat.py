"""Keep heartbeating while an activity waits on something slow.

Cancellation reaches an activity only through heartbeats, and a worker that dies is noticed only when
heartbeats stop. A provider call or a poll interval can be longer than the heartbeat timeout, so the
activities that wait run this ticker beside their work: it sends the latest progress every third of the
heartbeat timeout, whatever the work is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from temporalio import activity

DEFAULT_INTERVAL_S = 5.0
"""Tick used when the activity was scheduled without a heartbeat timeout."""


def heartbeat_interval_s() -> float:
    """A third of the activity's heartbeat timeout, so two ticks may be lost before it expires."""
    timeout = activity.info().heartbeat_timeout
    if timeout is None or timeout.total_seconds() <= 0:
        return DEFAULT_INTERVAL_S
    return max(0.05, timeout.total_seconds() / 3)


@contextlib.asynccontextmanager
async def heartbeating(details: Callable[[], Any] | None = None) -> AsyncIterator[None]:
    """Heartbeat in the background for the duration of the block.

    Args:
        details: Called on each tick for the heartbeat details (the latest progress), or ``None`` for a
            bare heartbeat.
    """
    interval = heartbeat_interval_s()

    async def tick() -> None:
        while True:
            if details is None:
                activity.heartbeat()
            else:
                activity.heartbeat(details())
            await asyncio.sleep(interval)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
