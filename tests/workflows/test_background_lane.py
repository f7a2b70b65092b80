"""Durable background lane: bounded history, live progress, graceful hand-over, cancel in every phase."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import pytest_asyncio
from openai import AsyncOpenAI
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from lanes.connect import openai_client
from lanes.dev.emulator_server import EmulatorServer
from lanes.dev.stack import WorkerProcess
from lanes.job_status import PendingActivity
from lanes.jobs import job_status, wait_for_phase, wait_for_status
from lanes.settings import Settings
from lanes.worker.serving import serving
from policy import default_policy_path
from responses_emulator import Emulator, EmulatorConfig
from workflows import activity_options
from workflows.model_task import (
    CancelInput,
    ExecutionOptions,
    ModelTaskInput,
    ModelTaskResult,
    ModelTaskWorkflow,
    provider_failed_result,
)

PROMPT = "background lane prompt text that must never show in progress"


async def until_pending(
    client: Client, handle: WorkflowHandle[Any, Any], condition: Callable[[PendingActivity], bool]
) -> PendingActivity:
    """Wait until the job's pending await activity satisfies ``condition`` (observed, never timed)."""
    async with asyncio.timeout(120):
        while True:
            for pending in (await job_status(client, handle.id)).pending_activities:
                if pending.activity == "await_background_response" and condition(pending):
                    return pending
            await asyncio.sleep(0.05)


async def failed_result(handle: WorkflowHandle[Any, ModelTaskResult]) -> ModelTaskResult:
    """The result of a job the provider failed: the workflow fails with it in the failure's details."""
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    result = provider_failed_result(failure.value.cause)
    assert result is not None, failure.value.cause
    return result


async def start(
    client: Client, task_queue: str, task: ModelTaskInput
) -> WorkflowHandle[Any, ModelTaskResult]:
    return await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"bg-{uuid.uuid4()}", task_queue=task_queue
    )


def policy_with(tmp_path: Path, old: str, new: str) -> str:
    """The default policy with one line changed (the test fails loudly if the line moved)."""
    text = default_policy_path().read_text()
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new))
    return str(path)


CODING_LIMITS = (
    "limits = { max_duration_s = 3600, max_input_chars = 1000000, queued_timeout_s = 900, "
    "poll_interval_cap_s = 30 }"
)


@pytest.mark.long(42)
async def test_history_stays_small_however_many_polls(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    fast_polls = CODING_LIMITS.replace("poll_interval_cap_s = 30", "poll_interval_cap_s = 0.05")
    settings = settings.model_copy(update={"policy_path": policy_with(tmp_path, CODING_LIMITS, fast_polls)})
    # The response is held in progress until the ledger shows 40 polls, however fast they come.
    tag = uuid.uuid4().hex
    task = ModelTaskInput(
        job_type="coding_analysis",
        data_class="internal",
        input=PROMPT,
        metadata={"emulator_duration": "1", "emulator_fault": "hold", "history": tag},
    )
    async with openai_client(settings) as provider, serving(client, settings, provider):
        handle = await start(client, settings.task_queue, task)

        def polls() -> int:
            entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
            return len([e for e in entries if e.method == "GET" and not e.stream])

        try:
            async with asyncio.timeout(120):
                while polls() < 40:  # noqa: ASYNC110 (state of the emulator)
                    await asyncio.sleep(0.05)
        finally:
            assert emulator.release(metadata={"history": tag}) == 1
        result = await handle.result()
    assert result.status == "completed"
    assert result.polls >= 40, result.polls
    history = await handle.fetch_history()
    assert len(history.events) < 40, [EventType.Name(e.event_type) for e in history.events]


async def test_status_shows_live_progress_from_heartbeats_without_text(
    client: Client, worker: str, settings: Settings
) -> None:
    task = ModelTaskInput(
        job_type="public_research",
        input=PROMPT,
        metadata={"emulator_duration": "30"},
        options=ExecutionOptions(heartbeat_timeout_s=1),
    )
    handle = await start(client, worker, task)
    await wait_for_phase(handle, "running")
    async with asyncio.timeout(60):
        while True:
            info = await job_status(client, handle.id)
            pending = info.pending_activities
            progress = pending[0].progress if pending else None
            if progress and progress.get("chars", 0) > 0:
                break
            await asyncio.sleep(0.2)
    assert info.phase == "running"
    assert info.lane == "background"
    assert info.response_id == progress["response_id"]
    assert pending[0].activity == "await_background_response"
    assert progress["mode"] == "stream"
    assert progress["cursor"] > 0
    assert progress["provider_status"] == "in_progress"
    assert PROMPT not in str(info)
    await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="test done"))
    assert (await handle.result()).status == "cancelled"


