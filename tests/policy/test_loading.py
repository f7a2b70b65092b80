import tomllib
from pathlib import Path

import pytest

from policy import (
    PolicyError,
    PolicyFileError,
    PolicyQuery,
    default_policy_path,
    evaluate,
    load_policy,
    load_policy_text,
)
from tests.policy.strategies import dump_toml

SRC = "policy/default.toml"
DEFAULT = default_policy_path().read_text()
CLASSES = "known: public, internal, confidential, regulated, restricted"


def _errors(text: str) -> list[str]:
    with pytest.raises(PolicyFileError) as info:
        load_policy_text(text, source=SRC)
    assert str(info.value) == "\n".join(info.value.errors)
    assert all(e.startswith(f"{SRC}: ") for e in info.value.errors)
    return info.value.errors


def _edit(old: str, new: str, *, count: int = 1) -> str:
    assert old in DEFAULT
    return DEFAULT.replace(old, new, count)


def test_default_loads_with_source_version_and_digest():
    policy = load_policy()
    assert policy.source == str(default_policy_path())
    assert policy.version == "2026-04-24.2"
    assert len(policy.digest) == len("sha256:") + 64


def test_path_is_kept_as_given(tmp_path: Path):
    (tmp_path / "p.toml").write_text(DEFAULT)
    assert load_policy(tmp_path / "p.toml").source == str(tmp_path / "p.toml")
    assert load_policy(str(tmp_path / "p.toml")).digest == load_policy().digest


def test_errors_are_value_errors():
    assert issubclass(PolicyFileError, PolicyError)
    assert issubclass(PolicyError, ValueError)


def test_missing_file_names_it_and_the_fix(tmp_path: Path):
    with pytest.raises(PolicyFileError) as info:
        load_policy(tmp_path / "nope.toml")
    (error,) = info.value.errors
    assert error.startswith(f"{tmp_path / 'nope.toml'}: cannot read policy file")
    assert "No such file" in error
    assert "pass the path of an existing" in error


def test_toml_syntax_error_has_line_number():
    (error,) = _errors(_edit("zdr_only = false", "zdr_only = "))
    assert "invalid TOML" in error
    assert "line 23" in error
    assert "fix the syntax" in error


def test_unknown_key_is_named_with_known_keys_and_a_suggestion():
    text = _edit("long_running = true", "long_runing = true")
    errors = _errors(text)
    typo = next(e for e in errors if "unknown key" in e)
    assert typo == (
        f"{SRC}: job_types.public_research.long_runing: unknown key 'long_runing'; known keys: "
        "background_requires_approval, description, fallback, limits, long_running, min_data_class, "
        "model, needs_retrieval, preferred_lane, profiles; did you mean 'long_running'?"
    )
    assert f"{SRC}: job_types.public_research.long_running: required key is missing" in "\n".join(errors)


def test_unknown_top_level_key():
    (error,) = _errors("polcy_version = 'x'\n" + DEFAULT)
    assert "polcy_version: unknown key 'polcy_version'" in error
    assert "did you mean 'policy_version'?" in error


def test_wrong_type_says_what_is_expected():
    (error,) = _errors(_edit("zdr_only = false", 'zdr_only = "no"'))
    assert (
        error == f"{SRC}: organisation.zdr_only: expected true or false, got 'no' (string);"
        " write it as true or false"
    )
    (error,) = _errors(_edit("max_input_chars = 200000", "max_input_chars = 2e5"))
    assert (
        "job_types.public_research.limits.max_input_chars: expected an integer, got 200000.0 (float)" in error
    )


def test_unknown_data_class_reference():
    (error,) = _errors(_edit('min_data_class = "regulated"', 'min_data_class = "secret"'))
    assert (
        error == f"{SRC}: job_types.regulated_review.min_data_class: 'secret' is not a data class; {CLASSES}"
    )


def test_unknown_profile_reference():
    (error,) = _errors(
        _edit('profiles = { background = "openai-background-poll" }', 'profiles = { background = "bg" }')
    )
    assert error == (
        f"{SRC}: job_types.coding_analysis.profiles.background: 'bg' is not a profile; known: "
        "openai-background, openai-background-poll, openai-stateless, openai-zdr-stateless"
    )


