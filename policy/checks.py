"""Cross-checks a policy must pass after its keys and types are valid.

Pydantic checks each table on its own; these checks look across tables, where most review mistakes
hide: a job type pointing at a data class or profile that does not exist, a zdr class that background
could still reach, a sensitivity scale that gets looser as it goes up, a tenant override that loosens
the base policy, or a zdr class routed to an endpoint no Zero Data Retention agreement covers. Each
problem is one ``"<key path>: <what is wrong>; <the fix>"`` string; the loader
prefixes the file name and reports them all together.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from policy.index import ClassView, View, build_view
from policy.models import (
    DEFAULT_ENDPOINT,
    IMPLICIT_DEFAULT_ENDPOINT,
    LANE_STRICTNESS,
    STORED_STATE_STRICTNESS,
    EndpointSpec,
    Lane,
    Policy,
    base_url_address,
)

__all__ = ["policy_problems"]

_FALLBACK_STRICTNESS = {"stateless": 0, "deny": 1}


def _known(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none defined)"


def _class_order_problems(policy: Policy) -> list[str]:
    order = policy.data_class_order
    problems: list[str] = []
    if not order:
        problems.append(
            "data_class_order: is empty; list the data classes from least to most sensitive, "
            'e.g. ["public", "internal", "confidential", "regulated", "restricted"]'
        )
    seen: set[str] = set()
    for name in order:
        if name in seen:
            problems.append(f"data_class_order: {name!r} is listed twice; list each data class once")
        seen.add(name)
        if name not in policy.data_classes:
            problems.append(
                f"data_class_order: {name!r} has no [data_classes.{name}] table; add one or remove "
                "it from the list"
            )
    for name in policy.data_classes:
        if name not in seen:
            problems.append(
                f"data_classes.{name}: is not listed in data_class_order; add {name!r} at its place "
                "in the sensitivity order"
            )
    return problems


def _scale_problems(classes: Sequence[ClassView]) -> list[str]:
    """A more sensitive class may never be treated more loosely than a less sensitive one."""
    problems: list[str] = []
    for lower, higher in itertools.pairwise(classes):
        if STORED_STATE_STRICTNESS[higher.stored_state] < STORED_STATE_STRICTNESS[lower.stored_state]:
            problems.append(
                f"{higher.stored_state_source}: {higher.stored_state!r} is looser than "
                f"{lower.stored_state!r} of the less sensitive class {lower.name!r}; classes must get "
                f"stricter along data_class_order, set it to {lower.stored_state!r} or stricter"
            )
        if lower.zdr and not higher.zdr:
            problems.append(
                f"{higher.zdr_source}: false, but the less sensitive class {lower.name!r} is zdr; "
                "set zdr = true"
            )
        for setting in ("require_encryption", "delete_after_harvest"):
            if getattr(lower, setting) and not getattr(higher, setting):
                problems.append(
                    f"{getattr(higher, setting + '_source')}: false, but the less sensitive class "
                    f"{lower.name!r} sets it; set {setting} = true"
                )
        if not lower.model_calls and higher.model_calls:
            problems.append(
                f"{higher.model_calls_source}: true, but the less sensitive class {lower.name!r} "
                "forbids model calls; set model_calls = false"
            )
    for cls in classes:
        if cls.zdr and cls.stored_state != "deny":
            problems.append(
                f"{cls.stored_state_source}: {cls.stored_state!r} on a zdr class would let background "
                'reach it; set stored_state = "deny"'
            )
    return problems


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _endpoint_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    for name, endpoint in policy.endpoints.items():
        path = f"endpoints.{name}"
        if endpoint.base_url is not None and base_url_address(endpoint.base_url) is None:
            problems.append(
                f"{path}.base_url: {endpoint.base_url!r} is not an http(s) URL; write it as "
                '"https://host[:port]/v1", or remove it to use OpenAI as the worker is configured'
            )
        if not _ENV_NAME.fullmatch(endpoint.api_key_env):
            problems.append(
                f"{path}.api_key_env: {endpoint.api_key_env!r} is not an environment variable name; "
                'name the variable that holds the key, e.g. "INTERNAL_LLM_API_KEY"'
            )
    return problems


def _profile_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    endpoints = sorted(policy.endpoints)
    for key, profile in policy.profiles.items():
        if profile.name != key:
            problems.append(
                f"profiles.{key}.name: {profile.name!r} differs from the table key; remove name or "
                f"set it to {key!r}"
            )
        endpoint = policy.endpoints.get(profile.endpoint)
        if endpoint is None:
            problems.append(
                f"profiles.{key}.endpoint: {profile.endpoint!r} is not an endpoint; known: "
                f"{_known(endpoints)}; add an [endpoints.{profile.endpoint}] table or name a known one"
            )
        elif profile.background and not endpoint.supports_background:
            problems.append(
                f"profiles.{key}.endpoint: profile {key!r} has background = true but endpoint "
                f"{profile.endpoint!r} has supports_background = false; put the profile on an endpoint "
                "that supports background mode, or make it a stateless profile (background = false, "
                "store = false)"
            )
        if profile.webhooks and not profile.background:
            problems.append(
                f"profiles.{key}.webhooks: the provider sends webhooks for background responses only; "
                "set background = true or remove webhooks"
            )
    return problems


_IMPLICIT_DEFAULT = EndpointSpec.model_validate(IMPLICIT_DEFAULT_ENDPOINT)
"""The default endpoint as the loader adds it when a policy does not declare it."""


def _zdr_endpoint_problems(policy: Policy, view: View) -> dict[str, str]:
    """A zdr class may only reach a model through an endpoint a Zero Data Retention agreement covers.

    Only the stateless lane can carry zdr data (background never reaches a zdr class). So for every zdr
    class that allows model calls, its own stateless profile (``data_classes.<id>.stateless_profile``)
    where it routes one, else the stateless profile of every job type that can take the stateless lane
    at or above whose floor the class lies, must be on a ``zdr_eligible`` endpoint.

    Returns:
        Each problem, keyed by the key path it names (so a tenant's view does not repeat the base's).
    """
    problems: dict[str, str] = {}
    eligible = sorted(name for name, e in policy.endpoints.items() if e.zdr_eligible)
    where = f" for tenant {view.tenant!r}" if view.tenant is not None else ""
    fix = (
        f"use a profile on a zdr_eligible endpoint ({', '.join(eligible)})"
        if eligible
        else "use a profile on an endpoint with zdr_eligible = true"
    )

    def problem(key: str, profile_name: str, endpoint: str, classes: list[str]) -> None:
        undeclared = endpoint == DEFAULT_ENDPOINT and policy.endpoints[endpoint] == _IMPLICIT_DEFAULT
        state = (
            "which the policy does not declare (an undeclared endpoint is never taken as ZDR-eligible)"
            if undeclared
            else "which is not zdr_eligible"
        )
        declare = (
            f"declare [endpoints.{endpoint}] with zdr_eligible = true"
            if undeclared
            else f"set endpoints.{endpoint}.zdr_eligible = true"
        )
        route = (
            f" (for the job type: profiles.stateless; for the class alone: data_classes.{classes[0]}"
            ".stateless_profile)"
            if key.startswith("job_types.")
            else ""
        )
        problems.setdefault(
            key,
            f"{key}: profile {profile_name!r} is on endpoint {endpoint!r}, {state}, "
            f"but zdr class{'es' if len(classes) > 1 else ''} {', '.join(repr(c) for c in classes)} "
            f"{'are' if len(classes) > 1 else 'is'} routed to it{where}; {fix}{route}, or {declare} "
            "if a Zero Data Retention agreement covers it",
        )

    zdr = [c for c in view.classes if c.zdr and c.model_calls]
    for cls in zdr:
        own = cls.stateless_profile
        if own is not None and not policy.endpoints[own.endpoint].zdr_eligible:
            problem(f"data_classes.{cls.name}.stateless_profile", own.name, own.endpoint, [cls.name])
    for name, job in view.jobs.items():
        profile = job.stateless_profile
        if profile is None or policy.endpoints[profile.endpoint].zdr_eligible:
            continue
        routed = [c.name for c in zdr if c.rank >= job.floor_rank and c.stateless_profile is None]
        can_stateless = job.preferred_lane == "stateless" or (
            job.preferred_lane == "background"
            and (job.fallback == "stateless" or not job.long_running.value or not job.needs_retrieval.value)
        )
        if routed and can_stateless:
            problem(f"job_types.{name}.profiles.stateless", profile.name, profile.endpoint, routed)
    return problems


def _class_profile_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    profiles = sorted(policy.profiles)
    for name, cls in policy.data_classes.items():
        ref = cls.stateless_profile
        if ref is None:
            continue
        key = f"data_classes.{name}.stateless_profile"
        profile = policy.profiles.get(ref)
        if profile is None:
            problems.append(f"{key}: {ref!r} is not a profile; known: {_known(profiles)}")
        elif profile.background or profile.store:
            problems.append(
                f"{key}: profile {ref!r} has background={str(profile.background).lower()}, "
                f"store={str(profile.store).lower()}; the stateless lane needs a profile with "
                "background = false and store = false"
            )
    return problems


def _job_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    classes = list(policy.data_class_order)
    profiles = sorted(policy.profiles)
    for name, job in policy.job_types.items():
        path = f"job_types.{name}"
        if job.min_data_class not in policy.data_classes:
            problems.append(
                f"{path}.min_data_class: {job.min_data_class!r} is not a data class; known: {_known(classes)}"
            )
        can_background = job.preferred_lane == "background"
        can_stateless = job.preferred_lane == "stateless" or (
            can_background
            and (job.fallback == "stateless" or not job.long_running or not job.needs_retrieval)
        )
        for lane, needed, wants_background in (
            ("background", can_background, True),
            ("stateless", can_stateless, False),
        ):
            ref = getattr(job.profiles, lane)
            key = f"{path}.profiles.{lane}"
            if ref is None:
                if needed:
                    problems.append(
                        f"{key}: missing, but the job can take the {lane} lane; add "
                        f'{lane} = "<profile>" (known profiles: {_known(profiles)})'
                    )
                continue
            if ref not in policy.profiles:
                problems.append(f"{key}: {ref!r} is not a profile; known: {_known(profiles)}")
                continue
            profile = policy.profiles[ref]
            if wants_background and not (profile.background and profile.store):
                problems.append(
                    f"{key}: profile {ref!r} has background={str(profile.background).lower()}, "
                    f"store={str(profile.store).lower()}; the background lane needs a profile with "
                    "background = true and store = true"
                )
            if not wants_background and (profile.background or profile.store):
                problems.append(
                    f"{key}: profile {ref!r} has background={str(profile.background).lower()}, "
                    f"store={str(profile.store).lower()}; the stateless lane needs a profile with "
                    "background = false and store = false"
                )
    return problems


def _approval_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    classes = list(policy.data_class_order)
    jobs = sorted(policy.job_types)
    non_zdr = [c for c in classes if c in policy.data_classes and not policy.data_classes[c].zdr]
    for ref, approval in policy.approvals.items():
        path = f"approvals.{ref}"
        for job in approval.job_types:
            if job not in policy.job_types:
                problems.append(f"{path}.job_types: {job!r} is not a job type; known: {_known(jobs)}")
        cls = approval.max_data_class
        if cls not in policy.data_classes:
            problems.append(f"{path}.max_data_class: {cls!r} is not a data class; known: {_known(classes)}")
        elif policy.data_classes[cls].zdr:
            fix = f"lower it to {non_zdr[-1]!r}" if non_zdr else "remove the approval"
            problems.append(
                f"{path}.max_data_class: {cls!r} is a zdr class, so background can never be approved "
                f"for it; {fix}"
            )
    return problems


def _tenant_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    classes = list(policy.data_class_order)
    rank = {name: i for i, name in enumerate(classes)}
    jobs = sorted(policy.job_types)
    org = policy.organisation
    for tenant, override in policy.tenants.items():
        path = f"tenants.{tenant}"
        stricter = "a tenant override may only be stricter than the base policy"
        if override.zdr_only is False and org.zdr_only:
            problems.append(
                f"{path}.zdr_only: false is looser than organisation.zdr_only = true; {stricter}, remove it"
            )
        if override.background_enabled is True and not org.background_enabled:
            problems.append(
                f"{path}.background_enabled: true is looser than organisation.background_enabled = "
                f"false; {stricter}, remove it"
            )
        if override.min_data_class is not None and override.min_data_class not in rank:
            problems.append(
                f"{path}.min_data_class: {override.min_data_class!r} is not a data class; known: "
                f"{_known(classes)}"
            )
        for job_name, jov in override.job_types.items():
            jpath = f"{path}.job_types.{job_name}"
            job = policy.job_types.get(job_name)
            if job is None:
                problems.append(f"{jpath}: {job_name!r} is not a job type; known: {_known(jobs)}")
                continue
            if jov.min_data_class is not None:
                if jov.min_data_class not in rank:
                    problems.append(
                        f"{jpath}.min_data_class: {jov.min_data_class!r} is not a data class; known: "
                        f"{_known(classes)}"
                    )
                elif rank[jov.min_data_class] < rank.get(job.min_data_class, 0):
                    problems.append(
                        f"{jpath}.min_data_class: {jov.min_data_class!r} is below the base floor "
                        f"{job.min_data_class!r}; {stricter}, raise it or remove it"
                    )
            if jov.preferred_lane is not None:
                new, old = Lane(jov.preferred_lane), Lane(job.preferred_lane)
                if LANE_STRICTNESS[new] < LANE_STRICTNESS[old]:
                    problems.append(
                        f"{jpath}.preferred_lane: {new.value!r} is looser than the base {old.value!r}; "
                        f"{stricter}, remove it"
                    )
                elif new == Lane.STATELESS and old == Lane.BACKGROUND and job.fallback == "deny":
                    problems.append(
                        f"{jpath}.preferred_lane: 'stateless' would run the job statelessly where the "
                        f"base refuses it (fallback = 'deny'); {stricter}, use 'denied' or remove it"
                    )
            if jov.fallback is not None and (
                _FALLBACK_STRICTNESS[jov.fallback] < _FALLBACK_STRICTNESS[job.fallback]
            ):
                problems.append(
                    f"{jpath}.fallback: {jov.fallback!r} is looser than the base {job.fallback!r}; "
                    f"{stricter}, remove it"
                )
            if jov.background_requires_approval is False and job.background_requires_approval:
                problems.append(
                    f"{jpath}.background_requires_approval: false is looser than the base true; "
                    f"{stricter}, remove it"
                )
        for cls_name, cov in override.data_classes.items():
            cpath = f"{path}.data_classes.{cls_name}"
            base = policy.data_classes.get(cls_name)
            if base is None:
                problems.append(f"{cpath}: {cls_name!r} is not a data class; known: {_known(classes)}")
                continue
            if cov.stored_state is not None and (
                STORED_STATE_STRICTNESS[cov.stored_state] < STORED_STATE_STRICTNESS[base.stored_state]
            ):
                problems.append(
                    f"{cpath}.stored_state: {cov.stored_state!r} is looser than the base "
                    f"{base.stored_state!r}; {stricter}, remove it"
                )
            if cov.zdr is False and base.zdr:
                problems.append(f"{cpath}.zdr: false is looser than the base true; {stricter}, remove it")
            for setting in ("require_encryption", "delete_after_harvest"):
                if getattr(cov, setting) is False and getattr(base, setting):
                    problems.append(
                        f"{cpath}.{setting}: false is looser than the base true; {stricter}, remove it"
                    )
            if cov.model_calls is True and not base.model_calls:
                problems.append(
                    f"{cpath}.model_calls: true is looser than the base false; {stricter}, remove it"
                )
    return problems


def policy_problems(policy: Policy) -> list[str]:
    """Return every cross-table problem of a policy whose keys and types are already valid.

    Args:
        policy: The validated file.

    Returns:
        One ``"<key path>: <problem>; <fix>"`` string per problem, empty when the policy is usable.
    """
    problems = _class_order_problems(policy)
    if problems:
        # Every later check ranks classes; with a broken scale they would only add noise.
        return problems
    problems += _endpoint_problems(policy)
    problems += _profile_problems(policy)
    problems += _class_profile_problems(policy)
    problems += _job_problems(policy)
    problems += _approval_problems(policy)
    problems += _tenant_problems(policy)
    if problems:
        return problems
    base = build_view(policy, None)
    problems += _scale_problems(base.classes)
    if problems:
        return problems
    routed = _zdr_endpoint_problems(policy, base)
    for tenant in policy.tenants:
        # A tenant can make a class zdr (or a job type fall back): check its view too, once per key path.
        for key, problem in _zdr_endpoint_problems(policy, build_view(policy, tenant)).items():
            routed.setdefault(key, problem)
    problems += routed.values()
    for tenant, override in policy.tenants.items():
        if not override.data_classes:
            continue
        for problem in _scale_problems(build_view(policy, tenant).classes):
            # A tenant override can break the scale at a class it did not touch; say whose it is.
            prefix = f"tenants.{tenant}"
            problems.append(
                problem if problem.startswith(prefix) else f"{prefix}: with its overrides, {problem}"
            )
    return problems
