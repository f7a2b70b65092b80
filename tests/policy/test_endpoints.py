"""Provider endpoints in the policy: the default keeps old policies as they were, the loader refuses a zdr
class on an endpoint no ZDR agreement covers and a background profile on an endpoint without background
mode, and every decision records where its calls go."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import (
    DEFAULT_ENDPOINT,
    Lane,
    PolicyDecision,
    PolicyFileError,
    PolicyQuery,
    default_policy_path,
    evaluate,
    load_policy,
    load_policy_text,
)
from policy.digest import canonical_json
from policy.matrix import decision_matrix
from policy.models import base_url_address
from tests.policy.strategies import dump_toml, policy_documents

SRC = "p.toml"
DEFAULT = default_policy_path().read_text()
EXAMPLE = Path(__file__).resolve().parents[2] / "policy" / "examples" / "internal_endpoint.toml"

OPENAI_NOT_ZDR = """
[endpoints.openai]
api_key_env = "OPENAI_API_KEY"
zdr_eligible = false
supports_background = true
"""

INTERNAL = """
[endpoints.internal]
base_url = "http://10.0.0.7:8000/v1"
api_key_env = "INTERNAL_LLM_API_KEY"
zdr_eligible = true
supports_background = false

[profiles.internal-stateless]
background = false
store = false
endpoint = "internal"
model = "local-model"
"""


ZDR_CLASS = "zdr = true\nmodel_calls = true"
ROUTED = '\nstateless_profile = "internal-stateless"'
RESTRICTED_ROUTE = (
    "# Only ever sent to the ZDR project (endpoints.openai-zdr), whichever job type runs it.\n"
    'stateless_profile = "openai-zdr-stateless"\n'
)


def _legacy(text: str = DEFAULT) -> str:
    """The default policy as written before it declared endpoints: every profile on the implicit one."""
    start, end = text.index("# --- provider endpoints"), text.index("# --- provider profiles")
    text = text[:start] + text[end:]
    assert RESTRICTED_ROUTE in text
    assert 'endpoint = "openai-zdr"\n' in text
    return text.replace('endpoint = "openai-zdr"\n', "").replace(RESTRICTED_ROUTE, "")


def _errors(text: str) -> list[str]:
    with pytest.raises(PolicyFileError) as info:
        load_policy_text(text, source=SRC)
    assert all(e.startswith(f"{SRC}: ") for e in info.value.errors)
    return info.value.errors


def _with(extra: str, text: str = DEFAULT) -> str:
    # Tables appended at the end of the file: after the last table of the default policy.
    return text + "\n" + extra


def test_the_default_policy_declares_its_endpoints_and_sends_zdr_data_only_to_the_zdr_project():
    policy = load_policy()
    endpoints = {
        name: (e.api_key_env, e.base_url, e.zdr_eligible, e.supports_background)
        for name, e in policy.document.endpoints.items()
    }
    assert endpoints == {
        "openai": ("OPENAI_API_KEY", None, False, True),
        "openai-zdr": ("OPENAI_ZDR_API_KEY", None, True, False),
    }
    zdr = {c.name for c in policy.index.base.classes if c.zdr}
    assert zdr == {"restricted"}
    for job, row in decision_matrix(policy).items():
        for cls, d in row.items():
            if d.lane is Lane.DENIED:
                assert d.endpoint is None
                continue
            assert d.endpoint is not None, (job, cls)
            assert d.profile is not None, (job, cls)
            assert d.endpoint.name == d.profile.endpoint
            assert d.endpoint.zdr_eligible is (d.endpoint.name == "openai-zdr")
            # The URL is the worker's setting: the worker's policy activity fills in the host.
            assert (d.endpoint.host, d.endpoint.port) == (None, None)
            if cls in zdr:
                assert d.endpoint.name == "openai-zdr", (job, cls)
            if d.lane is Lane.BACKGROUND:
                assert d.endpoint.name == "openai", (job, cls)


def test_an_undeclared_endpoint_is_never_taken_as_zdr_eligible():
    # The default policy as it was before it declared its endpoints: restricted data went to the implicit
    # openai endpoint on the assumption that its project had Zero Data Retention. Refused, naming the keys.
    errors = _errors(_legacy())
    assert len(errors) == 7
    assert (
        "p.toml: job_types.public_research.profiles.stateless: profile 'openai-stateless' is on endpoint "
        "'openai', which the policy does not declare (an undeclared endpoint is never taken as "
        "ZDR-eligible), but zdr class 'restricted' is routed to it; use a profile on an endpoint with "
        "zdr_eligible = true (for the job type: profiles.stateless; for the class alone: "
        "data_classes.restricted.stateless_profile), or declare [endpoints.openai] with zdr_eligible = "
        "true if a Zero Data Retention agreement covers it"
    ) in errors
    # coding_analysis denies restricted data (fallback = "deny"): nothing of it reaches a model.
    assert not any("coding_analysis" in e for e in errors)


NO_ZDR_CLASS = "zdr = false\nmodel_calls = true"


def test_policies_without_endpoints_keep_their_digest():
    # A policy without zdr classes needs no endpoint: nothing about endpoints enters its canonical JSON,
    # so its digest is the one computed before endpoints existed (decisions in saved histories carry it).
    policy = load_policy_text(_legacy().replace(ZDR_CLASS, NO_ZDR_CLASS), source=SRC)
    assert '"endpoint' not in canonical_json(policy.document)
    assert policy.digest == LEGACY_DIGEST
    for row in decision_matrix(policy).values():
        for d in row.values():
            if d.lane is not Lane.DENIED:
                assert d.endpoint is not None
                assert (d.endpoint.name, d.endpoint.zdr_eligible) == (DEFAULT_ENDPOINT, False)


LEGACY_DIGEST = "sha256:68040be4cdd63729904992b50e6d2f142a71b2ecc7939241d4fce177ba2c64e7"
"""The digest of that policy as the code before endpoints computed it."""


def test_declaring_the_default_endpoint_as_it_is_leaves_the_digest_unchanged():
    legacy = _legacy().replace(ZDR_CLASS, NO_ZDR_CLASS)
    explicit = _with(
        """
