"""The shipped policy, pinned cell by cell: a change here is a policy change and needs review."""

import tomllib
from pathlib import Path

from policy import Lane, PolicyQuery, default_policy_path, evaluate, load_policy
from policy.matrix import decision_matrix

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
        "public": (ST, "stateless.not-long-running"),
        "internal": (ST, "stateless.not-long-running"),
        "confidential": (ST, "stateless.not-long-running"),
        "regulated": (ST, "stateless.not-long-running"),
        "restricted": (ST, "stateless.not-long-running"),
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
    "sensitive_customer": {
        "public": (DN, "denied.fallback-deny"),
        "internal": (DN, "denied.fallback-deny"),
        "confidential": (DN, "denied.fallback-deny"),
        "regulated": (DN, "denied.fallback-deny"),
        "restricted": (DN, "denied.fallback-deny"),
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
    "document_transformation": (ST, "internal"),
    "coding_analysis": (BG, "internal"),
    "support_analysis": (BG, "internal"),
    "regulated_review": (ST, "regulated"),
    "sensitive_customer": (DN, "confidential"),
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
    lanes = set()
    for job, (lane, cls) in DEFAULT_CLASS.items():
        decision = evaluate(policy, PolicyQuery(job_type=job))
        assert (decision.lane.value, decision.data_class) == (lane, cls), job
        lanes.add(decision.lane)
    assert lanes == set(Lane)


def test_a_short_job_is_stateless_even_for_public_data():
    decision = evaluate(load_policy(), PolicyQuery(job_type="document_transformation", data_class="public"))
    assert (decision.lane, decision.rule, decision.data_class) == (
        Lane.STATELESS,
        "stateless.not-long-running",
        "internal",
    )
    assert decision.long_running.value is False


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
