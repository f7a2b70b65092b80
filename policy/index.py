"""The policy compiled for fast, allocation-light evaluation: one view per tenant.

``evaluate`` runs for every job and, in the benchmark, a hundred thousand times a second, so everything
that depends only on the file is worked out once, at load: data class ranks, tenant overrides merged into
their own view, the ``Answer`` objects with their key paths, and the provider profile each job type gets
on each lane (with the job's model filled in). Evaluation then does dictionary lookups and comparisons.

``CompiledPolicy`` builds the index, after the cross-checks have passed, so lookups here cannot miss; the
cross-checks themselves use ``build_view`` to read merged tenant scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy.models import Answer, JobLimits, Policy, ProviderEndpoint, ProviderProfile, base_url_address

__all__ = ["ApprovalView", "ClassView", "JobView", "PolicyIndex", "View", "build_index", "build_view"]


@dataclass(frozen=True, slots=True)
class ClassView:
    """A data class as one tenant sees it, with the key path of every setting."""

    name: str
    rank: int
    stored_state: str
    stored_state_source: str
    zdr: bool
    zdr_source: str
    model_calls: bool
    model_calls_source: str
    stored_answer: Answer
    """The stored-state answer when no approval comes into play: true only for ``allow``."""
    require_encryption: bool
    require_encryption_source: str
    delete_after_harvest: bool
    delete_after_harvest_source: str
    stateless_profile: ProviderProfile | None = None
    """The class's own stateless profile (``data_classes.<id>.stateless_profile``), if it routes one."""
    stateless_endpoint: ProviderEndpoint | None = None


@dataclass(frozen=True, slots=True)
class JobView:
    """A job type as one tenant sees it: merged floor, lane stance, answers, profiles and limits."""

    name: str
    floor_rank: int
    floor_source: str
    long_running: Answer
    needs_retrieval: Answer
    preferred_lane: str
    preferred_source: str
    fallback: str
    fallback_source: str
    requires_approval: bool
    requires_approval_source: str
    background_profile: ProviderProfile | None
    stateless_profile: ProviderProfile | None
    limits: JobLimits
    background_endpoint: ProviderEndpoint | None = None
    stateless_endpoint: ProviderEndpoint | None = None


@dataclass(frozen=True, slots=True)
class View:
    """Everything evaluation needs for one tenant (or for the base policy, ``tenant=None``)."""

    tenant: str | None
    zdr_only: bool
    zdr_only_source: str
    background_enabled: bool
    background_enabled_source: str
    classes: tuple[ClassView, ...]
    class_rank: dict[str, int]
    jobs: dict[str, JobView]
    known_jobs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """An approval reduced to what its validity check reads."""

    ref: str
    job_types: frozenset[str]
    max_rank: int
    max_data_class: str
    expires: datetime
    tenants: frozenset[str]


@dataclass(frozen=True, slots=True)
class PolicyIndex:
    """A policy compiled for evaluation: the base view, one view per tenant with overrides, and the approvals.

    It holds no identity of its own: ``CompiledPolicy`` keeps it next to the document's digest.
    """

    base: View
    tenants: dict[str, View]
    approvals: dict[str, ApprovalView]


def _profile(policy: Policy, name: str | None, model: str | None) -> ProviderProfile | None:
    if name is None or name not in policy.profiles:
        return None
    spec = policy.profiles[name]
    values = spec.model_dump()
    if model is not None:
        values["model"] = model
    return ProviderProfile.model_validate(values)


def _endpoint(policy: Policy, profile: ProviderProfile | None) -> ProviderEndpoint | None:
    """The decision's record of the endpoint a profile calls (host and port from its ``base_url``)."""
    if profile is None or profile.endpoint not in policy.endpoints:
        return None
    spec = policy.endpoints[profile.endpoint]
    address = base_url_address(spec.base_url) if spec.base_url is not None else None
    host, port = address if address is not None else (None, None)
    return ProviderEndpoint(name=profile.endpoint, host=host, port=port, zdr_eligible=spec.zdr_eligible)


