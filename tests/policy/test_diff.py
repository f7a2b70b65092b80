import tomllib
from pathlib import Path
from typing import Any

from policy import Lane, default_policy_path, load_policy, load_policy_text
from policy.diff import diff_policies
from tests.policy.strategies import dump_toml


def _doc() -> dict[str, Any]:
    return tomllib.loads(default_policy_path().read_text())


def test_same_rules_have_no_changes():
    diff = diff_policies(load_policy(), load_policy_text(dump_toml(_doc()), source="x"))
    assert not diff.has_lane_changes
    assert diff.old_digest == diff.new_digest
    assert diff.rule_changes == []


def test_lane_and_rule_changes_and_added_job_types():
    doc = _doc()
    doc["data_classes"]["confidential"]["stored_state"] = "allow"
    doc["organisation"]["zdr_only"] = False
    doc["job_types"]["extra_job"] = doc["job_types"]["public_research"]
    doc["job_types"]["public_research"] = doc["job_types"]["public_research"] | {"needs_retrieval": False}
    del doc["job_types"]["sensitive_customer"]
    diff = diff_policies(load_policy(), load_policy_text(dump_toml(doc), source="x"))
    assert diff.added_job_types == ["extra_job"]
    assert diff.removed_job_types == ["sensitive_customer"]
    moved = {(c.job_type, c.data_class): (c.old_lane, c.new_lane) for c in diff.lane_changes}
    assert moved[("support_analysis", "confidential")] == (Lane.STATELESS, Lane.BACKGROUND)
    assert moved[("public_research", "public")] == (Lane.BACKGROUND, Lane.STATELESS)
    assert ("coding_analysis", "confidential") in moved
    same_lane = {(c.job_type, c.data_class): (c.old_rule, c.new_rule) for c in diff.rule_changes}
    assert same_lane[("public_research", "restricted")] == ("stateless.zdr-class", "stateless.no-retrieval")
    assert diff.has_lane_changes


def test_moving_a_profile_to_another_endpoint_is_an_endpoint_change():
    example = Path(__file__).resolve().parents[2] / "policy" / "examples" / "internal_endpoint.toml"
    old_text = example.read_text()
    new_text = old_text.replace(
        "[profiles.openai-stateless]\nbackground = false\nstore = false\n",
        '[profiles.openai-stateless]\nbackground = false\nstore = false\nendpoint = "internal"\n',
    )
    assert new_text != old_text
    diff = diff_policies(load_policy_text(old_text, source="old"), load_policy_text(new_text, source="new"))
    assert diff.old_digest != diff.new_digest
    assert not diff.has_lane_changes
    assert diff.rule_changes == []
    moved = {(c.job_type, c.data_class): (c.old_endpoint, c.new_endpoint) for c in diff.endpoint_changes}
    # The same lane by the same rule, but the data now goes to the internal server.
    assert moved[("quick_summary", "public")] == ("openai", "internal")
    assert all(c.old_lane == c.new_lane == Lane.STATELESS for c in diff.endpoint_changes)
    # Restricted data already went to the internal endpoint: not a change.
    assert all(c.data_class != "restricted" for c in diff.endpoint_changes)
    same = diff_policies(load_policy_text(old_text, source="a"), load_policy_text(old_text, source="b"))
    assert same.endpoint_changes == []
