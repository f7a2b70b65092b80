"""Every fault, each triggered in one line, observed through the real SDK over HTTP."""

import httpx2
import openai
import pytest
from openai.types.responses import ResponseStreamEvent

from lanes.dev.emulator_server import EmulatorServer
from responses_emulator import Emulator, EmulatorConfig
from responses_emulator.testing import (
    collect,
    control,
    delta_text,
    response_of,
    served_client,
    wait_for_terminal,
)


async def test_drop_stream_after_raises_then_resume_completes(served: openai.AsyncOpenAI):
    stream = await served.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        stream=True,
        metadata=control(fault="drop_stream_after:5"),
    )
    seen: list[ResponseStreamEvent] = []

    async def drain() -> None:
        async for event in stream:
            seen.append(event)

    with pytest.raises(openai.APIConnectionError):
        await drain()
    assert [e.sequence_number for e in seen] == [0, 1, 2, 3, 4]
    response_id = response_of(seen[0]).id
    rest = await collect(await served.responses.retrieve(response_id, stream=True, starting_after=4))
    joined = seen + rest
    assert [e.sequence_number for e in joined] == list(range(len(joined)))
    assert delta_text(joined) == (await wait_for_terminal(served, response_id)).output_text


async def test_reset_mid_body_breaks_one_plain_read(served: openai.AsyncOpenAI):
    created = await served.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="reset_mid_body")
    )
    with pytest.raises(openai.APIConnectionError):
        await served.responses.retrieve(created.id)
    assert (await served.responses.retrieve(created.id)).id == created.id


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError), (503, openai.InternalServerError)],
)
async def test_http_fault_hits_the_next_n_requests(
    served: openai.AsyncOpenAI, server: EmulatorServer, status, error
):
    created = await served.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault=f"http:{status}:2")
    )
    for _ in range(2):
        with pytest.raises(error) as caught:
            await served.responses.retrieve(created.id)
        assert caught.value.status_code == status
        if status in (429, 503):
            assert caught.value.response.headers["retry-after"] == "1"
    assert (await served.responses.retrieve(created.id)).id == created.id
    faults = [e.fault for e in server.emulator.ledger.for_response(created.id)]
    assert faults[1:] == [f"http:{status}", f"http:{status}", None]


async def test_sdk_retries_through_429_with_retry_after():
    config = EmulatorConfig(retry_after_s=0)
    async with EmulatorServer(Emulator(config)) as server:
        sdk = served_client(server, max_retries=2)
        created = await sdk.responses.create(
            model="gpt-5-mini", input="x", background=True, metadata=control(fault="http:429:2")
        )
        assert (await sdk.responses.retrieve(created.id)).id == created.id
        assert [e.status_code for e in server.emulator.ledger.for_response(created.id)] == [
            200,
            429,
            429,
            200,
        ]
        await sdk.close()


async def test_header_fault_applies_to_its_request_only(served: openai.AsyncOpenAI, server: EmulatorServer):
    with pytest.raises(openai.InternalServerError):
        await served.responses.create(
            model="gpt-5-mini", input="x", background=True, extra_headers={"X-Emulator-Fault": "http:500"}
        )
    assert server.emulator.ledger.generations() == []
    created = await served.responses.create(model="gpt-5-mini", input="x", background=True)
    with pytest.raises(openai.APIConnectionError):
        await served.responses.retrieve(created.id, extra_headers={"X-Emulator-Fault": "reset_mid_body"})
    assert (await served.responses.retrieve(created.id)).id == created.id


async def test_header_fault_on_create_shapes_the_response(served: openai.AsyncOpenAI):
    created = await served.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        extra_headers={"X-Emulator-Fault": "fail:server_error"},
    )
    final = await wait_for_terminal(served, created.id)
    assert final.status == "failed"
    assert final.error is not None
    assert final.error.code == "server_error"


async def test_stuck_queued_stays_queued(served: openai.AsyncOpenAI):
    created = await served.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="stuck_queued")
    )
    with pytest.raises(TimeoutError):
        await wait_for_terminal(served, created.id, timeout_s=1.0)
    assert (await served.responses.retrieve(created.id)).status == "queued"


async def test_failed_stream_over_http_ends_with_response_failed(served: openai.AsyncOpenAI):
    events = await collect(
        await served.responses.create(
            model="gpt-5-mini",
            input="x",
            background=True,
            stream=True,
            metadata=control(fault="fail:rate_limit_exceeded"),
        )
    )
    assert events[-1].type == "response.failed"
    error = response_of(events[-1]).error
    assert error is not None
    assert error.code == "rate_limit_exceeded"


async def test_random_fault_rates_and_latency():
    async with EmulatorServer(Emulator(EmulatorConfig(rate_503=1.0, latency_ms=20))) as server:
        sdk = served_client(server)
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.responses.create(model="gpt-5-mini", input="x", background=True)
        assert caught.value.status_code == 503
        assert caught.value.code == "server_is_overloaded"
        assert server.emulator.ledger.entries()[0].fault == "random:503"
        await sdk.close()


