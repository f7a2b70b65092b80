"""Every built contender runs a short job on a real dev server and emulator, and the harness's
measurements of it (history events, detection time, requests by endpoint, generations) add up."""

import asyncio

import pytest
from temporalio.worker import Worker

from bench.contenders import BUILT, Contender, start
from bench.job_record import JobRecord, attribute_requests, read_history
from bench.naive_polling import NaivePollingWorkflow
from bench.provider_calls import ProviderCalls
from bench.stack import POLICY
from bench.sync_call import SyncCallWorkflow
from client.connect import openai_client
from worker import serving


async def test_each_contender_runs_a_job_and_is_measured(client, settings, emulator):
    bench_settings = settings.model_copy(update={"policy_path": str(POLICY)})
    queue = settings.task_queue
    async with (
        openai_client(bench_settings) as provider,
        serving(client, bench_settings, provider),
        Worker(
            client,
            task_queue=f"{queue}-contenders",
            workflows=[NaivePollingWorkflow, SyncCallWorkflow],
            activities=ProviderCalls(provider).definitions(),
        ),
    ):
        records = [
            JobRecord(
                contender=c.value, job_id=f"{queue}-{c.name}", phase="test", duration_s=1.0, submitted_at=0
            )
            for c in BUILT
        ]
        handles = [
            await start(
                client,
                Contender(r.contender),
                job_id=r.job_id,
                task_queue=queue,
                phase="test",
                duration_s=1.0,
            )
            for r in records
        ]
        await asyncio.gather(*(h.result() for h in handles))
    for record in records:
        await read_history(client, record)
    attribute_requests(records, emulator.ledger.entries(), emulator.completed())
    by = {Contender(r.contender): r for r in records}
    for record in records:
        assert record.generations == 1, record
        assert record.requests["create"] == 1
        assert record.lag_s is not None, record
        assert record.lag_s >= 0, record  # seen after it happened; how long after is the benchmark's job
        assert record.decided_at is not None
        assert record.detected_at is not None
        assert record.history_events is not None
        assert record.decided_at <= record.detected_at
    assert set(by[Contender.STREAM].requests) <= {"create", "stream"}
    assert (by[Contender.STREAM].history_events or 0) < 40
    assert by[Contender.POLL].requests.get("retrieve", 0) >= 1
    assert by[Contender.NAIVE].requests["retrieve"] >= 1
    # The guide's loop: each poll is a timer and an activity, about a dozen events each.
    assert (by[Contender.NAIVE].history_events or 0) >= 11 * by[Contender.NAIVE].requests["retrieve"]
    assert by[Contender.SYNC].requests == {"create": 1}


async def test_webhook_is_not_built(client):
    with pytest.raises(ValueError, match="not built"):
        await start(client, Contender.WEBHOOK, job_id="x", task_queue="q", phase="test", duration_s=1)
