"""Issue 20, the webhook receiver's items: each through a real receiver on a free loopback port.

The receiver reads responses from the session's emulator (the provider) and signals through the session's
Temporal dev server; deliveries are signed here with the emulator's own key rule
(:func:`responses_emulator.webhooks.secret_key`), over raw bytes, so that bodies which are not UTF-8 can be
signed too. Tests wait on observed state (the receiver's counts, the emulator's ledger, a subprocess's
log lines), never on a guessed duration.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
import pytest
from pydantic import SecretStr
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from lanes.connect import openai_client
from lanes.servers.uvicorn_server import bind
from lanes.servers.webhooks.receiver import WebhookReceiver
from lanes.servers.webhooks.server import WebhookServer, running_receiver
from lanes.servers.webhooks.verification import WebhookVerifier
from lanes.settings import Settings
from responses_emulator import Emulator
from responses_emulator.testing import TERMINAL_STATUSES, control, wait_until
from responses_emulator.webhooks import event_body, new_secret, secret_key
from tests.cli_runner import LANES, ROOT, lanes
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow

SECRET = new_secret()


def sign(
    body: bytes, webhook_id: str, *, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, whatever its bytes."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret_key(secret), f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def event(response_id: str, event_type: str = "response.completed") -> bytes:
    return event_body(f"evt_{uuid.uuid4().hex}", event_type, response_id, time.time()).encode()


@dataclass
class Receiving:
    receiver: WebhookReceiver
    url: str
    provider: openai.AsyncOpenAI

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx2.Response:
        async with httpx2.AsyncClient() as http:
            return await http.post(self.url, content=body, headers=headers)


@asynccontextmanager
async def receiving(client: Client, settings: Settings) -> AsyncIterator[Receiving]:
    async with openai_client(settings) as provider:
        receiver = WebhookReceiver(client, provider, WebhookVerifier(provider, SECRET))
        async with WebhookServer(receiver, bind("127.0.0.1", 0)) as server:
            yield Receiving(receiver, server.url, provider)


async def raw_exchange(url: str, request: bytes, *, close_after_send: bool = False) -> bytes:
    """Send ``request`` as is on a new connection; return what the server answers until it closes."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        if close_after_send:
            return b""
        async with asyncio.timeout(30):
            return await reader.read(-1)
    except ConnectionResetError:
        # The server may close once it has answered, before reading all of what was sent.
        return await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()


def head(url: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {urlsplit(url).path} HTTP/1.1",
        "host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_of(raw: bytes) -> tuple[int, Any]:
    """Status and JSON body of one HTTP/1.1 answer, framed by content-length or chunked."""
    status_line, _, rest = raw.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        chunks = []
        while True:
            size, _, body = body.partition(b"\r\n")
            if not int(size, 16):
                break
            chunks.append(body[: int(size, 16)])
            body = body[int(size, 16) + 2 :]
        body = b"".join(chunks)
    return int(status_line.split()[1]), json.loads(body)


async def terminal_response(emulator: Emulator, provider: openai.AsyncOpenAI, **metadata: str) -> str:
    """A background response at the emulator, waited on until it reads terminal; returns its id."""
    created = await provider.responses.create(
        model="gpt-5-mini",
        input="x",
        background=True,
        store=True,
        metadata={**control(duration=0.05), **metadata},
    )

    def ended() -> bool:
        record = emulator.store.get(created.id, emulator.clock.now())
        return record is not None and record.status(emulator.clock.now()) in TERMINAL_STATUSES

    await wait_until(ended)
    return created.id


# Item: "a body cut off by a disconnect is processed as if complete" (and the body bound).


async def test_a_body_cut_off_by_a_disconnect_is_never_processed(
    client: Client, settings: Settings, emulator: Emulator
) -> None:
    async with receiving(client, settings) as hook:
        response_id = f"resp_cut{uuid.uuid4().hex}"
        body = event(response_id)
        # Signed over what is sent, but announced longer: a client (or a cut connection) stops early.
        headers = {**sign(body, "wh_cut"), "content-length": str(len(body) + 64)}
        await raw_exchange(hook.url, head(hook.url, headers) + body, close_after_send=True)
        stats = hook.receiver.stats
        await wait_until(lambda: stats["disconnected"] + stats["unknown_response"] > 0)
        assert stats["disconnected"] == 1
        assert stats["unknown_response"] == 0
        assert emulator.ledger.for_response(response_id) == []  # never read at the provider


@pytest.mark.long(10)
async def test_a_body_over_the_bound_gets_413_even_when_content_length_lies(
    client: Client, settings: Settings
) -> None:
    async with receiving(client, settings) as hook:
        body = event("resp_big") + b" " * 100_000
        # Chunked: no content-length to refuse it by; the bound holds while streaming.
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(c), c) for c in (body[i : i + 16384] for i in range(0, len(body), 16384))
        )
        chunked = (
            head(hook.url, {**sign(body, "wh_big"), "transfer-encoding": "chunked"}) + chunks + b"0\r\n\r\n"
        )
        assert answer_of(await raw_exchange(hook.url, chunked)) == (413, {"result": "too_large"})
        # A content-length far over the bound is refused before any byte of the body is awaited.
        announced = head(hook.url, {**sign(b"", "wh_huge"), "content-length": str(10**9)})
        assert answer_of(await raw_exchange(hook.url, announced)) == (413, {"result": "too_large"})
        assert hook.receiver.stats["too_large"] == 2


