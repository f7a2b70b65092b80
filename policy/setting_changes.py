"""Every setting that differs between two policy documents, each with the way it moves data control.

The decision matrix (``policy.diff``) shows which jobs move lane; it cannot show a class that stops
encrypting or deleting, an approval that opens a lane for a cell the matrix evaluates without one, or a
tenant's override that goes away. This module compares the documents themselves, key by key, and
classifies each change with :func:`policy.direction.classify`.

Three kinds of tables are compared as wholes when one side lacks them: an added or removed approval,
job type or data class is one change (an approval or job type added loosens: something may now run that
could not). Profiles and endpoints added or removed are neutral by themselves; what references them
changes too, and shows there. A tenant's override fields are compared with what the tenant inherits
when the override is unset, so removing a tenant's stricter setting reads as the loosening it is.
Descriptions are wording, not settings: they change the digest and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from policy.direction import Direction, classify
from policy.models import Policy

__all__ = ["SettingChange", "setting_changes"]

WHOLE_TABLES: dict[str, tuple[Direction, str]] = {
    "approvals": (Direction.LOOSENS, "an approval can open the background lane"),
    "job_types": (Direction.LOOSENS, "a job type may run"),
    "data_classes": (Direction.LOOSENS, "jobs may declare the class"),
    "profiles": (Direction.NEUTRAL, "what references it shows as its own change"),
    "endpoints": (Direction.NEUTRAL, "what references it shows as its own change"),
}
"""Top-level tables whose entries are compared as wholes when added or removed: the direction of an
addition (a removal is the opposite, neutral stays neutral) and why."""

INHERITED: dict[str, tuple[str, ...]] = {
    "zdr_only": ("organisation", "zdr_only"),
    "background_enabled": ("organisation", "background_enabled"),
}
"""Tenant-level override keys and the organisation setting a tenant inherits when they are unset."""


class SettingChange(BaseModel):
    """One setting that differs: where, old and new value, which way it moves data control, and why."""

    model_config = ConfigDict(frozen=True)

    direction: Direction
    key: str
    """The policy key, dotted (``data_classes.internal.require_encryption``)."""
    old: Any = None
    """The old value; ``None`` when it did not exist (or was unset)."""
    new: Any = None
    why: str


def setting_changes(old: Policy, new: Policy) -> list[SettingChange]:
    """Every setting that differs, loosening changes first, then tightening, then neutral; by key."""
    old_doc, new_doc = old.model_dump(mode="json"), new.model_dump(mode="json")
    order = list(new.data_class_order)
    changes: list[SettingChange] = []
    for table, (added, why) in WHOLE_TABLES.items():
        before, after = old_doc.get(table, {}), new_doc.get(table, {})
        for name in sorted(set(before) ^ set(after)):
            gone = name in before
            direction = _opposite(added) if gone else added
            changes.append(
                SettingChange(
                    direction=direction,
                    key=f"{table}.{name}",
                    old="(defined)" if gone else None,
                    new=None if gone else "(defined)",
                    why=("removed: " if gone else "added: ") + why,
                )
            )
    old_flat, new_flat = _flatten(old_doc), _flatten(new_doc)
    for path in sorted(set(old_flat) | set(new_flat)):
        if path[-1] == "description" or path == ("policy_version",):
            continue
        if path[0] in WHOLE_TABLES and (
            len(path) == 1
            or path[1] not in old_doc.get(path[0], {})
            or path[1] not in new_doc.get(path[0], {})
        ):
            continue  # a whole added or removed table, listed once above (or an empty one)
        before = _effective(path, old_flat, old_doc)
        after = _effective(path, new_flat, new_doc)
        if before == after:
            continue
        direction, why = classify(_key(path), before, after, class_order=order)
        changes.append(SettingChange(direction=direction, key=".".join(path), old=before, new=after, why=why))
    rank = {direction: i for i, direction in enumerate(Direction)}
    return sorted(changes, key=lambda c: (rank[c.direction], c.key))


def _opposite(direction: Direction) -> Direction:
    return {
        Direction.LOOSENS: Direction.TIGHTENS,
        Direction.TIGHTENS: Direction.LOOSENS,
        Direction.NEUTRAL: Direction.NEUTRAL,
    }[direction]


def _key(path: tuple[str, ...]) -> str:
    """The setting's name for :func:`classify`; a job type's lane profiles are references, not flags."""
    if len(path) >= 2 and path[-2] == "profiles" and path[0] in ("job_types", "tenants"):
        return "endpoint"  # another profile: the calls may go elsewhere, with other settings
    return path[-1]


def _effective(path: tuple[str, ...], flat: Mapping[tuple[str, ...], Any], doc: Mapping[str, Any]) -> Any:
    """A setting's value, or for an unset tenant override what the tenant inherits."""
    value = flat.get(path)
    if value is not None or path[0] != "tenants" or len(path) < 3:
        return value
    rest = path[2:]
    if rest == ("min_data_class",):
        return doc["data_class_order"][0]  # no tenant floor: the least sensitive class
    if len(rest) == 1 and rest[0] in INHERITED:
        return flat.get(INHERITED[rest[0]])
    if rest[0] in ("data_classes", "job_types") and len(rest) == 3:
        return flat.get(rest)
    return value


def _flatten(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Key paths to leaf values (lists are leaves); an empty table is a leaf ``{}``."""
    if isinstance(value, dict):
        if not value:
            return {path: {}} if path else {}
        flat: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, (*path, str(key))))
        return flat
    return {path: value}
