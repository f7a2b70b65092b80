import tomllib
from datetime import UTC, date, datetime
from typing import Any

import pytest

from policy import (
    CompiledPolicy,
    Lane,
    PolicyDecision,
    PolicyFileError,
    PolicyQuery,
    UnknownJobTypeError,
    default_policy_path,
    evaluate,
    load_policy,
    load_policy_text,
)
from policy.rules import RULES
from tests.policy.strategies import dump_toml

NOW = datetime(2026, 4, 24, 12, tzinfo=UTC)


def _doc() -> dict[str, Any]:
    return tomllib.loads(default_policy_path().read_text())


def _load(doc: dict[str, Any]) -> CompiledPolicy:
    return load_policy_text(dump_toml(doc), source="test.toml")


def _with_approval(**approval: Any) -> CompiledPolicy:
    doc = _doc()
    doc["tenants"] = {"acme": {}, "other": {}}
    doc["approvals"] = {
        "SEC-1234": {
            "job_types": ["regulated_review", "sensitive_customer"],
            "max_data_class": "regulated",
            "expires": date(2027, 1, 1),
        }
        | approval
    }
    return _load(doc)


def _decide(policy: CompiledPolicy, **query: Any) -> PolicyDecision:
    return evaluate(policy, PolicyQuery(**query), now=NOW)


def test_background_when_all_three_hold():
    d = _decide(load_policy(), job_type="public_research", data_class="public")
    assert (d.lane, d.rule) == (Lane.BACKGROUND, "background.allowed")
    assert d.long_running.value
    assert d.needs_retrieval.value
    assert d.stored_state_acceptable.value
    assert d.stored_state_acceptable.source == "data_classes.public.stored_state"
    assert d.profile is not None
    assert d.profile.name == "openai-background"
    assert d.limits.max_input_chars == 200_000


def test_decision_carries_policy_identity_and_no_prompt_text():
    policy = load_policy()
    d = _decide(policy, job_type="support_analysis", input_chars=123)
    assert (d.policy_version, d.policy_digest) == (policy.version, policy.digest)
    assert set(PolicyDecision.model_fields) == {
        "lane", "rule", "policy_version", "policy_digest", "policy_signed_by", "job_type",
        "declared_data_class", "data_class", "long_running", "needs_retrieval", "stored_state_acceptable",
        "approval", "tenant", "profile", "limits", "reasons", "require_encryption",
        "delete_after_harvest", "endpoint",
    }  # fmt: skip


def test_fast_construction_equals_a_validated_model():
    for job in load_policy().job_type_names:
        d = _decide(load_policy(), job_type=job, data_class="confidential", tenant="t")
        assert PolicyDecision.model_validate(d.model_dump()) == d
        d = _decide(load_policy(), job_type=job, data_class="confidential")
        assert PolicyDecision.model_validate(d.model_dump()) == d
        assert PolicyDecision.model_validate_json(d.model_dump_json()) == d


@pytest.mark.parametrize(
    ("declared", "effective", "reason"),
    [
        (None, "internal", "No data class declared; using the floor 'internal'"),
        ("public", "internal", "Data class 'public' raised to the floor 'internal'"),
        ("confidential", "confidential", None),
    ],
)
def test_effective_class_is_never_below_the_floor(declared, effective, reason):
    d = _decide(load_policy(), job_type="support_analysis", data_class=declared)
    assert (d.declared_data_class, d.data_class) == (declared, effective)
    if reason:
        assert d.reasons[0].startswith(reason)
        assert "(job_types.support_analysis.min_data_class)" in d.reasons[0]


@pytest.mark.parametrize("declared", ["Restricted", "secret", "", "restricted "])
def test_unknown_data_class_is_denied_by_its_own_rule(declared):
    # It used to be mapped to the job type's floor: "Restricted" ran in the background lane, store=true.
    d = _decide(load_policy(), job_type="public_research", data_class=declared)
    assert (d.lane, d.rule, d.profile, d.approval) == (Lane.DENIED, "denied.unknown-data-class", None, None)
    assert (d.declared_data_class, d.data_class) == (declared, "restricted")
    assert d.stored_state_acceptable.value is False
    assert d.reasons[0] == (
        f"Data class {declared!r} is unknown; known: public, internal, confidential, regulated, restricted "
        "(data_class_order)."
    )


