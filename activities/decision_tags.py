"""The slice of a lane decision that every span after the decision carries.

Activities receive these tags in their input and set them on their ``RunActivity`` span, so an operator
can filter any span in a trace backend by ``lanes.lane`` or ``lanes.rule`` without joining to the policy
span. Only policy vocabulary is here; prompt and output text never are.
"""

from __future__ import annotations

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict

from policy import DEFAULT_ENDPOINT, PolicyDecision

ATTRIBUTE_NAMES = {"policy_version": "policy.version", "policy_digest": "policy.digest"}
"""Fields whose attribute name differs from the field name: the policy's two under ``lanes.policy``."""


class DecisionTags(BaseModel):
    """Identifiers of the decision that put a job on its lane."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    lane: str
    rule: str
    job_type: str
    data_class: str
    policy_version: str
    policy_digest: str
    endpoint: str = DEFAULT_ENDPOINT
    """The provider endpoint the decision sends the job's calls to: every activity that calls the
    provider takes its client by this name. Absent in inputs recorded before endpoints existed, which
    all used the default endpoint."""

    @classmethod
    def of(cls, decision: PolicyDecision) -> DecisionTags:
        """Take the tags of a decision."""
        return cls(
            lane=str(decision.lane),
            rule=decision.rule,
            job_type=decision.job_type,
            data_class=decision.data_class,
            policy_version=decision.policy_version,
            policy_digest=decision.policy_digest,
            endpoint=decision.endpoint_name,
        )

    def attributes(self) -> dict[str, str]:
        """Span attributes under ``lanes.`` (the policy's as ``lanes.policy.version``, ``.digest``)."""
        return {
            f"lanes.{ATTRIBUTE_NAMES.get(name, name)}": value for name, value in self.model_dump().items()
        }

    def tag_current_span(self) -> None:
        """Set the attributes on the current span (the activity's ``RunActivity`` span)."""
        trace.get_current_span().set_attributes(self.attributes())