async def test_graceful_shutdown_hands_over_without_waiting_for_heartbeat_timeout(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    # A heartbeat timeout of 90 s: without the hand-over, the next attempt could only start once the
    # dead attempt's heartbeat timed out. The response is held until the second worker has taken over.
    tag = uuid.uuid4().hex
    task = ModelTaskInput(
        job_type="public_research",
        input=PROMPT,
        metadata={"emulator_duration": "2", "emulator_fault": "hold", "handover": tag},
        options=ExecutionOptions(heartbeat_timeout_s=90),
    )
    first = WorkerProcess(settings, log_path=tmp_path / "first.log")
    second = WorkerProcess(settings, log_path=tmp_path / "second.log")
    await first.start()
    try:
        handle = await start(client, settings.task_queue, task)

        async def streaming() -> bool:
            """The await activity has the response's stream open (the emulator's ledger says so)."""
            entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
            return any(e.method == "GET" and e.stream for e in entries)

        async with asyncio.timeout(120):
            while not await streaming():  # noqa: ASYNC110 (state of the emulator)
                await asyncio.sleep(0.05)
        await first.stop()  # SIGTERM
        await second.start()
        # The first attempt ended with WorkerShutdown (not a heartbeat timeout); the second has started.
        # (Heartbeat details reach the server only every 0.8 x 90 s, so the attempt is what is observed.)
        resumed = await until_pending(client, handle, lambda p: p.attempt == 2 and p.state == "started")
        assert "worker shutting down" in (resumed.last_failure or ""), resumed
        assert emulator.release(metadata={"handover": tag}) == 1
        result = await handle.result()
    finally:
        emulator.release(metadata={"handover": tag})
        await first.stop()
        await second.stop()
    assert result.status == "completed"
    generations = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.generated]
    assert len(generations) == 1


@pytest_asyncio.fixture
async def slow_settings(settings: Settings) -> AsyncIterator[tuple[Settings, Emulator]]:
    """A separate emulator that takes two seconds to answer anything, to cancel during a create."""
    emulator = Emulator(EmulatorConfig(duration_s=30, latency_ms=2000))
    async with EmulatorServer(emulator) as server:
        yield settings.model_copy(update={"openai_base_url": server.base_url}), emulator


async def test_cancel_during_start_cancels_as_soon_as_the_id_is_known(
    client: Client, slow_settings: tuple[Settings, Emulator]
) -> None:
    settings, emulator = slow_settings
    async with openai_client(settings) as provider, serving(client, settings, provider):
        handle = await start(
            client, settings.task_queue, ModelTaskInput(job_type="public_research", input=PROMPT)
        )
        await wait_for_phase(handle, "starting")
        await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="too slow"))
        result = await handle.result()
    assert result.status == "cancelled"
    assert result.cancellation is not None
    assert result.cancellation.phase == "starting"
    assert result.response_id is not None
    paths = [(e.method, e.path) for e in emulator.ledger.entries() if e.response_id == result.response_id]
    assert ("POST", f"/v1/responses/{result.response_id}/cancel") in paths
    # No await activity ever followed the response.
    assert not [p for p in paths if p[0] == "GET" and p[1] == f"/v1/responses/{result.response_id}"][1:]


async def test_cancel_while_queued_reaches_the_provider(
    client: Client, worker: str, emulator: Emulator
) -> None:
    task = ModelTaskInput(
        job_type="coding_analysis", input=PROMPT, metadata={"emulator_fault": "stuck_queued"}
    )
    handle = await start(client, worker, task)
    await wait_for_phase(handle, "running")
    await wait_for_status(handle, lambda status: status.response_id is not None)
    await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="stuck"))
    result = await handle.result()
    assert result.status == "cancelled"
    assert result.cancellation is not None
    assert result.cancellation.effective
    cancels = [e for e in emulator.ledger.entries() if e.path == f"/v1/responses/{result.response_id}/cancel"]
    assert cancels


async def test_rate_limited_generation_is_rerun_within_the_policy_limit_and_recorded(
    client: Client, worker: str, emulator: Emulator
) -> None:
    # public_research: max_reruns = 1, rerun_on includes rate_limit_exceeded. The fault follows the
    # request's metadata, so the rerun is rate limited too: one rerun, then the failure stands.
    task = ModelTaskInput(
        job_type="public_research", input=PROMPT, metadata={"emulator_fault": "fail:rate_limit_exceeded"}
    )
    handle = await start(client, worker, task)
    result = await failed_result(handle)
    assert result.status == "failed"
    assert result.error_code == "rate_limit_exceeded"
    assert [r.cause for r in result.reruns] == ["rate_limit_exceeded"]
    assert result.reruns[0].response_id != result.response_id
    generations = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.generated]
    assert [e.metadata.get("lanes_rerun") for e in generations] == [None, "1"]


