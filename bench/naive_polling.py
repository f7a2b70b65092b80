"""Contender 2: the OpenAI guide's polling loop moved into a Temporal workflow.

The guide creates a background response, then ``sleep(2)`` and ``retrieve`` until the status leaves
``queued``/``in_progress``. Here the sleep is a durable timer and each retrieve an activity, which is
how a Temporal user would port it: every poll costs a provider request and a dozen history events.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.provider_calls import TERMINAL_STATUSES, ModelCallInput, ProviderCalls, ProviderSnapshot

POLL_INTERVAL_S = 2.0
"""The guide's interval."""

CALL_TIMEOUT = timedelta(seconds=30)
"""Start-to-close of the create and of each retrieve, as the AI samples set it."""


class NaivePollingInput(BaseModel):
    """A job for the naive loop."""

    model_config = ConfigDict(frozen=True)

    call: ModelCallInput
    poll_interval_s: float = Field(default=POLL_INTERVAL_S, gt=0)


class NaivePollingResult(BaseModel):
    """How the loop ended and how many polls it took."""

    model_config = ConfigDict(frozen=True)

    response_id: str
    status: str
    polls: int


@workflow.defn
class NaivePollingWorkflow:
    """Create, then sleep and retrieve until the response is terminal."""

    @workflow.run
    async def run(self, input: NaivePollingInput) -> NaivePollingResult:
        """Poll every ``poll_interval_s`` until a terminal status."""
        snapshot: ProviderSnapshot = await workflow.execute_activity_method(
            ProviderCalls.create_background, input.call, start_to_close_timeout=CALL_TIMEOUT
        )
        polls = 0
        while snapshot.status not in TERMINAL_STATUSES:
            await workflow.sleep(input.poll_interval_s)
            snapshot = await workflow.execute_activity_method(
                ProviderCalls.retrieve, snapshot.response_id, start_to_close_timeout=CALL_TIMEOUT
            )
            polls += 1
        return NaivePollingResult(response_id=snapshot.response_id, status=snapshot.status, polls=polls)
