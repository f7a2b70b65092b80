"""What the provider finally said about a response, in a form that fits workflow history.

Every model-calling activity ends with one of these, built from the provider's terminal ``Response``
object, never assembled from stream deltas: a resumed or replayed stream can then neither duplicate nor
lose text. The model holds the output text because the workflow returns it; it is never put on spans or
in logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from openai.types.responses import Response

OutcomeStatus = Literal["completed", "incomplete", "failed", "cancelled"]
"""The provider's terminal statuses."""

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "incomplete", "failed", "cancelled"})
"""Statuses after which a response never changes again."""


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
    status: OutcomeStatus
    output_text: str = ""
    incomplete_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    usage: TokenUsage | None = None
    completed_at: float | None = None
    """The provider's completion time (Unix seconds), for the completion-detection lag metric."""

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
            status=status,
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