async def test_job_types_without_reruns_never_rerun(client: Client, worker: str, emulator: Emulator) -> None:
    task = ModelTaskInput(
        job_type="coding_analysis", input=PROMPT, metadata={"emulator_fault": "fail:rate_limit_exceeded"}
    )
    handle = await start(client, worker, task)
    result = await failed_result(handle)
    assert result.status == "failed"
    assert result.reruns == []
    generations = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.generated]
    assert len(generations) == 1


async def test_a_cancel_that_arrives_after_the_provider_finished_leaves_the_result_standing(
    client: Client, settings: Settings, emulator: Emulator
) -> None:
    # The worker is away while the provider finishes and the cancel arrives; the next worker finds both.
    task = ModelTaskInput(
        job_type="coding_analysis", input=PROMPT, metadata={"emulator_duration": "2"},
        options=ExecutionOptions(heartbeat_timeout_s=1),
    )  # fmt: skip
    async with openai_client(settings) as provider:
        async with serving(client, settings, provider):
            handle = await start(client, settings.task_queue, task)
            status = await wait_for_status(
                handle, lambda s: s.phase == "running" and s.response_id is not None
            )
        async with AsyncOpenAI(api_key="emulator", base_url=settings.openai_base_url, max_retries=0) as sdk:
            async with asyncio.timeout(30):
                while (await sdk.responses.retrieve(status.response_id or "")).status != "completed":  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="too late"))
        async with serving(client, settings, provider):
            result = await handle.result()
    assert result.status == "completed"
    assert result.output_text
    assert result.cancellation is not None
    assert result.cancellation.reason == "too late"
    assert not result.cancellation.effective


async def test_cancel_while_the_create_is_retried_stops_retrying_and_ends_cancelled(
    client: Client, settings: Settings
) -> None:
    # Nothing listens on port 9: every create attempt fails with a connection error and is retried.
    unreachable = settings.model_copy(update={"openai_base_url": "http://127.0.0.1:9/v1"})
    async with openai_client(unreachable) as provider, serving(client, unreachable, provider):
        handle = await start(
            client,
            settings.task_queue,
            ModelTaskInput(
                job_type="public_research", input=PROMPT, options=ExecutionOptions(heartbeat_timeout_s=10)
            ),
        )
        pending = PendingActivity(activity="", state="", attempt=0)
        while pending.attempt < 2 or not pending.last_failure:  # observed: a create failed, a retry waits
            info = await job_status(client, handle.id)
            pending = next(iter(info.pending_activities), pending)
            await asyncio.sleep(0.05)
        # What `lanes status` shows: why the job is stuck, naming the provider URL (never the key).
        assert pending.activity == "start_background_response"
        assert "provider unreachable (POST http://127.0.0.1:9/v1/responses)" in (pending.last_failure or "")
        attempt = pending.attempt
        cancelled_at = time.monotonic()
        await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="provider down"))
        result = await handle.result()
        elapsed = time.monotonic() - cancelled_at
    print(f"cancel to cancelled: {elapsed:.2f} s (start attempt {attempt} when cancelled)")
    assert result.status == "cancelled"
    assert result.response_id is None
    assert result.cancellation is not None
    assert result.cancellation.phase == "starting"
    assert result.cancellation.unconfirmed_create
    history = await handle.fetch_history()
    starts = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    # The retries stopped at the cancel: before, they ran to the last attempt and the job FAILED.
    limit = activity_options.PROVIDER_RETRY.maximum_attempts
    assert all(e.activity_task_started_event_attributes.attempt < limit for e in starts)


async def test_a_class_with_delete_after_harvest_deletes_the_response_once_its_result_is_read(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    # Every class deletes after harvest (the setting may only get stricter up the class order).
    deleting = policy_with(tmp_path, "delete_after_harvest = false", "delete_after_harvest = true")
    settings = settings.model_copy(update={"policy_path": deleting})
    task = ModelTaskInput(job_type="public_research", input=PROMPT, metadata={"emulator_duration": "1"})
    async with openai_client(settings) as provider, serving(client, settings, provider):
        handle = await start(client, settings.task_queue, task)
        result = await handle.result()
    assert result.status == "completed"
    assert result.output_text
    assert result.decision.delete_after_harvest
    assert result.provider_deleted
    entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
    assert [(e.method, e.status_code) for e in entries][-1] == ("DELETE", 200)
    async with AsyncOpenAI(api_key="emulator", base_url=settings.openai_base_url, max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError):
            await sdk.responses.retrieve(result.response_id or "")


async def test_without_delete_after_harvest_the_response_is_left_to_the_provider(
    client: Client, worker: str, emulator: Emulator
) -> None:
    task = ModelTaskInput(job_type="public_research", input=PROMPT, metadata={"emulator_duration": "1"})
    handle = await start(client, worker, task)
    result = await handle.result()
    assert not result.decision.delete_after_harvest
    assert not result.provider_deleted
    assert all(e.method != "DELETE" for e in emulator.ledger.tagged("lanes_workflow_id", handle.id))