def test_unknown_tenant_is_denied_by_its_own_rule_and_a_missing_one_means_the_base_policy():
    doc = _doc()
    doc["tenants"] = {"acme": {"zdr_only": True}, "globex": {}}
    policy = _load(doc)
    d = _decide(policy, job_type="public_research", data_class="public", tenant="Acme")
    assert (d.lane, d.rule, d.profile, d.tenant) == (Lane.DENIED, "denied.unknown-tenant", None, "Acme")
    assert d.reasons[0] == "Tenant 'Acme' is unknown (no [tenants.Acme] table); known: acme, globex."
    # An unknown tenant is reported even when the class is unknown too: it is checked first.
    assert _decide(policy, job_type="public_research", data_class="x", tenant="x").rule == (
        "denied.unknown-tenant"
    )
    assert _decide(policy, job_type="public_research", tenant="globex").lane is Lane.BACKGROUND
    assert _decide(policy, job_type="public_research").lane is Lane.BACKGROUND
    d = _decide(load_policy(), job_type="public_research", tenant="acme")
    assert d.rule == "denied.unknown-tenant"
    assert d.reasons[0].endswith("known: (none defined).")
    with pytest.raises(UnknownJobTypeError):
        _decide(policy, job_type="foo", tenant="nobody")


def test_unknown_job_type_lists_known_ones():
    with pytest.raises(UnknownJobTypeError) as info:
        _decide(load_policy(), job_type="foo")
    assert info.value.job_type == "foo"
    assert info.value.known == sorted(load_policy().job_type_names)
    assert str(info.value).startswith(
        "unknown job type 'foo'; known: coding_analysis, document_transformation, "
    )


def test_input_too_large_is_denied_with_its_own_rule():
    d = _decide(load_policy(), job_type="public_research", input_chars=200_001)
    assert (d.lane, d.rule, d.profile) == (Lane.DENIED, "denied.input-too-large", None)
    assert "200001 characters exceeds the limit of 200000" in d.reasons[-1]
    assert _decide(load_policy(), job_type="public_research", input_chars=200_000).lane is Lane.BACKGROUND


def test_zdr_class_is_stateless_with_store_false():
    d = _decide(load_policy(), job_type="public_research", data_class="restricted")
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.zdr-class")
    assert d.profile is not None
    assert d.profile.store is False
    assert d.stored_state_acceptable.value is False


def test_approval_grants_background_and_is_recorded():
    policy = _with_approval()
    d = _decide(policy, job_type="regulated_review", approval="SEC-1234")
    assert (d.lane, d.rule, d.approval) == (Lane.BACKGROUND, "background.allowed", "SEC-1234")
    assert d.stored_state_acceptable.source == "approvals.SEC-1234"
    assert d.profile is not None
    assert d.profile.name == "openai-background-poll"


def test_approval_missing():
    d = _decide(_with_approval(), job_type="regulated_review")
    assert (d.lane, d.rule, d.approval) == (Lane.STATELESS, "stateless.approval-missing", None)
    assert d.stored_state_acceptable.source == "data_classes.regulated.stored_state"


def test_job_type_asking_for_approval_is_the_source_when_the_class_allows():
    doc = _doc()
    doc["job_types"]["public_research"]["background_requires_approval"] = True
    d = _decide(_load(doc), job_type="public_research")
    assert d.rule == "stateless.approval-missing"
    assert d.stored_state_acceptable.source == "job_types.public_research.background_requires_approval"


