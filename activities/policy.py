"""The first activity of every job: ask the policy which lane the job may take.

The decision is made in an activity, not in workflow code, because the policy file can change while
workflows run: the activity result puts the exact decision (with the policy's version and digest) into
history, so a replay never re-decides and an auditor reads what was decided, by which rule, and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.decision_tags import DecisionTags
from activities.endpoint_clients import EndpointClient
from activities.failures import FailureType
from policy import PolicyDecision, PolicyQuery, PolicySource, UnknownJobTypeError, evaluate


class PolicyActivities:
    """Activities that read the policy, which the worker loads once and reloads when its file changes.

    Args:
        source: The policy file, reloaded when it changes.
        payloads_encrypted: Whether this worker's payloads are encrypted in history; a class that
            requires encryption is denied (``denied.encryption-required``) by a worker without a key.
        endpoints: The provider clients the worker calls with, by endpoint name; the decision records
            the host and port of the one it names. ``None`` leaves decisions as the policy made them.
    """

    def __init__(
        self,
        source: PolicySource,
        *,
        payloads_encrypted: bool,
        endpoints: Mapping[str, EndpointClient] | None = None,
    ) -> None:
        self._source = source
        self._payloads_encrypted = payloads_encrypted
        self._endpoints = endpoints

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
            ApplicationError: Non-retryable, of type ``UnknownJobType``, listing the known job types;
                or ``EndpointNotConfigured`` when the decision names an endpoint this worker has no
                client for, or one whose ``base_url`` changed since the worker built it (nothing has
                been sent anywhere yet).
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
        decision = self._resolve_endpoint(decision)
        DecisionTags.of(decision).tag_current_span()
        trace.get_current_span().set_attributes(
            {
                "lanes.declared_data_class": decision.declared_data_class or "",
                "lanes.reasons": decision.reasons,
                "lanes.profile": decision.profile.name if decision.profile else "",
                "lanes.approval": decision.approval or "",
                "lanes.require_encryption": decision.require_encryption,
                "lanes.delete_after_harvest": decision.delete_after_harvest,
                **(
                    {
                        "server.address": decision.endpoint.host or "",
                        "server.port": decision.endpoint.port or 0,
                    }
                    if decision.endpoint is not None
                    else {}
                ),
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

    def _resolve_endpoint(self, decision: PolicyDecision) -> PolicyDecision:
        """Record where the worker's client for the decision's endpoint connects, or refuse the job.

        The policy knows an endpoint's host only when it declares a ``base_url``; the default endpoint's
        is the worker's setting. The decision must name where the data actually goes, so the host and
        port come from the client the model-calling activities will use.
        """
        endpoint = decision.endpoint
        if endpoint is None or self._endpoints is None:
            return decision
        client = self._endpoints.get(endpoint.name)
        problem: str | None = None
        if client is None:
            problem = (
                f"the policy routes this job to provider endpoint {endpoint.name!r}, which this worker "
                f"has no client for (it serves: {', '.join(sorted(self._endpoints))}); restart the "
                "worker so it builds one from the policy (with the endpoint's key in its environment)"
            )
        elif endpoint.host is not None and (endpoint.host, endpoint.port) != (client.host, client.port):
            problem = (
                f"the policy puts provider endpoint {endpoint.name!r} at {endpoint.host}:{endpoint.port}, "
                f"but this worker's client for it connects to {client.host}:{client.port} (the policy "
                "changed after the worker started); restart the worker"
            )
        if problem is not None:
            raise ApplicationError(
                problem,
                {"endpoint": endpoint.name, "policy_digest": decision.policy_digest},
                type=FailureType.ENDPOINT_NOT_CONFIGURED,
                non_retryable=True,
            )
        assert client is not None
        resolved = endpoint.model_copy(update={"host": client.host, "port": client.port})
        return decision.model_copy(update={"endpoint": resolved})
