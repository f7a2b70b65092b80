"""What the provider finally said about a response, in a form that fits workflow history.

Every model-calling activity ends with one of these, built from the provider's terminal ``Response``
object, never assembled from stream deltas: a resumed or replayed stream can then neither duplicate nor
lose text. The model holds the output text because the workflow returns it; it is never put on spans or
in logs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    from openai.types.responses import Response


class Outcome(StrEnum):
    """How a provider response, or a whole job, ended.

    The one spelling of results, the ``lanes.outcome`` span attribute, the ``LanesOutcome`` search
    attribute, the memo and the CLI.

    The provider's terminal statuses are the first four (:data:`TERMINAL_STATUSES`); ``DENIED`` is
    lanes' own: the policy refused the job, and no model was called.
    """

    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DENIED = "denied"


TERMINAL_STATUSES: frozenset[str] = frozenset(Outcome) - {Outcome.DENIED}
"""The provider's statuses after which a response never changes again."""


def provider_status(value: Outcome) -> Outcome:
    """Refuse ``denied`` where only the provider's terminal statuses belong (a provider never denies)."""
    if value not in TERMINAL_STATUSES:
        raise ValueError(f"{value!r} is not a provider's terminal status")
    return value


class TokenUsage(BaseModel):
    """Token counts for cost accounting (never the tokens themselves)."""

    model_config = ConfigDict(extra="ignore")

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ProviderOutcome(BaseModel):
    """The terminal state of one provider response."""

    model_config = ConfigDict(extra="ignore")

    response_id: str | None
    status: Outcome
    output_text: str = ""
    incomplete_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    usage: TokenUsage | None = None
    completed_at: float | None = None
    """The provider's completion time (Unix seconds), for the completion-detection lag metric."""

    _terminal = field_validator("status")(provider_status)

    @classmethod
    def from_response(cls, response: Response) -> ProviderOutcome:
        """Read a terminal ``Response``.

        Raises:
            ValueError: The response is not terminal yet; callers poll until it is.
        """
        status = response.status
        if status is None or status not in TERMINAL_STATUSES:
            raise ValueError(f"response {response.id} is not terminal (status {status!r})")
        usage = response.usage
        return cls(
            response_id=response.id,
            status=Outcome(status),
            output_text=response.output_text,
            incomplete_reason=response.incomplete_details.reason if response.incomplete_details else None,
            error_code=response.error.code if response.error else None,
            error_message=response.error.message if response.error else None,
            usage=TokenUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
            )
            if usage
            else None,
            completed_at=response.completed_at,
        )