def build_view(policy: Policy, tenant: str | None) -> View:
    """Merge the base policy with one tenant's overrides (or none) into a view.

    Args:
        policy: A policy whose references have been checked.
        tenant: A tenant id from ``policy.tenants``, or ``None`` for the base policy.

    Returns:
        The merged view; key paths point at the override where one applies.
    """
    override = policy.tenants.get(tenant) if tenant is not None else None
    tprefix = f"tenants.{tenant}"
    rank = {name: i for i, name in enumerate(policy.data_class_order)}

    classes: list[ClassView] = []
    for name in policy.data_class_order:
        base = policy.data_classes[name]
        path = f"data_classes.{name}"
        stored, stored_src = base.stored_state, f"{path}.stored_state"
        zdr, zdr_src = base.zdr, f"{path}.zdr"
        calls, calls_src = base.model_calls, f"{path}.model_calls"
        enc, enc_src = base.require_encryption, f"{path}.require_encryption"
        dah, dah_src = base.delete_after_harvest, f"{path}.delete_after_harvest"
        cov = override.data_classes.get(name) if override is not None else None
        if cov is not None:
            opath = f"{tprefix}.data_classes.{name}"
            if cov.stored_state is not None:
                stored, stored_src = cov.stored_state, f"{opath}.stored_state"
            if cov.zdr is not None:
                zdr, zdr_src = cov.zdr, f"{opath}.zdr"
            if cov.model_calls is not None:
                calls, calls_src = cov.model_calls, f"{opath}.model_calls"
            if cov.require_encryption is not None:
                enc, enc_src = cov.require_encryption, f"{opath}.require_encryption"
            if cov.delete_after_harvest is not None:
                dah, dah_src = cov.delete_after_harvest, f"{opath}.delete_after_harvest"
        answer = Answer(value=stored == "allow", source=stored_src)
        class_profile = _profile(policy, base.stateless_profile, None)
        classes.append(
            ClassView(
                name,
                rank[name],
                stored,
                stored_src,
                zdr,
                zdr_src,
                calls,
                calls_src,
                answer,
                enc,
                enc_src,
                dah,
                dah_src,
                class_profile,
                _endpoint(policy, class_profile),
            )
        )

    jobs: dict[str, JobView] = {}
    for name, job in policy.job_types.items():
        path = f"job_types.{name}"
        floor, floor_src = rank.get(job.min_data_class, 0), f"{path}.min_data_class"
        preferred, preferred_src = job.preferred_lane, f"{path}.preferred_lane"
        fallback, fallback_src = job.fallback, f"{path}.fallback"
        approval, approval_src = job.background_requires_approval, f"{path}.background_requires_approval"
        if override is not None:
            if override.min_data_class is not None and rank.get(override.min_data_class, 0) > floor:
                floor, floor_src = rank[override.min_data_class], f"{tprefix}.min_data_class"
            jov = override.job_types.get(name)
            if jov is not None:
                opath = f"{tprefix}.job_types.{name}"
                if jov.min_data_class is not None and rank.get(jov.min_data_class, 0) > floor:
                    floor, floor_src = rank[jov.min_data_class], f"{opath}.min_data_class"
                if jov.preferred_lane is not None:
                    preferred, preferred_src = jov.preferred_lane, f"{opath}.preferred_lane"
                if jov.fallback is not None:
                    fallback, fallback_src = jov.fallback, f"{opath}.fallback"
                if jov.background_requires_approval is not None:
                    approval = jov.background_requires_approval
                    approval_src = f"{opath}.background_requires_approval"
        background_profile = _profile(policy, job.profiles.background, job.model)
        stateless_profile = _profile(policy, job.profiles.stateless, job.model)
        jobs[name] = JobView(
            name=name,
            floor_rank=floor,
            floor_source=floor_src,
            long_running=Answer(value=job.long_running, source=f"{path}.long_running"),
            needs_retrieval=Answer(value=job.needs_retrieval, source=f"{path}.needs_retrieval"),
            preferred_lane=preferred,
            preferred_source=preferred_src,
            fallback=fallback,
            fallback_source=fallback_src,
            requires_approval=approval,
            requires_approval_source=approval_src,
            background_profile=background_profile,
            stateless_profile=stateless_profile,
            limits=JobLimits.model_validate(job.limits.model_dump()),
            background_endpoint=_endpoint(policy, background_profile),
            stateless_endpoint=_endpoint(policy, stateless_profile),
        )

    org = policy.organisation
    zdr_only, zdr_only_src = org.zdr_only, "organisation.zdr_only"
    enabled, enabled_src = org.background_enabled, "organisation.background_enabled"
    if override is not None:
        if override.zdr_only is not None:
            zdr_only, zdr_only_src = override.zdr_only, f"{tprefix}.zdr_only"
        if override.background_enabled is not None:
            enabled, enabled_src = override.background_enabled, f"{tprefix}.background_enabled"
    return View(
        tenant=tenant if override is not None else None,
        zdr_only=zdr_only,
        zdr_only_source=zdr_only_src,
        background_enabled=enabled,
        background_enabled_source=enabled_src,
        classes=tuple(classes),
        class_rank=rank,
        jobs=jobs,
        known_jobs=tuple(sorted(jobs)),
    )


def build_index(policy: Policy) -> PolicyIndex:
    """Compile a checked policy: the base view, every tenant's merged view, and the approvals.

    Args:
        policy: A policy that passed ``policy_problems``; ``CompiledPolicy`` is the only caller.

    Returns:
        The index ``evaluate`` reads.
    """
    rank = {name: i for i, name in enumerate(policy.data_class_order)}
    return PolicyIndex(
        base=build_view(policy, None),
        tenants={tenant: build_view(policy, tenant) for tenant in policy.tenants},
        approvals={
            ref: ApprovalView(
                ref=ref,
                job_types=frozenset(a.job_types),
                max_rank=rank.get(a.max_data_class, -1),
                max_data_class=a.max_data_class,
                expires=a.expires,
                tenants=frozenset(a.tenants),
            )
            for ref, a in policy.approvals.items()
        },
    )
