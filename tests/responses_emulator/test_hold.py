"""The ``hold`` fault: a response generates on schedule but ends only when the test releases it."""

import asyncio

import httpx2
import openai
from openai.types.responses import ResponseStreamEvent

from lanes.dev.emulator_server import EmulatorServer
from responses_emulator import Emulator, ManualClock
from responses_emulator.testing import (
    collect,
    control,
    delta_text,
    response_of,
    wait_for_terminal,
    wait_until,
)


async def test_held_response_stays_in_progress_until_released(client, emulator: Emulator, clock: ManualClock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, stream=True, metadata=control(fault="hold")
    )
    response_id = response_of((await collect(created))[0]).id
    clock.advance(60)  # far past the natural end (3 s)
    polled = await client.responses.retrieve(response_id)
    assert (polled.status, polled.output, polled.usage) == ("in_progress", [], None)
    before = await collect(await client.responses.retrieve(response_id, stream=True))
    assert before[-1].type == "response.output_text.delta"
    assert sum(e.type == "response.output_text.delta" for e in before) == 40
    assert emulator.held_responses == 1

    released_at = clock.advance(5)
    assert emulator.release(response_id=response_id) == 1
    assert emulator.held_responses == 0
    final = await client.responses.retrieve(response_id)
    assert final.status == "completed"
    assert final.completed_at == int(released_at)
    rest = await collect(
        await client.responses.retrieve(response_id, stream=True, starting_after=before[-1].sequence_number)
    )
    assert [e.type for e in rest] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    joined = before + rest
    assert [e.sequence_number for e in joined] == list(range(len(joined)))
    assert delta_text(joined) == final.output_text
    assert emulator.release(response_id=response_id) == 0


async def test_release_before_the_natural_end_keeps_the_schedule(client, emulator, clock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="hold")
    )
    assert emulator.release(response_id=created.id) == 1
    clock.advance(2.0)
    assert (await client.responses.retrieve(created.id)).status == "in_progress"
    clock.advance(1.0)
    done = await client.responses.retrieve(created.id)
    assert done.status == "completed"
    assert done.completed_at == int(created.created_at + 3)


async def test_release_matches_every_metadata_pair_and_no_filter_releases_all(client, emulator, clock):
    ids = {}
    for job in ("1", "2", "3"):
        created = await client.responses.create(
            model="gpt-5-mini",
            input=job,
            background=True,
            metadata={"job": job, "tenant": "a" if job != "3" else "b", **control(fault="hold")},
        )
        ids[job] = created.id
    plain = await client.responses.create(model="gpt-5-mini", input="p", background=True)
    clock.advance(10)
    assert emulator.release(metadata={"job": "1", "tenant": "b"}) == 0
    assert emulator.release(metadata={"job": "1", "tenant": "a"}) == 1
    assert emulator.release(response_id=ids["2"], metadata={"job": "1"}) == 0
    statuses = {job: (await client.responses.retrieve(i)).status for job, i in ids.items()}
    assert statuses == {"1": "completed", "2": "in_progress", "3": "in_progress"}
    assert (await client.responses.retrieve(plain.id)).status == "completed"
    assert emulator.release() == 2
    assert emulator.held_responses == 0


async def test_cancelling_a_held_response_works_as_usual(client, emulator, clock):
    created = await client.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="hold")
    )
    clock.advance(10)
    cancelled = await client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert len(cancelled.output_text.split()) == 40
    assert emulator.held_responses == 0
    assert emulator.release() == 0
    assert (await client.responses.retrieve(created.id)).status == "cancelled"


async def test_held_failure_ends_with_its_fault_once_released(client, emulator, clock):
    created = await client.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        extra_headers={"X-Emulator-Fault": "hold,fail:server_error"},
    )
    clock.advance(10)
    assert (await client.responses.retrieve(created.id)).status == "in_progress"
    emulator.release()
    failed = await client.responses.retrieve(created.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "server_error"


async def test_served_stream_stays_open_after_its_last_delta_until_released(
    served: openai.AsyncOpenAI, server: EmulatorServer
):
    emulator = server.emulator
    stream = await served.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        stream=True,
        metadata={"job": "j1", **control(fault="hold", duration=0.2, tokens=5)},
    )
    events: list[ResponseStreamEvent] = []
    async with httpx2.AsyncClient() as admin:
        async for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta" and len(events) == 10:
                # The last delta is out, so the natural end has passed: only the hold keeps it open.
                response_id = response_of(events[0]).id
                assert (await served.responses.retrieve(response_id)).status == "in_progress"
                health = (await admin.get(f"{server.admin_url}/health")).json()
                assert (health["open_streams"], health["held_responses"]) == (1, 1)
                # What a benchmark reads to count stream work and requests: 10 events out, one create and
                # one retrieve in the ledger so far.
                assert health["stream_events_sent"] == emulator.stream_events_sent == 10
                assert health["requests"] == len(emulator.ledger) == 2
                released = await admin.post(f"{server.admin_url}/release", params={"metadata.job": "j1"})
                assert released.json() == {"released": 1}
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(14))
    assert delta_text(events) == response_of(events[-1]).output_text
    assert emulator.open_streams == 0


async def test_served_foreground_create_answers_when_released(
    served: openai.AsyncOpenAI, server: EmulatorServer
):
    emulator = server.emulator
    call = asyncio.ensure_future(
        served.responses.create(model="gpt-5-mini", input="x", store=False, metadata=control(fault="hold"))
    )
    await wait_until(lambda: emulator.held_responses == 1)
    assert not call.done()
    async with httpx2.AsyncClient() as admin:
        released = await admin.post(f"{server.admin_url}/release")
    assert released.json() == {"released": 1}
    response = await call
    assert response.status == "completed"
    assert len(response.output_text.split()) == 24


async def test_hold_with_response_id_over_the_admin_route(served: openai.AsyncOpenAI, server: EmulatorServer):
    emulator = server.emulator
    created = await served.responses.create(
        model="gpt-5-mini", input="x", background=True, metadata=control(fault="hold", duration=0.05)
    )
    record = emulator.store.get(created.id, emulator.clock.now())
    assert record is not None
    natural_end = record.natural_end
    assert natural_end is not None
    await wait_until(lambda: emulator.clock.now() > natural_end)
    assert (await served.responses.retrieve(created.id)).status == "in_progress"
    async with httpx2.AsyncClient() as admin:
        other = await admin.post(f"{server.admin_url}/release", params={"response_id": "resp_other"})
        assert other.json() == {"released": 0}
        mine = await admin.post(f"{server.admin_url}/release", params={"response_id": created.id})
        assert mine.json() == {"released": 1}
    assert (await wait_for_terminal(served, created.id)).status == "completed"