[endpoints.openai]
description = "OpenAI as configured by OPENAI_API_KEY and OPENAI_BASE_URL."
api_key_env = "OPENAI_API_KEY"
zdr_eligible = false
supports_background = true
""",
        legacy,
    ).replace("[profiles.openai-stateless]\n", '[profiles.openai-stateless]\nendpoint = "openai"\n')
    digest = load_policy_text(legacy, source=SRC).digest
    assert load_policy_text(explicit, source=SRC).digest == digest
    # Any real change of the endpoint is a change of the rules.
    changed = explicit.replace('api_key_env = "OPENAI_API_KEY"', 'api_key_env = "OPENAI_KEY_2"')
    assert load_policy_text(changed, source=SRC).digest != digest


def test_old_decisions_without_an_endpoint_still_decode_and_name_the_default():
    decision = evaluate(load_policy(), PolicyQuery(job_type="public_research"))
    old = decision.model_dump(mode="json")
    del old["endpoint"]
    del old["profile"]["endpoint"]
    decoded = PolicyDecision.model_validate(old)
    assert decoded.endpoint is None
    assert decoded.endpoint_name == DEFAULT_ENDPOINT
    assert decoded.profile is not None
    assert decoded.profile.endpoint == DEFAULT_ENDPOINT


def test_a_zdr_class_on_an_endpoint_that_is_not_zdr_eligible_is_refused():
    # The default policy without its route for restricted data: the job types' openai profiles carry it.
    errors = _errors(DEFAULT.replace(RESTRICTED_ROUTE, ""))
    # Every job type whose stateless lane carries restricted data is named, with its profile and the fix;
    # sensitive_customer's own stateless profile is on the ZDR project already.
    assert len(errors) == 6
    assert (
        "p.toml: job_types.public_research.profiles.stateless: profile 'openai-stateless' is on endpoint "
        "'openai', which is not zdr_eligible, but zdr class 'restricted' is routed to it; use a profile "
        "on a zdr_eligible endpoint (openai-zdr) (for the job type: profiles.stateless; for the class "
        "alone: data_classes.restricted.stateless_profile), or set endpoints.openai.zdr_eligible = true "
        "if a Zero Data Retention agreement covers it"
    ) in errors
    assert not any("coding_analysis" in e or "sensitive_customer" in e for e in errors)


def test_routing_the_zdr_class_to_an_eligible_endpoint_loads():
    text = _with(OPENAI_NOT_ZDR + INTERNAL, _legacy()).replace(ZDR_CLASS, ZDR_CLASS + ROUTED)
    policy = load_policy_text(text, source=SRC)
    d = evaluate(policy, PolicyQuery(job_type="support_analysis", data_class="restricted"))
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.zdr-class")
    assert d.profile is not None
    assert d.profile.name == "internal-stateless"
    assert d.profile.model == "local-model"  # the class's profile keeps its own model
    assert d.endpoint is not None
    assert (d.endpoint.name, d.endpoint.host, d.endpoint.port, d.endpoint.zdr_eligible) == (
        "internal",
        "10.0.0.7",
        8000,
        True,
    )
    assert any("stateless_profile" in r for r in d.reasons)
    confidential = evaluate(policy, PolicyQuery(job_type="support_analysis", data_class="confidential"))
    assert confidential.endpoint is not None
    assert confidential.endpoint.name == "openai"


def test_a_class_routed_to_a_non_eligible_endpoint_is_refused_at_the_class():
    text = _with(INTERNAL.replace("zdr_eligible = true", "zdr_eligible = false"), _legacy()).replace(
        ZDR_CLASS, ZDR_CLASS + ROUTED
    )
    errors = _errors(text)
    assert errors == [
        "p.toml: data_classes.restricted.stateless_profile: profile 'internal-stateless' is on endpoint "
        "'internal', which is not zdr_eligible, but zdr class 'restricted' is routed to it; use a "
        "profile on an endpoint with zdr_eligible = true, or set endpoints.internal.zdr_eligible = true "
        "if a Zero Data Retention agreement covers it"
    ]


def test_a_tenant_that_makes_a_class_zdr_is_checked_too():
    # openai may carry zdr data in the base policy only because internal carries it; the tenant turns
    # confidential into a zdr class, which the job types' openai stateless profiles would then carry.
    text = _with(
        OPENAI_NOT_ZDR
        + INTERNAL
        + '\n[tenants.acme.data_classes.confidential]\nstored_state = "deny"\nzdr = true\n'
        + '[tenants.acme.data_classes.regulated]\nstored_state = "deny"\nzdr = true\n',
        _legacy(),
    ).replace(ZDR_CLASS, ZDR_CLASS + ROUTED)
    errors = _errors(text)
    assert errors
    assert len(errors) == 7
    assert all("for tenant 'acme'" in e and "'regulated'" in e for e in errors)
    assert "zdr classes 'confidential', 'regulated' are routed to it for tenant 'acme'" in errors[0]


def test_a_background_profile_on_an_endpoint_without_background_is_refused():
    text = _with(
        INTERNAL
        + '\n[profiles.internal-background]\nbackground = true\nstore = true\nendpoint = "internal"\n'
    )
    assert _errors(text) == [
        "p.toml: profiles.internal-background.endpoint: profile 'internal-background' has background = "
        "true but endpoint 'internal' has supports_background = false; put the profile on an endpoint "
        "that supports background mode, or make it a stateless profile (background = false, store = false)"
    ]


def test_endpoint_references_and_values_are_checked():
    text = _with(
        """
