"""Lifecycle and real-API rules, in-process with a ManualClock (no sleeping)."""

import json

import httpx2
import openai
import pytest
from openai.types.responses import Response

from responses_emulator import Emulator, EmulatorConfig, ManualClock
from responses_emulator.testing import control, in_process_client


async def test_background_goes_queued_in_progress_completed(client: openai.AsyncOpenAI, clock: ManualClock):
    created = await client.responses.create(model="gpt-4.1", input="hello", background=True, store=True)
    assert created.status == "queued"
    assert created.background is True
    assert created.output == []
    assert created.usage is None
    clock.advance(1.5)
    running = await client.responses.retrieve(created.id)
    assert running.status == "in_progress"
    clock.advance(2.0)
    done = await client.responses.retrieve(created.id)
    assert done.status == "completed"
    assert done.completed_at is not None
    assert done.usage is not None
    assert done.usage.output_tokens == 40
    assert done.usage.total_tokens == done.usage.input_tokens + 40
    assert len(done.output_text.split()) == 40
    assert done.output_text.endswith(".")


async def test_raw_json_validates_as_sdk_response(emulator: Emulator, clock: ManualClock):
    transport = httpx2.MockTransport(emulator.handle)
    async with httpx2.AsyncClient(transport=transport, base_url="http://emulator.local") as http:
        created = await http.post(
            "/v1/responses",
            json={"model": "gpt-4.1", "input": "x", "background": True, "metadata": {"a": "b"}},
        )
        clock.advance(10)
        got = await http.get(f"/v1/responses/{created.json()['id']}")
    body = got.json()
    parsed = Response.model_validate(body)
    assert parsed.status == "completed"
    assert parsed.metadata == {"a": "b"}
    # The real API sends explicit nulls and a store flag the SDK type does not declare.
    assert body["error"] is None
    assert body["incomplete_details"] is None
    assert body["store"] is True
    assert body["object"] == "response"
    assert body["output"][0]["content"][0]["type"] == "output_text"
    assert got.headers["x-request-id"].startswith("req_")


async def test_text_is_deterministic_across_emulators():
    texts = []
    for _ in range(2):
        sdk = in_process_client(Emulator(clock=ManualClock()))
        response = await sdk.responses.create(
            model="gpt-5-mini", input="same prompt", instructions="be brief"
        )
        texts.append(response.output_text)
        await sdk.close()
    assert texts[0] == texts[1]
    sdk = in_process_client(Emulator(clock=ManualClock()))
    other = await sdk.responses.create(model="gpt-5-mini", input="another prompt", instructions="be brief")
    await sdk.close()
    assert other.output_text != texts[0]


async def test_foreground_store_false_completes_and_is_never_retrievable(client: openai.AsyncOpenAI):
    response = await client.responses.create(model="gpt-4.1", input="secret", store=False)
    assert response.status == "completed"
    assert response.output_text
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve(response.id)
    assert caught.value.message.endswith(f"Response with id '{response.id}' not found.")
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(response.id)


async def test_foreground_stored_cannot_be_cancelled_or_restreamed(client: openai.AsyncOpenAI):
    response = await client.responses.create(model="gpt-4.1", input="x")
    assert (await client.responses.retrieve(response.id)).output_text == response.output_text
    with pytest.raises(openai.BadRequestError):
        await client.responses.cancel(response.id)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.retrieve(response.id, stream=True)
    assert caught.value.param == "stream"
    assert "not created with background=true" in caught.value.message


@pytest.mark.parametrize(
    ("fault", "status", "event_reason"),
    [
        ("fail:server_error", "failed", "server_error"),
        ("fail:rate_limit_exceeded", "failed", "rate_limit_exceeded"),
        ("incomplete:max_output_tokens", "incomplete", "max_output_tokens"),
        ("incomplete:content_filter", "incomplete", "content_filter"),
    ],
)
async def test_fault_terminal_statuses(client, clock, fault, status, event_reason):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault=fault)
    )
    clock.advance(60)
    final = await client.responses.retrieve(created.id)
    assert final.status == status
    if status == "failed":
        assert final.error is not None
        assert final.error.code == event_reason
        assert final.output == []
    else:
        assert final.incomplete_details is not None
        assert final.incomplete_details.reason == event_reason
        assert len(final.output_text.split()) == 20


async def test_max_output_tokens_below_generated_length_is_incomplete(client, clock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, max_output_tokens=16
    )
    clock.advance(60)
    final = await client.responses.retrieve(created.id)
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.usage is not None
    assert final.usage.output_tokens == 16
    assert final.max_output_tokens == 16


async def test_cancel_is_idempotent_and_keeps_partial_output(client, clock):
    created = await client.responses.create(model="gpt-5-mini", input="x", background=True)
    clock.advance(2.0)  # half-way through generation
    cancelled = await client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    again = await client.responses.cancel(created.id)
    assert again.status == "cancelled"
    assert again.output_text == cancelled.output_text
    clock.advance(60)
    later = await client.responses.retrieve(created.id)
    assert later.status == "cancelled"
    assert 0 < len(later.output_text.split()) < 40


