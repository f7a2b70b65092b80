"""The contenders, and how a job is started on each.

lanes is started through its public client API (``lanes/jobs.py``), the others through their workflows
in ``bench/``.

Every job carries the same metadata whatever the contender: ``bench_job`` (its workflow id, to find its
requests in the emulator's ledger), ``bench_phase`` (to release held responses of one phase) and the
emulator's ``emulator_duration`` (and ``emulator_fault``), so every contender runs the same job.

The emulator announces the end of every background response by webhook when the stack gives it a
receiver, as a provider project with a webhook endpoint does; the receiver would then end any lanes
job's wait, whatever its mode. So every job but lanes webhook mode's carries the emulator's
``webhook_drop`` fault: no webhook is sent for it, as in a project without a webhook endpoint, and each
contender is measured alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from temporalio.client import Client, WorkflowHandle

from bench.naive_polling import NaivePollingInput, NaivePollingWorkflow
from bench.provider_calls import ModelCallInput
from bench.sync_call import SyncCallWorkflow
from lanes.jobs import start_job
from workflows.model_task import ModelTaskInput


class Contender(StrEnum):
    """One way of running a long model job on Temporal."""

    STREAM = "lanes stream"
    POLL = "lanes poll"
    WEBHOOK = "lanes webhook"
    NAIVE = "naive poll"
    SYNC = "sync call"


BUILT: tuple[Contender, ...] = (
    Contender.STREAM,
    Contender.POLL,
    Contender.WEBHOOK,
    Contender.NAIVE,
    Contender.SYNC,
)
"""Contenders that exist, in the table's column order."""

ALL: tuple[Contender, ...] = BUILT
"""Column order of the table (every contender is built)."""

LANES_JOB_TYPES: dict[Contender, str] = {
    Contender.STREAM: "bench_stream",
    Contender.POLL: "bench_poll",
    Contender.WEBHOOK: "bench_webhook",
}
"""The bench policy's job type of each lanes mode (``bench/policy.toml``)."""

CAPACITY_JOB_TYPES: dict[Contender, str] = {
    Contender.STREAM: "bench_stream",
    Contender.POLL: "bench_poll_long",
    Contender.WEBHOOK: "bench_webhook",
}
"""The job type of each lanes mode in the capacity section: poll mode's has a longer poll cap
(``bench/capacity.py`` says why)."""

NO_WEBHOOK_FAULT = "webhook_drop"
"""The emulator fault every job but webhook mode's carries: no webhook is sent when its response ends."""

SYNC_TIMEOUT_MARGIN_S = 30.0
"""The synchronous call's start-to-close timeout is the job's duration plus this."""


def job_metadata(
    job_id: str, phase: str, duration_s: float, fault: str | None = None, *, webhook: bool = False
) -> dict[str, str]:
    """The metadata every contender sends with a job's create.

    ``webhook`` is true only for lanes' webhook mode; any other job's response gets no webhook.
    """
    metadata = {"bench_job": job_id, "bench_phase": phase, "emulator_duration": f"{duration_s:g}"}
    faults = [f for f in (fault, None if webhook else NO_WEBHOOK_FAULT) if f]
    if faults:
        metadata["emulator_fault"] = ",".join(faults)
    return metadata


async def start(
    client: Client,
    contender: Contender,
    *,
    job_id: str,
    task_queue: str,
    phase: str,
    duration_s: float,
    fault: str | None = None,
    job_type: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start one job.

    Args:
        client: From ``lanes.connect.connect``.
        contender: Which way to run it.
        job_id: Its workflow id.
        task_queue: lanes' task queue (the contenders use ``<task_queue>-contenders``).
        phase: Section of the benchmark, tagged in the metadata.
        duration_s: How long the emulator takes to finish the response.
        fault: An ``emulator_fault`` (e.g. ``hold``).
        job_type: A lanes mode's job type other than its own in ``LANES_JOB_TYPES``.

    Raises:
        ValueError: The contender is not one of :data:`BUILT`.
    """
    metadata = job_metadata(job_id, phase, duration_s, fault, webhook=contender == Contender.WEBHOOK)
    text = f"Benchmark job {job_id}: summarise durable execution."
    if contender in LANES_JOB_TYPES:
        task = ModelTaskInput(job_type=job_type or LANES_JOB_TYPES[contender], input=text, metadata=metadata)
        return await start_job(client, task, workflow_id=job_id, task_queue=task_queue)
    call = ModelCallInput(input=text, metadata=metadata, timeout_s=duration_s + SYNC_TIMEOUT_MARGIN_S)
    queue = f"{task_queue}-contenders"
    if contender == Contender.NAIVE:
        return await client.start_workflow(
            NaivePollingWorkflow.run, NaivePollingInput(call=call), id=job_id, task_queue=queue
        )
    if contender == Contender.SYNC:
        return await client.start_workflow(SyncCallWorkflow.run, call, id=job_id, task_queue=queue)
    raise ValueError(f"contender {contender!r} is not one of {[c.value for c in BUILT]}")
