"""The duration section: the same jobs of several durations through every contender, at once.

Each job's detection lag, provider requests (by endpoint), history events and generations are
measured, then summarised per contender and duration. Durations marked simulated run on a second
emulator whose clock the harness advances (a ``ShiftedClock``): only contenders whose cost does not
depend on wall time between provider events (a stream, a synchronous call) can be simulated faithfully,
and their lag is not computed (the provider's times are shifted).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from temporalio.client import Client

from bench.contenders import Contender, start
from bench.emulator_admin import EmulatorAdmin
from bench.job_record import ENDPOINTS, JobRecord, collect, run_job
from bench.results import ContenderFigures, DurationPoint
from bench.stats import Summary

JOB_TIMEOUT_MARGIN_S = 180.0
"""A job not finished this long after its duration is reported as not finished."""

START_SPACING_S = 0.25
"""Seconds between two submissions of the section."""

SIMULATED_STEP_S = 30.0
"""Emulator seconds per advance of the simulated clock."""

SIMULATED_PACE_S = 0.25
"""Real seconds between two advances: the workers read each step's events before the next."""


@dataclass(frozen=True)
class Point:
    """Jobs of one duration.

    Attributes:
        duration_s: Emulator duration of each job.
        jobs: Jobs per contender.
        contenders: Which contenders run it.
        simulated: Run on the simulated clock.
    """

    duration_s: float
    jobs: int
    contenders: tuple[Contender, ...]
    simulated: bool = False


async def _drive_clock(admin: EmulatorAdmin, phase: str, jobs: int, done: asyncio.Event) -> None:
    """Advance the simulated clock once every job has its response, until every job is done."""
    while not done.is_set():
        created = [c for c in await admin.completions() if c.metadata.get("bench_phase") == phase]
        if len(created) >= jobs:
            break
        await asyncio.sleep(SIMULATED_PACE_S)
    while not done.is_set():
        await admin.advance(SIMULATED_STEP_S)
        await asyncio.sleep(SIMULATED_PACE_S)


async def after(delay_s: float, job: Awaitable[JobRecord]) -> JobRecord:
    """Run ``job`` once ``delay_s`` has passed (submissions are spaced, not a burst)."""
    await asyncio.sleep(delay_s)
    return await job


async def run_point(
    client: Client,
    admin: EmulatorAdmin,
    point: Point,
    *,
    task_queue: str,
    tag: str,
    first_start_s: float = 0.0,
    spacing_s: float = START_SPACING_S,
) -> list[JobRecord]:
    """Run one point's jobs, then collect their measurements.

    Job ``k`` (contenders alternating) is submitted ``first_start_s + k * spacing_s`` after the call, so
    the section measures what each job costs, not how a burst of submissions queues on a small machine
    (the capacity section measures load).
    """
    phase = f"{tag}-{point.duration_s:g}s"
    records = []
    runs: list[Awaitable[JobRecord]] = []
    for index, contender in itertools.product(range(point.jobs), point.contenders):
        job_id = f"{phase}-{contender.value.replace(' ', '-')}-{index}"
        record = JobRecord(
            contender=contender.value,
            job_id=job_id,
            phase=phase,
            duration_s=point.duration_s,
            simulated=point.simulated,
            submitted_at=0.0,
        )
        records.append(record)
        starter = functools.partial(
            start,
            client,
            contender,
            job_id=job_id,
            task_queue=task_queue,
            phase=phase,
            duration_s=point.duration_s,
        )
        timeout = JOB_TIMEOUT_MARGIN_S + (0 if point.simulated else point.duration_s)
        delay = first_start_s + len(runs) * spacing_s
        runs.append(after(delay, run_job(record, starter, timeout_s=timeout)))
    done = asyncio.Event()
    driver = asyncio.create_task(_drive_clock(admin, phase, len(records), done)) if point.simulated else None
    try:
        await asyncio.gather(*runs)
    finally:
        done.set()
        if driver is not None:
            await driver
    return await collect(client, admin, records)


def summarise(records: Sequence[JobRecord], contenders: Sequence[Contender]) -> list[ContenderFigures]:
    """Per contender: lag over all real-time jobs, and one point per (duration, simulated)."""
    figures = []
    for contender in contenders:
        mine = [r for r in records if r.contender == contender.value]
        lags = [lag for r in mine if (lag := r.lag_s) is not None]
        points = []
        keys = sorted({(r.duration_s, r.simulated) for r in mine})
        for duration, simulated in keys:
            group = [r for r in mine if r.duration_s == duration and r.simulated == simulated]
            points.append(point_of(contender, duration, simulated, group))
        figures.append(ContenderFigures(contender=contender.value, lag_s=Summary.of(lags), points=points))
    return figures


def point_of(
    contender: Contender, duration: float, simulated: bool, group: Sequence[JobRecord]
) -> DurationPoint:
    """Summarise one contender's jobs of one duration (jobs that did not finish count in ``jobs`` only)."""
    done = [r for r in group if r.outcome == "completed"]
    point = DurationPoint(
        contender=contender.value,
        duration_s=duration,
        simulated=simulated,
        jobs=len(group),
        completed=len(done),
    )
    if not done:
        return point
    lags = [lag for r in done if (lag := r.lag_s) is not None]
    point.lag_s = Summary.of(lags)
    point.requests_per_job = {
        kind: sum(r.requests.get(kind, 0) for r in done) / len(done)
        for kind in ENDPOINTS
        if any(r.requests.get(kind) for r in done)
    }
    point.requests_total_per_job = sum(r.request_total for r in done) / len(done)
    point.requests_per_job_minute = point.requests_total_per_job / (duration / 60) if duration else None
    events = [r.history_events for r in done if r.history_events is not None]
    if events:
        point.history_events_per_job = sum(events) / len(events)
        point.history_events_max = max(events)
    point.generations_per_job = sum(r.generations for r in done) / len(done)
    return point
