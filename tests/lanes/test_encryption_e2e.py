"""Encryption through the real stack: the dev server's history, read without the key, holds no prompt or
output, in clear or base64; the CLI pointed at the codec server reads it; keys rotate under a running job."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest_asyncio
from pydantic import SecretStr
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle

from lanes.codec import encrypts
from lanes.connect import connect, openai_client
from lanes.dev.stack import temporal_cli
from lanes.servers.codec_server import CodecServer, codec_app
from lanes.settings import Settings
from lanes.worker.serving import serving
from workflows.model_task import ExecutionOptions, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

TOKEN = secrets.token_urlsafe(32)
"""The codec server refuses tokens under 32 bytes."""


def new_key(key_id: str) -> str:
    return f"{key_id}={base64.b64encode(os.urandom(32)).decode()}"


def base64_forms(text: str) -> list[str]:
    """The base64 of ``text`` at each of the three alignments it can have inside longer data."""
    raw = text.encode()
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = (shift * 4 + 2) // 3 + 1  # drop characters that mix in the padding bytes
        forms.append(encoded[start : len(encoded) - 4])
    return forms


def assert_absent(needle: str, *, json_text: str, raw: bytes) -> None:
    assert needle not in json_text
    assert needle.encode() not in raw
    for form in base64_forms(needle):
        assert form not in json_text, form


def with_keys(settings: Settings, keys: str, blob_dir: Path) -> Settings:
    return settings.model_copy(
        update={"encryption_keys": SecretStr(keys), "blob_dir": blob_dir, "codec_token": SecretStr(TOKEN)}
    )


@pytest_asyncio.fixture
async def plain_client(settings: Settings) -> Client:
    """A client without any key: it reads history as it is stored."""
    return await connect(settings.model_copy(update={"encryption_keys": None, "encryption_key_file": None}))


async def run_job(
    client: Client, settings: Settings, job: ModelTaskInput
) -> tuple[WorkflowHandle[Any, ModelTaskResult], ModelTaskResult]:
    async with openai_client(settings) as provider, serving(client, settings, provider):
        handle = await client.start_workflow(
            ModelTaskWorkflow.run, job, id=f"enc-{uuid.uuid4()}", task_queue=settings.task_queue
        )
        return handle, await handle.result()


async def show(settings: Settings, workflow_id: str, *extra: str) -> str:
    process = await asyncio.create_subprocess_exec(
        temporal_cli(),
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--address",
        settings.temporal_address or "",
        "--output",
        "json",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_history_holds_no_prompt_or_output_and_the_codec_server_reveals_them(
    settings: Settings, plain_client: Client, tmp_path: Path
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    secure = with_keys(settings, new_key("k1"), tmp_path / "blobs")
    client = await connect(secure)
    assert encrypts(client)
    assert not encrypts(plain_client)
    job = ModelTaskInput(
        job_type="public_research",
        input=f"summarise {canary} please",
        instructions=f"be brief about {canary}",
        metadata={"emulator_duration": "0.5"},
    )

    handle, result = await run_job(client, secure, job)

    assert result.status == "completed"
    assert result.output_text
    history = await plain_client.get_workflow_handle(handle.id).fetch_history()
    json_text, raw = history.to_json(), History(events=history.events).SerializeToString()
    for needle in (canary, result.output_text[:40]):
        assert_absent(needle, json_text=json_text, raw=raw)
    assert "binary/encrypted" in json_text or base64.b64encode(b"binary/encrypted").decode() in json_text

    shown = await show(settings, handle.id)
    assert_absent(canary, json_text=shown, raw=shown.encode())

    async with CodecServer(codec_app(secure)) as codec_server:
        decoded = await show(
            settings, handle.id, "--codec-endpoint", codec_server.url, "--codec-auth", f"Bearer {TOKEN}"
        )
    assert canary in decoded or any(form in decoded for form in base64_forms(canary))
    # The encrypted client reads its own history back.
    assert (await handle.result()).output_text == result.output_text


async def test_outputs_above_the_threshold_go_to_the_blob_store_encrypted(
    settings: Settings, plain_client: Client, tmp_path: Path
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    blobs = tmp_path / "blobs"
    secure = with_keys(settings, new_key("k1"), blobs).model_copy(update={"claim_check_threshold": 512})
    client = await connect(secure)
    job = ModelTaskInput(job_type="public_research", input=f"{canary} " + "long prompt " * 100)

    handle, result = await run_job(client, secure, job)

    assert result.status == "completed"
    history = await plain_client.get_workflow_handle(handle.id).fetch_history()
    assert "binary/claim-check" in json.dumps(
        [
            base64.b64decode(v).decode(errors="replace")
            for e in json.loads(history.to_json())["events"]
            for v in _metadata_values(e)
        ]
    )
    stored = list(blobs.iterdir())
    assert stored
    for blob in stored:
        assert canary.encode() not in blob.read_bytes()


def _metadata_values(node: Any) -> list[str]:
    """Every base64 metadata value in a JSON history event."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "metadata" and isinstance(value, dict):
                found += [v for v in value.values() if isinstance(v, str)]
            else:
                found += _metadata_values(value)
    elif isinstance(node, list):
        for item in node:
            found += _metadata_values(item)
    return found


async def test_a_running_job_survives_a_key_rotation(
    settings: Settings, plain_client: Client, tmp_path: Path
) -> None:
    blob_dir = tmp_path / "blobs"
    old, new = new_key("old"), new_key("new")
    before = with_keys(settings, old, blob_dir)
    after = with_keys(settings, f"{new},{old}", blob_dir)
    job = ModelTaskInput(
        job_type="coding_analysis",
        data_class="internal",
        input="rotation prompt",
        metadata={"emulator_duration": "4"},
        options=ExecutionOptions(heartbeat_timeout_s=2),
    )
    first = await connect(before)
    async with openai_client(before) as provider, serving(first, before, provider):
        handle = await first.start_workflow(
            ModelTaskWorkflow.run, job, id=f"enc-rot-{uuid.uuid4()}", task_queue=before.task_queue
        )
        await _until_an_activity_started(plain_client, handle.id)

    second = await connect(after)
    async with openai_client(after) as provider, serving(second, after, provider):
        result = await second.get_workflow_handle(handle.id, result_type=ModelTaskResult).result()

    assert result.status == "completed"
    history = await plain_client.get_workflow_handle(handle.id).fetch_history()
    key_ids = {
        base64.b64decode(v["encryption-key-id"]).decode()
        for v in _metadata_maps(json.loads(history.to_json()))
        if "encryption-key-id" in v
    }
    assert key_ids == {"old", "new"}


def _metadata_maps(node: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "metadata" and isinstance(value, dict):
                found.append(value)
            else:
                found += _metadata_maps(value)
    elif isinstance(node, list):
        for item in node:
            found += _metadata_maps(item)
    return found


async def _until_an_activity_started(client: Client, workflow_id: str) -> History:
    for _ in range(200):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        if sum(e.HasField("activity_task_started_event_attributes") for e in history.events) >= 2:
            return History(events=history.events)
        await asyncio.sleep(0.05)
    raise AssertionError("no activity started")