def test_unknown_lane():
    (error,) = _errors(_edit('preferred_lane = "background"', 'preferred_lane = "batch"'))
    assert (
        error == f"{SRC}: job_types.public_research.preferred_lane: 'batch' is not a lane;"
        " known: background, stateless, denied"
    )
    errors = _errors(
        _edit('profiles = { background = "openai-background-poll" }', 'profiles = { batch = "x" }')
    )
    assert any(
        "job_types.coding_analysis.profiles.batch: unknown key 'batch'; known keys: background, stateless"
        in e
        for e in errors
    )


def test_lane_profile_must_fit_the_lane():
    errors = _errors(_edit('stateless = "openai-stateless" }', 'stateless = "openai-background" }'))
    assert errors[0] == (
        f"{SRC}: job_types.public_research.profiles.stateless: profile 'openai-background' has "
        "background=true, store=true;"
        " the stateless lane needs a profile with background = false and store = false"
    )


def test_missing_profile_for_a_reachable_lane():
    (error,) = _errors(
        _edit(
            'profiles = { background = "openai-background", stateless = "openai-stateless" }',
            'profiles = { background = "openai-background" }',
        )
    )
    assert (
        "job_types.public_research.profiles.stateless: missing, but the job can take the stateless lane"
        in error
    )


def test_zdr_class_must_deny_stored_state():
    errors = _errors(_edit('stored_state = "deny"', 'stored_state = "review"'))
    assert errors == [
        f"{SRC}: data_classes.restricted.stored_state: 'review' on a zdr class"
        " would let background reach it; "
        'set stored_state = "deny"'
    ]


def test_approval_cannot_reach_a_zdr_class_or_unknown_job_type():
    errors = _errors(
        DEFAULT
        + '\n[approvals.SEC-1]\njob_types = ["legal"]\nmax_data_class = "restricted"\nexpires = 2027-01-01\n'
    )
    assert errors == [
        f"{SRC}: approvals.SEC-1.job_types: 'legal' is not a job type; known: coding_analysis, "
        "document_transformation, internal_drafting, public_research, regulated_review, "
        "review_gated_generation, sensitive_customer, support_analysis",
        f"{SRC}: approvals.SEC-1.max_data_class: 'restricted' is a zdr class, so background can never be "
        "approved for it; lower it to 'regulated'",
    ]


def test_scale_must_get_stricter():
    (error,) = _errors(_edit('stored_state = "review"', 'stored_state = "deny"'))
    assert (
        "data_classes.regulated.stored_state: 'review' is looser than 'deny'"
        " of the less sensitive class 'confidential'" in error
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "[tenants.acme.job_types.coding_analysis]\nfallback = 'stateless'",
            "tenants.acme.job_types.coding_analysis.fallback: 'stateless' is looser than the base 'deny'"
            "; a tenant override may only be stricter than the base policy, remove it",
        ),
        (
            "[tenants.acme.job_types.regulated_review]\nmin_data_class = 'public'",
            "tenants.acme.job_types.regulated_review.min_data_class: 'public'"
            " is below the base floor 'regulated'",
        ),
        (
            "[tenants.acme.data_classes.restricted]\nzdr = false",
            "tenants.acme.data_classes.restricted.zdr: false is looser than the base true",
        ),
        (
            "[tenants.acme.data_classes.confidential]\nstored_state = 'allow'",
            "tenants.acme.data_classes.confidential.stored_state: 'allow' is looser than the base 'review'",
        ),
        (
            "[tenants.acme.job_types.coding_analysis]\npreferred_lane = 'stateless'",
            "tenants.acme.job_types.coding_analysis.preferred_lane: 'stateless'"
            " would run the job statelessly where the base refuses it",
        ),
        (
            "[tenants.acme.job_types.regulated_review]\nbackground_requires_approval = false",
            "background_requires_approval: false is looser than the base true",
        ),
        (
            "[tenants.acme.job_types.nope]\nfallback = 'deny'",
            "tenants.acme.job_types.nope: 'nope' is not a job type",
        ),
        (
            "[tenants.acme.data_classes.internal]\nstored_state = 'deny'",
            "tenants.acme: with its overrides, data_classes.confidential.stored_state: 'review'"
            " is looser than 'deny'",
        ),
    ],
)
def test_tenant_override_looser_than_base(override: str, expected: str):
    (error,) = _errors(DEFAULT + "\n" + override + "\n")
    assert expected in error


