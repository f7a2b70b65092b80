"""The provider calls of the two contenders that are not lanes, written as the samples write them.

The guide's polling loop creates a background response and retrieves it; the usual Temporal AI sample
makes one synchronous call and holds the activity open until the answer arrives. Neither sends an
``Idempotency-Key`` nor heartbeats: the point of the benchmark is what that costs, measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

TERMINAL_STATUSES = frozenset({"completed", "failed", "incomplete", "cancelled"})
"""Statuses a response never leaves; the guide's loop polls until it reads one."""


class ProviderSnapshot(BaseModel):
    """What a poll learns: the response's id and its status."""

    model_config = ConfigDict(frozen=True)

    response_id: str
    status: str


class ModelCallInput(BaseModel):
    """One model call of a contender job.

    ``metadata`` carries the benchmark's job tag (``bench_job``) and the emulator's controls
    (``emulator_duration``), which is how every contender's requests are found in the ledger.
    """

    model_config = ConfigDict(frozen=True)

    model: str = "gpt-5-mini"
    input: str = Field(min_length=1)
    metadata: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0)
    """How long the synchronous call may take: a sample must give a long job a long enough timeout (the
    SDK's default read timeout of 600 s would fail a 20-minute call)."""


class SyncCallResult(BaseModel):
    """The synchronous call's answer."""

    model_config = ConfigDict(frozen=True)

    response_id: str
    status: str
    output_text: str


class ProviderCalls:
    """Activities owning the contenders' OpenAI client (``max_retries=0``: Temporal retries, as in lanes).

    Args:
        provider: The client; the caller closes it.
    """

    def __init__(self, provider: openai.AsyncOpenAI) -> None:
        self._provider = provider

    @activity.defn(name="bench.create_background")
    async def create_background(self, input: ModelCallInput) -> ProviderSnapshot:
        """``responses.create(background=True)``, as the guide's first line does."""
        response = await self._provider.responses.create(
            model=input.model, input=input.input, background=True, metadata=input.metadata
        )
        return ProviderSnapshot(response_id=response.id, status=response.status or "queued")

    @activity.defn(name="bench.retrieve")
    async def retrieve(self, response_id: str) -> ProviderSnapshot:
        """One poll: ``responses.retrieve(id)``."""
        response = await self._provider.responses.retrieve(response_id)
        return ProviderSnapshot(response_id=response.id, status=response.status or "queued")

    @activity.defn(name="bench.call_model")
    async def call_model(self, input: ModelCallInput) -> SyncCallResult:
        """One synchronous ``responses.create`` that returns when the model has finished."""
        response = await self._provider.responses.create(
            model=input.model, input=input.input, metadata=input.metadata, timeout=input.timeout_s
        )
        return SyncCallResult(
            response_id=response.id, status=response.status or "completed", output_text=response.output_text
        )

    def definitions(self) -> list[Callable[..., Any]]:
        """The activities to register on a worker."""
        return [self.create_background, self.retrieve, self.call_model]
