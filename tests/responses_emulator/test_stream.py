"""Streaming and resume, in-process with a ManualClock: streams emit what exists now, then end."""

import json
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responses_emulator import Emulator, EmulatorConfig, ManualClock
from responses_emulator.testing import collect, control, delta_text, in_process_client, response_of

EXPECTED_TYPES = (
    ["response.created", "response.queued", "response.in_progress", "response.output_item.added"]
    + ["response.content_part.added"]
    + ["response.output_text.delta"] * 40
    + ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    + ["response.completed"]
)


async def _stream_id(client: openai.AsyncOpenAI, **metadata: str) -> str:
    stream = await client.responses.create(
        model="gpt-5-mini", input="stream me", background=True, stream=True, metadata=metadata or None
    )
    first = await collect(stream)
    assert first[0].type == "response.created"
    return response_of(first[0]).id


async def test_full_stream_event_sequence(client: openai.AsyncOpenAI, clock: ManualClock):
    response_id = await _stream_id(client)
    clock.advance(10)
    events = await collect(await client.responses.retrieve(response_id, stream=True))
    assert [e.type for e in events] == EXPECTED_TYPES
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = (await client.responses.retrieve(response_id)).output_text
    assert delta_text(events) == final
    assert response_of(events[-1]).output_text == final
    assert response_of(events[0]).status == "queued"


async def test_stream_emits_only_what_exists_then_ends(client, clock):
    stream = await client.responses.create(model="gpt-5-mini", input="x", background=True, stream=True)
    at_create = await collect(stream)
    assert [e.type for e in at_create] == ["response.created", "response.queued"]
    response_id = response_of(at_create[0]).id
    clock.advance(2.0)  # queued 1 s, then half of the 40 tokens over 2 s
    middle = await collect(await client.responses.retrieve(response_id, stream=True, starting_after=1))
    assert middle[0].sequence_number == 2
    assert middle[0].type == "response.in_progress"
    assert sum(e.type == "response.output_text.delta" for e in middle) == 20


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=-1, max_value=49), split_time=st.floats(min_value=0.0, max_value=4.0))
async def test_resume_from_any_cursor_yields_exactly_the_missing_events(cut: int, split_time: float):
    clock = ManualClock()
    sdk = in_process_client(Emulator(EmulatorConfig(duration_s=3.0, queued_s=1.0), clock=clock))
    created = await collect(
        await sdk.responses.create(model="gpt-5-mini", input="resume", background=True, stream=True)
    )
    response_id = response_of(created[0]).id
    clock.advance(split_time)
    seen = created + await collect(await sdk.responses.retrieve(response_id, stream=True, starting_after=1))
    # A client that dropped after seeing `cut` (or everything it had, if less) resumes from there.
    cursor = min(cut, seen[-1].sequence_number)
    partial = [e for e in seen if e.sequence_number <= cursor]
    clock.advance(10)
    rest = await collect(await sdk.responses.retrieve(response_id, stream=True, starting_after=cursor))
    joined = partial + rest
    assert [e.sequence_number for e in joined] == list(range(len(EXPECTED_TYPES)))
    final = await sdk.responses.retrieve(response_id)
    assert delta_text(joined) == final.output_text
    await sdk.close()


async def test_cancelled_stream_ends_after_last_delta(client, clock):
    response_id = await _stream_id(client)
    clock.advance(2.0)
    await client.responses.cancel(response_id)
    clock.advance(10)
    events = await collect(await client.responses.retrieve(response_id, stream=True))
    assert events[-1].type == "response.output_text.delta"
    final = await client.responses.retrieve(response_id)
    assert final.status == "cancelled"
    assert delta_text(events) == final.output_text


@pytest.mark.parametrize(
    ("fault", "last_type"),
    [("fail:server_error", "response.failed"), ("incomplete:content_filter", "response.incomplete")],
)
async def test_failed_and_incomplete_streams_end_with_their_event(client, clock, fault, last_type):
    response_id = await _stream_id(client, **control(fault=fault))
    clock.advance(10)
    events = await collect(await client.responses.retrieve(response_id, stream=True))
    assert events[-1].type == last_type
    assert sum(e.type == "response.output_text.delta" for e in events) == 20


