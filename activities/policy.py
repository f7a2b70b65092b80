"""The first activity of every job: ask the policy which lane the job may take.

The decision is made in an activity, not in workflow code, because the policy file can change while
workflows run: the activity result puts the exact decision (with the policy's version and digest) into
history, so a replay never re-decides and an auditor reads what was decided, by which rule, and why.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.decision_tags import DecisionTags
from activities.failures import FailureType
from policy import PolicyDecision, PolicyQuery, PolicySource, UnknownJobTypeError, evaluate


class PolicyActivities:
    """Activities that read the policy, which the worker loads once and reloads when its file changes.

    Args:
        source: The policy file, reloaded when it changes.
        payloads_encrypted: Whether this worker's payloads are encrypted in history; a class that
            requires encryption is denied (``denied.encryption-required``) by a worker without a key.
    """

    def __init__(self, source: PolicySource, *, payloads_encrypted: bool) -> None:
        self._source = source
        self._payloads_encrypted = payloads_encrypted

    @activity.defn
    async def evaluate_policy(self, query: PolicyQuery) -> PolicyDecision:
        """Decide the lane of a job and record the decision on the activity span.

        The input is the policy query itself: what the workflow declares about the job and the length
        of its input, never the input text, since activity inputs are recorded in history.

        Args:
            query: The job type, declared data class, approval, tenant and input length.

        Returns:
            The decision, with the version and digest of the policy that made it.

        Raises:
            ApplicationError: Non-retryable, of type ``UnknownJobType``, listing the known job types.
        """
        policy = self._source.current()
        query = query.model_copy(update={"payloads_encrypted": self._payloads_encrypted})
        try:
            # Wall-clock time only matters for approval expiry; the decision records what was decided.
            decision = evaluate(policy, query, now=datetime.now(UTC))
        except UnknownJobTypeError as exc:
            raise ApplicationError(
                str(exc),
                {"job_type": exc.job_type, "known": exc.known, "policy_digest": policy.digest},
                type=FailureType.UNKNOWN_JOB_TYPE,
                non_retryable=True,
            ) from exc
        DecisionTags.of(decision).tag_current_span()
        trace.get_current_span().set_attributes(
            {
                "lanes.declared_data_class": decision.declared_data_class or "",
                "lanes.reasons": decision.reasons,
                "lanes.profile": decision.profile.name if decision.profile else "",
                "lanes.approval": decision.approval or "",
                "lanes.require_encryption": decision.require_encryption,
                "lanes.delete_after_harvest": decision.delete_after_harvest,
            }
        )
        activity.logger.info(
            "lane decided: %s by rule %s (policy %s, class %s)",
            decision.lane,
            decision.rule,
            decision.policy_version,
            decision.data_class,
        )
        return decision
