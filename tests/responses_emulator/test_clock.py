"""A real-time clock tests can fast-forward: quiet streams stay open yet take seconds, not minutes."""

import asyncio
import time

import httpx2
import pytest
from openai.types.responses import ResponseStreamEvent

from lanes.dev.emulator_server import EmulatorServer
from responses_emulator import (
    AdvanceableClock,
    Emulator,
    EmulatorConfig,
    ManualClock,
    ShiftedClock,
    SystemClock,
)
from responses_emulator.testing import control, delta_text, response_of, served_client, wait_until


def test_shifted_clock_is_wall_time_plus_an_offset_that_only_grows():
    clock = ShiftedClock()
    assert clock.realtime
    assert isinstance(clock, AdvanceableClock)
    assert isinstance(ManualClock(), AdvanceableClock)
    assert not isinstance(SystemClock(), AdvanceableClock)
    before = time.time()
    now = clock.advance(3600)
    assert clock.offset == 3600
    assert before + 3600 <= now <= time.time() + 3600
    with pytest.raises(ValueError, match="back in time"):
        clock.advance(-1)


def test_the_system_clock_cannot_be_advanced():
    with pytest.raises(TypeError, match="SystemClock cannot be advanced"):
        Emulator(clock=SystemClock()).advance(1)


async def test_quiet_stream_is_fast_forwarded_over_one_open_connection():
    """A 20-minute stream-mode job whose events come one a minute, delivered in seconds."""
    clock = ShiftedClock()
    # Streams re-check the clock at most every max_stream_wait_s; at 60 s, only the wake-up that
    # Emulator.advance sends can make this test quick.
    emulator = Emulator(EmulatorConfig(queued_s=0.5, max_stream_wait_s=60), clock=clock)
    async with EmulatorServer(emulator) as server:
        sdk = served_client(server)
        stream = await sdk.responses.create(
            model="gpt-5-mini",
            input="quiet",
            background=True,
            stream=True,
            metadata=control(duration=1200, tokens=20),
        )
        started, started_real = clock.now(), time.monotonic()
        events: list[ResponseStreamEvent] = []
        deltas_per_advance: list[int] = []
        async for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta":
                deltas_per_advance[-1] += 1
            # Advance when the stream has delivered everything due: after `queued` (in_progress is due
            # 0.5 s later), after `content_part.added` and after each delta but the last.
            if event.type in ("response.queued", "response.content_part.added") or (
                event.type == "response.output_text.delta" and sum(deltas_per_advance) < 20
            ):
                assert emulator.open_streams == 1  # the stream waits, open, for what comes next
                emulator.advance(1 if event.type == "response.queued" else 60)
                deltas_per_advance.append(0)
        elapsed, elapsed_real = clock.now() - started, time.monotonic() - started_real
        await sdk.close()
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert delta_text(events) == response_of(events[-1]).output_text
    # One delta a minute: every advance of 60 s made exactly one more delta due.
    assert deltas_per_advance == [0] + [1] * 20
    assert elapsed >= 1200
    assert elapsed_real < 60  # a loose bound: the point is that it did not take 20 minutes
    assert [(e.method, e.status_code) for e in emulator.ledger.entries()] == [("POST", 200)]


async def test_admin_advance_moves_a_shifted_clock_and_wakes_streams():
    emulator = Emulator(EmulatorConfig(queued_s=0.5), clock=ShiftedClock())
    async with EmulatorServer(emulator) as server:
        sdk = served_client(server)
        stream = await sdk.responses.create(
            model="gpt-5-mini",
            input="x",
            background=True,
            stream=True,
            metadata=control(duration=3600, tokens=2),
        )
        types: list[str] = []
        async with httpx2.AsyncClient() as admin:
            async for event in stream:
                types.append(event.type)
                if event.type in ("response.queued", "response.content_part.added"):
                    advanced = await admin.post(f"{server.admin_url}/clock/advance", params={"seconds": 3600})
                    assert advanced.status_code == 200
                    assert advanced.json()["now"] >= emulator.clock.now() - 1
            refused = await admin.post(f"{server.admin_url}/clock/advance", params={"seconds": -1})
            assert refused.status_code == 400
        await sdk.close()
    assert types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == 2


async def test_foreground_call_answers_when_its_end_is_advanced_to():
    emulator = Emulator(clock=ShiftedClock())
    async with EmulatorServer(emulator) as server:
        sdk = served_client(server)
        call = asyncio.ensure_future(
            sdk.responses.create(model="gpt-5-mini", input="x", metadata=control(duration=600))
        )
        await wait_until(lambda: len(emulator.store) == 1)
        assert not call.done()
        emulator.advance(600)
        response = await call
        await sdk.close()
    assert response.status == "completed"
