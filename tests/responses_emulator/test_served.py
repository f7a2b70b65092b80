"""The real SDK against the emulator over loopback HTTP, with a real-time clock."""

import asyncio
import time

import httpx2
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from lanes.dev.emulator_server import EmulatorServer
from responses_emulator import Emulator, EmulatorConfig
from responses_emulator.testing import (
    collect,
    control,
    delta_text,
    response_of,
    served_client,
    wait_for_terminal,
    wait_until,
)


async def test_contract_of_openai_python_background_example(served: openai.AsyncOpenAI):
    """Replays examples/responses/background.py: stream, break at 10, resume with starting_after=10."""
    response_id = None
    first: list[ResponseStreamEvent] = []
    async with await served.responses.create(
        input="solve 8x + 31 = 2", model="gpt-4o-2024-08-06", background=True, stream=True
    ) as stream:
        async for event in stream:
            first.append(event)
            if event.type == "response.created":
                response_id = response_of(event).id
            if event.sequence_number == 10:
                break
    assert response_id is not None
    async with await served.responses.retrieve(
        response_id=response_id, stream=True, starting_after=10
    ) as stream:
        rest = [event async for event in stream]
    assert rest[0].sequence_number == 11
    joined = first + rest
    assert [e.sequence_number for e in joined] == list(range(len(joined)))
    assert joined[-1].type == "response.completed"
    final = await wait_for_terminal(served, response_id)
    assert delta_text(joined) == final.output_text
    # Cancelling a completed background response returns it unchanged.
    assert (await served.responses.cancel(response_id)).model_dump() == final.model_dump()


async def test_every_endpoint_over_http(served: openai.AsyncOpenAI, server: EmulatorServer):
    created = await served.responses.create(model="gpt-5-mini", input="x", background=True, store=True)
    assert created.status == "queued"
    final = await wait_for_terminal(served, created.id)
    assert final.status == "completed"
    cancel_me = await served.responses.create(
        model="gpt-5-mini", input="y", background=True, metadata=control(duration=30)
    )
    assert (await served.responses.cancel(cancel_me.id)).status == "cancelled"
    await served.responses.delete(cancel_me.id)
    with pytest.raises(openai.NotFoundError):
        await served.responses.retrieve(cancel_me.id)
    foreground = await served.responses.create(model="gpt-5-mini", input="z", store=False)
    assert foreground.status == "completed"
    with pytest.raises(openai.NotFoundError):
        await served.responses.retrieve(foreground.id)
    paths = [(e.method, e.status_code) for e in server.emulator.ledger.entries()]
    assert ("DELETE", 200) in paths
    assert ("GET", 404) in paths


async def test_streams_are_paced_in_real_time_and_end_at_terminal(served: openai.AsyncOpenAI):
    started = time.monotonic()
    events = await collect(
        await served.responses.create(
            model="gpt-5-mini", input="x", background=True, stream=True, metadata=control(duration=1.0)
        )
    )
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # paced by the clock, not dumped at once
    assert events[-1].type == "response.completed"
    assert delta_text(events) == response_of(events[-1]).output_text


async def test_stream_sees_cancel_and_ends(served: openai.AsyncOpenAI):
    stream = await served.responses.create(
        model="gpt-5-mini", input="x", background=True, stream=True, metadata=control(duration=30)
    )
    events = []
    async for event in stream:
        events.append(event)
        if event.type == "response.queued":
            await served.responses.cancel(response_of(event).id)
    # The cancel races the emulator's 0.1 s queue (real time): events already on their way may follow it,
    # so the property is that the stream ends without completing and the response is cancelled.
    assert "response.completed" not in {event.type for event in events}
    final = await served.responses.retrieve(response_of(events[0]).id)
    assert final.status == "cancelled"


async def test_admin_endpoints(server: EmulatorServer, served: openai.AsyncOpenAI):
    await served.responses.create(model="gpt-5-mini", input="x", background=True, metadata={"job": "7"})
    async with httpx2.AsyncClient() as http:
        health = (await http.get(f"{server.admin_url}/health")).json()
        assert health["status"] == "ok"
        assert health["responses"] == 1
        ledger = (await http.get(f"{server.admin_url}/ledger")).json()
        assert len(ledger) == 1
        assert ledger[0]["metadata"] == {"job": "7"}
        assert ledger[0]["generated"] is True
        assert ledger[0]["background"] is True
        assert (await http.delete(f"{server.admin_url}/ledger")).json() == {"cleared": 1}
        assert (await http.get(f"{server.admin_url}/ledger")).json() == []
        assert (await http.post(f"{server.admin_url}/clock/advance?seconds=5")).status_code == 409


async def test_shutdown_with_open_streams_is_quick():
    emulator = Emulator(EmulatorConfig(duration_s=60))
    server = EmulatorServer(emulator)
    await server.start()
    sdk = served_client(server)
    streams = [
        await sdk.responses.create(model="gpt-5-mini", input=str(i), background=True, stream=True)
        for i in range(3)
    ]
    readers = [asyncio.ensure_future(collect(s)) for s in streams]
    await wait_until(lambda: emulator.open_streams == 3)
    started = time.monotonic()
    await server.stop()
    # The streams had a minute left: a shutdown that waited for them would take that long. The bound is
    # half of it, so a slow machine cannot fail this, and a shutdown that waits still does.
    assert time.monotonic() - started < 30
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(r, openai.APIConnectionError) for r in results)
    await sdk.close()


async def test_served_json_validates_as_sdk_response(server: EmulatorServer):
    async with httpx2.AsyncClient(base_url=server.base_url) as http:
        created = await http.post(
            "/responses", json={"model": "gpt-5-mini", "input": "x", "background": True}
        )
        assert created.status_code == 200
        Response.model_validate(created.json())
        got = await http.get(f"/responses/{created.json()['id']}")
    assert Response.model_validate(got.json()).id == created.json()["id"]
