"""Properties of the engine over generated policies and queries (see ``tests.policy.strategies``)."""

import random
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import CompiledPolicy, Lane, PolicyDecision, PolicyQuery, evaluate, load_policy_text
from tests.policy.strategies import datetimes_utc, dump_toml, policy_documents, queries, strictness

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(doc: dict[str, Any]) -> CompiledPolicy:
    return load_policy_text(dump_toml(doc), source="generated.toml")


def _all_queries(doc: dict[str, Any], **fixed: Any) -> list[PolicyQuery]:
    classes = [*doc["data_class_order"], None, "no-such-class"]
    return [PolicyQuery(job_type=job, data_class=cls, **fixed) for job in doc["job_types"] for cls in classes]


@st.composite
def _cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[PolicyQuery], datetime]:
    doc = draw(policy_documents())
    return doc, draw(st.lists(queries(doc), min_size=1, max_size=20)), draw(datetimes_utc())


@SETTINGS
@given(_cases())
def test_decisions_are_consistent_with_their_evidence(case):
    doc, qs, now = case
    policy = _load(doc)
    index = policy.index
    for query in qs:
        d = evaluate(policy, query, now=now)
        view = index.tenants.get(query.tenant or "", index.base)
        cls = view.classes[view.class_rank[d.data_class]]
        if d.lane is Lane.BACKGROUND:
            assert not cls.zdr, "a zdr class never yields background"
            assert d.long_running.value
            assert d.needs_retrieval.value
            assert d.stored_state_acceptable.value
            assert d.profile is not None
            assert d.profile.background
            assert d.profile.store
        elif d.lane is Lane.STATELESS:
            assert d.profile is not None
            assert not d.profile.background
            assert not d.profile.store
        else:
            assert d.profile is None
        assert view.class_rank[d.data_class] >= view.jobs[query.job_type].floor_rank
        if not d.rule.startswith("denied.unknown-"):
            assert (d.require_encryption, d.delete_after_harvest) == (
                cls.require_encryption,
                cls.delete_after_harvest,
            )
        assert d.reasons
        assert d.policy_digest == policy.digest
        assert d.policy_digest.startswith("sha256:")


@SETTINGS
@given(_cases())
def test_raising_the_declared_class_never_loosens(case):
    doc, qs, now = case
    policy = _load(doc)
    classes = doc["data_class_order"]
    for query in qs:
        ranks = [
            strictness(evaluate(policy, query.model_copy(update={"data_class": cls}), now=now))
            for cls in classes
        ]
        assert ranks == sorted(ranks), (query, classes, ranks)


@SETTINGS
@given(_cases())
def test_tenant_overrides_never_loosen(case):
    doc, qs, now = case
    with_tenants = _load(doc)
    # The baseline knows the same tenants, without overrides (an unknown tenant is denied outright).
    without = _load(doc | {"tenants": {tenant: {} for tenant in doc["tenants"]}} if "tenants" in doc else doc)
    for tenant in doc.get("tenants", {}):
        for query in [*qs, *_all_queries(doc)]:
            q = query.model_copy(update={"tenant": tenant})
            tight, base = evaluate(with_tenants, q, now=now), evaluate(without, q, now=now)
            assert strictness(tight) >= strictness(base)
            assert tight.require_encryption >= base.require_encryption
            assert tight.delete_after_harvest >= base.delete_after_harvest


_UNKNOWN = st.text(max_size=12)


@SETTINGS
@given(_cases(), _UNKNOWN, _UNKNOWN)
def test_unknown_data_classes_and_tenants_are_always_denied(case, data_class, tenant):
    doc, qs, now = case
    policy = _load(doc)
    classes, tenants = set(doc["data_class_order"]), set(doc.get("tenants", {}))
    for query in qs:
        if data_class not in classes:
            d = evaluate(policy, query.model_copy(update={"data_class": data_class}), now=now)
            assert (d.lane, d.rule, d.profile) == (Lane.DENIED, "denied.unknown-data-class", None) or (
                query.tenant is not None and query.tenant not in tenants and d.rule == "denied.unknown-tenant"
            )
        if tenant not in tenants:
            d = evaluate(policy, query.model_copy(update={"tenant": tenant}), now=now)
            assert (d.lane, d.rule, d.profile) == (Lane.DENIED, "denied.unknown-tenant", None)


@SETTINGS
@given(_cases(), st.sampled_from(["kill", "zdr"]))
def test_organisation_switches_remove_background_everywhere(case, switch):
    doc, qs, now = case
    doc = {**doc, "organisation": {"zdr_only": switch == "zdr", "background_enabled": switch != "kill"}}
    policy = _load(doc)
    for query in [*qs, *_all_queries(doc)]:
        assert evaluate(policy, query, now=now).lane is not Lane.BACKGROUND


@pytest.mark.long(11)
@SETTINGS
@given(_cases(), st.randoms(use_true_random=False))
def test_same_rules_written_differently_digest_and_decide_the_same(case, rng: random.Random):
    doc, qs, now = case
    plain = _load(doc)
    noisy = load_policy_text(dump_toml(doc, rng=rng), source="other.toml")
    assert plain.digest == noisy.digest
    for query in qs:
        assert evaluate(plain, query, now=now) == evaluate(noisy, query, now=now)
        assert evaluate(plain, query, now=now) == evaluate(plain, query, now=now)
    changed = _load({**doc, "policy_version": doc["policy_version"] + "x"})
    assert changed.digest != plain.digest


@SETTINGS
@given(_cases())
def test_decisions_round_trip_through_json_and_ignore_extra_fields(case):
    doc, qs, now = case
    policy = _load(doc)
    for query in qs:
        d = evaluate(policy, query, now=now)
        assert PolicyDecision.model_validate_json(d.model_dump_json()) == d
        assert PolicyDecision.model_validate(d.model_dump(mode="json") | {"from_the_future": [1]}) == d
