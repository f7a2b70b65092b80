"""The emulator records when each generated response reached its terminal status."""

import httpx2
import openai
import pytest

from responses_emulator import Emulator, EmulatorConfig, ManualClock
from responses_emulator.completions import Completions
from responses_emulator.testing import control, in_process_client


async def test_end_time_is_reported_once_reached_and_survives_delete():
    clock = ManualClock()
    emulator = Emulator(EmulatorConfig(duration_s=3.0, queued_s=1.0), clock=clock)
    client = in_process_client(emulator)
    start = clock.now()
    bg = await client.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        store=True,
        metadata={"job": "a", **control(duration=5)},
    )
    fg = await client.responses.create(model="gpt-5-mini", input="y", store=False)
    held = await client.responses.create(
        model="gpt-5-mini", input="z", background=True, store=True, metadata=control(fault="hold")
    )
    by_id = {c.response_id: c for c in emulator.completed()}
    assert by_id[bg.id].ended_at is None
    assert by_id[bg.id].status == "queued"
    assert by_id[bg.id].metadata["job"] == "a"
    assert by_id[bg.id].created_at == start
    assert by_id[fg.id].ended_at == start  # a foreground call is instant under a manual clock
    assert by_id[fg.id].background is False

    clock.advance(10)
    await client.responses.delete(bg.id)
    by_id = {c.response_id: c for c in emulator.completed()}
    assert by_id[bg.id].ended_at == start + 5  # the schedule's end, not the time it was read
    assert by_id[held.id].ended_at is None  # held: not ended until released
    emulator.release(response_id=held.id)
    assert {c.response_id: c for c in emulator.completed()}[held.id].ended_at == start + 10
    await client.close()


async def test_cancel_time_is_the_end_of_a_cancelled_response():
    clock = ManualClock()
    emulator = Emulator(EmulatorConfig(duration_s=30.0), clock=clock)
    client = in_process_client(emulator)
    bg = await client.responses.create(model="gpt-5-mini", input="x", background=True, store=True)
    clock.advance(2)
    await client.responses.cancel(bg.id)
    [completion] = emulator.completed()
    assert (completion.status, completion.ended_at) == ("cancelled", clock.now())
    await client.close()


async def test_served_as_json_on_the_admin_route():
    clock = ManualClock()
    emulator = Emulator(EmulatorConfig(duration_s=1.0), clock=clock)
    client = in_process_client(emulator)
    bg = await client.responses.create(model="gpt-5-mini", input="x", background=True, store=True)
    clock.advance(2)
    answer = await emulator.handle(httpx2.Request("GET", "http://emulator/_emulator/completions"))
    [entry] = answer.json()
    assert entry["response_id"] == bg.id
    assert entry["status"] == "completed"
    assert entry["ended_at"] == clock.now() - 1
    await client.close()


async def test_refused_creates_are_not_tracked_and_the_oldest_are_forgotten():
    emulator = Emulator(EmulatorConfig(), clock=ManualClock())
    emulator.completions = Completions(limit=2)
    client = in_process_client(emulator)
    ids = [
        (await client.responses.create(model="gpt-5-mini", input=str(i), background=True, store=True)).id
        for i in range(3)
    ]
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="no-such-model", input="x")
    assert [c.response_id for c in emulator.completed()] == ids[1:]
    await client.close()