@pytest.mark.parametrize(
    ("approval", "query", "reason"),
    [
        ({}, {"approval": "SEC-9"}, "Approval 'SEC-9' is not listed in the policy."),
        ({"job_types": ["public_research"]}, {}, "Approval 'SEC-1234' does not cover"
        " job type 'regulated_review'."),
        ({"max_data_class": "confidential"}, {}, "Approval 'SEC-1234' covers data up to 'confidential',"
        " not 'regulated'."),
        ({"tenants": ["acme"]}, {"tenant": "other"}, "Approval 'SEC-1234' is limited to tenants acme."),
        ({"expires": date(2026, 4, 24)}, {}, "Approval 'SEC-1234' expired on 2026-04-24."),
    ],
)  # fmt: skip
def test_invalid_approval_says_why(approval, query, reason):
    d = _decide(_with_approval(**approval), job_type="regulated_review", **({"approval": "SEC-1234"} | query))
    assert (d.lane, d.rule, d.approval) == (Lane.STATELESS, "stateless.approval-invalid", None)
    assert d.reasons[-1] == reason


def test_approval_expiry_uses_the_given_now():
    policy = _with_approval(expires=date(2026, 5, 1))
    query = PolicyQuery(job_type="regulated_review", approval="SEC-1234")
    assert evaluate(policy, query, now=datetime(2026, 4, 30, 23, 59)).lane is Lane.BACKGROUND  # naive = UTC
    assert evaluate(policy, query, now=datetime(2026, 5, 1, tzinfo=UTC)).lane is Lane.STATELESS


def test_approval_under_fallback_deny():
    doc = _doc()
    doc["job_types"]["sensitive_customer"]["fallback"] = "deny"
    doc["approvals"] = {
        "SEC-1234": {
            "job_types": ["sensitive_customer"],
            "max_data_class": "regulated",
            "expires": date(2027, 1, 1),
        }
    }
    policy = _load(doc)
    assert _decide(policy, job_type="sensitive_customer").rule == "denied.fallback-deny"
    d = _decide(policy, job_type="sensitive_customer", approval="SEC-1234")
    assert (d.lane, d.approval) == (Lane.BACKGROUND, "SEC-1234")
    assert (
        _decide(policy, job_type="sensitive_customer", data_class="restricted", approval="SEC-1234").lane
        is Lane.DENIED
    )


def test_sensitive_customer_falls_back_to_the_zdr_profile_and_an_approval_still_grants_background():
    policy = _with_approval()
    d = _decide(policy, job_type="sensitive_customer")
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.approval-missing")
    assert d.profile is not None
    assert d.profile.name == "openai-zdr-stateless"
    d = _decide(policy, job_type="sensitive_customer", approval="SEC-1234")
    assert (d.lane, d.approval, d.delete_after_harvest) == (Lane.BACKGROUND, "SEC-1234", True)


def test_kill_switch_and_zdr_only():
    doc = _doc()
    doc["organisation"]["background_enabled"] = False
    d = _decide(_load(doc), job_type="public_research")
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.kill-switch")
    assert "(organisation.background_enabled)" in d.reasons[-1]
    assert _decide(_load(doc), job_type="coding_analysis").rule == "denied.fallback-deny"
    doc["organisation"]["zdr_only"] = True
    d = _decide(_load(doc), job_type="public_research")
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.zdr-only")


def test_other_rules_with_an_edited_policy():
    doc = _doc()
    jobs, classes = doc["job_types"], doc["data_classes"]
    jobs["public_research"]["needs_retrieval"] = False
    jobs["internal_drafting"]["preferred_lane"] = "stateless"
    jobs["support_analysis"]["preferred_lane"] = "denied"
    classes["regulated"]["stored_state"] = "deny"
    classes["restricted"]["model_calls"] = False
    policy = _load(doc)
    assert _decide(policy, job_type="public_research").rule == "stateless.no-retrieval"
    assert _decide(policy, job_type="internal_drafting").rule == "stateless.preferred"
    assert _decide(policy, job_type="support_analysis").rule == "denied.job-type-disabled"
    assert _decide(policy, job_type="coding_analysis", data_class="regulated").rule == "denied.fallback-deny"
    d = _decide(policy, job_type="regulated_review")
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.stored-state-denied")
    d = _decide(policy, job_type="public_research", data_class="restricted")
    assert (d.lane, d.rule, d.profile) == (Lane.DENIED, "denied.model-calls-forbidden", None)


