"""Drops and faults end to end: real workflow, dev server, worker, and real SDK over HTTP to the emulator.

Each fault is requested in the job's own metadata (``emulator_fault``), so the session's emulator can serve
every test at once; a test that needs different emulator windows (resume, retention) runs its own emulator
and worker. Job types: ``public_research`` follows its response by streaming, ``coding_analysis`` (data class
``internal``) by polling.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.failures import FailureType
from lanes.connect import openai_client
from lanes.dev.emulator_server import EmulatorServer
from lanes.settings import Settings
from lanes.worker.serving import serving
from policy import default_policy_path
from responses_emulator import Emulator, EmulatorConfig, LedgerEntry
from workflows.model_task import (
    ExecutionOptions,
    ModelTaskInput,
    ModelTaskResult,
    ModelTaskWorkflow,
    provider_failed_result,
)

PROMPT = "faults suite prompt: compare the public sources on durable execution"
FAST = ExecutionOptions(heartbeat_timeout_s=2)

STREAMED = {"job_type": "public_research"}
POLLED = {"job_type": "coding_analysis", "data_class": "internal"}

PUBLIC_RESEARCH_LIMITS = "queued_timeout_s = 600, poll_interval_cap_s = 30, max_reruns = 1"
CODING_LIMITS = "queued_timeout_s = 900, poll_interval_cap_s = 30 }"


def task(lane: dict[str, str], *, fault: str | None = None, duration: float = 1.0) -> ModelTaskInput:
    metadata = {"emulator_duration": str(duration)}
    if fault is not None:
        metadata["emulator_fault"] = fault
    return ModelTaskInput(input=PROMPT, metadata=metadata, options=FAST, **lane)


async def start(client: Client, task_queue: str, job: ModelTaskInput) -> WorkflowHandle[Any, ModelTaskResult]:
    return await client.start_workflow(
        ModelTaskWorkflow.run, job, id=f"faults-{uuid.uuid4()}", task_queue=task_queue
    )


def generations(emulator: Emulator, workflow_id: str) -> list[LedgerEntry]:
    return [e for e in emulator.ledger.tagged("lanes_workflow_id", workflow_id) if e.generated]


async def undisturbed_output(base_url: str, result: ModelTaskResult) -> str:
    """The text of the same request with no fault (the emulator's text depends only on the request)."""
    assert result.decision.profile is not None
    async with AsyncOpenAI(api_key="emulator", base_url=base_url, max_retries=0) as sdk:
        response = await sdk.responses.create(model=result.decision.profile.model, input=PROMPT, store=False)
    assert response.output_text
    return response.output_text


def policy_with(tmp_path: Path, *changes: tuple[str, str]) -> str:
    """The default policy with some lines changed (the test fails loudly if a line moved)."""
    text = default_policy_path().read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return str(path)


@contextlib.asynccontextmanager
async def own_stack(
    client: Client, settings: Settings, config: EmulatorConfig, *, policy_path: str | None = None
) -> AsyncIterator[tuple[Settings, Emulator]]:
    """An emulator with its own windows, and a worker on this test's task queue that talks to it."""
    emulator = Emulator(config)
    async with EmulatorServer(emulator) as server:
        update: dict[str, Any] = {"openai_base_url": server.base_url}
        if policy_path is not None:
            update["policy_path"] = policy_path
        mine = settings.model_copy(update=update)
        async with openai_client(mine) as provider, serving(client, mine, provider):
            yield mine, emulator


async def test_transient_error_events_mid_stream_resume_the_job(
    client: Client, worker: str, emulator: Emulator, emulator_server: EmulatorServer
) -> None:
    # The live API can send an `error` event after generation began (a rate limit, an overload). Before,
    # the SDK's bare APIError was mapped to a non-retryable client error and the job failed for good.
    handle = await start(client, worker, task(STREAMED, fault="stream_error:rate_limit_exceeded:4:2"))
    result = await handle.result()
    assert result.status == "completed"
    assert result.reconnects >= 1
    assert result.output_text == await undisturbed_output(emulator_server.base_url, result)
    assert len(generations(emulator, handle.id)) == 1


async def test_stream_dropped_every_few_events_completes_with_the_same_output(
    client: Client, worker: str, emulator: Emulator, emulator_server: EmulatorServer
) -> None:
    handle = await start(client, worker, task(STREAMED, fault="drop_stream_after:4:50", duration=2))
    result = await handle.result()

    assert result.status == "completed"
    assert result.reconnects > 0
    assert result.output_text == await undisturbed_output(emulator_server.base_url, result)
    streams = [
        e
        for e in emulator.ledger.tagged("lanes_workflow_id", handle.id)
        if e.method == "GET" and e.stream and e.response_id == result.response_id
    ]
    resumes = [e.starting_after for e in streams if e.starting_after is not None]
    assert len(resumes) == len(streams) >= 1
    assert resumes[0] == 0  # right after the create's first event
    assert resumes == sorted(set(resumes)), "each resume starts after the last event received"
    assert len(generations(emulator, handle.id)) == 1


@pytest.mark.parametrize(
    ("lane", "fault", "status", "count"),
    [(STREAMED, "http:429:2", 429, 2), (POLLED, "http:503:3", 503, 3), (STREAMED, "http:503:3", 503, 3)],
    ids=["stream-429x2", "poll-503x3", "stream-503x3"],
)
async def test_provider_error_bursts_while_awaiting_are_retried_to_completion(
    client: Client,
    worker: str,
    emulator: Emulator,
    emulator_server: EmulatorServer,
    lane: dict[str, str],
    fault: str,
    status: int,
    count: int,
) -> None:
    handle = await start(client, worker, task(lane, fault=fault))
    result = await handle.result()

    assert result.status == "completed"
    assert result.output_text == await undisturbed_output(emulator_server.base_url, result)
    refused = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.status_code == status]
    assert len(refused) == count
    assert all(e.response_id == result.response_id for e in refused)
    assert len(generations(emulator, handle.id)) == 1
    assert result.reruns == []


