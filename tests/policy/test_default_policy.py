"""The shipped policy, pinned cell by cell: a change here is a policy change and needs review."""

import tomllib
from pathlib import Path

from policy import Lane, PolicyQuery, default_policy_path, evaluate, load_policy, load_policy_text
from policy.matrix import decision_matrix
from tests.policy.strategies import dump_toml

BG, ST, DN = "background", "stateless", "denied"

GOLDEN = {
    "coding_analysis": {
        "public": (BG, "background.allowed"),
        "internal": (BG, "background.allowed"),
        "confidential": (DN, "denied.fallback-deny"),
        "regulated": (DN, "denied.fallback-deny"),
        "restricted": (DN, "denied.fallback-deny"),
    },
    "document_transformation": {
        "public": (BG, "background.allowed"),
        "internal": (BG, "background.allowed"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
    "internal_drafting": {
        "public": (BG, "background.allowed"),
        "internal": (BG, "background.allowed"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
    "public_research": {
        "public": (BG, "background.allowed"),
        "internal": (BG, "background.allowed"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
    "regulated_review": {
        "public": (ST, "stateless.approval-missing"),
        "internal": (ST, "stateless.approval-missing"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
    "review_gated_generation": {
        "public": (BG, "background.allowed"),
        "internal": (BG, "background.allowed"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
    "sensitive_customer": {
        "public": (ST, "stateless.approval-missing"),
        "internal": (ST, "stateless.approval-missing"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
    "support_analysis": {
        "public": (BG, "background.allowed"),
        "internal": (BG, "background.allowed"),
        "confidential": (ST, "stateless.approval-missing"),
        "regulated": (ST, "stateless.approval-missing"),
        "restricted": (ST, "stateless.zdr-class"),
    },
}

DEFAULT_CLASS = {
    "public_research": (BG, "public"),
    "internal_drafting": (BG, "internal"),
    "document_transformation": (BG, "internal"),
    "review_gated_generation": (BG, "internal"),
    "coding_analysis": (BG, "internal"),
    "support_analysis": (BG, "internal"),
    "regulated_review": (ST, "regulated"),
    "sensitive_customer": (ST, "confidential"),
}


def test_full_matrix_is_the_golden_one():
    matrix = decision_matrix(load_policy())
    got = {job: {cls: (d.lane.value, d.rule) for cls, d in row.items()} for job, row in matrix.items()}
    assert got == GOLDEN


def test_ids_are_the_documented_ones():
    policy = load_policy()
    assert policy.class_names == ["public", "internal", "confidential", "regulated", "restricted"]
    assert list(policy.document.data_classes) == policy.class_names
    assert set(policy.job_type_names) == set(DEFAULT_CLASS)


def test_each_job_type_at_its_default_class_and_every_lane_is_reached():
    policy = load_policy()
    for job, (lane, cls) in DEFAULT_CLASS.items():
        decision = evaluate(policy, PolicyQuery(job_type=job))
        assert (decision.lane.value, decision.data_class) == (lane, cls), job
    lanes = {d.lane for row in decision_matrix(policy).values() for d in row.values()}
    assert lanes == set(Lane)


def test_every_workload_the_article_fits_to_background_reaches_it_where_retention_is_allowed():
    # "Background mode can be a good fit for: long research ...; document transformation where retention
    # is allowed; internal report drafting; coding-agent analysis ...; review-gated generation ..."
    matrix = decision_matrix(load_policy())
    for job in (
        "public_research",
        "document_transformation",
        "internal_drafting",
        "coding_analysis",
        "review_gated_generation",
    ):
        assert matrix[job]["internal"].lane is Lane.BACKGROUND, job
    assert matrix["document_transformation"]["internal"].long_running.value is True


def test_sensitive_work_falls_back_to_a_zdr_stateless_profile_but_never_where_models_are_forbidden():
    policy = load_policy()
    for cls in policy.class_names:
        d = evaluate(policy, PolicyQuery(job_type="sensitive_customer", data_class=cls))
        assert d.lane is Lane.STATELESS
        assert d.profile is not None
        assert (d.profile.name, d.profile.background, d.profile.store) == (
            "openai-zdr-stateless",
            False,
            False,
        )
    doc = tomllib.loads(default_policy_path().read_text())
    doc["data_classes"]["restricted"]["model_calls"] = False
    edited = load_policy_text(dump_toml(doc), source="edited.toml")
    d = evaluate(edited, PolicyQuery(job_type="sensitive_customer", data_class="restricted"))
    assert (d.lane, d.rule) == (Lane.DENIED, "denied.model-calls-forbidden")


def test_background_profiles_store_and_stateless_profiles_do_not():
    policy = load_policy()
    for row in decision_matrix(policy).values():
        for decision in row.values():
            if decision.lane is Lane.BACKGROUND:
                assert decision.profile is not None
                assert decision.profile.background
                assert decision.profile.store
            elif decision.lane is Lane.STATELESS:
                assert decision.profile is not None
                assert not decision.profile.store
                assert not decision.profile.background
            else:
                assert decision.profile is None


def test_default_path_is_the_shipped_file_and_it_quotes_its_source():
    path = default_policy_path()
    assert path == Path(__file__).parents[2] / "policy" / "default.toml"
    text = path.read_text()
    assert "All three need to be true" in text
    assert tomllib.loads(text)["policy_version"] == load_policy().version
    assert load_policy().digest.startswith("sha256:")