def test_tenant_overrides_apply_only_to_that_tenant():
    doc = _doc()
    doc["tenants"] = {
        "acme": {
            "zdr_only": True,
            "job_types": {"support_analysis": {"fallback": "deny", "min_data_class": "confidential"}},
        },
        "globex": {},
    }
    policy = _load(doc)
    d = _decide(policy, job_type="support_analysis", tenant="acme")
    assert (d.lane, d.rule, d.tenant, d.data_class) == (
        Lane.DENIED,
        "denied.fallback-deny",
        "acme",
        "confidential",
    )
    assert d.reasons[0] == "Overrides of tenant 'acme' apply."
    assert "(tenants.acme.zdr_only)" in d.reasons[-2]
    assert "(tenants.acme.job_types.support_analysis.fallback)" in d.reasons[-1]
    other = _decide(policy, job_type="support_analysis", tenant="globex")
    assert (other.lane, other.tenant) == (Lane.BACKGROUND, "globex")
    assert other.reasons[0] == "Overrides of tenant 'globex' apply."


def test_job_model_overrides_the_profile_model():
    doc = _doc()
    doc["job_types"]["public_research"]["model"] = "gpt-5"
    policy = _load(doc)
    d = _decide(policy, job_type="public_research")
    assert d.profile is not None
    assert (d.profile.name, d.profile.model) == ("openai-background", "gpt-5")
    assert _decide(policy, job_type="internal_drafting").profile.model == "gpt-5-mini"  # type: ignore[union-attr]


def test_every_documented_rule_id_is_produced():
    doc = _doc()
    doc["job_types"]["public_research"]["needs_retrieval"] = False
    doc["job_types"]["internal_drafting"]["preferred_lane"] = "stateless"
    doc["job_types"]["support_analysis"]["preferred_lane"] = "denied"
    doc["job_types"]["document_transformation"]["long_running"] = False
    doc["data_classes"]["restricted"]["model_calls"] = False
    doc["approvals"] = {
        "SEC-1": {
            "job_types": ["coding_analysis"],
            "max_data_class": "regulated",
            "expires": date(2027, 1, 1),
        }
    }
    doc["tenants"] = {"zdr": {"zdr_only": True}, "off": {"background_enabled": False}}
    edited = _load(doc)
    doc["data_classes"]["regulated"]["stored_state"] = "deny"
    doc["data_classes"]["restricted"]["model_calls"] = True
    denying = _load(doc)
    queries: list[tuple[CompiledPolicy, dict[str, Any]]] = [
        (edited, {"job_type": "public_research"}),
        (edited, {"job_type": "internal_drafting"}),
        (edited, {"job_type": "support_analysis"}),
        (edited, {"job_type": "document_transformation"}),
        (edited, {"job_type": "coding_analysis", "data_class": "restricted"}),
        (edited, {"job_type": "coding_analysis", "input_chars": 10**9}),
        (edited, {"job_type": "coding_analysis"}),
        (edited, {"job_type": "coding_analysis", "data_class": "confidential", "approval": "SEC-1"}),
        (edited, {"job_type": "regulated_review"}),
        (edited, {"job_type": "regulated_review", "approval": "SEC-1"}),
        (edited, {"job_type": "coding_analysis", "tenant": "zdr"}),
        (edited, {"job_type": "regulated_review", "tenant": "off"}),
        (edited, {"job_type": "regulated_review", "tenant": "zdr"}),
        (denying, {"job_type": "regulated_review"}),
        (denying, {"job_type": "regulated_review", "data_class": "restricted"}),
        (edited, {"job_type": "regulated_review", "tenant": "nobody"}),
        (load_policy().without_background("test"), {"job_type": "public_research"}),
        (edited, {"job_type": "regulated_review", "data_class": "secret"}),
        (edited, {"job_type": "coding_analysis", "data_class": "internal", "payloads_encrypted": False}),
    ]
    assert {_decide(policy, **query).rule for policy, query in queries} == set(RULES)


def test_now_defaults_to_the_clock():
    policy = _with_approval(expires=date(2000, 1, 1))
    d = evaluate(policy, PolicyQuery(job_type="regulated_review", approval="SEC-1234"))
    assert d.rule == "stateless.approval-invalid"


