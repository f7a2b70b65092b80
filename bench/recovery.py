"""The recovery section: every contender's jobs on one worker process, SIGKILLed once mid-job.

The jobs start together; once every job's response is generating (and each lanes job follows it: a
request after its create, or in webhook mode the workflow waiting on its safety-net timer for the
webhook, since it sends none), the worker is SIGKILLed, as a crashed host dies, and a new one started at
once. Figures: generations per job from the emulator's ledger (1 is perfect: nothing was paid twice)
and the added latency: the median time from the end of the job's *first* generation to the workflow
running on a terminal status (its first workflow task after the end was recorded), minus the same
median of undisturbed jobs of the same duration. A contender that regenerates after the kill pays the
new generation in it; one that resumes pays only its resumption. Webhook mode's end is recorded without a
worker (the receiver's signal), so what it pays is the wait for a live worker to run the workflow.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.contenders import LANES_JOB_TYPES, Contender, start
from bench.durations import after
from bench.emulator_admin import EmulatorAdmin
from bench.job_record import JobRecord, collect, endpoint, run_job
from bench.results import RecoveryFigures
from bench.stack import BenchStack
from bench.stats import Summary, median

READY_TIMEOUT_S = 90.0
"""How long to wait for every job to be mid-generation before killing anyway."""

START_SPACING_S = 0.1
"""Seconds between two submissions: spaced, yet all within the first generation's duration, so every job
is still generating when the worker dies."""


async def _waiting_for_webhook(client: Client, job_id: str) -> bool:
    """Whether a webhook-mode job has read its create's reply and waits on its safety-net timer."""
    history = await client.get_workflow_handle(job_id).fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)


async def _all_running(
    client: Client, admin: EmulatorAdmin, phase: str, records: Sequence[JobRecord]
) -> None:
    """Wait until every job's response exists and every lanes job follows it.

    A stream or poll job follows it once it has sent a request after its create; a webhook job sends
    none until the webhook, so it follows it once its workflow waits on the safety-net timer.
    """
    modes = {r.job_id: Contender(r.contender) for r in records}
    lanes_jobs = {job for job, c in modes.items() if c in LANES_JOB_TYPES and c != Contender.WEBHOOK}
    webhook_jobs = {job for job, c in modes.items() if c == Contender.WEBHOOK}
    waiting: set[str] = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        owner = {
            c.response_id: c.metadata["bench_job"]
            for c in await admin.completions()
            if c.metadata.get("bench_phase") == phase
        }
        following = {
            owner[e.response_id]
            for e in await admin.ledger()
            if e.response_id in owner and endpoint(e) != "create"
        }
        for job in webhook_jobs - waiting:
            if job in owner.values() and await _waiting_for_webhook(client, job):
                waiting.add(job)
        if len(set(owner.values())) == len(records) and lanes_jobs <= following and webhook_jobs <= waiting:
            return
        await asyncio.sleep(0.5)


@dataclass
class RecoveryRun:
    """What the kill left behind, before it is compared with undisturbed jobs."""

    records: list[JobRecord]
    killed_at: float
    first_end: dict[str, float | None]
    """Per job, when its first response became terminal (``None``: never)."""


async def run_recovery(
    client: Client,
    stack: BenchStack,
    *,
    contenders: Sequence[Contender],
    jobs: int,
    duration_s: float,
    task_queue: str,
) -> RecoveryRun:
    """Run the section on its own worker and task queues.

    Args:
        client: A connected client.
        stack: Where workers start.
        contenders: Which contenders.
        jobs: Jobs per contender.
        duration_s: Duration of each job.
        task_queue: lanes' queue of the section's worker.
    """
    admin = stack.admin
    assert admin is not None
    phase = f"recovery-{duration_s:g}s"
    worker = await stack.worker("recovery", task_queue=task_queue)
    records = [
        JobRecord(
            contender=c.value,
            job_id=f"{phase}-{c.value.replace(' ', '-')}-{i}",
            phase=phase,
            duration_s=duration_s,
            submitted_at=0.0,
        )
        for c in contenders
        for i in range(jobs)
    ]
    runs = [
        asyncio.create_task(
            after(
                index * START_SPACING_S,
                run_job(
                    r,
                    functools.partial(
                        start,
                        client,
                        Contender(r.contender),
                        job_id=r.job_id,
                        task_queue=task_queue,
                        phase=phase,
                        duration_s=duration_s,
                    ),
                    timeout_s=duration_s + 240,
                ),
            )
        )
        for index, r in enumerate(records)
    ]
    await _all_running(client, admin, phase, records)
    killed_at = time.time()
    await worker.kill()
    await stack.worker("recovery-restarted", task_queue=task_queue)
    await asyncio.gather(*runs)
    await collect(client, admin, records)
    first_end: dict[str, float | None] = {}
    for c in sorted(await admin.completions(), key=lambda c: c.created_at):
        job = c.metadata.get("bench_job", "")
        if c.metadata.get("bench_phase") == phase and job not in first_end:
            first_end[job] = c.ended_at
    return RecoveryRun(records=records, killed_at=killed_at, first_end=first_end)


def summarise(
    run: RecoveryRun, contenders: Sequence[Contender], undisturbed_lag: Mapping[str, float]
) -> list[RecoveryFigures]:
    """Per contender: generations per job and the latency the kill added.

    Args:
        run: The section's jobs.
        contenders: Which contenders.
        undisturbed_lag: Per contender, median time from the provider's end to the workflow running on it
            (:attr:`~bench.job_record.JobRecord.acted_lag_s`) of undisturbed jobs of the same duration.
    """
    figures = []
    for contender in contenders:
        mine = [r for r in run.records if r.contender == contender.value]
        done = [r for r in mine if r.outcome == "completed"]
        mid_job = [r for r in mine if (end := run.first_end.get(r.job_id)) is None or end > run.killed_at]
        late = [
            seen - first
            for r in done
            if (seen := r.acted_at if r.acted_at is not None else r.detected_at) is not None
            and (first := run.first_end.get(r.job_id)) is not None
        ]
        late_median = median(late)
        base = undisturbed_lag.get(contender.value)
        figures.append(
            RecoveryFigures(
                contender=contender.value,
                jobs=len(mine),
                completed=len(done),
                killed_mid_job=len(mid_job),
                generations_per_job=sum(r.generations for r in mine) / len(mine) if mine else None,
                max_generations=max((r.generations for r in mine), default=None),
                added_latency_s=None if late_median is None or base is None else late_median - base,
                lag_s=Summary.of([lag for r in done if (lag := r.lag_s) is not None]),
            )
        )
    return figures