def test_looser_org_switch_in_tenant():
    text = (
        _edit("background_enabled = true", "background_enabled = false")
        + "\n[tenants.acme]\nbackground_enabled = true\n"
    )
    (error,) = _errors(text)
    assert (
        "tenants.acme.background_enabled: true is looser than organisation.background_enabled = false"
        in error
    )


def test_duplicate_and_empty_class_order():
    (dup,) = _errors(_edit('"restricted"]', '"restricted", "public"]'))
    assert dup == f"{SRC}: data_class_order: 'public' is listed twice; list each data class once"
    empty = _errors(
        _edit(
            'data_class_order = ["public", "internal", "confidential", "regulated", "restricted"]',
            "data_class_order = []",
        )
    )
    assert empty[0].startswith(
        f"{SRC}: data_class_order: is empty; list the data classes from least to most sensitive"
    )
    assert f"{SRC}: data_classes.public: is not listed in data_class_order; add 'public'" in empty[1]


def test_class_order_naming_an_undefined_class():
    (error,) = _errors(_edit('"restricted"]', '"restricted", "secret"]'))
    assert (
        error == f"{SRC}: data_class_order: 'secret' has no [data_classes.secret] table"
        "; add one or remove it from the list"
    )


def test_missing_policy_version():
    (error,) = _errors(_edit('policy_version = "2026-04-24.2"', ""))
    assert (
        error
        == f"{SRC}: policy_version: required key is missing; add `policy_version = ...` to the top level"
    )


def test_every_error_is_reported_at_once():
    text = _edit("zdr_only = false", "zdr_only = 1")
    text = text.replace("long_running = true", 'long_running = "no"', 1)
    assert len(_errors(text)) == 2


def test_digest_ignores_layout_but_not_values():
    doc = tomllib.loads(DEFAULT)
    rewritten = dump_toml(doc)
    assert load_policy_text(rewritten, source="x").digest == load_policy().digest
    doc["job_types"]["public_research"]["limits"]["max_input_chars"] += 1
    assert load_policy_text(dump_toml(doc), source="x").digest != load_policy().digest


def test_digest_ignores_explicit_defaults_and_int_vs_float():
    doc = tomllib.loads(DEFAULT)
    del doc["data_classes"]["public"]["zdr"]
    doc["job_types"]["public_research"]["limits"]["max_duration_s"] = 3600.0
    assert load_policy_text(dump_toml(doc), source="x").digest == load_policy().digest


def test_unknown_rerun_cause_is_named_with_the_allowed_ones():
    errors = _errors(_edit('rerun_on = ["rate_limit_exceeded", "stuck_queued"]', 'rerun_on = ["timeout"]'))
    assert len(errors) == 1
    assert "job_types.internal_drafting.limits.rerun_on[0]: 'timeout' is not allowed here" in errors[0]
    assert "known: rate_limit_exceeded, server_error, stuck_queued, result_expired" in errors[0]


def test_reruns_are_bounded():
    errors = _errors(_edit("max_reruns = 1", "max_reruns = 50"))
    assert "job_types.public_research.limits.max_reruns" in errors[0]


POLL_PROFILE = (
    "[profiles.openai-background-poll]\n"
    "# No UI follows the stream: the worker polls and fetches the result later.\n"
    "background = true\n"
)


def test_webhook_profile_reaches_the_decision():
    policy = load_policy_text(
        _edit(POLL_PROFILE, POLL_PROFILE + "webhooks = true\nwebhook_poll_interval_s = 600\n"), source=SRC
    )
    decision = evaluate(policy, PolicyQuery(job_type="coding_analysis", data_class="internal"))
    assert decision.profile is not None
    assert decision.profile.webhooks
    assert decision.profile.webhook_poll_interval_s == 600
    assert policy.digest != load_policy().digest


def test_webhooks_need_a_background_profile():
    stateless = "[profiles.openai-stateless]\nbackground = false\n"
    (error,) = _errors(_edit(stateless, stateless + "webhooks = true\n"))
    assert "profiles.openai-stateless.webhooks" in error
    assert "set background = true or remove webhooks" in error


def test_webhook_poll_interval_is_bounded():
    (error,) = _errors(_edit(POLL_PROFILE, POLL_PROFILE + "webhooks = true\nwebhook_poll_interval_s = 0\n"))
    assert "webhook_poll_interval_s" in error
