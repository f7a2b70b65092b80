"""Benign failures without stack traces: a poll that says "not yet" costs a GET, not two tracebacks.

A poll-mode job's check fails with a benign ``ResponseNotDone`` at every look at a running response
(``activities/responses.py``): the failure is the retry policy's pacing signal, not an error, and it is
sent thousands of times a minute by a worker that holds thousands of jobs. Its stack trace was formatted
twice per look, once by OpenTelemetry into the activity span's exception event and once by the failure
converter into the failure sent to Temporal, and that formatting (Python 3.11 parses each frame's source
line to place its carets) was a quarter of a poll's worker CPU, measured with py-spy at 1,000 jobs. The
trace says nothing a reader needs: the message says what the poll saw and when the next one is.

So benign application errors travel without one. :class:`BenignFailureInterceptor` clears the traceback
as the error leaves the activity, before the tracing interceptor records it, and :class:`FailureConverter`
writes no stack trace for a benign error at all. Every other failure keeps its full trace.
"""

from __future__ import annotations

from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities.failures import FailureType


def is_benign(error: BaseException) -> bool:
    """Whether ``error`` is an application error its raiser marked benign (an expected outcome)."""
    return isinstance(error, ApplicationError) and error.category == ApplicationErrorCategory.BENIGN


def is_policy_denial(error: BaseException) -> bool:
    """Whether ``error`` is a job's ``PolicyDenied`` failure: the policy's answer, not a fault of code.

    Its message and details carry the decision; a stack trace of workflow code would only make a denied
    job read as a crash in the Temporal UI and in ``temporal workflow show``.
    """
    return isinstance(error, ApplicationError) and error.type == FailureType.POLICY_DENIED


class _StripBenignTraceback(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError as error:
            if not is_benign(error):
                raise
            # Re-raised from here, it carries this frame and the few outside it, not the activity's.
            raise error.with_traceback(None) from error.__cause__


class BenignFailureInterceptor(Interceptor):
    """Worker interceptor that drops the traceback of benign application errors raised by activities.

    It must run inside OpenTelemetry's interceptor, which records the exception on the activity's span;
    :class:`~lanes.plugin.LanesPlugin` is registered before OpenTelemetry's plugin, so it does.
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """See base class."""
        return _StripBenignTraceback(next)


class FailureConverter(DefaultFailureConverter):
    """Temporal's default failure converter, without a stack trace for benign errors and policy denials."""

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        """See base class."""
        if is_benign(exception) or is_policy_denial(exception):
            exception.__traceback__ = None
        super().to_failure(exception, payload_converter, failure)


class EncodedAttributesFailureConverter(FailureConverter):
    """:class:`FailureConverter` that also moves messages and stack traces into the encoded attributes.

    The counterpart of ``DefaultFailureConverterWithEncodedAttributes``, used with a payload codec so
    that the codec encrypts failure messages too.
    """

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)
