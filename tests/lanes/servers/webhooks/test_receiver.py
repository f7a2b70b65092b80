"""Completion by webhook, end to end: dev server, emulator sending signed webhooks, worker, receiver.

Every test waits on observed state (the emulator's ledger of requests and deliveries, the receiver's
counts, the workflow's result or phase), never on a guessed duration.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx2
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from lanes.codec import ENCRYPTED_ENCODING
from lanes.connect import plugins
from lanes.jobs import wait_for_phase
from lanes.settings import Settings
from responses_emulator.testing import control, wait_until
from responses_emulator.webhooks import event_body, new_secret, signed_headers
from tests.lanes.servers.webhooks.webhook_stack import NO_POLL_S, SECRET, webhook_stack
from workflows.model_task import ModelTaskWorkflow


def events(history: WorkflowHistory, kind: int) -> list[object]:
    return [e for e in history.events if e.event_type == kind]


async def test_webhook_completes_a_poll_job_with_two_provider_requests(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=NO_POLL_S) as stack:
        handle = await stack.start()
        result = await handle.result()
        requests = stack.requests(handle.id)
        assert result.status == "completed"
        assert result.by_webhook
        assert result.polls == 0
        # The create, and the receiver's one read of the response: nothing else reached the provider.
        assert requests == ["POST /v1/responses", f"GET /v1/responses/{result.response_id}"], requests
        assert result.response_id is not None
        response_id = result.response_id
        # The job may end before the emulator has recorded the receiver's answer.
        await wait_until(lambda: len(stack.emulator.ledger.deliveries(response_id)) == 1)
        [delivery] = stack.emulator.ledger.deliveries(response_id)
        assert (delivery.event_type, delivery.status_code) == ("response.completed", 200)
        assert stack.receiver.stats["signalled"] == 1
        final = await stack.provider.responses.retrieve(result.response_id)
        assert result.output_text == final.output_text != ""
        assert result.usage is not None
        assert result.usage.output_tokens == final.usage.output_tokens  # type: ignore[union-attr]

        # Detection lag: from the provider's end of the response to the job's close.
        record = stack.emulator.store.get(result.response_id, stack.emulator.clock.now())
        assert record is not None
        ended = record.ended_at()
        assert ended is not None
        closed = (await handle.describe()).close_time
        assert closed is not None
        print(f"\nwebhook detection lag: {closed.timestamp() - ended:.3f} s")

    history = await handle.fetch_history()
    [signal] = events(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    payload = signal.workflow_execution_signaled_event_attributes.input.payloads[0]  # type: ignore[attr-defined]
    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING  # the output text is encrypted in history
    assert result.output_text.encode() not in payload.data
    # The job waited for the webhook on a timer, which the signal cut short: no poll was ever scheduled.
    assert events(history, EventType.EVENT_TYPE_TIMER_CANCELED)
    scheduled = events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    names = [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled]  # type: ignore[attr-defined]
    assert "check_background_response" not in names, names
    # The new path replays deterministically (in the job's namespace: its payloads are bound to it).
    replayer = Replayer(workflows=[], plugins=plugins(settings), namespace=client.namespace)
    await replayer.replay_workflow(history)


async def test_dropped_webhook_still_completes_by_polling(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=0.5) as stack:
        handle = await stack.start("webhook_drop")
        result = await handle.result()
    assert result.status == "completed"
    assert not result.by_webhook
    assert result.polls >= 1
    assert result.response_id is not None
    assert [d.fault for d in stack.emulator.ledger.deliveries(result.response_id)] == ["drop"]
    assert stack.receiver.stats["signalled"] == 0


async def test_badly_signed_webhooks_change_nothing(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=0.5) as stack:
        handle = await stack.start("webhook_bad_signature")
        result = await handle.result()
        assert result.response_id is not None
        response_id = result.response_id
        await wait_until(lambda: stack.emulator.pending_webhooks == 0)
    assert result.status == "completed"
    assert not result.by_webhook
    assert [d.status_code for d in stack.emulator.ledger.deliveries(response_id)] == [401, 401, 401]
    assert stack.receiver.stats["bad_signature"] == 3
    # The receiver read nothing at the provider: every GET of the job is one of the worker's polls.
    gets = [r for r in stack.requests(handle.id) if r.startswith("GET")]
    assert len(gets) == result.polls


async def test_forged_stale_and_premature_deliveries_leave_a_running_job_alone(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=NO_POLL_S) as stack:
        handle = await stack.start("hold")
        await wait_for_phase(handle, "running")
        response_id = stack.response_id(handle.id)
        assert response_id is not None
        body = event_body("evt_forged", "response.completed", response_id, time.time())

        forged = await stack.post(body, signed_headers(new_secret(), "wh_forged", body))
        assert forged.status_code == 401
        stale = await stack.post(
            body, signed_headers(SECRET, "wh_stale", body, timestamp=int(time.time()) - 900)
        )
        assert stale.status_code == 400
        # Correctly signed, but the response does not read terminal: the provider is asked to retry.
        early = await stack.post(body, signed_headers(SECRET, "wh_early", body))
        assert (early.status_code, early.json()) == (503, {"result": "not_terminal"})
        retried = await stack.post(body, signed_headers(SECRET, "wh_early", body))
        assert retried.json() == {"result": "not_terminal"}  # a 503 is not remembered as processed

        history = await handle.fetch_history()
        assert not events(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        assert (await handle.query(ModelTaskWorkflow.status)).phase == "running"
        assert stack.requests(handle.id) == [
            "POST /v1/responses",
            f"GET /v1/responses/{response_id}",  # the premature delivery's read
            f"GET /v1/responses/{response_id}",  # and its retry's
        ]

        assert stack.emulator.release(response_id=response_id) == 1
        result = await handle.result()  # the real webhook ends it
    assert result.status == "completed"
    assert result.by_webhook


async def test_duplicate_deliveries_cost_one_read_and_one_signal(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=NO_POLL_S) as stack:
        handle = await stack.start("webhook_duplicate:2")
        result = await handle.result()
        assert result.response_id is not None
        response_id = result.response_id
        await wait_until(lambda: len(stack.emulator.ledger.deliveries(response_id)) == 3)
        deliveries = stack.emulator.ledger.deliveries(response_id)
        assert [d.status_code for d in deliveries] == [200] * 3
        assert len({d.webhook_id for d in deliveries}) == 1
        assert stack.receiver.stats["duplicate"] == 2
        assert stack.requests(handle.id) == ["POST /v1/responses", f"GET /v1/responses/{response_id}"]
    signals = events(await handle.fetch_history(), EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    assert len(signals) == 1
    assert result.by_webhook


async def test_late_delivery_after_the_job_ended_is_acknowledged_and_ignored(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=0.5) as stack:
        # The webhook is held until the job has completed by polling.
        handle = await stack.start("webhook_hold")
        result = await handle.result()
        assert not result.by_webhook
        assert result.response_id is not None
        assert stack.emulator.release_webhooks(response_id=result.response_id) == 1
        await wait_until(lambda: stack.receiver.stats["workflow_not_running"] == 1)
        # The emulator records the delivery once the receiver's answer is back.
        await wait_until(lambda: len(stack.emulator.ledger.deliveries(result.response_id)) == 1)
        [delivery] = stack.emulator.ledger.deliveries(result.response_id)
        assert (delivery.fault, delivery.status_code) == ("late", 200)
        assert await handle.result() == result


async def test_webhook_before_the_create_reply_ends_the_job_without_following_it(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=NO_POLL_S) as stack:
        stack.emulator.hold_create_replies()
        try:
            handle = await stack.start(duration=0.3)
            await wait_until(lambda: stack.emulator.held_create_replies == 1)
            # The response ends, and its webhook is signalled, while the job still waits for the reply
            # (the ledger records the create only once it is answered: the delivery names the response).
            await wait_until(lambda: stack.receiver.stats["signalled"] == 1)
            # The emulator records a delivery once the receiver's answer is back, just after the signal.
            await wait_until(lambda: len(stack.emulator.ledger.deliveries()) == 1)
            [delivery] = stack.emulator.ledger.deliveries()
            response_id = delivery.response_id
            assert (await handle.query(ModelTaskWorkflow.status)).phase == "starting"
        finally:
            stack.emulator.release_create_replies()  # (a worker cannot stop while a create hangs)
        result = await handle.result()
    assert result.status == "completed"
    assert result.by_webhook
    assert result.response_id == response_id
    history = await handle.fetch_history()
    scheduled = events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    names = [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled]  # type: ignore[attr-defined]
    assert names == ["evaluate_policy", "start_background_response"]
    assert len(stack.requests(handle.id)) == 2


async def test_foreign_unknown_and_malformed_deliveries_are_answered_without_effect(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    async with webhook_stack(client, settings, tmp_path, poll_s=NO_POLL_S) as stack:
        # A response no lanes job started, and one naming a workflow that does not exist.
        foreign = await stack.provider.responses.create(
            model="gpt-5-mini", input="x", background=True, store=True, metadata=control(duration=0.2)
        )
        orphan = await stack.provider.responses.create(
            model="gpt-5-mini",
            input="x",
            background=True,
            store=True,
            metadata={**control(duration=0.2), "lanes_workflow_id": f"no-such-job-{uuid.uuid4()}"},
        )
        await wait_until(lambda: stack.emulator.pending_webhooks == 0)
        assert [d.status_code for d in stack.emulator.ledger.deliveries(foreign.id)] == [200]
        assert [d.status_code for d in stack.emulator.ledger.deliveries(orphan.id)] == [200]
        assert stack.receiver.stats["not_a_lanes_job"] == 1
        assert stack.receiver.stats["workflow_not_running"] == 1

        async def deliver(body: str, webhook_id: str) -> tuple[int, object]:
            answer = await stack.post(body, signed_headers(SECRET, webhook_id, body))
            return answer.status_code, answer.json()

        unknown = event_body("evt_u", "response.completed", "resp_unknown", time.time())
        assert await deliver(unknown, "wh_u") == (200, {"result": "unknown_response"})
        assert await deliver(unknown, "wh_u") == (200, {"result": "duplicate"})
        batch = event_body("evt_b", "batch.completed", "batch_1", time.time())
        assert await deliver(batch, "wh_b") == (200, {"result": "ignored_event_type"})
        assert await deliver("not json", "wh_j") == (400, {"result": "bad_payload"})
        assert await deliver('{"type": "response.completed"}', "wh_p") == (400, {"result": "bad_payload"})
        assert (await stack.post(unknown, {})).status_code == 400  # no signature headers at all

        async with httpx2.AsyncClient() as http:
            assert (await http.get(stack.url)).status_code == 405
            assert (await http.post(stack.url.replace("/webhooks/openai", "/other"))).status_code == 404
            health = await http.get(stack.url.replace("/webhooks/openai", "/healthz"))
        assert health.json()["deliveries"]["unknown_response"] == 1
