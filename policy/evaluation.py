"""Deciding a job's lane: the seed article's three questions, plus the organisation's switches.

Background mode is chosen only when all three hold: the job needs long-running execution, the product
needs polling or later retrieval, and temporary stored provider state is acceptable for the effective data
class (with a valid approval where the class or job type asks for one). Checks run in a fixed order and
the first that decides gives the decision its rule id (see ``policy.rules``):

0. the query names a tenant or data class the policy does not define: denied (fail closed, never
   guessed: "Restricted" is not mapped to the job type's floor);
1. the effective class forbids model calls, the job type is disabled, or the input is too large: denied;
2. the job type prefers stateless, is not long-running or needs no retrieval: stateless, its natural lane;
3. background is wanted but refused (zdr_only, kill switch, zdr class, stored state denied, approval
   missing or invalid): the job type's fallback, stateless or denied;
4. otherwise background.

``evaluate`` is pure: the same policy digest, query and ``now`` give the same decision. It takes only a
``CompiledPolicy``, so every decision comes from cross-checked rules and carries their digest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policy import rules
from policy.compiled import CompiledPolicy
from policy.errors import UnknownJobTypeError
from policy.index import ClassView, JobView, PolicyIndex, View
from policy.models import Answer, Lane, PolicyDecision, PolicyQuery

__all__ = ["evaluate", "unused_approval"]


def _approval_check(
    index: PolicyIndex, ref: str, job: JobView, cls: ClassView, tenant: str | None, now: datetime | None
) -> str | None:
    """Return why approval ``ref`` does not cover this job, or ``None`` when it does."""
    approval = index.approvals.get(ref)
    if approval is None:
        return f"Approval {ref!r} is not listed in the policy."
    if job.name not in approval.job_types:
        return f"Approval {ref!r} does not cover job type {job.name!r}."
    if cls.rank > approval.max_rank:
        return f"Approval {ref!r} covers data up to {approval.max_data_class!r}, not {cls.name!r}."
    if approval.tenants and tenant not in approval.tenants:
        return f"Approval {ref!r} is limited to tenants {', '.join(sorted(approval.tenants))}."
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment >= approval.expires:
        return f"Approval {ref!r} expired on {approval.expires.date().isoformat()}."
    return None


def evaluate(policy: CompiledPolicy, query: PolicyQuery, *, now: datetime | None = None) -> PolicyDecision:
    """Decide which lane a job may take, and record why.

    Args:
        policy: A compiled policy, from ``load_policy`` or ``PolicySource.current()``. A bare ``Policy``
            is refused: it has not been cross-checked and has no digest to put in the decision.
        query: The job type and what the caller declares about the job.
        now: The time approvals' expiry is checked against; pass it (e.g. ``workflow.now()`` or the
            activity's clock) to keep evaluation deterministic. ``None`` reads the UTC clock, and only
            when an approval has to be checked. Naive datetimes are taken as UTC.

    Returns:
        The decision: lane, rule id, policy version and digest, the three answers and short reasons.

    Raises:
        TypeError: ``policy`` is not a ``CompiledPolicy`` (for example a ``Policy`` built with
            ``Policy.model_validate``, which skipped the cross-checks).
        UnknownJobTypeError: The policy does not define ``query.job_type``.
    """
    if not isinstance(policy, CompiledPolicy):
        raise TypeError(
            f"evaluate needs a CompiledPolicy from load_policy, not {type(policy).__name__}; a Policy "
            "document has not been cross-checked and has no digest"
        )
    index = policy.index
    tenant = query.tenant
    view: View = index.base
    reasons: list[str] = []
    unknown: str | None = None
    if tenant is not None:
        tenant_view = index.tenants.get(tenant)
        if tenant_view is not None:
            view = tenant_view
            reasons.append(f"Overrides of tenant {tenant!r} apply.")
        else:
            # Fail closed: a tenant the policy does not know may be a typo of one with stricter rules.
            unknown = rules.DENIED_UNKNOWN_TENANT
            known = ", ".join(sorted(index.tenants)) or "(none defined)"
            reasons.append(f"Tenant {tenant!r} is unknown (no [tenants.{tenant}] table); known: {known}.")
    job = view.jobs.get(query.job_type)
    if job is None:
        raise UnknownJobTypeError(query.job_type, view.known_jobs)

    # Effective data class: the declared class may raise the job type's floor, never lower it.
    declared = query.data_class
    floor = view.classes[job.floor_rank]
    declared_rank = view.class_rank.get(declared) if declared is not None else None
    if declared is not None and declared_rank is None and unknown is None:
        # Fail closed: an unknown class (say "Restricted") may be a typo of a stricter one.
        unknown = rules.DENIED_UNKNOWN_DATA_CLASS
        reasons.append(
            f"Data class {declared!r} is unknown; known: {', '.join(c.name for c in view.classes)} "
            "(data_class_order)."
        )
    if unknown is not None:
        return _refuse_unknown(policy, query, view, job, unknown, reasons)
    if declared_rank is None:  # only when no class was declared: an unknown one was refused above
        cls = floor
        reasons.append(f"No data class declared; using the floor {floor.name!r} ({job.floor_source}).")
    elif declared_rank < job.floor_rank:
        cls = floor
        reasons.append(f"Data class {declared!r} raised to the floor {floor.name!r} ({job.floor_source}).")
    else:
        cls = view.classes[declared_rank]

    # Question three: is temporary stored state acceptable for this class (and this job)?
    approval_used: str | None = None
    approval_problem: str | None = None
    needs_approval = cls.stored_state == "review" or job.requires_approval
    stored = cls.stored_answer
    if cls.stored_state != "deny" and needs_approval:
        asked_by = cls.stored_state_source if cls.stored_state == "review" else job.requires_approval_source
        if query.approval is not None:
            approval_problem = _approval_check(index, query.approval, job, cls, tenant, now)
            if approval_problem is None:
                approval_used = query.approval
        if approval_used is not None:
            stored = Answer(value=True, source=f"approvals.{approval_used}")
        elif stored.value or stored.source != asked_by:
            stored = Answer(value=False, source=asked_by)

    lane: Lane
    rule: str
    if not cls.model_calls:
        lane, rule = Lane.DENIED, rules.DENIED_MODEL_CALLS_FORBIDDEN
        reasons.append(f"Data class {cls.name!r} allows no model calls ({cls.model_calls_source}).")
    elif job.preferred_lane == "denied":
        lane, rule = Lane.DENIED, rules.DENIED_JOB_TYPE_DISABLED
        reasons.append(f"Job type {job.name!r} is disabled ({job.preferred_source}).")
    elif query.input_chars > job.limits.max_input_chars:
        lane, rule = Lane.DENIED, rules.DENIED_INPUT_TOO_LARGE
        reasons.append(
            f"Input of {query.input_chars} characters exceeds the limit of {job.limits.max_input_chars} "
            f"(job_types.{job.name}.limits.max_input_chars)."
        )
    elif job.preferred_lane == "stateless":
        lane, rule = Lane.STATELESS, rules.STATELESS_PREFERRED
        reasons.append(f"Job type {job.name!r} prefers the stateless lane ({job.preferred_source}).")
    elif not job.long_running.value:
        lane, rule = Lane.STATELESS, rules.STATELESS_NOT_LONG_RUNNING
        reasons.append(f"Job type {job.name!r} is not long-running ({job.long_running.source}).")
    elif not job.needs_retrieval.value:
        lane, rule = Lane.STATELESS, rules.STATELESS_NO_RETRIEVAL
        reasons.append(
            f"Job type {job.name!r} needs no polling or later retrieval ({job.needs_retrieval.source})."
        )
    else:
        refused: str | None = None
        if policy.background_off is not None:
            refused = rules.STATELESS_KILL_SWITCH_OVERRIDE
            reasons.append(
                f"The background lane is switched off by the emergency kill switch ({policy.background_off})."
            )
        elif view.zdr_only:
            refused = rules.STATELESS_ZDR_ONLY
            reasons.append(f"Zero Data Retention only: every job runs stateless ({view.zdr_only_source}).")
        elif not view.background_enabled:
            refused = rules.STATELESS_KILL_SWITCH
            reasons.append(f"The background lane is switched off ({view.background_enabled_source}).")
        elif cls.zdr:
            refused = rules.STATELESS_ZDR_CLASS
            reasons.append(f"Data class {cls.name!r} requires Zero Data Retention ({cls.zdr_source}).")
        elif cls.stored_state == "deny":
            refused = rules.STATELESS_STORED_STATE_DENIED
            reasons.append(
                f"Stored provider state is not acceptable for {cls.name!r} ({cls.stored_state_source})."
            )
        elif not stored.value:
            if approval_problem is None:
                refused = rules.STATELESS_APPROVAL_MISSING
                reasons.append(f"Background needs an approval ({stored.source}); none was given.")
            else:
                refused = rules.STATELESS_APPROVAL_INVALID
                reasons.append(approval_problem)
        if refused is None:
            lane, rule = Lane.BACKGROUND, rules.BACKGROUND_ALLOWED
            reasons.append(
                "Long-running, needs retrieval, and stored state is acceptable"
                + (f" under approval {approval_used!r}." if approval_used else ".")
            )
        elif job.fallback == "deny":
            lane, rule = Lane.DENIED, rules.DENIED_FALLBACK_DENY
            reasons.append(f"Background refused and the fallback is deny ({job.fallback_source}).")
        else:
            lane, rule = Lane.STATELESS, refused

    if lane is not Lane.DENIED and cls.require_encryption and query.payloads_encrypted is False:
        # Fail closed: this worker would write the job's input and output to history in clear text.
        lane, rule = Lane.DENIED, rules.DENIED_ENCRYPTION_REQUIRED
        reasons.append(
            f"Data class {cls.name!r} requires encrypted payloads and this worker has no key: set "
            "LANES_ENCRYPTION_KEYS or LANES_ENCRYPTION_KEY_FILE (docs/encryption.md)."
        )
    if lane is Lane.BACKGROUND:
        profile, endpoint = job.background_profile, job.background_endpoint
    elif lane is Lane.STATELESS and cls.stateless_profile is not None:
        profile, endpoint = cls.stateless_profile, cls.stateless_endpoint
        reasons.append(
            f"Data class {cls.name!r} routes stateless calls to profile {profile.name!r} "
            f"(data_classes.{cls.name}.stateless_profile)."
        )
    elif lane is Lane.STATELESS:
        profile, endpoint = job.stateless_profile, job.stateless_endpoint
    else:
        profile, endpoint = None, None
    # Every part was validated when the policy was loaded or is built here from validated parts, so
    # skip re-validation: this is the hot path of every job (see bench/policy_decisions.py).
    return _decision(
        {
            "lane": lane,
            "rule": rule,
            "policy_version": policy.document.policy_version,
            "policy_digest": policy.digest,
            "policy_signed_by": list(policy.signed_by),
            "job_type": job.name,
            "declared_data_class": declared,
            "data_class": cls.name,
            "long_running": job.long_running,
            "needs_retrieval": job.needs_retrieval,
            "stored_state_acceptable": stored,
            "approval": approval_used if lane is Lane.BACKGROUND else None,
            "tenant": tenant,
            "profile": profile,
            "limits": job.limits,
            "reasons": reasons,
            "require_encryption": cls.require_encryption,
            "delete_after_harvest": cls.delete_after_harvest,
            "endpoint": endpoint,
        }
    )


def _refuse_unknown(
    policy: CompiledPolicy, query: PolicyQuery, view: View, job: JobView, rule: str, reasons: list[str]
) -> PolicyDecision:
    """Deny a query naming an unknown tenant or data class, treating its data as the most sensitive class."""
    top = view.classes[-1]
    reasons.append(f"Refused; the decision records the most sensitive class {top.name!r}.")
    source = "tenants" if rule == rules.DENIED_UNKNOWN_TENANT else "data_class_order"
    return _decision(
        {
            "lane": Lane.DENIED,
            "rule": rule,
            "policy_version": policy.document.policy_version,
            "policy_digest": policy.digest,
            "policy_signed_by": list(policy.signed_by),
            "job_type": job.name,
            "declared_data_class": query.data_class,
            "data_class": top.name,
            "long_running": job.long_running,
            "needs_retrieval": job.needs_retrieval,
            "stored_state_acceptable": Answer(value=False, source=source),
            "approval": None,
            "tenant": query.tenant,
            "profile": None,
            "limits": job.limits,
            "reasons": reasons,
            "require_encryption": True,
            "delete_after_harvest": True,
            "endpoint": None,
        }
    )


def _decision(values: dict[str, Any]) -> PolicyDecision:
    """Build a decision without re-validating parts that were validated when the policy was loaded.

    ``test_evaluation`` checks the result equals a validated model.
    """
    return PolicyDecision.model_construct(**values)


def unused_approval(approval: str | None, decision: PolicyDecision) -> str | None:
    """Why an approval reference given with a query changed nothing, or ``None`` (used, or none given).

    An approval given for a cell that needs none (its class allows stored state and its job type asks
    for no review, or its class denies stored state whatever is approved) is ignored: a caller who
    believed it mattered should hear so, not find out in an audit.
    """
    if approval is None or decision.stored_state_acceptable.source == f"approvals.{approval}":
        return None
    if decision.rule in (rules.STATELESS_APPROVAL_INVALID, rules.STATELESS_APPROVAL_MISSING):
        return None  # needed and refused: the decision's own reasons say why
    return (
        f"approval {approval!r} was ignored: job type {decision.job_type!r} with data class "
        f"{decision.data_class!r} needs none (stored state: {decision.stored_state_acceptable.source})"
    )
