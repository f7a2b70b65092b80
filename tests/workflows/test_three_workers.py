"""Three worker processes share the load; two are stopped (SIGTERM) mid-load; every job completes once.

The jobs' responses carry the emulator's ``hold`` fault, so none ends before the test releases it. The
two workers stopped are the two following the most jobs at that moment (with six jobs on three workers
they follow at least four): the worker running a stream job's await activity, or the one that made a poll
job's last poll, read from the server's record. Each step waits for observed state, never for time.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from lanes.dev.stack import WorkerProcess
from lanes.settings import Settings
from responses_emulator import Emulator
from tests.workflows.test_crash_recovery import STATE_TIMEOUT_S, job, until
from workflows.model_task import ModelTaskResult, ModelTaskWorkflow


async def await_activity_workers(client: Client, handles: list[WorkflowHandle[Any, Any]]) -> list[str | None]:
    """Per job, the worker following it; ``None`` if none yet.

    A stream job is followed by the worker whose await attempt has heartbeated; a poll-mode job, which
    holds no worker between polls, by the worker that made its last poll.
    """
    identities: list[str | None] = []
    for handle in handles:
        found = None
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.activity_type.name == "check_background_response":
                found = pending.last_worker_identity or None
                continue
            if pending.activity_type.name != "await_background_response":
                continue
            if pending.HasField("heartbeat_details") and pending.last_worker_identity:
                details = await client.data_converter.decode(pending.heartbeat_details.payloads)
                progress = details[0] if details else {}
                if isinstance(progress, dict) and progress.get("attempt") == pending.attempt:
                    found = pending.last_worker_identity
        identities.append(found)
    return identities


@pytest.mark.long(11)
async def test_stopping_two_of_three_workers_mid_load_loses_nothing(
    client: Client, settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex
    tasks = [job(kind, i, 4.0, run) for kind in ("stream", "poll") for i in range(3)]
    workers = [WorkerProcess(settings, log_path=tmp_path / f"worker-{i}.log") for i in range(3)]
    await asyncio.gather(*(worker.start() for worker in workers))
    host = socket.gethostname()
    try:
        handles: list[WorkflowHandle[Any, ModelTaskResult]] = [
            await client.start_workflow(
                ModelTaskWorkflow.run, task, id=f"three-{uuid.uuid4()}", task_queue=settings.task_queue
            )
            for task in tasks
        ]
        observed: list[str | None] = []

        async def all_following() -> bool:
            nonlocal observed
            observed = await await_activity_workers(client, handles)
            return all(observed)

        await until("every job's await activity heartbeating on some worker", all_following)
        load = Counter(observed)
        by_identity = {f"{worker.pid}@{host}": worker for worker in workers}
        assert set(load) <= set(by_identity), (load, by_identity)
        ranked = sorted(workers, key=lambda w: load.get(f"{w.pid}@{host}", 0), reverse=True)
        stopped, survivor = ranked[:2], ranked[2]
        assert sum(load.get(f"{w.pid}@{host}", 0) for w in stopped) >= 4, load
        survivor_identity = f"{survivor.pid}@{host}"

        await asyncio.gather(*(worker.stop() for worker in stopped))

        async def all_on_survivor() -> bool:
            nonlocal observed
            observed = await await_activity_workers(client, handles)
            return all(identity == survivor_identity for identity in observed)

        await until("every await activity resumed on the surviving worker", all_on_survivor)
        assert emulator.release(metadata={"crash_run": run}) == len(handles)
        async with asyncio.timeout(STATE_TIMEOUT_S):
            results = await asyncio.gather(*(handle.result() for handle in handles))
    finally:
        emulator.release(metadata={"crash_run": run})
        await asyncio.gather(*(worker.stop() for worker in workers))

    for handle, result in zip(handles, results, strict=True):
        assert result.status == "completed", handle.id
        entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
        assert len([e for e in entries if e.generated]) == 1, handle.id
        creates = [e for e in entries if e.method == "POST"]
        assert len({e.idempotency_key for e in creates}) == 1, creates
