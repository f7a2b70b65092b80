from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from policy import Answer, JobLimits, Lane, PolicyDecision, PolicyQuery, ProviderProfile
from policy.models import LANE_STRICTNESS, Approval, ProfileSpec


def _decision(**changes: object) -> PolicyDecision:
    values: dict[str, object] = {
        "lane": "background",
        "rule": "background.allowed",
        "policy_version": "v1",
        "policy_digest": "sha256:00",
        "job_type": "public_research",
        "declared_data_class": None,
        "data_class": "public",
        "long_running": {"value": True, "source": "job_types.public_research.long_running"},
        "needs_retrieval": {"value": True, "source": "job_types.public_research.needs_retrieval"},
        "stored_state_acceptable": {"value": True, "source": "data_classes.public.stored_state"},
        "profile": {"name": "openai-background", "background": True, "store": True},
        "limits": {
            "max_duration_s": 60,
            "max_input_chars": 10,
            "queued_timeout_s": 5,
            "poll_interval_cap_s": 2,
        },
        "reasons": ["because"],
    }
    values.update(changes)
    return PolicyDecision.model_validate(values)


def test_lanes_are_strings_ordered_by_strictness():
    assert [lane.value for lane in Lane] == ["background", "stateless", "denied"]
    assert sorted(Lane, key=LANE_STRICTNESS.__getitem__) == [Lane.BACKGROUND, Lane.STATELESS, Lane.DENIED]


def test_query_defaults_and_rejects_negative_input():
    query = PolicyQuery(job_type="public_research")
    assert (query.data_class, query.approval, query.tenant, query.input_chars) == (None, None, None, 0)
    with pytest.raises(ValidationError):
        PolicyQuery(job_type="public_research", input_chars=-1)


def test_provider_profile_defaults():
    profile = ProviderProfile(name="p", background=False, store=False)
    assert (profile.stream, profile.completion_window, profile.model) == (False, None, "gpt-5-mini")


def test_decision_round_trips_through_json_and_ignores_unknown_fields():
    decision = _decision()
    assert PolicyDecision.model_validate_json(decision.model_dump_json()) == decision
    newer = decision.model_dump(mode="json") | {"added_in_v2": 1}
    assert PolicyDecision.model_validate(newer) == decision


def test_decision_is_frozen():
    with pytest.raises(ValidationError):
        _decision().lane = Lane.DENIED


def test_wire_models_ignore_unknown_fields():
    assert Answer.model_validate({"value": True, "source": "x", "extra": 1}) == Answer(value=True, source="x")
    limits = JobLimits.model_validate(
        {"max_duration_s": 1, "max_input_chars": 1, "queued_timeout_s": 1, "poll_interval_cap_s": 1, "x": 0}
    )
    assert limits.max_input_chars == 1


def test_file_profile_is_strict_and_forbids_unknown_keys():
    with pytest.raises(ValidationError, match="extra"):
        ProfileSpec.model_validate({"name": "p", "background": True, "store": True, "streem": True})
    with pytest.raises(ValidationError, match="boolean"):
        ProfileSpec.model_validate({"name": "p", "background": "yes", "store": True})


@pytest.mark.parametrize(
    "expires",
    [date(2027, 1, 1), datetime(2027, 1, 1), "2027-01-01", datetime(2027, 1, 1, tzinfo=UTC)],
)
def test_approval_expiry_is_midnight_utc_whatever_the_spelling(expires):
    approval = Approval.model_validate(
        {"job_types": ["b", "a", "a"], "max_data_class": "x", "expires": expires}
    )
    assert approval.expires == datetime(2027, 1, 1, tzinfo=UTC)
    assert approval.job_types == ["a", "b"]