# Item: "weak webhook secrets start the receiver: whsec_ (empty key), whsec_YQ==, a".


@pytest.mark.parametrize(
    "secret", ["whsec_", "whsec_YQ==", "a", "whsec_" + base64.b64encode(b"k" * 23).decode()]
)
async def test_weak_webhook_secrets_are_refused(settings: Settings, secret: str) -> None:
    weak = settings.model_copy(update={"openai_webhook_secret": SecretStr(secret)})
    with pytest.raises(ValueError, match="OPENAI_WEBHOOK_SECRET") as info:
        async with running_receiver(weak, port=0):
            pass
    assert "24" in str(info.value)
    assert "--new-secret" in str(info.value)


async def test_a_generated_secret_starts_the_receiver_and_a_weak_one_stops_the_cli(
    settings: Settings,
) -> None:
    strong = settings.model_copy(update={"openai_webhook_secret": SecretStr(new_secret())})
    async with running_receiver(strong, port=0) as server, httpx2.AsyncClient() as http:
        assert (await http.get(server.url.replace("/webhooks/openai", "/healthz"))).status_code == 200
    code, _, err = await lanes("webhooks", "--port", "0", env={"OPENAI_WEBHOOK_SECRET": "whsec_YQ=="})
    assert code == 2, err
    assert "OPENAI_WEBHOOK_SECRET" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


# Item: "the receiver signals any workflow that a response's lanes_workflow_id metadata names".


@workflow.defn
class ForeignWorkflow:
    """A workflow of another application, with a signal of the same name as lanes'."""

    def __init__(self) -> None:
        self.signals = 0
        self.stopped = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.stopped)

    @workflow.signal
    def stop(self) -> None:
        self.stopped = True

    @workflow.signal
    def provider_finished(self, payload: dict[str, Any]) -> None:
        self.signals += 1

    @workflow.query
    def received(self) -> int:
        return self.signals