async def test_cancel_completed_returns_it_unchanged(client, clock):
    created = await client.responses.create(model="gpt-5-mini", input="x", background=True)
    clock.advance(10)
    completed = await client.responses.retrieve(created.id)
    after = await client.responses.cancel(created.id)
    assert after.status == "completed"
    assert after.model_dump() == completed.model_dump()


async def test_cancel_race_reads_cancelled_then_completed(client, clock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="cancel_race")
    )
    clock.advance(1.5)
    assert (await client.responses.cancel(created.id)).status == "cancelled"
    assert (await client.responses.retrieve(created.id)).status == "cancelled"
    clock.advance(5)
    later = await client.responses.retrieve(created.id)
    assert later.status == "completed"
    assert len(later.output_text.split()) == 40


async def test_stuck_queued_never_progresses(client, clock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="stuck_queued")
    )
    clock.advance(3600)
    assert (await client.responses.retrieve(created.id)).status == "queued"
    assert (await client.responses.cancel(created.id)).status == "cancelled"


async def test_delete_then_404(client, clock):
    created = await client.responses.create(model="gpt-5-mini", input="x", background=True)
    await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.cancel(created.id)


async def test_retention_expiry(client, clock, emulator):
    created = await client.responses.create(model="gpt-5-mini", input="x", background=True)
    clock.advance(3.0 + 599)
    assert (await client.responses.retrieve(created.id)).status == "completed"
    clock.advance(2)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve(created.id)
    assert f"'{created.id}' not found" in caught.value.message
    assert len(emulator.store) == 0


async def test_foreground_stored_response_does_not_expire(client, clock):
    created = await client.responses.create(model="gpt-5-mini", input="x")
    clock.advance(30 * 24 * 3600)
    assert (await client.responses.retrieve(created.id)).status == "completed"


async def test_background_store_false_rejected_by_default(client):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-5-mini", input="x", background=True, store=False)
    assert caught.value.param == "store"


async def test_background_store_false_accepted_only_for_retention_window():
    clock = ManualClock()
    emulator = Emulator(EmulatorConfig(background_store_false="accept", retention_s=60), clock=clock)
    sdk = in_process_client(emulator)
    created = await sdk.responses.create(model="gpt-5-mini", input="x", background=True, store=False)
    clock.advance(10)
    assert (await sdk.responses.retrieve(created.id)).status == "completed"
    clock.advance(60)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(created.id)
    await sdk.close()
    assert emulator.ledger.creates()[0].store is False


async def test_idempotency_key_returns_same_response_without_generating(client, emulator, clock):
    headers = {"Idempotency-Key": "job-1"}
    first = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, extra_headers=headers
    )
    clock.advance(10)
    second = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, extra_headers=headers
    )
    assert second.id == first.id
    assert second.status == "completed"
    assert [e.generated for e in emulator.ledger.creates()] == [True, False]
    assert len(emulator.ledger.generations()) == 1
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="gpt-5-mini", input="other", background=True, extra_headers=headers
        )
    assert caught.value.code == "idempotency_key_reused"
    assert len(emulator.ledger.generations()) == 1


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "gpt-5-mini", "input": "x", "max_output_tokens": 5}, "max_output_tokens"),
        (
            {
                "model": "gpt-5-mini",
                "input": "x",
                "background": True,
                "background_options": {"completion_window": "3h"},
            },
            "background_options.completion_window",
        ),
        (
            {"model": "gpt-5-mini", "input": "x", "background_options": {"completion_window": "2h"}},
            "background_options.completion_window",
        ),
        ({"model": "gpt-5-mini", "input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        (
            {"model": "gpt-5-mini", "input": "x", "metadata": {"emulator_fault": "explode"}},
            "metadata.emulator_fault",
        ),
        (
            {"model": "gpt-5-mini", "input": "x", "metadata": {"emulator_fault": "stream_error:Busy:1"}},
            "metadata.emulator_fault",
        ),
        (
            {"model": "gpt-5-mini", "input": "x", "metadata": {"emulator_fault": "stream_error:busy"}},
            "metadata.emulator_fault",
        ),
        (
            {"model": "gpt-5-mini", "input": "x", "metadata": {"emulator_fault": "hold:1"}},
            "metadata.emulator_fault",
        ),
    ],
)
async def test_invalid_requests_are_400(emulator, kwargs, param):
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(emulator.handle)) as http:
        answer = await http.post("http://emulator.local/v1/responses", content=json.dumps(kwargs))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
    assert emulator.ledger.generations() == []


async def test_completion_window_8h_background_is_accepted(client, clock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, background_options={"completion_window": "8h"}
    )
    clock.advance(10)
    assert (await client.responses.retrieve(created.id)).status == "completed"


async def test_unknown_route_is_404(emulator):
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(emulator.handle)) as http:
        answer = await http.get("http://emulator.local/v1/chat/whatever")
    assert answer.status_code == 404
    assert "Invalid URL" in answer.json()["error"]["message"]
