"""Crash recovery for real: SIGKILL the worker process mid-job, start a new one, lose nothing, pay once.

Jobs run in stream mode (``public_research``) and poll mode (``coding_analysis``) on a worker *process*
(``python worker.py``) that the test kills at random moments: during policy evaluation and the create,
while queued, mid-stream, between polls. After every kill a fresh worker process starts. Every job must
complete; the emulator's ledger must show exactly one generation per job (the create is retried with the
same Idempotency-Key, the await activity resumes from its heartbeat); and each output must be byte-for-byte
the output of an undisturbed run of the same input.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from temporalio.client import Client, WorkflowHandle

from client.settings import Settings
from client.stack import WorkerProcess
from responses_emulator import Emulator
from workflows.model_task import ExecutionOptions, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow


def job(kind: str, index: int, duration_s: float) -> ModelTaskInput:
    job_type, data_class = (
        ("public_research", "public") if kind == "stream" else ("coding_analysis", "internal")
    )
    return ModelTaskInput(
        job_type=job_type,
        data_class=data_class,
        input=f"crash recovery {kind} job {index}",
        metadata={"emulator_duration": str(duration_s)},
        # A dead worker is noticed within a second; production uses 10 s.
        options=ExecutionOptions(heartbeat_timeout_s=1.0),
    )


async def undisturbed_output(base_url: str, task: ModelTaskInput) -> str:
    """The text the provider generates for this input when nothing goes wrong (a synchronous call)."""
    async with AsyncOpenAI(api_key="emulator", base_url=base_url, max_retries=0) as sdk:
        response = await sdk.responses.create(model="gpt-5-mini", input=task.input, store=False)
        return response.output_text


async def phases(handles: list[WorkflowHandle[Any, ModelTaskResult]]) -> list[str]:
    found: list[str] = []
    for handle in handles:
        try:
            found.append((await handle.query(ModelTaskWorkflow.status)).phase)
        except Exception:  # the query needs a worker; a dying one may not answer
            found.append("?")
    return found


async def run_kill_scenario(
    client: Client,
    settings: Settings,
    emulator: Emulator,
    log_dir: Path,
    *,
    kills: int,
    jobs_per_mode: int,
    duration_s: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    tasks = [job(kind, i, duration_s) for kind in ("stream", "poll") for i in range(jobs_per_mode)]
    assert settings.openai_base_url is not None
    expected = [await undisturbed_output(settings.openai_base_url, task) for task in tasks]

    worker = WorkerProcess(settings, log_path=log_dir / "worker.log")
    await worker.start()
    handles: list[WorkflowHandle[Any, ModelTaskResult]] = [
        await client.start_workflow(
            ModelTaskWorkflow.run, task, id=f"crash-{uuid.uuid4()}", task_queue=settings.task_queue
        )
        for task in tasks
    ]
    hit: list[str] = []
    try:
        for k in range(kills):
            # The first kill lands during evaluation or the create; later ones while queued or running.
            await asyncio.sleep(rng.uniform(0.0, 0.3) if k == 0 else rng.uniform(0.3, 2.0))
            hit += await phases(handles)
            await worker.kill()
            await worker.start()
        async with asyncio.timeout(duration_s * 4 + 120):
            results = await asyncio.gather(*(handle.result() for handle in handles))
    finally:
        await worker.stop()

    log = worker.log_path.read_text()
    assert len(log.split("lanes worker ready")) - 1 == kills + 1
    for task, text in zip(tasks, expected, strict=True):
        assert task.input not in log
        assert text[:60] not in log
    print("phases at kills:", hit)
    assert "running" in hit[-len(handles) :], "the last kill must land while jobs are still running"
    assert {"evaluating", "starting"} & set(hit[: len(handles)]), hit
    for handle, result, want in zip(handles, results, expected, strict=True):
        assert result.status == "completed", handle.id
        assert result.output_text == want, handle.id
        generations = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.generated]
        assert len(generations) == 1, (handle.id, generations)


async def test_killing_the_worker_five_times_loses_nothing_and_generates_once(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    seed = int(os.environ.get("LANES_CHAOS_SEED", "20261128"))
    await run_kill_scenario(
        client, settings, emulator, tmp_path, kills=5, jobs_per_mode=2, duration_s=20.0, seed=seed
    )


@pytest.mark.chaos
async def test_chaos_fifty_kills(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    seed = int(os.environ.get("LANES_CHAOS_SEED", str(random.randrange(1 << 30))))
    print(f"LANES_CHAOS_SEED={seed}")
    await run_kill_scenario(
        client, settings, emulator, tmp_path, kills=50, jobs_per_mode=4, duration_s=150.0, seed=seed
    )
