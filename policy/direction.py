"""Which way a policy setting's change moves data control: loosens, tightens or neutral.

A reviewer who signs a policy change needs to know, for every setting that changed, whether it lets data
go further or stay longer (*loosens*), keeps it closer (*tightens*), or changes nothing about where data
goes (*neutral*: a model name, a poll cadence). The rules here are per setting, by the last key of its
path in the policy document; a setting they do not know is classified **loosens** ("unclassified"), so
that a new key can never slip past ``lanes policy diff --fail-on loosening`` as harmless: fail closed.

Everything here is pure: values in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

__all__ = ["Direction", "classify"]


class Direction(StrEnum):
    """How a change moves data control. Listed loosening first: the order a review reads them in."""

    LOOSENS = "loosens"
    TIGHTENS = "tightens"
    NEUTRAL = "neutral"


TIGHT_WHEN_TRUE = frozenset(
    {"require_encryption", "delete_after_harvest", "zdr", "zdr_only", "background_requires_approval"}
)
"""Booleans that keep data closer when true: turning one off loosens."""

LOOSE_WHEN_TRUE = frozenset(
    {
        "model_calls",
        "background_enabled",
        "long_running",
        "needs_retrieval",
        "store",
        "background",
        "supports_background",
        "zdr_eligible",
    }
)
"""Booleans that let data go further or stay longer when true (``zdr_eligible``: zdr classes may then
be routed to the endpoint; ``long_running``/``needs_retrieval``: two of the background lane's answers)."""

ORDINALS: dict[str, Sequence[Any]] = {
    "stored_state": ("deny", "review", "allow"),
    "preferred_lane": ("denied", "stateless", "background"),
    "fallback": ("deny", "stateless"),
}
"""Settings whose values are ordered from tightest to loosest."""

LOOSE_WHEN_HIGHER = frozenset({"max_duration_s", "max_input_chars", "max_reruns", "expires"})
"""Numbers (and dates) that let more data in, or let it stay longer, when raised."""

LOOSE_WHEN_ADDED = frozenset({"rerun_on", "job_types", "tenants"})
"""Lists whose new members widen what may happen (more rerun causes, an approval for more job types or
tenants); removing members tightens."""

ELSEWHERE = frozenset({"base_url", "api_key_env", "endpoint", "stateless_profile"})
"""Where the data goes: a change sends the calls to another provider configuration, which a reviewer
must look at. Treated as loosening (the tool cannot know the other side's contract)."""

NEUTRAL = frozenset(
    {
        "model",
        "stream",
        "completion_window",
        "webhooks",
        "webhook_poll_interval_s",
        "poll_interval_cap_s",
        "queued_timeout_s",
        "min_poll_interval_s",
        "name",
    }
)
"""Settings that change how a lane runs, not where the data goes or how long it stays."""


def classify(key: str, old: Any, new: Any, *, class_order: Sequence[str] = ()) -> tuple[Direction, str]:
    """The direction of one setting's change, and why, in a few words.

    Args:
        key: The setting's name, the last segment of its path (``require_encryption``).
        old: Its old value; ``None`` when the setting (or the table holding it) did not exist.
        new: Its new value; ``None`` when it was removed.
        class_order: The data classes from least to most sensitive, for ``min_data_class`` and
            ``max_data_class`` (a lower floor, or a higher ceiling, loosens).
    """
    if old == new:
        return Direction.NEUTRAL, "unchanged"
    if key == "data_class_order":
        return _ranking(old, new)
    if key in TIGHT_WHEN_TRUE:
        return _flag(bool(new), loose_when_true=False)
    if key in LOOSE_WHEN_TRUE:
        return _flag(bool(new), loose_when_true=True)
    if key in ORDINALS:
        return _ordinal(ORDINALS[key], old, new)
    if key == "min_data_class":
        return _ordinal(list(reversed(class_order)), old, new, what="a lower floor lets more data in")
    if key == "max_data_class":
        return _ordinal(class_order, old, new, what="a higher ceiling covers more sensitive data")
    if key in LOOSE_WHEN_HIGHER:
        return _higher(old, new)
    if key in LOOSE_WHEN_ADDED:
        return _members(old, new)
    if key in ELSEWHERE:
        return Direction.LOOSENS, "calls go to another provider configuration: review where"
    if key in NEUTRAL:
        return Direction.NEUTRAL, "changes how the lane runs, not where data goes"
    return Direction.LOOSENS, "unclassified setting: treated as loosening"


def _ranking(old: Any, new: Any) -> tuple[Direction, str]:
    """Classes added or removed are listed on their own; a class ranked differently is not neutral."""
    common = set(old or ()) & set(new or ())
    if [c for c in old or () if c in common] == [c for c in new or () if c in common]:
        return Direction.NEUTRAL, "classes added or removed (listed on their own); ranking unchanged"
    return Direction.LOOSENS, "classes ranked in another order: every floor and ceiling moves"


def _flag(value: bool, *, loose_when_true: bool) -> tuple[Direction, str]:
    if value == loose_when_true:
        return Direction.LOOSENS, "turned on" if value else "turned off"
    return Direction.TIGHTENS, "turned on" if value else "turned off"


def _ordinal(
    order: Sequence[Any], old: Any, new: Any, *, what: str = "ordered tightest to loosest"
) -> tuple[Direction, str]:
    ranks: dict[Any, int] = {value: rank for rank, value in enumerate(order)}
    # A value outside the order (or a setting that came or went) cannot be ranked: fail closed.
    if old not in ranks or new not in ranks:
        return Direction.LOOSENS, "cannot be ranked: treated as loosening"
    return (Direction.LOOSENS if ranks[new] > ranks[old] else Direction.TIGHTENS), what


def _higher(old: Any, new: Any) -> tuple[Direction, str]:
    try:
        raised = new is None or (old is not None and new > old)
    except TypeError:
        return Direction.LOOSENS, "cannot be compared: treated as loosening"
    return (Direction.LOOSENS, "raised") if raised else (Direction.TIGHTENS, "lowered")


def _members(old: Any, new: Any) -> tuple[Direction, str]:
    before, after = set(old or ()), set(new or ())
    if after - before:
        return Direction.LOOSENS, "added " + ", ".join(sorted(map(str, after - before)))
    return Direction.TIGHTENS, "removed " + ", ".join(sorted(map(str, before - after)))
