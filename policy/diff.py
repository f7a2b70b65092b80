"""What a policy change does: the review aid behind ``lanes policy diff``.

A digest tells a reviewer *that* the rules changed; the diff tells them *what* changed, in two views:

- every setting that differs (``policy.setting_changes``), each classified **loosens**, **tightens**
  or **neutral** with its key, old and new value: a class that stops encrypting, an approval that
  opens a lane, a tenant override that goes away, a raised limit;
- what that does to decisions: every (job type, data class) cell whose lane or rule changes, every cell
  whose calls move to another provider endpoint (the data goes somewhere else even if the lane stays),
  and the job types and data classes added or removed.

A change of wording or layout shows up as a new digest with no changes. A new digest under the same
``policy_version`` is flagged: decisions record the version, and two rule sets under one name make the
audit trail ambiguous.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from policy.compiled import CompiledPolicy
from policy.direction import Direction
from policy.matrix import decision_matrix
from policy.models import Lane
from policy.setting_changes import SettingChange, setting_changes

__all__ = ["CellChange", "Direction", "PolicyDiff", "SettingChange", "diff_policies"]

LANE_LOOSENESS = {Lane.DENIED: 0, Lane.STATELESS: 1, Lane.BACKGROUND: 2}
"""Lanes from tightest to loosest: background keeps state at the provider, denied calls nothing."""


class CellChange(BaseModel):
    """One (job type, data class) cell whose decision differs between two policies."""

    model_config = ConfigDict(frozen=True)

    job_type: str
    data_class: str
    old_lane: Lane
    new_lane: Lane
    old_rule: str
    new_rule: str
    old_endpoint: str | None = None
    """The endpoint the cell's calls went to (``None``: denied, no call)."""
    new_endpoint: str | None = None

    @property
    def direction(self) -> Direction:
        """A looser lane, or calls sent to another endpoint, loosen; a rule's name alone is neutral."""
        old, new = LANE_LOOSENESS[self.old_lane], LANE_LOOSENESS[self.new_lane]
        if new != old:
            return Direction.LOOSENS if new > old else Direction.TIGHTENS
        if self.old_endpoint != self.new_endpoint and self.new_endpoint is not None:
            return Direction.LOOSENS
        return Direction.NEUTRAL


class PolicyDiff(BaseModel):
    """The decision-level difference between two policies."""

    model_config = ConfigDict(frozen=True)

    old_version: str
    new_version: str
    old_digest: str
    new_digest: str
    added_job_types: list[str]
    removed_job_types: list[str]
    added_data_classes: list[str]
    removed_data_classes: list[str]
    lane_changes: list[CellChange]
    rule_changes: list[CellChange]
    endpoint_changes: list[CellChange] = []
    """Cells with the same lane and rule whose calls go to another provider endpoint."""
    setting_changes: list[SettingChange] = []
    """Every setting that differs, loosening first (``policy.setting_changes``)."""

    @property
    def cell_changes(self) -> list[CellChange]:
        """Every changed cell: lane, rule and endpoint changes."""
        return [*self.lane_changes, *self.rule_changes, *self.endpoint_changes]

    @property
    def is_empty(self) -> bool:
        """True when no setting and no decision differs (the digests may still: wording, layout)."""
        return not (self.setting_changes or self.cell_changes or self.has_lane_changes)

    @property
    def loosens(self) -> bool:
        """Whether any setting or cell change loosens, or a job type comes (it may now run)."""
        changes: list[SettingChange | CellChange] = [*self.setting_changes, *self.cell_changes]
        return bool(self.added_job_types) or any(c.direction == Direction.LOOSENS for c in changes)

    @property
    def version_unchanged(self) -> bool:
        """The rules changed (another digest) under the same ``policy_version``."""
        return self.old_digest != self.new_digest and self.old_version == self.new_version

    @property
    def has_lane_changes(self) -> bool:
        """Whether any job moves lane, or job types or classes come or go."""
        return bool(
            self.lane_changes
            or self.added_job_types
            or self.removed_job_types
            or self.added_data_classes
            or self.removed_data_classes
        )


def diff_policies(old: CompiledPolicy, new: CompiledPolicy, *, now: datetime | None = None) -> PolicyDiff:
    """Compare the decision matrices of two policies over the cells both define.

    Args:
        old: The policy in force.
        new: The proposed policy.
        now: Passed to ``evaluate``.

    Returns:
        Lane changes, rule-only changes (same lane, different rule), endpoint-only changes (same lane
        and rule, another endpoint) and added or removed names.
    """
    old_m, new_m = decision_matrix(old, now=now), decision_matrix(new, now=now)
    lane_changes: list[CellChange] = []
    rule_changes: list[CellChange] = []
    endpoint_changes: list[CellChange] = []
    new_classes = set(new.class_names)
    for job in old.job_type_names:
        if job not in new_m:
            continue
        for cls in old.class_names:
            if cls not in new_classes:
                continue
            a, b = old_m[job][cls], new_m[job][cls]
            old_endpoint = a.endpoint_name if a.profile is not None else None
            new_endpoint = b.endpoint_name if b.profile is not None else None
            if a.lane == b.lane and a.rule == b.rule and old_endpoint == new_endpoint:
                continue
            change = CellChange(
                job_type=job,
                data_class=cls,
                old_lane=a.lane,
                new_lane=b.lane,
                old_rule=a.rule,
                new_rule=b.rule,
                old_endpoint=old_endpoint,
                new_endpoint=new_endpoint,
            )
            if a.lane != b.lane:
                lane_changes.append(change)
            elif a.rule != b.rule:
                rule_changes.append(change)
            else:
                endpoint_changes.append(change)
    return PolicyDiff(
        old_version=old.version,
        new_version=new.version,
        old_digest=old.digest,
        new_digest=new.digest,
        added_job_types=sorted(set(new.job_type_names) - set(old.job_type_names)),
        removed_job_types=sorted(set(old.job_type_names) - set(new.job_type_names)),
        added_data_classes=[c for c in new.class_names if c not in set(old.class_names)],
        removed_data_classes=[c for c in old.class_names if c not in new_classes],
        lane_changes=lane_changes,
        rule_changes=rule_changes,
        endpoint_changes=endpoint_changes,
        setting_changes=setting_changes(old.document, new.document),
    )
