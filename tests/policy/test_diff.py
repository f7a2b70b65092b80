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


def _diff(doc: dict[str, Any]) -> Any:
    return diff_policies(load_policy(), load_policy_text(dump_toml(doc), source="new"))


def _changes(diff: Any) -> dict[str, tuple[str, Any, Any]]:
    return {c.key: (c.direction.value, c.old, c.new) for c in diff.setting_changes}


def test_dropping_encryption_and_deletion_loosens_per_class_with_both_keys():
    doc = _doc()
    for spec in doc["data_classes"].values():
        spec["require_encryption"] = False
        spec["delete_after_harvest"] = False
    diff = _diff(doc)
    changes = _changes(diff)
    assert diff.loosens
    assert not diff.lane_changes
    assert diff.version_unchanged  # the digest moved, the version did not
    for cls in ("confidential", "regulated", "restricted"):
        assert changes[f"data_classes.{cls}.require_encryption"] == ("loosens", True, False)
        assert changes[f"data_classes.{cls}.delete_after_harvest"] == ("loosens", True, False)
    assert changes["data_classes.internal.require_encryption"] == ("loosens", True, False)
    assert [c.direction.value for c in diff.setting_changes] == ["loosens"] * len(changes)


def test_a_new_approval_loosens_a_model_change_is_neutral_and_loosening_comes_first():
    doc = _doc()
    doc["approvals"] = {
        "SEC-9": {"job_types": ["regulated_review"], "max_data_class": "regulated", "expires": "2030-01-01"}
    }
    doc["profiles"]["openai-background-poll"]["model"] = "gpt-5"
    doc["job_types"]["public_research"]["limits"]["poll_interval_cap_s"] = 60
    doc["organisation"]["zdr_only"] = True
    doc["policy_version"] = "next"
    diff = _diff(doc)
    changes = _changes(diff)
    assert changes["approvals.SEC-9"][0] == "loosens"
    assert changes["profiles.openai-background-poll.model"] == ("neutral", "gpt-5-mini", "gpt-5")
    assert changes["job_types.public_research.limits.poll_interval_cap_s"][0] == "neutral"
    assert changes["organisation.zdr_only"] == ("tightens", False, True)
    directions = [c.direction.value for c in diff.setting_changes]
    assert directions == sorted(directions, key=["loosens", "tightens", "neutral"].index)
    assert not diff.version_unchanged
    assert diff.loosens


def test_limits_store_and_lanes_each_have_a_direction():
    doc = _doc()
    job = doc["job_types"]["support_analysis"]
    job["limits"]["max_input_chars"] *= 2
    job["limits"]["max_duration_s"] //= 2
    doc["data_classes"]["confidential"]["stored_state"] = "allow"
    doc["organisation"]["background_enabled"] = False
    job["fallback"] = "deny"
    changes = _changes(_diff(doc))
    assert changes["job_types.support_analysis.limits.max_input_chars"][0] == "loosens"
    assert changes["job_types.support_analysis.limits.max_duration_s"][0] == "tightens"
    assert changes["data_classes.confidential.stored_state"] == ("loosens", "review", "allow")
    assert changes["organisation.background_enabled"] == ("tightens", True, False)
    assert changes["job_types.support_analysis.fallback"] == ("tightens", "stateless", "deny")


def test_a_tenant_override_that_goes_away_loosens_against_what_the_tenant_inherits():
    doc = _doc()
    doc["tenants"] = {"acme": {"data_classes": {"internal": {"delete_after_harvest": True}}}}
    strict = load_policy_text(dump_toml(doc), source="strict")
    diff = diff_policies(strict, load_policy())
    assert _changes(diff)["tenants.acme.data_classes.internal.delete_after_harvest"] == (
        "loosens",
        True,
        False,
    )
    back = diff_policies(load_policy(), strict)
    assert _changes(back)["tenants.acme.data_classes.internal.delete_after_harvest"] == (
        "tightens",
        False,
        True,
    )


def test_wording_alone_is_an_empty_diff():
    doc = _doc()
    doc["description"] = "reworded"
    doc["data_classes"]["public"]["description"] = "reworded too"
    diff = _diff(doc)
    assert diff.is_empty
    assert not diff.loosens
    assert diff.old_digest != diff.new_digest


def test_an_unknown_setting_is_classified_as_loosening():
    from policy.direction import Direction, classify

    assert classify("some_future_key", 1, 2) == (
        Direction.LOOSENS,
        "unclassified setting: treated as loosening",
    )
    assert classify("min_data_class", "internal", "public", class_order=["public", "internal"])[0] == (
        Direction.LOOSENS
    )
    assert classify("stored_state", "allow", "bogus")[0] == Direction.LOOSENS
