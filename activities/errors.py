"""Map provider errors to Temporal failures, once, for every activity.

Temporal owns retries (the OpenAI client runs with ``max_retries=0``), so each provider error must say
whether retrying can help:

* 400, 401, 403, 404, 422 and other 4xx: the request or the credentials are wrong; a retry sends the
  same thing again. Non-retryable, carrying the provider's status, code and message.
* 408, 409, 429 and 5xx, and connection failures or timeouts: transient. Retryable, with the provider's
  ``Retry-After`` (or ``retry-after-ms``) as the next retry delay so that Temporal backs off exactly as
  the provider asked.

* An ``error`` event in the middle of a stream (the SDK raises a bare ``APIError``): retryable when its
  code is a transient one (a rate limit or an overload after generation began), non-retryable otherwise.

The error type is ``ProviderError`` with the HTTP status in the message and in the details, so a
workflow or an operator can tell a 429 from a 503 without parsing text. Messages name the provider URL
a request went to (never its key), because "unreachable" alone does not say which endpoint is down.

The provider's own message is text of the job: the real API's ``invalid_prompt`` and content-policy
errors quote the prompt, and an error event in a stream may quote the output. :class:`ProviderError`
keeps it in the failure Temporal records (its ``message``, which the codec encrypts and ``lanes result``
prints), and out of its string form, which is what the SDK's "Completing activity as failed" log line,
tracebacks and OpenTelemetry's span status read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import openai
from temporalio.exceptions import ApplicationError

from activities.failures import FailureType

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""4xx statuses that mean "try again later" rather than "this request is wrong"."""

MAX_RETRY_AFTER = timedelta(minutes=10)
"""Upper bound on a provider-requested delay, so a bogus header cannot park a job for hours."""

TRANSIENT_ERROR_CODES = frozenset(
    {"rate_limit_exceeded", "server_error", "server_is_overloaded", "overloaded", "internal_error", "timeout"}
)
"""``error.code`` values of a mid-stream ``error`` event that mean "try again", not "this is wrong"."""


def is_transient_code(code: str | None) -> bool:
    """Whether a provider error code (of a mid-stream ``error`` event) is worth resuming after."""
    return code in TRANSIENT_ERROR_CODES


def request_target(exc: openai.APIError) -> str:
    """``METHOD scheme://host[:port]/path`` of the request that failed, without credentials or query.

    The SDK's request never carries the API key in its URL, but a base URL may carry user info; it is
    dropped here so the message is safe to show anywhere.
    """
    try:
        request = exc.request
        url = request.url
    except (AttributeError, RuntimeError):
        return "the provider"
    port = f":{url.port}" if url.port else ""
    return f"{request.method} {url.scheme}://{url.host}{port}{url.path}"


def retry_after(headers: openai._types.Headers | None) -> timedelta | None:
    """Read the delay a provider asked for, from ``retry-after-ms`` or ``retry-after`` (seconds).

    Args:
        headers: Response headers, or ``None``.

    Returns:
        The delay, capped at :data:`MAX_RETRY_AFTER`, or ``None`` if absent or unreadable. HTTP-date
        values are ignored: Temporal's own backoff is a better answer than a clock-skewed date.
    """
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(str(raw)) * scale
        except ValueError:
            continue
        if seconds > 0:
            return min(timedelta(seconds=seconds), MAX_RETRY_AFTER)
    return None


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status from the provider is worth retrying."""
    return status in RETRYABLE_STATUSES or status >= 500


class ProviderError(ApplicationError):
    """An ``ApplicationError`` of type ``ProviderError`` whose string form leaves the provider's words out.

    Temporal builds the failure it records from :attr:`message` (``summary: provider message``), so the
    workflow, ``lanes status`` and ``lanes result`` see everything; ``str()``, ``repr()`` and every
    traceback show ``args``, which hold the summary alone (status, code, request target), so a log line
    says that and why an activity failed without quoting what the provider said about the job.

    Args:
        summary: What failed, without provider text, e.g. ``provider returned HTTP 400 (invalid_prompt)``.
        provider_message: The provider's message (may quote the prompt or the output); may be empty.
        details: The failure's details (``{"status", "code"}``).
        non_retryable: Whether Temporal must not retry.
        next_retry_delay: The delay the provider asked for before the next attempt.
    """

    def __init__(
        self,
        summary: str,
        provider_message: str,
        *details: Any,
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(
            f"{summary}: {provider_message}" if provider_message else summary,
            *details,
            type=FailureType.PROVIDER_ERROR,
            non_retryable=non_retryable,
            next_retry_delay=next_retry_delay,
        )
        self.summary = summary
        withheld = " (the provider's message is in the job's failure)" if provider_message else ""
        self.args = (f"{FailureType.PROVIDER_ERROR}: {summary}{withheld}",)


def to_application_error(exc: openai.OpenAIError) -> ApplicationError:
    """Translate an OpenAI SDK exception into the Temporal failure it should become.

    Args:
        exc: What the SDK raised.

    Returns:
        A :class:`ProviderError` whose ``non_retryable`` and ``next_retry_delay`` follow the rules in this
        module's docstring. Its details hold ``{"status", "code"}`` (no request or response body, which
        could echo prompt text); the provider's message is in its ``message`` only.
    """
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = exc.code or ""
        retryable = is_retryable_status(status)
        return ProviderError(
            f"provider returned HTTP {status}" + (f" ({code})" if code else ""),
            exc.message,
            {"status": status, "code": code},
            non_retryable=not retryable,
            next_retry_delay=retry_after(exc.response.headers) if retryable else None,
        )
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        # The transport's words (refused, timed out), not the provider's: nothing of the job is in them.
        return ProviderError(
            f"provider unreachable ({request_target(exc)}): {type(exc).__name__}: {exc}",
            "",
            {"status": 0, "code": "connection_error"},
        )
    if isinstance(exc, openai.APIError):
        # An ``error`` event inside a stream: the HTTP status was 200, the event carries the code.
        code = exc.code or "stream_error"
        return ProviderError(
            f"provider sent an error event ({code}) on {request_target(exc)}",
            exc.message,
            {"status": 0, "code": code},
            non_retryable=not is_transient_code(code),
        )
    # Anything else the SDK raises (a response it could not parse, say) may quote what it read.
    return ProviderError(
        f"provider client error: {type(exc).__name__}",
        str(exc),
        {"status": 0, "code": "client_error"},
        non_retryable=True,
    )