async def test_resume_window_expiry(client, clock):
    response_id = await _stream_id(client)
    clock.advance(300)
    assert len(await collect(await client.responses.retrieve(response_id, stream=True, starting_after=40)))
    clock.advance(1)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.retrieve(response_id, stream=True, starting_after=40)
    assert caught.value.message.endswith(
        "This response can no longer be streamed because it is more than 5 minutes old"
    )
    # Polling still works after the stream window closes.
    assert (await client.responses.retrieve(response_id)).status == "completed"


async def test_background_not_created_with_stream_cannot_be_streamed(client):
    created = await client.responses.create(model="gpt-5-mini", input="x", background=True)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.retrieve(created.id, stream=True)
    assert caught.value.param == "stream"


async def test_foreground_stream_is_complete_at_once_with_manual_clock(client):
    events = await collect(
        await client.responses.create(model="gpt-5-mini", input="x", stream=True, store=False)
    )
    assert response_of(events[0]).status == "in_progress"
    assert "response.queued" not in [e.type for e in events]
    assert events[-1].type == "response.completed"
    assert delta_text(events) == response_of(events[-1]).output_text


def _frames(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in body.decode().split("\n\n"):
        if block:
            event_line, data_line = block.split("\n")
            frames.append((event_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    return frames


async def test_stream_error_frame_is_the_live_apis_shape_and_uses_no_sequence_number(emulator, clock):
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(emulator.handle)) as http:
        body = {
            "model": "gpt-5-mini",
            "input": "x",
            "background": True,
            "stream": True,
            "metadata": control(fault="stream_error:server_error:2:2"),
        }
        first = await http.post("http://emulator.local/v1/responses", json=body)
        frames = _frames(first.content)
        assert [name for name, _ in frames] == ["response.created", "response.queued", "error"]
        assert frames[-1][1] == {
            "type": "error",
            "error": {
                "type": "server_error",
                "code": "server_error",
                "message": "The server had an error while processing your request. Sorry about that!",
                "param": None,
            },
            "sequence_number": 2,
        }
        response_id = frames[0][1]["response"]["id"]
        clock.advance(10)
        url = f"http://emulator.local/v1/responses/{response_id}"
        second = _frames((await http.get(url, params={"stream": "true", "starting_after": "1"})).content)
        # The error took no number: the event after the last one received is still number 2.
        assert [(name, data["sequence_number"]) for name, data in second] == [
            ("response.in_progress", 2),
            ("response.output_item.added", 3),
            ("error", 4),
        ]
        third = _frames((await http.get(url, params={"stream": "true", "starting_after": "3"})).content)
        assert third[-1][0] == "response.completed"
        assert [data["sequence_number"] for _, data in third] == list(range(4, 4 + len(third)))


async def test_stream_error_waits_for_a_stream_that_reaches_its_count(client, clock):
    """Under a manual clock a stream that ends early does not use the fault up."""
    events = await collect(
        await client.responses.create(
            model="gpt-5-mini",
            input="x",
            background=True,
            stream=True,
            metadata=control(fault="stream_error:overloaded:4"),
        )
    )
    assert [e.type for e in events] == ["response.created", "response.queued"]
    clock.advance(10)
    with pytest.raises(openai.APIError) as caught:
        await collect(
            await client.responses.retrieve(response_of(events[0]).id, stream=True, starting_after=1)
        )
    assert caught.value.code == "overloaded"
    rest = await collect(
        await client.responses.retrieve(response_of(events[0]).id, stream=True, starting_after=1)
    )
    assert rest[-1].type == "response.completed"


async def test_stream_error_after_the_last_event_is_not_sent(client):
    events = await collect(
        await client.responses.create(
            model="gpt-5-mini",
            input="x",
            stream=True,
            store=False,
            metadata=control(fault="stream_error:server_error:48"),
        )
    )
    assert events[-1].type == "response.completed"
    assert len(events) == 48