@pytest.mark.parametrize(
    ("data_class", "encrypt", "delete"),
    [
        ("public", False, False),
        ("internal", True, False),
        ("confidential", True, True),
        ("regulated", True, True),
        ("restricted", True, True),
    ],
)
def test_decision_carries_the_effective_class_encryption_and_deletion(data_class, encrypt, delete):
    d = _decide(_with_approval(), job_type="public_research", data_class=data_class)
    assert (d.data_class, d.require_encryption, d.delete_after_harvest) == (data_class, encrypt, delete)
    # The floor decides when the declared class is lower: regulated_review is at least regulated.
    d = _decide(_with_approval(), job_type="regulated_review", data_class="public", approval="SEC-1234")
    assert (d.lane, d.require_encryption, d.delete_after_harvest) == (Lane.BACKGROUND, True, True)


def test_unknown_class_or_tenant_decisions_require_encryption_and_deletion():
    for query in ({"data_class": "Public"}, {"tenant": "nobody"}):
        d = _decide(load_policy(), job_type="public_research", **query)
        assert (d.require_encryption, d.delete_after_harvest) == (True, True)


def test_encryption_and_deletion_defaults_follow_the_scale_and_stored_state():
    doc = _doc()
    for spec in doc["data_classes"].values():
        del spec["require_encryption"], spec["delete_after_harvest"]
    implicit = _load(doc)
    assert implicit.digest == load_policy().digest  # the shipped file writes the defaults out
    classes = implicit.document.data_classes
    assert [c.require_encryption for c in classes.values()] == [False, True, True, True, True]
    assert [c.delete_after_harvest for c in classes.values()] == [False, False, True, True, True]


def test_tenant_may_only_tighten_encryption_and_deletion():
    doc = _doc()
    doc["tenants"] = {
        "acme": {
            "data_classes": {
                "public": {"require_encryption": True, "delete_after_harvest": True},
                "internal": {"delete_after_harvest": True},  # else the scale would loosen at internal
            }
        }
    }
    policy = _load(doc)
    d = _decide(policy, job_type="public_research", data_class="public", tenant="acme")
    assert (d.lane, d.require_encryption, d.delete_after_harvest) == (Lane.BACKGROUND, True, True)
    assert policy.index.tenants["acme"].classes[0].require_encryption_source == (
        "tenants.acme.data_classes.public.require_encryption"
    )
    doc["tenants"] = {"acme": {"data_classes": {"regulated": {"delete_after_harvest": False}}}}
    with pytest.raises(PolicyFileError) as info:
        _load(doc)
    assert info.value.errors == [
        "test.toml: tenants.acme.data_classes.regulated.delete_after_harvest: false is looser than the "
        "base true; a tenant override may only be stricter than the base policy, remove it"
    ]


def test_encryption_and_deletion_may_not_loosen_up_the_scale():
    doc = _doc()
    doc["data_classes"]["regulated"]["require_encryption"] = False
    doc["data_classes"]["restricted"]["delete_after_harvest"] = False
    with pytest.raises(PolicyFileError) as info:
        _load(doc)
    assert info.value.errors == [
        "test.toml: data_classes.regulated.require_encryption: false, but the less sensitive class "
        "'confidential' sets it; set require_encryption = true",
        "test.toml: data_classes.restricted.delete_after_harvest: false, but the less sensitive class "
        "'regulated' sets it; set delete_after_harvest = true",
    ]


def test_a_class_that_requires_encryption_is_denied_to_a_worker_without_a_key():
    policy = load_policy()
    plain = evaluate(policy, PolicyQuery(job_type="public_research", payloads_encrypted=False))
    assert plain.lane == "background"  # public requires no encryption
    for data_class in ("internal", "confidential", "restricted"):
        refused = evaluate(
            policy,
            PolicyQuery(job_type="support_analysis", data_class=data_class, payloads_encrypted=False),
        )
        assert (refused.lane, refused.rule, refused.profile) == ("denied", "denied.encryption-required", None)
        assert "LANES_ENCRYPTION_KEYS" in " ".join(refused.reasons)
        allowed = evaluate(
            policy, PolicyQuery(job_type="support_analysis", data_class=data_class, payloads_encrypted=True)
        )
        assert allowed.lane != "denied"
