"""Crash recovery for real: SIGKILL the worker process mid-job, start a new one, lose nothing, pay once.

Jobs run in stream mode (``public_research``) and poll mode (``coding_analysis``) on a worker *process*
(``python worker.py``) that the test kills. After every kill a fresh worker process starts. Every job must
complete; the emulator's ledger must show exactly one generation per job (the create is retried with the
same Idempotency-Key, the await activity resumes from its heartbeat); and each output must be byte-for-byte
the output of an undisturbed run of the same input.

Nothing here depends on how fast the machine is. Each kill lands when the jobs are *observed* in the phase
it targets, and no response completes before the test lets it:

* the first kill lands while every create is at the provider and its reply is held back by the emulator
  (``hold_create_replies``): the "lost reply" case, which only the Idempotency-Key can make safe;
* every later kill lands once every job has been resumed by the new worker: a stream job's await
  activity has heartbeated from its new attempt (mid-stream), a poll job's last poll was made by the new
  worker process (between polls, which hold nothing);
* the responses carry the emulator's ``hold`` fault, so they stay ``in_progress`` whatever the wall clock
  says until the test releases them, after the last restart.

Poll-mode jobs poll at least every second (the policy's ``poll_interval_cap_s`` lowered from 30 s), so
"the next poll was made by the new worker" is observed a second after a restart, not after the interval
of up to 30 s that the schedule reaches as the held job ages.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from temporalio.client import Client, WorkflowHandle

from lanes.dev.stack import WorkerProcess
from lanes.jobs import job_status
from lanes.settings import Settings
from responses_emulator import Emulator
from tests.workflows.test_background_lane import CODING_LIMITS, policy_with
from workflows.model_task import ExecutionOptions, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

STATE_TIMEOUT_S = 180.0
"""How long a wait for an observed state may take before the test gives up: a bound for a broken
build, never a schedule (a slow machine only makes the waits longer)."""


def job(kind: str, index: int, duration_s: float, run: str) -> ModelTaskInput:
    job_type, data_class = (
        ("public_research", "public") if kind == "stream" else ("coding_analysis", "internal")
    )
    return ModelTaskInput(
        job_type=job_type,
        data_class=data_class,
        input=f"crash recovery {kind} job {index}",
        metadata={"emulator_duration": str(duration_s), "emulator_fault": "hold", "crash_run": run},
        # A dead worker is noticed within a second; production uses 10 s.
        options=ExecutionOptions(heartbeat_timeout_s=1.0),
    )


async def undisturbed_output(base_url: str, task: ModelTaskInput) -> str:
    """The text the provider generates for this input when nothing goes wrong (a synchronous call)."""
    async with AsyncOpenAI(api_key="emulator", base_url=base_url, max_retries=0) as sdk:
        response = await sdk.responses.create(model="gpt-5-mini", input=task.input, store=False)
        return response.output_text


async def until(what: str, condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait for an observed state, checking it every 50 ms."""
    try:
        async with asyncio.timeout(STATE_TIMEOUT_S):
            while not await condition():  # noqa: ASYNC110 (state of the server and the emulator)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not observed within {STATE_TIMEOUT_S:g} s: {what}") from None


async def await_attempts(
    client: Client, handles: list[WorkflowHandle[Any, Any]], worker_pid: int | None
) -> list[int]:
    """Per job, the attempt of its follower once the worker process ``worker_pid`` has resumed it; else 0.

    A stream follower has resumed when its current attempt has heartbeated; a poll-mode job when its last
    poll (one attempt of ``check_background_response``) was made by that worker.
    """
    attempts = []
    for handle in handles:
        info = await job_status(client, handle.id)
        found = 0
        for pending in info.pending_activities:
            progress = pending.progress or {}
            if pending.activity == "await_background_response" and progress.get("attempt") == pending.attempt:
                found = pending.attempt
            by_worker = (pending.last_worker or "").split("@")[0] == str(worker_pid)
            if pending.activity == "check_background_response" and by_worker:
                found = pending.attempt
        attempts.append(found)
    return attempts


