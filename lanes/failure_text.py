"""A job's failures leave its workflow with the provider's words in their message, not in their string form.

A provider's error message and a failed response's ``error.message`` are text of the job: they can quote
the prompt (the real API's ``invalid_prompt``) or the output. The workflow carries them in the failure it
ends with (``ProviderError`` re-raised from an activity, ``ProviderFailed``), because ``lanes result``
prints them; Temporal records that failure from the exception's ``message``, which the codec encrypts.

The SDK and OpenTelemetry read something else: the exception's string form and its formatted chain
(``Workflow raised failure`` at DEBUG, the ``RunWorkflow`` span's status and exception event). As
:class:`activities.errors.ProviderError` does for activities, :class:`FailureTextInterceptor` gives these
failures, and every failure they were raised from, a string form without the message, as they leave the
workflow. Nothing about the failure Temporal records changes, so histories replay as before.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.failures import FailureType

JOB_TEXT_FAILURES = frozenset({FailureType.PROVIDER_ERROR, FailureType.PROVIDER_FAILED})
"""Failure types whose message carries the provider's words about the job."""


def withhold_job_text(error: BaseException) -> None:
    """Give ``error`` and the errors it was raised from a string form without provider text.

    Only application errors of the :data:`JOB_TEXT_FAILURES` types change, and only their ``args`` (what
    ``str``, ``repr`` and tracebacks show); their ``message``, details and type stay as they are.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ApplicationError) and current.type in JOB_TEXT_FAILURES:
            current.args = (f"{current.type}: the provider's message is in the job's failure",)
        current = current.__cause__ or current.__context__


class _WithholdJobText(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            return await super().execute_workflow(input)
        except ApplicationError as error:
            withhold_job_text(error)
            raise


class FailureTextInterceptor(Interceptor):
    """Worker interceptor: a workflow's provider failures leave it without provider text in their string form.

    It must run inside OpenTelemetry's interceptor, which records the failure on the workflow's span;
    :class:`~lanes.plugin.LanesPlugin` is registered before OpenTelemetry's plugin, so it does
    (``tests/security/test_logs.py`` checks the span).
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        """See base class."""
        return _WithholdJobText