@pytest.mark.parametrize(
    ("lane", "expected_generations"),
    [(POLLED, 1), (STREAMED, 2)],
    ids=["poll-no-rerun", "stream-one-rerun-then-fails"],
)
async def test_stuck_in_queued_fails_the_job_with_stuck_queued_after_cancelling(
    client: Client,
    settings: Settings,
    emulator: Emulator,
    emulator_server: EmulatorServer,
    tmp_path: Path,
    lane: dict[str, str],
    expected_generations: int,
) -> None:
    # The default policy waits 10 or 15 minutes; this one gives up after a second.
    policy_path = policy_with(
        tmp_path,
        (CODING_LIMITS, CODING_LIMITS.replace("queued_timeout_s = 900", "queued_timeout_s = 1")),
        (
            PUBLIC_RESEARCH_LIMITS,
            PUBLIC_RESEARCH_LIMITS.replace("queued_timeout_s = 600", "queued_timeout_s = 1"),
        ),
    )
    mine = settings.model_copy(update={"policy_path": policy_path})
    async with openai_client(mine) as provider, serving(client, mine, provider):
        handle = await start(client, mine.task_queue, task(lane, fault="stuck_queued"))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == FailureType.STUCK_QUEUED
    assert cause.non_retryable
    assert "queued" in cause.message
    created = generations(emulator, handle.id)
    # public_research may rerun once on stuck_queued; the second generation is stuck too, and the job fails.
    assert len(created) == expected_generations
    async with AsyncOpenAI(api_key="emulator", base_url=emulator_server.base_url, max_retries=0) as sdk:
        for entry in created:
            assert entry.response_id is not None
            cancels = [
                e
                for e in emulator.ledger.tagged("lanes_workflow_id", handle.id)
                if e.path == f"/v1/responses/{entry.response_id}/cancel" and e.status_code == 200
            ]
            assert cancels, f"{entry.response_id} was cancelled at the provider"
            assert (await sdk.responses.retrieve(entry.response_id)).status == "cancelled"


