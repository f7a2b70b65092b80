"""The stateless lane on its own task queue: the job's input names it, a stateless-only worker serves it."""

from __future__ import annotations

import contextlib
import uuid

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from lanes.codec import new_key_entry
from lanes.connect import openai_client
from lanes.settings import Settings
from lanes.worker.serving import build_workers
from lanes.worker.tuning import WorkerTuning
from workflows.model_task import ExecutionOptions, ModelTaskInput, ModelTaskWorkflow
from workflows.task_queues import stream_queue


async def test_stateless_activity_runs_on_the_stateless_queue(client: Client, settings: Settings) -> None:
    zoned = settings.model_copy(update={"stateless_task_queue": f"{settings.task_queue}-restricted"})
    main = zoned.model_copy(update={"worker": WorkerTuning(lanes=("background",))})
    restricted = zoned.model_copy(update={"worker": WorkerTuning(lanes=("stateless",))})
    async with openai_client(zoned) as provider, contextlib.AsyncExitStack() as running:
        main_worker, stream_worker, poll_worker = build_workers(client, main, provider)
        (stateless_worker,) = build_workers(client, restricted, provider)
        assert stateless_worker.task_queue == zoned.stateless_task_queue
        assert stream_worker.task_queue == stream_queue(zoned.task_queue)
        for worker in (main_worker, stream_worker, poll_worker, stateless_worker):
            await running.enter_async_context(worker)
        handle = await client.start_workflow(
            ModelTaskWorkflow.run,
            ModelTaskInput(
                job_type="support_analysis",
                data_class="confidential",
                input="zoned stateless job",
                options=ExecutionOptions(stateless_task_queue=zoned.stateless_task_queue),
            ),
            id=f"zoned-{uuid.uuid4()}",
            task_queue=zoned.task_queue,
        )
        result = await handle.result()
    assert (result.status, result.lane) == ("completed", "stateless")
    scheduled = {
        event.activity_task_scheduled_event_attributes.activity_type.name: (
            event.activity_task_scheduled_event_attributes.task_queue.name
        )
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert scheduled == {
        "evaluate_policy": zoned.task_queue,
        "create_stateless_response": zoned.stateless_task_queue,
    }


def test_the_cli_puts_the_stateless_queue_in_the_job_input() -> None:
    from lanes.submission import build_task, client_policy

    settings = Settings(
        stateless_task_queue="lanes-restricted", encryption_keys=SecretStr(new_key_entry("t"))
    )
    task, _ = build_task(
        settings, client_policy(settings), job_type="support_analysis", data_class="confidential", input="x"
    )
    assert task.options.stateless_task_queue == "lanes-restricted"
