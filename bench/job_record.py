"""What one benchmark job cost and when things happened to it, from the three places that saw it.

The client saw it submitted and finished; Temporal's history says how many events it took, when its
first activity (the decision) completed and when an activity result or, in webhook mode, the receiver's
``provider_finished`` signal first brought a terminal status (the workflow saw the end); the emulator's
ledger and completion times say which requests it sent and when the provider finished. All times are
Unix seconds on this machine's clock, shared by the harness, the dev server and the emulator (except on
the simulated clock, where provider times are shifted and lag is not computed).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from bench.emulator_admin import EmulatorAdmin
from bench.provider_calls import TERMINAL_STATUSES
from responses_emulator import Completion, LedgerEntry

PROVIDER_FINISHED = "provider_finished"
"""The signal ``lanes webhooks`` sends a job when its response ends (``ModelTaskWorkflow``'s)."""

HISTORY_CONCURRENCY = 16
"""Histories fetched at once: enough to be quick, few enough not to load the dev server."""

ENDPOINTS = ("create", "retrieve", "stream", "cancel", "delete")
"""Provider endpoints, as the table names them."""


def endpoint(entry: LedgerEntry) -> str:
    """The endpoint a ledger entry hit.

    One of ``create``, ``retrieve``, ``stream`` (a resumed stream), ``cancel``, ``delete`` or ``other``.
    """
    parts = entry.path.strip("/").split("/")
    if entry.method == "POST" and len(parts) == 2:
        return "create"
    if entry.method == "GET" and len(parts) == 3:
        return "stream" if entry.stream else "retrieve"
    if entry.method == "POST" and len(parts) == 4 and parts[3] == "cancel":
        return "cancel"
    if entry.method == "DELETE" and len(parts) == 3:
        return "delete"
    return "other"


class JobRecord(BaseModel):
    """One job's measurements."""

    contender: str
    job_id: str
    phase: str
    duration_s: float
    simulated: bool = False
    submitted_at: float
    finished_at: float | None = None
    outcome: str = "running"
    """``completed``, or the failure the client saw."""
    history_events: int | None = None
    decided_at: float | None = None
    """When the first activity completed: lanes' policy decision (the contenders' first call)."""
    detected_at: float | None = None
    """When the first activity result or ``provider_finished`` signal carrying a terminal provider status
    was recorded."""
    acted_at: float | None = None
    """When the workflow next ran after ``detected_at`` (its next workflow task started). Milliseconds
    later, except when the end was recorded while no worker ran the job: a signal needs no worker to be
    recorded, an activity result does."""
    requests: dict[str, int] = Field(default_factory=dict)
    generations: int = 0
    first_create_at: float | None = None
    provider_ended_at: float | None = None
    """When the job's last generated response became terminal at the provider."""

    @property
    def lag_s(self) -> float | None:
        """Completion-detection lag: the workflow saw the end minus the provider's end."""
        if self.simulated or self.detected_at is None or self.provider_ended_at is None:
            return None
        return self.detected_at - self.provider_ended_at

    @property
    def acted_lag_s(self) -> float | None:
        """The workflow ran on the end minus the provider's end (:attr:`lag_s` for older records)."""
        if self.simulated or self.provider_ended_at is None:
            return None
        seen = self.acted_at if self.acted_at is not None else self.detected_at
        return None if seen is None else seen - self.provider_ended_at

    @property
    def end_to_end_s(self) -> float | None:
        """Submit to the client holding the result."""
        return None if self.finished_at is None else self.finished_at - self.submitted_at

    @property
    def submit_to_create_s(self) -> float | None:
        """Submit to the provider receiving the create."""
        if self.simulated or self.first_create_at is None:
            return None
        return self.first_create_at - self.submitted_at

    @property
    def decision_wait_s(self) -> float | None:
        """Submit to the decision (the first activity's completion)."""
        return None if self.decided_at is None else self.decided_at - self.submitted_at

    @property
    def request_total(self) -> int:
        """Provider requests of every endpoint."""
        return sum(self.requests.values())


async def run_job(
    record: JobRecord, starter: Callable[[], Awaitable[WorkflowHandle[Any, Any]]], *, timeout_s: float
) -> JobRecord:
    """Start a job, wait for its result (or ``timeout_s``) and note the client's times in ``record``."""
    record.submitted_at = time.time()
    try:
        handle = await starter()
        await asyncio.wait_for(handle.result(), timeout=timeout_s)
        record.outcome = "completed"
    except TimeoutError:
        record.outcome = f"not finished within {timeout_s:.0f} s"
    except Exception as exc:  # the outcome is a figure: a failed job is reported, not raised
        record.outcome = f"{type(exc).__name__}: {exc}"[:200]
    record.finished_at = time.time() if record.outcome == "completed" else None
    return record


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def _terminal(value: object) -> bool:
    """An activity result (``status``) or a ``provider_finished`` argument (``outcome.status``) that ends."""
    if not isinstance(value, dict):
        return False
    outcome = value.get("outcome")
    status = outcome.get("status") if isinstance(outcome, dict) else value.get("status")
    return status in TERMINAL_STATUSES


async def read_history(client: Client, record: JobRecord) -> None:
    """Fill ``history_events``, ``decided_at``, ``detected_at`` and ``acted_at`` from the job's history.

    The end is seen by whichever comes first: an activity's result (a poll, a stream, a call) or the
    webhook receiver's ``provider_finished`` signal, recorded when Temporal accepted it.
    """
    history = await client.get_workflow_handle(record.job_id).fetch_history()
    record.history_events = len(history.events)
    for index, event in enumerate(history.events):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            at = _seconds(event)
            if record.decided_at is None:
                record.decided_at = at
            payloads = event.activity_task_completed_event_attributes.result.payloads
        elif (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and event.workflow_execution_signaled_event_attributes.signal_name == PROVIDER_FINISHED
        ):
            at = _seconds(event)
            payloads = event.workflow_execution_signaled_event_attributes.input.payloads
        else:
            continue
        values = await client.data_converter.decode(list(payloads)) if payloads else []
        if any(_terminal(v) for v in values):
            record.detected_at = at
            record.acted_at = next(
                (
                    _seconds(later)
                    for later in history.events[index + 1 :]
                    if later.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
                ),
                None,
            )
            return


def attribute_requests(
    records: Iterable[JobRecord], ledger: list[LedgerEntry], completions: list[Completion]
) -> None:
    """Give each job its provider requests (by endpoint), generations, first create and provider end."""
    by_job = {record.job_id: record for record in records}
    owner: dict[str, str] = {}
    for completion in sorted(completions, key=lambda c: c.created_at):
        job = completion.metadata.get("bench_job")
        if job in by_job:
            owner[completion.response_id] = job
            # The latest generation decides: a regenerated job ended when its last response did.
            by_job[job].provider_ended_at = completion.ended_at
    counts: dict[str, Counter[str]] = {job: Counter() for job in by_job}
    for entry in ledger:
        job = entry.metadata.get("bench_job") or owner.get(entry.response_id or "")
        if job not in by_job:
            continue
        kind = endpoint(entry)
        counts[job][kind] += 1
        record = by_job[job]
        if entry.generated:
            record.generations += 1
        if kind == "create" and (record.first_create_at is None or entry.at < record.first_create_at):
            record.first_create_at = entry.at
    for job, counter in counts.items():
        by_job[job].requests = dict(counter)


async def collect(
    client: Client, admin: EmulatorAdmin, records: list[JobRecord], *, ledger: bool = True
) -> list[JobRecord]:
    """Read every job's history and the emulator's ledger and completions into ``records``.

    ``ledger=False`` skips the ledger (requests and generations stay unset): under thousands of polling
    jobs it is large, and the capacity probes only need their lag and decision wait.
    """
    gate = asyncio.Semaphore(HISTORY_CONCURRENCY)

    async def one(record: JobRecord) -> None:
        async with gate:
            await read_history(client, record)

    await asyncio.gather(*(one(record) for record in records))
    attribute_requests(records, await admin.ledger() if ledger else [], await admin.completions())
    return records
