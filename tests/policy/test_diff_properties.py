"""Properties of ``lanes policy diff`` over generated pairs of valid policies.

A pair is a generated policy and a copy with a few random edits (a flag flipped, a class's stored
state or a job's lane changed, a limit scaled, a class name swapped in); an edit the loader refuses
leaves the copy as it was, so equal pairs are drawn too. Two properties:

- the diff is empty exactly when the documents hold the same settings (descriptions and the version
  aside), and then every decision is the same;
- whenever some query gets a looser decision from the new policy (a looser lane, stored state where
  there was none, encryption or deletion dropped), the diff says it loosens.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import CompiledPolicy, PolicyDecision, PolicyFileError, PolicyQuery, evaluate, load_policy_text
from policy.diff import LANE_LOOSENESS, diff_policies
from tests.policy.strategies import dump_toml, policy_documents, queries

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EDITS = 3


def _load(doc: dict[str, Any]) -> CompiledPolicy:
    return load_policy_text(dump_toml(doc), source="generated.toml")


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    return [path]


def _edit(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``doc`` with up to :data:`EDITS` random leaf edits of the kinds a policy change makes."""
    edited = copy.deepcopy(doc)
    leaves = [p for p in _leaves(edited) if p[-1] not in ("description", "policy_version")]
    for path in rng.sample(leaves, min(EDITS, len(leaves))):
        table = edited
        for key in path[:-1]:
            table = table[key]
        old = table[path[-1]]
        if isinstance(old, bool):
            new: Any = not old
        elif path[-1] == "stored_state":
            new = rng.choice(["allow", "review", "deny"])
        elif path[-1] == "preferred_lane":
            new = rng.choice(["background", "stateless", "denied"])
        elif path[-1] == "fallback":
            new = rng.choice(["stateless", "deny"])
        elif path[-1] in ("min_data_class", "max_data_class"):
            new = rng.choice(doc["data_class_order"])
        elif isinstance(old, int | float):
            new = type(old)(old * rng.choice([2, 3])) or 1
        else:
            continue
        table[path[-1]] = new
    return edited


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[PolicyQuery]]:
    doc = draw(policy_documents())
    edited = _edit(doc, random.Random(draw(st.integers(0, 2**32))))
    if draw(st.integers(0, 4)) == 0:
        edited = copy.deepcopy(doc)
    return doc, edited, draw(st.lists(queries(doc), min_size=1, max_size=12))


def _settings_of(policy: CompiledPolicy) -> dict[str, Any]:
    """The document's settings, without wording: what the diff compares."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "description"}
        return value

    dumped = strip(policy.document.model_dump(mode="json"))
    dumped.pop("policy_version")
    return dumped  # type: ignore[no-any-return]


def _looser(old: PolicyDecision, new: PolicyDecision) -> bool:
    if LANE_LOOSENESS[new.lane] > LANE_LOOSENESS[old.lane]:
        return True
    if new.lane != old.lane or new.profile is None or old.profile is None:
        return False
    return (
        (new.profile.store and not old.profile.store)
        or (old.require_encryption and not new.require_encryption)
        or (old.delete_after_harvest and not new.delete_after_harvest)
        or new.endpoint_name != old.endpoint_name
    )


@pytest.mark.long(40)
@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(_pairs())
def test_the_diff_is_empty_exactly_when_nothing_differs_and_says_when_it_loosens(
    pair: tuple[dict[str, Any], dict[str, Any], list[PolicyQuery]],
) -> None:
    doc, edited, qs = pair
    old = _load(doc)
    try:
        new = _load(edited)
    except PolicyFileError:
        new = _load(doc)  # an edit the loader refuses: an equal pair
    diff = diff_policies(old, new, now=NOW)
    same = _settings_of(old) == _settings_of(new)
    assert diff.is_empty == same, diff.setting_changes
    for query in qs:
        before, after = evaluate(old, query, now=NOW), evaluate(new, query, now=NOW)
        if same:
            assert after.model_dump(exclude={"policy_digest", "policy_version"}) == before.model_dump(
                exclude={"policy_digest", "policy_version"}
            )
        if _looser(before, after):
            assert diff.loosens, (query, before.lane, after.lane, diff.setting_changes)
