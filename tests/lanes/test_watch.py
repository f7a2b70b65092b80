"""``watch_job`` and ``lanes watch``: a stream-mode job's text, live from the provider, through dropped
connections; the jobs it cannot follow say why.

Jobs are held at the emulator (``hold``) until the watcher has shown some text, so the test decides
when they end, not a guessed duration.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from activities.endpoint_clients import EndpointClients
from lanes.connect import endpoint_clients
from lanes.errors import JobNotWatchableError, WatchEndpointError
from lanes.job_outcome import JobOutcome
from lanes.jobs import start_job, wait_for_outcome, wait_for_status, watch_job
from lanes.settings import Settings
from policy import Lane, load_policy
from responses_emulator import Emulator
from responses_emulator.testing import control, wait_until
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def clients(settings: Settings) -> AsyncIterator[EndpointClients]:
    async with endpoint_clients(settings, load_policy(settings.policy_path)) as built:
        yield built


async def _start(client: Client, task_queue: str, task: ModelTaskInput) -> str:
    workflow_id = f"watch-{uuid.uuid4().hex[:10]}"
    await start_job(client, task, workflow_id=workflow_id, task_queue=task_queue)
    return workflow_id


@pytest.mark.long(13)
async def test_watch_shows_the_text_as_generated_and_resumes_after_every_dropped_connection(
    client: Client, worker: str, emulator: Emulator, clients: EndpointClients
) -> None:
    # Every stream of this response is cut after 3 events: the watcher must resume again and again.
    metadata = control(fault="hold,drop_stream_after:3:1000", duration=1.0, tokens=40)
    task = ModelTaskInput(
        job_type="public_research", data_class="public", input="watch me", metadata=metadata
    )
    workflow_id = await _start(client, worker, task)
    deltas: list[str] = []
    outcomes: list[JobOutcome] = []

    async def follow() -> None:
        async for item in watch_job(client, workflow_id, clients, reconnect_delay_s=0.01):
            if isinstance(item, str):
                deltas.append(item)
            else:
                outcomes.append(item)

    watcher = asyncio.create_task(follow())
    try:
        # Text arrives while the job still runs: the response is held at the emulator until now.
        await wait_until(lambda: len(deltas) >= 5 or watcher.done(), timeout_s=60)
        assert not watcher.done()
        assert emulator.release(metadata={"lanes_workflow_id": workflow_id}) == 1
        await asyncio.wait_for(watcher, timeout=60)
    finally:
        watcher.cancel()
    [outcome] = outcomes
    assert outcome.status == "completed"
    assert outcome.output_text
    # Every delta once, in order, across all the cuts: exactly the job's output.
    assert "".join(deltas) == outcome.output_text
    resumes = [
        e
        for e in emulator.ledger.entries()
        if e.response_id == outcome.response_id and e.method == "GET" and e.starting_after is not None
    ]
    assert len(resumes) >= 5


async def test_poll_stateless_and_denied_jobs_say_why_they_cannot_be_watched(
    client: Client, worker: str, emulator: Emulator, clients: EndpointClients
) -> None:
    poll = ModelTaskInput(
        job_type="document_transformation",
        data_class="internal",
        input="poll mode",
        metadata=control(fault="hold"),
    )
    poll_id = await _start(client, worker, poll)
    handle = client.get_workflow_handle(poll_id)
    await wait_for_status(handle, lambda status: status.response_id is not None)
    with pytest.raises(JobNotWatchableError, match="poll mode") as info:
        async for _ in watch_job(client, poll_id, clients):
            pass
    assert info.value.status.execution_status == "RUNNING"
    assert info.value.status.lane == Lane.BACKGROUND
    assert emulator.release(metadata={"lanes_workflow_id": poll_id}) == 1

    stateless = ModelTaskInput(job_type="support_analysis", data_class="confidential", input="stateless")
    denied = ModelTaskInput(job_type="coding_analysis", data_class="restricted", input="denied")
    for task, reason in ((stateless, "stateless lane"), (denied, "denied by the policy")):
        workflow_id = await _start(client, worker, task)
        await wait_for_outcome(client, workflow_id, timeout_s=60)
        with pytest.raises(JobNotWatchableError, match=reason):
            async for _ in watch_job(client, workflow_id, clients):
                pass
    assert (await wait_for_outcome(client, poll_id, timeout_s=60)).status == "completed"


async def test_watch_refuses_an_endpoint_that_connects_elsewhere(
    client: Client, worker: str, emulator: Emulator, settings: Settings
) -> None:
    task = ModelTaskInput(
        job_type="public_research", data_class="public", input="elsewhere", metadata=control(fault="hold")
    )
    workflow_id = await _start(client, worker, task)
    await wait_for_status(
        client.get_workflow_handle(workflow_id), lambda status: status.response_id is not None
    )
    elsewhere = settings.model_copy(update={"openai_base_url": "http://127.0.0.1:9/v1"})
    async with endpoint_clients(elsewhere, load_policy()) as wrong:
        with pytest.raises(WatchEndpointError, match="OPENAI_BASE_URL"):
            async for _ in watch_job(client, workflow_id, wrong):
                pass
    emulator.release(metadata={"lanes_workflow_id": workflow_id})
    await wait_for_outcome(client, workflow_id, timeout_s=60)


async def test_lanes_watch_prints_the_text_then_the_outcome(
    client: Client, worker: str, emulator: Emulator, settings: Settings
) -> None:
    task = ModelTaskInput(
        job_type="public_research",
        data_class="public",
        input="watch from the command line",
        metadata=control(fault="hold,drop_stream_after:5:1000", tokens=30),
    )
    workflow_id = await _start(client, worker, task)
    await wait_for_status(
        client.get_workflow_handle(workflow_id), lambda status: status.response_id is not None
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from lanes.cli.main import main; main()",
        "watch",
        workflow_id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **settings.environment()},
    )
    assert process.stdout is not None
    # The first text reaches the terminal while the job is still held at the provider.
    first = await asyncio.wait_for(process.stdout.read(1), timeout=60)
    assert first
    status = await client.get_workflow_handle(workflow_id).query(ModelTaskWorkflow.status)
    assert status.phase == "running"
    emulator.release(metadata={"lanes_workflow_id": workflow_id})
    rest, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    out = (first + rest).decode()
    outcome = await wait_for_outcome(client, workflow_id)
    assert out.startswith(outcome.output_text + "\n")
    assert "status" in out.split(outcome.output_text, 1)[1]
    assert "completed" in out.split(outcome.output_text, 1)[1]
