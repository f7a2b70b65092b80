"""lanes' job metrics, recorded by a worker interceptor from what workflows and activities return.

An interceptor (in ``LanesPlugin``, which ``lanes/connect.py`` registers, so every worker has it) reads
results that already exist, so no workflow or activity code records anything and the metrics cannot
drift from the results:

======================================  ==============================  ===============================
instrument                              labels                          recorded when
======================================  ==============================  ===============================
``lanes.jobs`` (counter)                lane, outcome, job_type         a job ends (its search attributes)
``lanes.decisions`` (counter)           rule, lane, job_type            ``evaluate_policy`` returns
``lanes.tokens`` (counter)              lane, job_type, token_type      a model call reports usage
``lanes.completion.lag`` (histogram, s) lane, mode                      a background response is seen
                                                                        terminal: now minus the
                                                                        provider's ``completed_at``
======================================  ==============================  ===============================

Provider requests are counted by the OpenAI client's transport (``lanes/provider_metrics.py``).
Instruments come from the global meter provider (``lanes/worker/metrics.py``); without one they are no-ops.
A job's end is recorded in workflow code, which the replay-safe meter provider skips during replay.
Labels are policy vocabulary and modes only, never text; the provider's ``completed_at`` has a
resolution of one second, so the lag is too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from opentelemetry import metrics
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.decision_tags import DecisionTags
from activities.outcome import ProviderOutcome
from policy import PolicyDecision
from workflows import search_attributes

LAG_BUCKETS_S = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Completion-lag buckets: the provider's clock has one-second steps, a poll's cap is 30 s by default."""

_METER = metrics.get_meter("lanes")
JOBS = _METER.create_counter("lanes.jobs", unit="{job}", description="Jobs ended, by lane and outcome")
DECISIONS = _METER.create_counter(
    "lanes.decisions", unit="{decision}", description="Policy decisions by rule"
)
TOKENS = _METER.create_counter("lanes.tokens", unit="{token}", description="Tokens the provider reported")
COMPLETION_LAG = _METER.create_histogram(
    "lanes.completion.lag",
    unit="s",
    description="From the provider's completion time to when lanes saw the response terminal",
    explicit_bucket_boundaries_advisory=LAG_BUCKETS_S,
)


def record_job_end(attributes: Any) -> None:
    """Count a job that ended, from its search attributes (``LanesOutcome`` is set only at its end)."""
    outcome = attributes.get(search_attributes.OUTCOME)
    if outcome is None:
        return  # still running (an evicted workflow) or a history from before the outcome existed
    JOBS.add(
        1,
        {
            "lane": attributes.get(search_attributes.LANE) or "none",
            "outcome": outcome,
            "job_type": attributes.get(search_attributes.JOB_TYPE) or "none",
        },
    )


def record_activity_result(activity_type: str, arg: object, result: object, *, now: float) -> None:
    """Record what an activity's result says: a decision, token usage, completion lag.

    Args:
        activity_type: The activity's name.
        arg: Its input (model calls carry the decision's tags).
        result: What it returned.
        now: When lanes saw the result (Unix seconds).
    """
    if isinstance(result, PolicyDecision):
        DECISIONS.add(1, {"rule": result.rule, "lane": str(result.lane), "job_type": result.job_type})
        return
    tags: DecisionTags | None = getattr(arg, "tags", None)
    if not isinstance(tags, DecisionTags):
        return
    outcome = result if isinstance(result, ProviderOutcome) else getattr(result, "outcome", None)
    if not isinstance(outcome, ProviderOutcome):
        return
    if outcome.usage is not None:
        for token_type, count in (
            ("input", outcome.usage.input_tokens),
            ("output", outcome.usage.output_tokens),
        ):
            TOKENS.add(count, {"lane": tags.lane, "job_type": tags.job_type, "token_type": token_type})
    if tags.lane == "background" and outcome is result and outcome.completed_at is not None:
        mode = str(getattr(result, "mode", activity_type))
        COMPLETION_LAG.record(max(0.0, now - outcome.completed_at), {"lane": tags.lane, "mode": mode})


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        arg = input.args[0] if input.args else None
        record_activity_result(activity.info().activity_type, arg, result, now=time.time())
        return result


class _WorkflowMetrics(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # Completed, failed, denied or cancelled (CancelledError): the workflow upserted LanesOutcome just
        # before. Not in a ``finally``: an evicted workflow's coroutine is closed (GeneratorExit) outside
        # the workflow's event loop, where its info cannot be read, and the job has not ended anyway.
        try:
            result = await super().execute_workflow(input)
        except (Exception, asyncio.CancelledError):
            record_job_end(workflow.info().typed_search_attributes)
            raise
        record_job_end(workflow.info().typed_search_attributes)
        return result


class JobMetricsInterceptor(Interceptor):
    """Worker interceptor recording lanes' job metrics from workflow and activity results."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """See base class."""
        return _ActivityMetrics(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        """See base class."""
        return _WorkflowMetrics
