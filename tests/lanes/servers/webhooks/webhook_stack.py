"""A webhook stack for tests: an emulator that sends signed webhooks, a receiver, and a worker whose
poll profile expects them. Shared by the receiver's tests and the replay test's webhook path."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
from temporalio.client import Client, WorkflowHandle

from lanes.connect import openai_client
from lanes.dev.emulator_server import EmulatorServer
from lanes.servers.uvicorn_server import bind
from lanes.servers.webhooks.receiver import WebhookReceiver
from lanes.servers.webhooks.server import WebhookServer
from lanes.servers.webhooks.verification import WebhookVerifier
from lanes.settings import Settings
from lanes.worker.serving import serving
from policy import default_policy_path
from responses_emulator import Emulator, EmulatorConfig
from responses_emulator.testing import control
from responses_emulator.webhooks import new_secret
from workflows.model_task import ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

SECRET = new_secret()
PROMPT = "webhook test prompt that must never show in a log or in clear in history"
POLL_PROFILE = (
    "[profiles.openai-background-poll]\n"
    "# No UI follows the stream: the worker polls and fetches the result later.\n"
    "background = true\n"
)
NO_POLL_S = 3600
"""A safety-net interval no test waits for: a job that completes did so by webhook."""


@dataclass
class Stack:
    client: Client
    settings: Settings
    emulator: Emulator
    receiver: WebhookReceiver
    url: str
    provider: openai.AsyncOpenAI

    async def start(
        self, fault: str | None = None, duration: float = 1.0
    ) -> WorkflowHandle[ModelTaskWorkflow, ModelTaskResult]:
        metadata = control(fault=fault, duration=duration)
        task = ModelTaskInput(
            job_type="coding_analysis", data_class="internal", input=PROMPT, metadata=metadata
        )
        return await self.client.start_workflow(
            ModelTaskWorkflow.run, task, id=f"wh-{uuid.uuid4()}", task_queue=self.settings.task_queue
        )

    def response_id(self, workflow_id: str) -> str | None:
        creates = self.emulator.ledger.with_metadata("lanes_workflow_id", workflow_id)
        return creates[0].response_id if creates else None

    def requests(self, workflow_id: str) -> list[str]:
        """Every provider request of the job (its create, the worker's polls, the receiver's read)."""
        return [f"{e.method} {e.path}" for e in self.emulator.ledger.tagged("lanes_workflow_id", workflow_id)]

    async def post(self, body: str, headers: dict[str, str]) -> httpx2.Response:
        async with httpx2.AsyncClient() as http:
            return await http.post(self.url, content=body.encode(), headers=headers)


@asynccontextmanager
async def webhook_stack(
    client: Client, settings: Settings, tmp_path: Path, *, poll_s: float
) -> AsyncIterator[Stack]:
    """An emulator that sends webhooks to a receiver, and a worker whose poll profile expects them."""
    text = default_policy_path().read_text()
    assert POLL_PROFILE in text
    policy = tmp_path / "policy.toml"
    policy.write_text(
        text.replace(POLL_PROFILE, POLL_PROFILE + f"webhooks = true\nwebhook_poll_interval_s = {poll_s}\n")
    )
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = EmulatorConfig(
        duration_s=1.0,
        queued_s=0.2,
        webhook_url=f"http://127.0.0.1:{port}/webhooks/openai",
        webhook_secret=SECRET,
        webhook_retry_s=0.2,
        webhook_max_attempts=3,
    )
    emulator = Emulator(config)
    async with EmulatorServer(emulator) as emulator_server:
        settings = settings.model_copy(
            update={"openai_base_url": emulator_server.base_url, "policy_path": str(policy)}
        )
        async with openai_client(settings) as provider:
            receiver = WebhookReceiver(client, provider, WebhookVerifier(provider, SECRET))
            async with WebhookServer(receiver, sock) as server, serving(client, settings, provider):
                yield Stack(client, settings, emulator, receiver, server.url, provider)
