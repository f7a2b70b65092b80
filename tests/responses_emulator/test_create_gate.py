"""Held create replies: the response exists but its creator never hears of it (the "lost reply" case)."""

import asyncio
import time

import httpx2
import openai
import pytest
from openai.types.responses import Response

from lanes.dev.emulator_server import EmulatorServer
from responses_emulator import Emulator, EmulatorConfig
from responses_emulator.emulator import NO_ANSWER
from responses_emulator.testing import collect, response_of, served_client, wait_until

KEY = {"Idempotency-Key": "lanes-wf-1-1"}


async def _create(sdk: openai.AsyncOpenAI, *, stream: bool = False) -> str:
    """Create a background response with the job's key and return the id its reply names."""
    if stream:
        events = await collect(
            await sdk.responses.create(
                model="gpt-5-mini", input="x", background=True, stream=True, extra_headers=KEY
            )
        )
        return response_of(events[0]).id
    created = await sdk.responses.create(model="gpt-5-mini", input="x", background=True, extra_headers=KEY)
    assert isinstance(created, Response)
    return created.id


@pytest.mark.parametrize("stream", [False, True])
async def test_held_create_exists_before_its_reply(client, emulator: Emulator, stream):
    emulator.hold_create_replies()
    call = asyncio.ensure_future(_create(client, stream=stream))
    await wait_until(lambda: emulator.held_create_replies == 1)
    assert len(emulator.store) == 1
    assert not call.done()
    assert emulator.release_create_replies() == 1
    response_id = await call
    assert emulator.store.get(response_id, emulator.clock.now()) is not None
    assert emulator.held_create_replies == 0
    assert [(e.status_code, e.generated) for e in emulator.ledger.creates()] == [(200, True)]
    # Released for good: the next create answers at once.
    await client.responses.create(model="gpt-5-mini", input="y", background=True)


async def test_concurrent_creates_with_one_key_generate_once(client, emulator: Emulator):
    emulator.hold_create_replies()
    calls = [asyncio.ensure_future(_create(client)) for _ in range(3)]
    await wait_until(lambda: emulator.held_create_replies == 3)
    assert len(emulator.store) == 1
    emulator.release_create_replies()
    ids = await asyncio.gather(*calls)
    assert len(set(ids)) == 1
    assert sorted(e.generated for e in emulator.ledger.creates()) == [False, False, True]
    assert len(emulator.ledger.generations()) == 1


async def test_cancelled_create_is_still_a_generation_and_its_retry_replays_it(client, emulator: Emulator):
    emulator.hold_create_replies()
    lost = asyncio.ensure_future(_create(client))
    await wait_until(lambda: emulator.held_create_replies == 1)
    lost.cancel()
    await asyncio.gather(lost, return_exceptions=True)
    assert emulator.held_create_replies == 0
    [abandoned] = emulator.ledger.creates()
    assert (abandoned.status_code, abandoned.generated) == (NO_ANSWER, True)
    retry = asyncio.ensure_future(_create(client))
    await wait_until(lambda: emulator.held_create_replies == 1)
    emulator.release_create_replies()
    assert await retry == abandoned.response_id
    assert len(emulator.ledger.generations()) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_served_create_whose_client_hung_up_completes_and_is_replayed(server: EmulatorServer, stream):
    emulator = server.emulator
    emulator.hold_create_replies()
    killed = served_client(server)
    lost = asyncio.ensure_future(_create(killed, stream=stream))
    await wait_until(lambda: emulator.held_create_replies == 1)
    lost.cancel()  # the worker dies: its connection closes with the reply still held
    await asyncio.gather(lost, return_exceptions=True)
    await killed.close()
    await wait_until(lambda: server.connections == 0)

    restarted = served_client(server)
    retry = asyncio.ensure_future(_create(restarted, stream=stream))
    await wait_until(lambda: emulator.held_create_replies == 2)
    async with httpx2.AsyncClient() as admin:
        health = (await admin.get(f"{server.admin_url}/health")).json()
        assert health["held_create_replies"] == 2
        released = await admin.post(f"{server.admin_url}/create-replies/release")
        assert released.json() == {"released": 2}
    response_id = await retry
    await wait_until(lambda: len(emulator.ledger.creates()) == 2)
    creates = emulator.ledger.creates()
    assert {e.response_id for e in creates} == {response_id}
    assert sorted((e.generated, e.status_code) for e in creates) == [(False, 200), (True, 200)]
    await wait_until(lambda: emulator.open_streams == 0)
    await restarted.close()


async def test_admin_routes_hold_and_release_create_replies(server: EmulatorServer, served):
    async with httpx2.AsyncClient() as admin:
        held = await admin.post(f"{server.admin_url}/create-replies/hold")
        assert held.json() == {"held_create_replies": 0}
        call = asyncio.ensure_future(served.responses.create(model="gpt-5-mini", input="x", background=True))
        await wait_until(lambda: server.emulator.held_create_replies == 1)
        released = await admin.post(f"{server.admin_url}/create-replies/release")
        assert released.json() == {"released": 1}
    assert (await call).status == "queued"


async def test_shutdown_cuts_a_held_reply_quickly():
    emulator = Emulator(EmulatorConfig(duration_s=0.6, queued_s=0.1))
    server = EmulatorServer(emulator)
    await server.start()
    sdk = served_client(server)
    emulator.hold_create_replies()
    call = asyncio.ensure_future(sdk.responses.create(model="gpt-5-mini", input="x", background=True))
    await wait_until(lambda: emulator.held_create_replies == 1)
    started = time.monotonic()
    await server.stop()
    # The reply is held for ever: a shutdown that waited for it would never end. 30 s leaves a slow
    # machine all the room it needs.
    assert time.monotonic() - started < 30
    with pytest.raises(openai.APIConnectionError):
        await call
    [entry] = emulator.ledger.creates()
    assert (entry.status_code, entry.generated) == (NO_ANSWER, True)
    await sdk.close()