async def test_a_configured_api_key_refuses_every_other_key_with_401():
    async with EmulatorServer(Emulator(EmulatorConfig(api_key="sk-right"))) as server:
        wrong = openai.AsyncOpenAI(api_key="sk-wrong", base_url=server.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.responses.create(model="gpt-5-mini", input="x", background=True)
        assert caught.value.code == "invalid_api_key"
        async with httpx2.AsyncClient(base_url=server.base_url) as http:
            assert (await http.get("/models")).status_code == 401  # before routing, as the API does
        right = openai.AsyncOpenAI(api_key="sk-right", base_url=server.base_url, max_retries=0)
        created = await right.responses.create(model="gpt-5-mini", input="x", background=True)
        assert created.status == "queued"
        assert [entry.status_code for entry in server.emulator.ledger.entries()] == [401, 401, 200]
        await wrong.close()
        await right.close()


async def test_a_zdr_projects_key_is_taken_and_its_store_is_always_treated_as_false():
    config = EmulatorConfig(api_key="sk-standard", zdr_api_keys=("sk-zdr",))
    async with EmulatorServer(Emulator(config)) as server:
        zdr = openai.AsyncOpenAI(api_key="sk-zdr", base_url=server.base_url, max_retries=0)
        standard = openai.AsyncOpenAI(api_key="sk-standard", base_url=server.base_url, max_retries=0)
        # "store ... will always be treated as false" for a ZDR project: asked to store, it does not.
        kept = await zdr.responses.create(model="gpt-5-mini", input="x", store=True)
        assert kept.to_dict()["store"] is False  # the SDK's model has no attribute for the field
        with pytest.raises(openai.NotFoundError):
            await zdr.responses.retrieve(kept.id)
        stored = await standard.responses.create(model="gpt-5-mini", input="x", store=True)
        assert (await standard.responses.retrieve(stored.id)).to_dict()["store"] is True
        creates = [(e.zdr_project, e.store, e.status_code) for e in server.emulator.ledger.entries()]
        assert creates == [(True, True, 200), (True, None, 404), (False, True, 200), (False, None, 200)]
        await zdr.close()
        await standard.close()


async def test_malformed_fault_is_a_loud_400(server: EmulatorServer):
    async with httpx2.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/responses/resp_x", headers={"X-Emulator-Fault": "http:200"})
    assert answer.status_code == 400
    assert "Invalid emulator fault" in answer.json()["error"]["message"]


async def test_stream_error_event_makes_the_sdk_raise_a_bare_api_error(served: openai.AsyncOpenAI):
    """What lanes' activities map on: the SDK's exact exception for a mid-stream ``error`` event."""
    stream = await served.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        stream=True,
        metadata=control(fault="stream_error:rate_limit_exceeded:5"),
    )
    seen: list[ResponseStreamEvent] = []

    async def drain() -> None:
        async for event in stream:
            seen.append(event)

    with pytest.raises(openai.APIError) as caught:
        await drain()
    error = caught.value
    message = (
        "Rate limit reached for gpt-5-mini in organization org-emulator on tokens per min (TPM): "
        "Limit 30000, Used 30000, Requested 1. Please try again in 1s."
    )
    assert type(error) is openai.APIError  # not APIStatusError: the HTTP status was 200
    assert (error.code, error.type, error.param, error.message) == (
        "rate_limit_exceeded",
        "tokens",
        None,
        message,
    )
    assert str(error) == message
    assert error.body == {"type": "tokens", "code": "rate_limit_exceeded", "message": message, "param": None}
    assert not hasattr(error, "status_code")
    assert [e.sequence_number for e in seen] == [0, 1, 2, 3, 4]
    # The response goes on generating: a resume after the last event received gets the rest.
    response_id = response_of(seen[0]).id
    rest = await collect(await served.responses.retrieve(response_id, stream=True, starting_after=4))
    joined = seen + rest
    assert [e.sequence_number for e in joined] == list(range(len(joined)))
    assert joined[-1].type == "response.completed"
    assert delta_text(joined) == (await wait_for_terminal(served, response_id)).output_text


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("server_error", "server_error"),
        ("overloaded", "service_unavailable_error"),
        ("flaky_thing", "server_error"),
    ],
)
async def test_stream_error_codes_over_a_header_on_a_resume(served: openai.AsyncOpenAI, code, error_type):
    created = await collect(
        await served.responses.create(model="gpt-5-mini", input="x", background=True, stream=True)
    )
    response_id = response_of(created[0]).id
    resumed = await served.responses.retrieve(
        response_id,
        stream=True,
        starting_after=1,
        extra_headers={"X-Emulator-Fault": f"stream_error:{code}:0"},
    )
    with pytest.raises(openai.APIError) as caught:
        await collect(resumed)
    assert (caught.value.code, caught.value.type) == (code, error_type)
    # A header fault belongs to its request: the next resume is clean.
    rest = await collect(await served.responses.retrieve(response_id, stream=True, starting_after=1))
    assert rest[0].sequence_number == 2
    assert rest[-1].type == "response.completed"
