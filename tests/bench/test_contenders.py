"""Every built contender runs a short job on a real dev server and emulator, and the harness's
measurements of it (history events, detection time, requests by endpoint, generations) add up.

The emulator sends signed webhooks to a receiver in this process, as the bench stack's does to its
``lanes webhooks``: webhook mode's job ends by webhook, and every other contender's response carries
``webhook_drop``, so no webhook reaches it.
"""

import asyncio

import pytest
from temporalio.worker import Worker

from bench.contenders import ALL, BUILT, LANES_JOB_TYPES, NO_WEBHOOK_FAULT, Contender, job_metadata, start
from bench.job_record import PROVIDER_FINISHED, JobRecord, attribute_requests, read_history
from bench.naive_polling import NaivePollingWorkflow
from bench.provider_calls import ProviderCalls
from bench.stack import POLICY
from bench.sync_call import SyncCallWorkflow
from lanes.connect import openai_client
from lanes.dev.emulator_server import EmulatorServer
from lanes.servers.uvicorn_server import bind
from lanes.servers.webhooks.receiver import DEFAULT_PATH, WebhookReceiver
from lanes.servers.webhooks.server import WebhookServer
from lanes.servers.webhooks.verification import WebhookVerifier
from lanes.worker.serving import serving
from policy import load_policy
from responses_emulator import Emulator, EmulatorConfig
from responses_emulator.testing import wait_until
from responses_emulator.webhooks import new_secret
from workflows.model_task import ModelTaskWorkflow


async def test_each_contender_runs_a_job_and_is_measured(client, settings):
    secret = new_secret()
    sock = bind("127.0.0.1", 0)
    emulator = Emulator(
        EmulatorConfig(
            duration_s=1.0,
            queued_s=0.2,
            webhook_url=f"http://127.0.0.1:{sock.getsockname()[1]}{DEFAULT_PATH}",
            webhook_secret=secret,
        )
    )
    queue = settings.task_queue
    async with EmulatorServer(emulator) as emulator_server:
        bench_settings = settings.model_copy(
            update={"policy_path": str(POLICY), "openai_base_url": emulator_server.base_url}
        )
        async with (
            openai_client(bench_settings) as provider,
            WebhookServer(WebhookReceiver(client, provider, WebhookVerifier(provider, secret)), sock),
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
                    contender=c.value,
                    job_id=f"{queue}-{c.name}",
                    phase="test",
                    duration_s=1.0,
                    submitted_at=0,
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
            results = await asyncio.gather(*(h.result() for h in handles))
            # Every background response (all but the sync call's) got its webhook, or the drop that
            # stands for none.
            background = [c for c in emulator.completed() if c.background]
            assert len(background) == len(records) - 1
            await wait_until(lambda: len(emulator.ledger.deliveries()) == len(background))
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
        assert record.acted_at is not None, record
        assert record.detected_at <= record.acted_at
    assert set(by[Contender.STREAM].requests) <= {"create", "stream"}
    assert (by[Contender.STREAM].history_events or 0) < 40
    assert by[Contender.POLL].requests.get("retrieve", 0) >= 1
    assert by[Contender.NAIVE].requests["retrieve"] >= 1
    # The guide's loop: each poll is a timer and an activity, about a dozen events each.
    assert (by[Contender.NAIVE].history_events or 0) >= 11 * by[Contender.NAIVE].requests["retrieve"]
    assert by[Contender.SYNC].requests == {"create": 1}
    # Webhook mode: the create and the receiver's one read; no poll; the end seen in the signal.
    webhook = by[Contender.WEBHOOK]
    assert webhook.requests == {"create": 1, "retrieve": 1}, webhook
    assert (webhook.history_events or 0) < 40
    webhook_result = results[BUILT.index(Contender.WEBHOOK)]
    assert webhook_result.by_webhook
    assert webhook_result.polls == 0
    history = await client.get_workflow_handle(webhook.job_id).fetch_history()
    signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert [e.workflow_execution_signaled_event_attributes.signal_name for e in signals] == [
        PROVIDER_FINISHED
    ]
    assert webhook.detected_at == pytest.approx(
        signals[0].event_time.seconds + signals[0].event_time.nanos / 1e9
    )
    # Only webhook mode's response was announced; the others' were dropped, so no lanes job but the
    # webhook one was ended by the receiver.
    delivered = {d.response_id for d in emulator.ledger.deliveries() if d.fault != "drop"}
    owners = {c.response_id: c.metadata["bench_job"] for c in emulator.completed()}
    assert {owners[r] for r in delivered} == {webhook.job_id}
    for contender, result in zip(BUILT, results, strict=True):
        if contender in (Contender.STREAM, Contender.POLL):
            assert not result.by_webhook, contender


def test_every_contender_is_built_in_column_order():
    assert ALL == BUILT
    assert [c.value for c in BUILT] == [
        "lanes stream",
        "lanes poll",
        "lanes webhook",
        "naive poll",
        "sync call",
    ]


def test_webhook_job_type_is_poll_mode_with_webhooks():
    document = load_policy(POLICY).document
    profiles = {c: document.job_types[LANES_JOB_TYPES[c]].profiles.background for c in LANES_JOB_TYPES}
    webhook = document.profiles[profiles[Contender.WEBHOOK] or ""]
    poll = document.profiles[profiles[Contender.POLL] or ""]
    assert webhook.background
    assert webhook.store
    assert not webhook.stream
    assert webhook.webhooks
    assert webhook.webhook_poll_interval_s == 300
    assert not poll.webhooks
    assert (
        document.job_types["bench_webhook"].limits
        == document.job_types[LANES_JOB_TYPES[Contender.POLL]].limits
    )


def test_only_webhook_mode_jobs_let_their_webhook_through():
    assert job_metadata("j", "p", 10)["emulator_fault"] == NO_WEBHOOK_FAULT
    assert job_metadata("j", "p", 10, "hold")["emulator_fault"] == f"hold,{NO_WEBHOOK_FAULT}"
    assert "emulator_fault" not in job_metadata("j", "p", 10, webhook=True)
    assert job_metadata("j", "p", 10, "hold", webhook=True)["emulator_fault"] == "hold"


def test_provider_finished_is_the_workflows_signal():
    definition = getattr(ModelTaskWorkflow.provider_finished, "__temporal_signal_definition")
    assert definition.name == PROVIDER_FINISHED
