"""The decision matrix: every job type against every data class, as a reviewer reads a policy.

``lanes policy check`` prints it, ``lanes policy diff`` compares two of them, and the golden test pins
the default policy's. Each cell is the decision for a query declaring that class with no approval,
tenant or input size, i.e. what the policy does before any exception is granted.
"""

from __future__ import annotations

from datetime import datetime

from policy.compiled import CompiledPolicy
from policy.evaluation import evaluate
from policy.models import PolicyDecision, PolicyQuery

__all__ = ["decision_matrix", "lane_matrix"]


def decision_matrix(
    policy: CompiledPolicy, *, tenant: str | None = None, now: datetime | None = None
) -> dict[str, dict[str, PolicyDecision]]:
    """Evaluate every job type against every data class.

    Args:
        policy: The policy to tabulate.
        tenant: Evaluate with this tenant's overrides; ``None`` for the base policy.
        now: Passed to ``evaluate`` (no approval is given, so it rarely matters).

    Returns:
        ``{job_type: {data_class: decision}}``, job types sorted, classes in sensitivity order.
    """
    return {
        job: {
            cls: evaluate(policy, PolicyQuery(job_type=job, data_class=cls, tenant=tenant), now=now)
            for cls in policy.class_names
        }
        for job in policy.job_type_names
    }


def lane_matrix(policy: CompiledPolicy, *, tenant: str | None = None) -> dict[str, dict[str, str]]:
    """Return ``{job_type: {data_class: lane}}``, the JSON shape of ``lanes policy check --json``."""
    return {
        job: {cls: d.lane.value for cls, d in row.items()}
        for job, row in decision_matrix(policy, tenant=tenant).items()
    }
