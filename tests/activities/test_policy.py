import os
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.failures import FailureType
from activities.policy import PolicyActivities
from lanes.plugin import DATA_CONVERTER
from policy import PolicyQuery, PolicySource, default_policy_path, load_policy

HISTORIES = Path(__file__).parent.parent / "histories"


async def test_decides_from_the_current_policy_and_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(default_policy_path().read_text())
    activities = PolicyActivities(PolicySource(path), payloads_encrypted=True)
    env = ActivityEnvironment()
    query = PolicyQuery(job_type="public_research", data_class="public", input_chars=10)

    before = await env.run(activities.evaluate_policy, query)
    assert before.lane == "background"

    # An operator flips the kill switch: the next decision uses the new file, and says which one.
    path.write_text(path.read_text().replace("background_enabled = true", "background_enabled = false"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = await env.run(activities.evaluate_policy, query)
    assert after.lane == "stateless"
    assert after.rule == "stateless.kill-switch"
    assert after.policy_digest != before.policy_digest


async def test_a_broken_edit_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(default_policy_path().read_text())
    activities = PolicyActivities(PolicySource(path), payloads_encrypted=True)
    env = ActivityEnvironment()
    query = PolicyQuery(job_type="public_research")
    good = await env.run(activities.evaluate_policy, query)
    path.write_text("policy_version = \n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert (await env.run(activities.evaluate_policy, query)).policy_digest == good.policy_digest


async def test_unknown_job_type_fails_without_retry_and_lists_the_known_ones() -> None:
    activities = PolicyActivities(PolicySource(), payloads_encrypted=True)
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(activities.evaluate_policy, PolicyQuery(job_type="legal_review"))
    assert failure.value.type == FailureType.UNKNOWN_JOB_TYPE
    assert failure.value.non_retryable
    assert "legal_review" in failure.value.message
    assert "regulated_review" in failure.value.details[0]["known"]


async def test_the_activity_takes_the_policy_query_which_carries_the_input_length_not_its_text() -> None:
    assert typing.get_type_hints(PolicyActivities.evaluate_policy)["query"] is PolicyQuery
    fields = {"job_type", "data_class", "approval", "tenant", "input_chars", "payloads_encrypted"}
    assert set(PolicyQuery.model_fields) == fields  # no field for text
    with pytest.raises(ValidationError, match="input_chars"):
        PolicyQuery(job_type="public_research", input_chars=-1)


@pytest.mark.parametrize("history", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem)
def test_recorded_activity_inputs_still_decode_as_a_policy_query(history: Path) -> None:
    # Recorded when the activity took EvaluatePolicyInput; the wire shape must not have changed.
    events = WorkflowHistory.from_json(history.stem, history.read_text()).events
    inputs = [
        e.activity_task_scheduled_event_attributes.input.payloads
        for e in events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "evaluate_policy"
    ]
    assert inputs
    for payloads in inputs:
        (query,) = DATA_CONVERTER.payload_converter.from_payloads(payloads, [PolicyQuery])
        assert isinstance(query, PolicyQuery)
        assert query.job_type in load_policy().job_type_names


async def test_a_worker_without_a_key_denies_classes_that_require_encryption() -> None:
    env = ActivityEnvironment()
    query = PolicyQuery(job_type="coding_analysis", data_class="internal")
    without_key = PolicyActivities(PolicySource(), payloads_encrypted=False)
    refused = await env.run(without_key.evaluate_policy, query)
    assert (refused.lane, refused.rule) == ("denied", "denied.encryption-required")
    with_key = PolicyActivities(PolicySource(), payloads_encrypted=True)
    assert (await env.run(with_key.evaluate_policy, query)).lane == "background"
    # Public data needs no key.
    public = PolicyQuery(job_type="public_research", data_class="public")
    assert (await env.run(without_key.evaluate_policy, public)).lane == "background"