async def phases(handles: list[WorkflowHandle[Any, ModelTaskResult]]) -> list[str]:
    return [(await handle.query(ModelTaskWorkflow.status)).phase for handle in handles]


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
    run = uuid.uuid4().hex
    fast_polls = CODING_LIMITS.replace("poll_interval_cap_s = 30", "poll_interval_cap_s = 1")
    settings = settings.model_copy(update={"policy_path": policy_with(log_dir, CODING_LIMITS, fast_polls)})
    tasks = [job(kind, i, duration_s, run) for kind in ("stream", "poll") for i in range(jobs_per_mode)]
    assert settings.openai_base_url is not None
    expected = [await undisturbed_output(settings.openai_base_url, task) for task in tasks]

    worker = WorkerProcess(settings, log_path=log_dir / "worker.log")
    await worker.start()
    hit: list[list[str]] = []
    emulator.hold_create_replies()
    try:
        handles: list[WorkflowHandle[Any, ModelTaskResult]] = [
            await client.start_workflow(
                ModelTaskWorkflow.run, task, id=f"crash-{uuid.uuid4()}", task_queue=settings.task_queue
            )
            for task in tasks
        ]

        async def creates_held() -> bool:
            return emulator.held_create_replies >= len(handles)

        await until("every create at the provider, its reply held", creates_held)
        hit.append(await phases(handles))
        await worker.kill()
        await worker.start()
        emulator.release_create_replies()

        previous = [0] * len(handles)
        observed = previous

        async def resumed() -> bool:
            """Every job's await activity is on an attempt after the one the last kill hit."""
            nonlocal observed
            observed = await await_attempts(client, handles, worker.pid)
            return all(a > p for a, p in zip(observed, previous, strict=True))

        for k in range(1, kills):
            await until(f"every await activity resumed after kill {k}", resumed)
            previous = observed
            await asyncio.sleep(rng.uniform(0.0, 0.5))  # varies the moment; never needed for correctness
            hit.append(await phases(handles))
            await worker.kill()
            await worker.start()
        await until("every await activity resumed after the last kill", resumed)
        assert emulator.release(metadata={"crash_run": run}) == len(handles)
        async with asyncio.timeout(STATE_TIMEOUT_S):
            results = await asyncio.gather(*(handle.result() for handle in handles))
    finally:
        emulator.release_create_replies()
        emulator.release(metadata={"crash_run": run})
        await worker.stop()

    log = worker.log_path.read_text()
    assert len(log.split("lanes worker ready")) - 1 == kills + 1
    for task, text in zip(tasks, expected, strict=True):
        assert task.input not in log
        assert text[:60] not in log
    print("phases at kills:", hit)
    assert hit[0] == ["starting"] * len(handles), hit[0]
    assert all(phase == "running" for at_kill in hit[1:] for phase in at_kill), hit
    for handle, result, want in zip(handles, results, expected, strict=True):
        assert result.status == "completed", handle.id
        assert result.output_text == want, handle.id
        generations = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.generated]
        assert len(generations) == 1, (handle.id, generations)
        creates = [e for e in emulator.ledger.tagged("lanes_workflow_id", handle.id) if e.method == "POST"]
        assert len({e.idempotency_key for e in creates}) == 1, creates


@pytest.mark.long(50)
async def test_killing_the_worker_five_times_loses_nothing_and_generates_once(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    seed = int(os.environ.get("LANES_CHAOS_SEED", "20261128"))
    await run_kill_scenario(
        client, settings, emulator, tmp_path, kills=5, jobs_per_mode=2, duration_s=4.0, seed=seed
    )


@pytest.mark.chaos
@pytest.mark.timeout(1800)  # 50 kills, each waiting for every job to resume on the new worker
async def test_chaos_fifty_kills(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    seed = int(os.environ.get("LANES_CHAOS_SEED", str(random.randrange(1 << 30))))
    print(f"LANES_CHAOS_SEED={seed}")
    await run_kill_scenario(
        client, settings, emulator, tmp_path, kills=50, jobs_per_mode=4, duration_s=60.0, seed=seed
    )