async def test_only_a_running_lanes_workflow_is_signalled(
    client: Client, settings: Settings, emulator: Emulator
) -> None:
    foreign_queue = f"foreign-{uuid.uuid4()}"
    async with (
        receiving(client, settings) as hook,
        Worker(
            client,
            task_queue=foreign_queue,
            workflows=[ForeignWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
    ):
        foreign = await client.start_workflow(
            ForeignWorkflow.run, id=f"foreign-{uuid.uuid4()}", task_queue=foreign_queue
        )
        assert await foreign.query(ForeignWorkflow.received) == 0  # its worker runs it
        # A lanes job nobody works on: running, of lanes' type, so it may be signalled.
        job = await client.start_workflow(
            ModelTaskWorkflow.run,
            ModelTaskInput(job_type="coding_analysis", data_class="internal", input="webhook type test"),
            id=f"job-{uuid.uuid4()}",
            task_queue=f"idle-{uuid.uuid4()}",
            execution_timeout=timedelta(minutes=5),
        )
        try:
            for handle, expected in ((foreign, "not_a_lanes_workflow"), (job, "signalled")):
                response_id = await terminal_response(emulator, hook.provider, lanes_workflow_id=handle.id)
                body = event(response_id)
                answer = await hook.post(body, sign(body, f"wh_{uuid.uuid4().hex}"))
                assert (answer.status_code, answer.json()) == (200, {"result": expected})

            signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            assert not [e for e in (await foreign.fetch_history()).events if e.event_type == signalled]
            assert await foreign.query(ForeignWorkflow.received) == 0
            assert [e for e in (await job.fetch_history()).events if e.event_type == signalled]
        finally:
            # Ended by its own code, not terminated: a workflow left mid-run in the worker's cache is
            # closed at garbage collection, where OpenTelemetry complains.
            await foreign.signal(ForeignWorkflow.stop)
            await foreign.result()
            await job.terminate("test over")


# Item: "a webhook body that is not UTF-8 gets a 500 and a traceback before any authentication".


async def test_a_body_that_is_not_utf8_gets_a_400_after_authentication(
    client: Client, settings: Settings, emulator: Emulator
) -> None:
    async with receiving(client, settings) as hook:
        body = b'{"type": "response.completed", "data": {"id": "resp_\xff\xfe"}}'
        signed = await hook.post(body, sign(body, "wh_latin"))
        assert (signed.status_code, signed.json()) == (400, {"result": "bad_payload"})
        # Not signed with the secret: refused as a forgery, before the body is decoded or parsed.
        forged = await hook.post(body, sign(body, "wh_forged", secret=new_secret()))
        assert (forged.status_code, forged.json()) == (401, {"result": "bad_signature"})
        for answer in (signed, forged):
            assert answer.headers["content-type"] == "application/json"
            assert "Traceback" not in answer.text
        assert emulator.ledger.for_response("resp_\xff\xfe") == []


# Item: "lanes webhooks never configures logging: the documented INFO line per delivery never appears, a
# 413 is neither logged nor counted".


async def test_lanes_webhooks_logs_one_line_per_answer_and_no_text_of_a_job(
    settings: Settings, emulator: Emulator
) -> None:
    assert settings.encryption_keys is not None
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": str(settings.temporal_address),
        "OPENAI_BASE_URL": str(settings.openai_base_url),
        "OPENAI_API_KEY": "emulator",
        "LANES_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "OPENAI_WEBHOOK_SECRET": SECRET,
    }
    env.pop("LANES_LOG_LEVEL", None)
    process = await asyncio.create_subprocess_exec(
        *LANES, "webhooks", "--port", "0", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    lines: list[str] = []

    async def read() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            lines.append(line.decode(errors="replace").rstrip("\n"))

    reading = asyncio.create_task(read())
    try:
        await wait_until(
            lambda: any("listening on" in line for line in lines) or process.returncode is not None
        )
        urls = re.findall(r"listening on (\S+)", "\n".join(lines))
        assert len(urls) == 1, lines
        url = urls[0]
        canary = f"CANARY-{uuid.uuid4().hex}"
        async with openai_client(settings) as provider:
            created = await provider.responses.create(
                model="gpt-5-mini",
                input=canary,
                instructions=canary,
                background=True,
                store=True,
                metadata={**control(duration=0.05), "lanes_workflow_id": f"gone-{uuid.uuid4()}"},
            )
            await wait_until(
                lambda: (
                    (record := emulator.store.get(created.id, emulator.clock.now())) is not None
                    and record.status(emulator.clock.now()) in TERMINAL_STATUSES
                )
            )
            output = (await provider.responses.retrieve(created.id)).output_text
        job_event = event(created.id)
        unknown = event("resp_unknown")
        # Signed, so believed; its event type is still the sender's text, with a line break and an escape.
        odd = event("resp_odd", event_type="odd\n\x1b]0;PWNED\x07 -> 200 signalled")
        async with httpx2.AsyncClient() as http:
            for body, webhook_id in ((job_event, "wh_job"), (unknown, "wh_unknown"), (odd, "wh_odd")):
                assert (await http.post(url, content=body, headers=sign(body, webhook_id))).status_code == 200
        # A header may carry bytes 0x80-0xff (h11 refuses C0 controls): C1 controls (CSI, NEL), spaces
        # and a length no id has. Sent by hand: httpx refuses such values.
        hostile_id = b"wh_\x9b2J\x85FORGED -> 200 signalled " + b"x" * 500
        forged = (
            f"POST {urlsplit(url).path} HTTP/1.1\r\nhost: 127.0.0.1\r\n".encode()
            + f"content-length: {len(unknown)}\r\n".encode()
            + b"".join(
                f"{k}: {v}\r\n".encode() for k, v in sign(unknown, "wh_x").items() if k != "webhook-id"
            )
            + b"webhook-id: "
            + hostile_id
            + b"\r\nconnection: close\r\n\r\n"
            + unknown
        )
        assert answer_of(await raw_exchange(url, forged)) == (401, {"result": "bad_signature"})
        await wait_until(lambda: sum(" -> " in line for line in lines) >= 4)
        too_large = head(url, {**sign(b"", "wh_large"), "content-length": str(10**9), "connection": "close"})
        assert answer_of(await raw_exchange(url, too_large)) == (413, {"result": "too_large"})
        await wait_until(lambda: sum(" -> " in line for line in lines) >= 5)

        answers = [line for line in lines if " -> " in line]
        assert len(answers) == 5, answers
        assert any(
            "INFO" in line and "wh_job" in line and "-> 200 workflow_not_running" in line for line in answers
        )
        assert any(
            "INFO" in line and "wh_unknown" in line and "-> 200 unknown_response" in line for line in answers
        )
        assert any("WARNING" in line and "-> 413 too_large" in line for line in answers)
        [hostile_line] = [line for line in answers if "401 bad_signature" in line]
        assert "\\x9b2J\\x85FORGED\\x20->" in hostile_line  # escaped: no terminal acts on it, no field forged
        assert "x" * 200 not in hostile_line  # cut to a bounded length
        [odd_line] = [line for line in answers if "wh_odd" in line]
        assert "-> 200 ignored_event_type" in odd_line
        assert "event_type=odd\\n\\x1b]0;PWNED\\x07\\x20->" in odd_line
        assert not [line for line in lines if "PWNED" in line and line is not odd_line]  # no line was split
        for line in answers:
            assert line.count(" -> ") == 1, line
            assert not {"\x1b", "\x9b", "\x85"} & set(line), line
        text = "\n".join(lines)
        assert canary not in text
        assert output
        assert output not in text
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await reading