@pytest.mark.parametrize(
    ("lane", "fault", "status", "error_code", "reason"),
    [
        (POLLED, "fail:rate_limit_exceeded", "failed", "rate_limit_exceeded", None),
        (STREAMED, "fail:server_error", "failed", "server_error", None),
        (STREAMED, "incomplete:max_output_tokens", "incomplete", None, "max_output_tokens"),
        (POLLED, "incomplete:content_filter", "incomplete", None, "content_filter"),
    ],
    ids=["poll-failed", "stream-failed", "stream-incomplete", "poll-incomplete"],
)
async def test_terminal_states_map_to_the_result(
    client: Client,
    worker: str,
    emulator: Emulator,
    emulator_server: EmulatorServer,
    lane: dict[str, str],
    fault: str,
    status: str,
    error_code: str | None,
    reason: str | None,
) -> None:
    handle = await start(client, worker, task(lane, fault=fault))
    if status == "failed":
        # A job the provider failed fails its workflow, with the result in the failure's details.
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert isinstance(failure.value.cause, ApplicationError)
        assert failure.value.cause.type == FailureType.PROVIDER_FAILED
        failed = provider_failed_result(failure.value.cause)
        assert failed is not None
        result = failed
        assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    else:
        result = await handle.result()

    assert result.status == status
    assert result.error_code == error_code
    assert result.incomplete_reason == reason
    assert result.reruns == []  # neither code is in these job types' rerun_on
    assert result.response_id is not None
    async with AsyncOpenAI(api_key="emulator", base_url=emulator_server.base_url, max_retries=0) as sdk:
        final = await sdk.responses.retrieve(result.response_id)
    assert final.status == status
    assert result.output_text == final.output_text
    if status == "failed":
        assert result.error_message
        assert result.output_text == ""
    else:
        # Half of the tokens, a prefix of what an undisturbed response says.
        assert result.output_text
        assert (await undisturbed_output(emulator_server.base_url, result)).startswith(result.output_text)
    assert result.usage is not None
    assert len(generations(emulator, handle.id)) == 1


async def test_expired_resume_window_falls_back_to_polling_and_completes(
    client: Client, settings: Settings
) -> None:
    # The stream drops after a few events; by the time the worker reconnects, the response is older than
    # the (shortened) resume window, so the provider refuses the stream and the worker polls instead.
    config = EmulatorConfig(duration_s=1.0, queued_s=0.2, resume_window_s=0.5)
    async with own_stack(client, settings, config) as (mine, emulator):
        job = task(STREAMED, fault="drop_stream_after:3:50", duration=3)
        handle = await start(client, mine.task_queue, job)
        result = await handle.result()
        assert mine.openai_base_url is not None
        expected = await undisturbed_output(mine.openai_base_url, result)

    assert result.status == "completed"
    assert result.output_text == expected
    reads = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.method == "GET"]
    refused = [e for e in reads if e.stream and e.status_code == 400]
    assert refused, "the provider refused a stream older than its resume window"
    after = reads[reads.index(refused[0]) + 1 :]
    assert after, "the worker kept going after the refusal"
    assert all(not e.stream for e in after), "only polls after the refusal"
    assert result.polls >= 1


async def test_result_gone_before_it_was_read_fails_with_result_expired(
    client: Client, settings: Settings
) -> None:
    # Retention of zero: the response is gone the moment it ends, before the polling worker reads it.
    config = EmulatorConfig(duration_s=1.0, queued_s=0.2, retention_s=0)
    async with own_stack(client, settings, config) as (mine, emulator):
        handle = await start(client, mine.task_queue, task(POLLED, duration=0.8))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == FailureType.RESULT_EXPIRED
    assert cause.non_retryable
    entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
    assert len([e for e in entries if e.generated]) == 1
    # One 404, and nothing after it: a typed failure, never a retry loop.
    assert [e.status_code for e in entries][-1] == 404
    assert len([e for e in entries if e.status_code == 404]) == 1
