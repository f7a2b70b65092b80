"""The ledger records routing facts and never any prompt, instructions or output text."""

import json
import subprocess
import sys
import time

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responses_emulator import Emulator, EmulatorConfig, Ledger, LedgerEntry, ManualClock
from responses_emulator.testing import control, in_process_client

MARKER = "Zq7"


async def test_ledger_records_shapes(client, emulator, clock):
    bg = await client.responses.create(
        model="gpt-4.1",
        input="x",
        background=True,
        store=True,
        metadata={"job": "j1", **control(duration=1)},
        extra_headers={"Idempotency-Key": "k1"},
    )
    await client.responses.create(model="gpt-4.1-mini", input="y", store=False)
    clock.advance(5)
    await client.responses.retrieve(bg.id)
    await client.responses.cancel(bg.id)
    entries = emulator.ledger.entries()
    assert [(e.method, e.status_code) for e in entries] == [
        ("POST", 200),
        ("POST", 200),
        ("GET", 200),
        ("POST", 200),
    ]
    first = entries[0]
    assert first.background is True
    assert first.store is True
    assert first.stream is None
    assert first.metadata["job"] == "j1"
    assert first.idempotency_key == "k1"
    assert first.model == "gpt-4.1"
    assert first.generated is True
    assert first.response_id == bg.id
    assert first.at == ManualClock().now()
    assert entries[1].store is False
    assert emulator.ledger.stored() == [first]
    assert len(emulator.ledger.creates()) == 2
    assert [e.path for e in emulator.ledger.for_response(bg.id)][-1].endswith("/cancel")
    assert emulator.ledger.with_metadata("job", "j1") == [first]
    emulator.ledger.clear()
    assert emulator.ledger.entries() == []


def test_ledger_entry_has_no_text_fields():
    assert not {"input", "instructions", "output", "text", "prompt"} & set(LedgerEntry.model_fields)
    assert isinstance(Ledger().entries(), list)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.text(min_size=6, max_size=60), instructions=st.text(min_size=6, max_size=40))
async def test_no_prompt_or_output_text_in_ledger_json(prompt: str, instructions: str):
    clock = ManualClock()
    emulator = Emulator(EmulatorConfig(), clock=clock)
    sdk = in_process_client(emulator)
    secret, secret_instructions = MARKER + prompt, MARKER + instructions
    created = await sdk.responses.create(
        model="gpt-5-mini",
        input=secret,
        instructions=secret_instructions,
        background=True,
        metadata={"job": "1"},
    )
    foreground = await sdk.responses.create(model="gpt-5-mini", input=secret, store=False)
    clock.advance(10)
    final = await sdk.responses.retrieve(created.id)
    await sdk.close()
    dumped = json.dumps([e.model_dump(mode="json") for e in emulator.ledger.entries()], ensure_ascii=False)
    escaped = json.dumps([e.model_dump(mode="json") for e in emulator.ledger.entries()])
    for text in (secret, secret_instructions, final.output_text, foreground.output_text):
        assert text not in dumped
        assert json.dumps(text)[1:-1] not in escaped
    assert MARKER not in dumped


def test_python_dash_m_serves_and_logs_its_address():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lanes",
            "emulator",
            "--port",
            "0",
            "--duration",
            "0.2",
            "--clock",
            "shifted",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().strip()
        assert line.startswith("responses emulator listening on http://127.0.0.1:")
        assert line.endswith("/v1")
        base = line.rsplit(" ", 1)[1].removesuffix("/v1")
        for _ in range(100):
            try:
                health = httpx2.get(f"{base}/_emulator/health", timeout=5)
                break
            except httpx2.ConnectError:
                time.sleep(0.05)
        assert health.json()["status"] == "ok"
        advanced = httpx2.post(f"{base}/_emulator/clock/advance", params={"seconds": 60}, timeout=5)
        assert advanced.status_code == 200
        assert advanced.json()["now"] >= time.time() + 59
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


async def test_tagged_returns_a_jobs_creates_and_every_request_on_their_responses(client, emulator):
    mine = await client.responses.create(
        model="gpt-5-mini", input="a", background=True, store=True, metadata={"job": "1"}
    )
    other = await client.responses.create(
        model="gpt-5-mini", input="b", background=True, store=True, metadata={"job": "2"}
    )
    await client.responses.retrieve(mine.id)
    await client.responses.retrieve(other.id)
    await client.responses.cancel(mine.id)
    tagged = emulator.ledger.tagged("job", "1")
    assert [(e.method, e.response_id) for e in tagged] == [
        ("POST", mine.id),
        ("GET", mine.id),
        ("POST", mine.id),
    ]
    assert tagged[-1].path.endswith("/cancel")


async def test_the_ledger_names_fields_that_need_stored_state_never_their_values(client, emulator):
    first = await client.responses.create(model="gpt-5-mini", input="x", store=True)
    await client.responses.create(model="gpt-5-mini", input="y", previous_response_id=first.id)
    entries = emulator.ledger.creates()
    assert [e.stateful for e in entries] == [[], ["previous_response_id"]]
    assert first.id not in str(entries[1].stateful)
