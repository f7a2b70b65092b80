"""Contender 3: one synchronous model call held open in one activity, as most Temporal AI samples do.

No background mode: the activity waits for the whole generation. Its start-to-close timeout must cover
the job, and a worker that dies mid-call leaves Temporal nothing to resume: the retry, after that
timeout, generates (and bills) the answer again.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.provider_calls import ModelCallInput, ProviderCalls, SyncCallResult


@workflow.defn
class SyncCallWorkflow:
    """Run the call as one activity; its timeout is the call's own."""

    @workflow.run
    async def run(self, input: ModelCallInput) -> SyncCallResult:
        """Call the model and return its answer."""
        result: SyncCallResult = await workflow.execute_activity_method(
            ProviderCalls.call_model, input, start_to_close_timeout=timedelta(seconds=input.timeout_s)
        )
        return result