[endpoints.vendor]
base_url = "ftp://vendor.example/v1"
api_key_env = "VENDOR KEY"
zdr_eligible = true
supports_background = false

[profiles.lost]
background = false
store = false
endpoint = "nowhere"
"""
    )
    errors = _errors(text)
    assert (
        "p.toml: endpoints.vendor.base_url: 'ftp://vendor.example/v1' is not an http(s) URL; write it as "
        '"https://host[:port]/v1", or remove it to use OpenAI as the worker is configured'
    ) in errors
    assert any(e.startswith("p.toml: endpoints.vendor.api_key_env: 'VENDOR KEY' is not") for e in errors)
    assert (
        "p.toml: profiles.lost.endpoint: 'nowhere' is not an endpoint; known: openai, openai-zdr, vendor; "
        "add an "
        "[endpoints.nowhere] table or name a known one"
    ) in errors


def test_a_declared_endpoint_must_say_its_key_and_what_it_supports():
    errors = _errors(_with('[endpoints.internal]\nbase_url = "http://x:1/v1"\n'))
    assert sorted(errors) == [
        "p.toml: endpoints.internal.api_key_env: required key is missing; add `api_key_env = ...` to "
        "[endpoints.internal]",
        "p.toml: endpoints.internal.supports_background: required key is missing; add "
        "`supports_background = ...` to [endpoints.internal]",
        "p.toml: endpoints.internal.zdr_eligible: required key is missing; add `zdr_eligible = ...` to "
        "[endpoints.internal]",
    ]


def test_the_example_policy_routes_restricted_data_to_the_internal_endpoint():
    policy = load_policy(EXAMPLE)
    for job, row in decision_matrix(policy).items():
        for cls, d in row.items():
            assert d.endpoint is not None, (job, cls)
            assert d.endpoint.name == ("internal" if cls == "restricted" else "openai"), (job, cls)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://api.openai.com/v1", ("api.openai.com", 443)),
        ("http://127.0.0.1:8788/v1", ("127.0.0.1", 8788)),
        ("http://[::1]:9000/v1", ("::1", 9000)),
        ("http://llm.internal", ("llm.internal", 80)),
        ("https://x/v1?key=1", None),
        ("http://x:99999/v1", None),
        ("llm.internal:8000", None),
    ],
)
def test_base_url_address(url: str, address: tuple[str, int] | None):
    assert base_url_address(url) == address


# --- property: whatever the endpoints say, a loaded policy never sends data where it may not go -------


@st.composite
def _with_endpoints(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(policy_documents()))
    endpoints = {
        name: {
            "base_url": f"http://{name}.example:{8000 + i}/v1",
            "api_key_env": f"{name.upper()}_KEY",
            "zdr_eligible": draw(st.booleans()),
            "supports_background": draw(st.booleans()),
        }
        for i, name in enumerate(("openai", "internal", "vendor"))
    }
    doc["endpoints"] = endpoints
    for profile in doc["profiles"].values():
        profile["endpoint"] = draw(st.sampled_from(sorted(endpoints)))
    doc["profiles"]["st-zdr"] = {"background": False, "store": False, "endpoint": "internal"}
    for cls in doc["data_classes"].values():
        if draw(st.booleans()):
            cls["stateless_profile"] = draw(st.sampled_from(["st", "st-zdr"]))
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_with_endpoints())
def test_a_loaded_policy_sends_zdr_data_and_background_only_where_allowed(doc: dict[str, Any]):
    text = dump_toml(doc)
    try:
        policy = load_policy_text(text, source="generated.toml")
    except PolicyFileError as exc:
        errors = exc.errors
    else:
        errors = []
    if errors:
        # Refused only for endpoint reasons: the generated rules are otherwise valid.
        assert all("endpoint" in e for e in errors), errors
        return
    endpoints = doc["endpoints"]
    views = [policy.index.base, *policy.index.tenants.values()]
    for view in views:
        for job in doc["job_types"]:
            for cls in view.classes:
                d = evaluate(policy, PolicyQuery(job_type=job, data_class=cls.name, tenant=view.tenant))
                if d.lane is Lane.DENIED:
                    assert d.endpoint is None
                    continue
                assert d.endpoint is not None
                assert d.profile is not None
                assert d.endpoint.name == d.profile.endpoint
                spec = endpoints[d.endpoint.name]
                assert (d.endpoint.host, d.endpoint.zdr_eligible) == (
                    f"{d.endpoint.name}.example",
                    spec["zdr_eligible"],
                )
                effective = view.classes[view.class_rank[d.data_class]]
                if effective.zdr:
                    assert spec["zdr_eligible"], (job, cls.name, d.profile.name)
                if d.lane is Lane.BACKGROUND:
                    assert spec["supports_background"], (job, cls.name, d.profile.name)
