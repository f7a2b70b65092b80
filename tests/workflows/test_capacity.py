"""Waiting costs nothing: followed streams never hold the slots new jobs need, and nobody's response is
left unread for want of a slot.

The worker here is deliberately tiny: two activity slots on the main queue and two stream slots. Held
streams (the emulator's ``hold`` fault keeps them generating until released) fill the stream slots; a new
job's decision and a stateless job still run at once on the main queue, and a third stream-mode job, which
finds no stream slot, follows its response by polling instead. Every wait is for an observed state.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from activities.failures import FailureType
from lanes.connect import openai_client
from lanes.jobs import job_status
from lanes.settings import Settings
from lanes.worker.serving import serving
from lanes.worker.tuning import WorkerTuning
from responses_emulator import Emulator
from tests.workflows.test_crash_recovery import STATE_TIMEOUT_S, until
from workflows.model_task import ExecutionOptions, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow
from workflows.task_queues import poll_queue, stream_queue


def stream_job(tag: str, index: int, slot_wait_s: float) -> ModelTaskInput:
    return ModelTaskInput(
        job_type="public_research",
        data_class="public",
        input=f"capacity stream job {index}",
        metadata={"emulator_duration": "1", "emulator_fault": "hold", "capacity": tag},
        options=ExecutionOptions(stream_slot_wait_s=slot_wait_s),
    )


async def follower(client: Client, workflow_id: str) -> tuple[str, str] | None:
    """The job's follower activity and its state, e.g. ``("await_background_response", "started")``."""
    for pending in (await job_status(client, workflow_id)).pending_activities:
        if pending.activity in ("await_background_response", "check_background_response"):
            return pending.activity, pending.state
    return None


async def test_held_streams_block_neither_new_jobs_nor_their_own_followers(
    client: Client, settings: Settings, emulator: Emulator
) -> None:
    tiny = settings.model_copy(
        update={"worker": WorkerTuning(max_concurrent_activities=2, max_concurrent_streams=2)}
    )
    tag = uuid.uuid4().hex
    handles: list[WorkflowHandle[Any, ModelTaskResult]] = []
    try:
        async with openai_client(tiny) as provider, serving(client, tiny, provider):

            async def start(task: ModelTaskInput) -> WorkflowHandle[Any, ModelTaskResult]:
                return await client.start_workflow(
                    ModelTaskWorkflow.run, task, id=f"cap-{uuid.uuid4()}", task_queue=tiny.task_queue
                )

            # These two wait as long as needed for their slots (a loaded machine may be slow to hand
            # them out); the third gives up after a second, since no slot will free up.
            streaming = [await start(stream_job(tag, i, STATE_TIMEOUT_S)) for i in range(2)]
            handles.extend(streaming)
            followers: dict[str, tuple[str, str] | None] = {}

            async def both_streams_held() -> bool:
                for handle in streaming:
                    followers[handle.id] = await follower(client, handle.id)
                return all(f == ("await_background_response", "started") for f in followers.values())

            await until("both stream followers running", both_streams_held)

            # Both stream slots are taken and would have taken both main slots before: a stateless job
            # is decided and run now, on the main queue.
            stateless = await start(
                ModelTaskInput(job_type="support_analysis", data_class="confidential", input="short one")
            )
            async with asyncio.timeout(STATE_TIMEOUT_S):
                quick = await stateless.result()
            assert (quick.status, quick.lane) == ("completed", "stateless")

            # A third stream job finds no stream slot: it follows by polling rather than leave its
            # response generating unread.
            third = await start(stream_job(tag, 2, 1.0))
            handles.append(third)

            async def polled() -> bool:
                return await follower(client, third.id) == ("check_background_response", "scheduled")

            await until("the third job following by polls", polled)

            async def looked() -> bool:
                pending = (await job_status(client, third.id)).pending_activities
                return any(p.last_failure_type == FailureType.NOT_YET for p in pending)

            # What `lanes status` shows between polls: what the last poll saw, not a failure.
            await until("a poll of the third job seen by status", looked)
            [check] = (await job_status(client, third.id)).pending_activities
            assert check.last_failure is not None
            assert "in_progress" in check.last_failure
            assert "next look in" in check.last_failure
            assert emulator.release(metadata={"capacity": tag}) == 3
            results = [await handle.result() for handle in handles]
    finally:
        emulator.release(metadata={"capacity": tag})

    assert [r.status for r in results] == ["completed"] * 3
    assert results[2].polls >= 1
    for handle in handles:
        entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
        assert len([e for e in entries if e.generated]) == 1, handle.id
    third_reads = emulator.ledger.tagged("lanes_workflow_id", handles[2].id)
    assert not [e for e in third_reads if e.method == "GET" and e.stream]
    # The streams ran on their own queue, the fallback's polls on theirs: neither on the main queue.
    queues = {
        (e.activity_task_scheduled_event_attributes.activity_type.name)
        + "@"
        + e.activity_task_scheduled_event_attributes.task_queue.name
        async for e in handles[2].fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert f"await_background_response@{stream_queue(tiny.task_queue)}" in queues
    assert f"check_background_response@{poll_queue(tiny.task_queue)}" in queues
