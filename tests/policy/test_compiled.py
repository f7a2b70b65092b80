"""The compiled policy is the only thing the engine decides with, and it cannot skip the cross-checks."""

import dataclasses
import tomllib
from typing import Any

import pytest

from policy import (
    CompiledPolicy,
    Policy,
    PolicyFileError,
    PolicyQuery,
    PolicySource,
    default_policy_path,
    evaluate,
    load_policy,
)
from policy.diff import diff_policies
from policy.matrix import decision_matrix


def _doc() -> dict[str, Any]:
    return tomllib.loads(default_policy_path().read_text())


def _unchecked() -> Policy:
    """A document pydantic accepts but the cross-checks refuse: a job type's floor is no data class."""
    doc = _doc()
    doc["job_types"]["public_research"]["min_data_class"] = "secret"
    return Policy.model_validate(doc)


def test_a_policy_document_that_skipped_the_cross_checks_cannot_decide():
    query = PolicyQuery(job_type="public_research")
    # The ignore is itself checked: mypy (strict, warn_unused_ignores) fails if the call ever type-checks.
    with pytest.raises(TypeError, match="CompiledPolicy"):
        evaluate(_unchecked(), query)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CompiledPolicy"):
        evaluate(Policy.model_validate(_doc()), query)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CompiledPolicy"):
        decision_matrix(_unchecked())  # type: ignore[arg-type]


def test_compiling_a_document_runs_the_cross_checks():
    with pytest.raises(PolicyFileError) as info:
        CompiledPolicy(_unchecked(), source="unchecked.toml")
    assert info.value.errors == [
        "unchecked.toml: job_types.public_research.min_data_class: 'secret' is not a data class; known: "
        "public, internal, confidential, regulated, restricted"
    ]
    with pytest.raises(TypeError, match="Policy document"):
        CompiledPolicy(_doc())  # type: ignore[arg-type]


def test_compiling_a_valid_document_equals_loading_the_file():
    compiled = CompiledPolicy(Policy.model_validate(_doc()))
    loaded = load_policy()
    assert compiled.source == "<memory>"
    assert compiled.digest == loaded.digest
    assert compiled.document == loaded.document
    assert evaluate(compiled, PolicyQuery(job_type="support_analysis")) == evaluate(
        loaded, PolicyQuery(job_type="support_analysis")
    )


def test_every_decision_carries_the_digest_of_the_policy_that_made_it():
    policy = PolicySource().current()
    assert policy.digest.startswith("sha256:")
    assert len(policy.digest) == len("sha256:") + 64
    for row in decision_matrix(policy).values():
        for decision in row.values():
            assert decision.policy_digest == policy.digest
            assert decision.policy_version == policy.version
    assert diff_policies(policy, load_policy()).new_digest == policy.digest


def test_the_compiled_policy_is_frozen_and_the_document_holds_no_hidden_state():
    policy = load_policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.digest = "sha256:forged"  # type: ignore[misc]
    assert Policy.__private_attributes__ == {}
    assert policy.document.__pydantic_private__ is None
    fields = {f.name for f in dataclasses.fields(policy)}
    assert fields == {"document", "source", "digest", "index", "background_off", "signed_by"}
    assert repr(policy) == (
        f"CompiledPolicy(source={policy.source!r}, version={policy.version!r}, digest={policy.digest!r})"
    )
