"""Hypothesis strategies and a TOML writer for testing policies; used by ``tests/policy``.

Test modules cannot import each other (pytest runs with ``--import-mode=importlib``), so the generators
that the property tests share live here, as real code, like ``structlog.testing``. Only tests import this
module; it needs ``hypothesis`` (a dev dependency) and is never imported by the engine.

``policy_documents()`` draws *valid* policy documents (the dict a TOML file parses to): data classes
that only get stricter along their order, zdr classes that deny stored state, approvals below the first
zdr class and tenant overrides that only tighten. ``dump_toml`` writes a document back as TOML, and with
a ``random.Random`` shuffles keys and sprinkles comments and whitespace, to test the digest.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import strategies as st

from policy.models import LANE_STRICTNESS, Lane, PolicyDecision, PolicyQuery

__all__ = [
    "datetimes_utc",
    "dump_toml",
    "policy_documents",
    "queries",
    "strictness",
]

_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
_STORED = ("allow", "review", "deny")
_LANES = ("background", "stateless", "denied")
_FALLBACKS = ("stateless", "deny")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def strictness(decision: PolicyDecision) -> int:
    """Rank a decision's lane: background 0 < stateless 1 < denied 2."""
    return LANE_STRICTNESS[decision.lane]


def datetimes_utc() -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes around the approvals' expiry dates (2025 to 2029)."""
    return st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)
    )


def _profiles(draw: st.DrawFn) -> dict[str, Any]:
    window = st.sampled_from(["soonest", "2h", "8h"])
    return {
        "bg": {
            "background": True,
            "store": True,
            "stream": draw(st.booleans()),
            "completion_window": draw(window),
        },
        "bg-poll": {
            "background": True,
            "store": True,
            "stream": False,
            "completion_window": "2h",
            "model": "m2",
        },
        "st": {"background": False, "store": False},
        "st-zdr": {"background": False, "store": False, "endpoint": ZDR_ENDPOINT},
    }


ZDR_ENDPOINT = "openai-zdr"
"""The declared ZDR configuration of every drawn policy: zdr classes are routed to it by class
(``stateless_profile = "st-zdr"``), as the default policy routes restricted data, because an undeclared
endpoint is never taken as ZDR-eligible."""

_ENDPOINTS = {
    ZDR_ENDPOINT: {"api_key_env": "OPENAI_ZDR_API_KEY", "zdr_eligible": True, "supports_background": False}
}


def _limits(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "max_duration_s": draw(st.integers(1, 7200)),
        "max_input_chars": draw(st.integers(0, 10_000)),
        "queued_timeout_s": draw(st.floats(1, 3600, allow_nan=False)),
        "poll_interval_cap_s": draw(st.integers(1, 60)),
    }


@st.composite
def policy_documents(draw: st.DrawFn, *, max_classes: int = 5, max_jobs: int = 4) -> dict[str, Any]:
    """Draw a valid policy document (the dict a policy TOML file parses to).

    Args:
        draw: Supplied by hypothesis.
        max_classes: Upper bound of data classes.
        max_jobs: Upper bound of job types.

    Returns:
        A document that ``load_policy_text(dump_toml(doc), ...)`` accepts.
    """
    n = draw(st.integers(1, max_classes))
    classes: list[str] = draw(st.lists(_NAME, min_size=n, max_size=n, unique=True))
    stored = sorted(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    zdr_from = draw(st.one_of(st.just(n), st.integers(0, n)))
    # Classes from here up are routed to the ZDR endpoint (every zdr class, maybe some below it too); a
    # tenant may make only those zdr.
    routed_from = draw(st.integers(0, zdr_from))
    calls_from = draw(st.one_of(st.just(n), st.integers(0, n)))
    # Explicit for every class or for none, so explicit values and defaults never mix into a scale
    # that loosens; either way they only get stricter along the order.
    explicit = draw(st.booleans())
    encrypt_from, delete_from = draw(st.integers(0, n)), draw(st.integers(0, n))
    data_classes: dict[str, Any] = {}
    for i, name in enumerate(classes):
        zdr = i >= zdr_from
        entry: dict[str, Any] = {"stored_state": _STORED[2 if zdr else stored[i]]}
        if explicit:
            entry["require_encryption"] = i >= encrypt_from
            entry["delete_after_harvest"] = i >= delete_from
        if zdr or draw(st.booleans()):
            entry["zdr"] = zdr
        if i >= calls_from or draw(st.booleans()):
            entry["model_calls"] = i < calls_from
        if i >= routed_from:
            entry["stateless_profile"] = "st-zdr"
        data_classes[name] = entry

    m = draw(st.integers(1, max_jobs))
    job_names: list[str] = draw(st.lists(_NAME, min_size=m, max_size=m, unique=True))
    jobs: dict[str, Any] = {}
    for name in job_names:
        preferred = draw(st.sampled_from(_LANES))
        job: dict[str, Any] = {
            "description": f"job {name}",
            "min_data_class": draw(st.sampled_from(classes)),
            "long_running": draw(st.booleans()),
            "needs_retrieval": draw(st.booleans()),
            "preferred_lane": preferred,
            "fallback": draw(st.sampled_from(_FALLBACKS)),
            "profiles": {"stateless": "st"},
            "limits": _limits(draw),
        }
        if preferred == "background":
            job["profiles"]["background"] = draw(st.sampled_from(["bg", "bg-poll"]))
        if draw(st.booleans()):
            job["background_requires_approval"] = draw(st.booleans())
        if draw(st.booleans()):
            job["model"] = draw(st.sampled_from(["gpt-5-mini", "gpt-5", "o-custom"]))
        jobs[name] = job

    tenant_names: list[str] = draw(st.lists(_NAME, max_size=2, unique=True))
    approvals: dict[str, Any] = {}
    non_zdr = classes[:zdr_from]
    if non_zdr:
        for i in range(draw(st.integers(0, 2))):
            approval: dict[str, Any] = {
                "job_types": draw(st.lists(st.sampled_from(job_names), min_size=1, unique=True)),
                "max_data_class": draw(st.sampled_from(non_zdr)),
                "expires": draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))),
            }
            if draw(st.booleans()) and tenant_names:
                approval["tenants"] = draw(st.lists(st.sampled_from(tenant_names), min_size=1, unique=True))
            approvals[f"SEC-{i}"] = approval

    base_org = {"zdr_only": draw(st.booleans()), "background_enabled": draw(st.booleans())}
    doc: dict[str, Any] = {
        "policy_version": draw(st.from_regex(r"v[0-9]{1,3}", fullmatch=True)),
        "data_class_order": classes,
        "data_classes": data_classes,
        "organisation": base_org,
        "endpoints": _ENDPOINTS,
        "profiles": _profiles(draw),
        "job_types": jobs,
    }
    if approvals:
        doc["approvals"] = approvals
    tenants = {name: _tenant(draw, doc) for name in tenant_names}
    if tenants:
        doc["tenants"] = tenants
    return doc


def _tenant(draw: st.DrawFn, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Draw an override that is never looser than the base of ``doc``."""
    classes: list[str] = doc["data_class_order"]
    rank = {c: i for i, c in enumerate(classes)}
    override: dict[str, Any] = {}
    if draw(st.booleans()):
        override["zdr_only"] = True
    if draw(st.booleans()):
        override["background_enabled"] = False
    if draw(st.booleans()):
        override["min_data_class"] = draw(st.sampled_from(classes))
    job_overrides: dict[str, Any] = {}
    for name, job in doc["job_types"].items():
        if not draw(st.booleans()):
            continue
        jov: dict[str, Any] = {}
        if draw(st.booleans()):
            jov["min_data_class"] = draw(st.sampled_from(classes[rank[job["min_data_class"]] :]))
        if draw(st.booleans()):
            old = Lane(job["preferred_lane"])
            options = [lane for lane in _LANES if LANE_STRICTNESS[Lane(lane)] >= LANE_STRICTNESS[old]]
            if old == Lane.BACKGROUND and job["fallback"] == "deny":
                options.remove("stateless")
            jov["preferred_lane"] = draw(st.sampled_from(options))
        if draw(st.booleans()):
            jov["fallback"] = "deny" if job["fallback"] == "deny" else draw(st.sampled_from(_FALLBACKS))
        if draw(st.booleans()):
            jov["background_requires_approval"] = True
        job_overrides[name] = jov
    if job_overrides:
        override["job_types"] = job_overrides
    if draw(st.booleans()):
        n = len(classes)
        start = draw(st.integers(0, n - 1))
        level = draw(st.integers(0, 2))
        routed = [i for i, c in enumerate(classes) if "stateless_profile" in doc["data_classes"][c]]
        first_routed = routed[0] if routed else n
        zdr_from = draw(st.one_of(st.just(n), st.integers(max(start, first_routed), n)))
        calls_from = draw(st.one_of(st.just(n), st.integers(start, n)))
        # Set on every class from ``start`` up, so the merged scale still only gets stricter.
        tighten_encryption, tighten_deletion = draw(st.booleans()), draw(st.booleans())
        class_overrides: dict[str, Any] = {}
        for i in range(start, n):
            base = doc["data_classes"][classes[i]]
            cov: dict[str, Any] = {}
            stored = max(_STORED.index(base["stored_state"]), level, 2 if i >= zdr_from else 0)
            if draw(st.booleans()) or stored != _STORED.index(base["stored_state"]):
                cov["stored_state"] = _STORED[stored]
            if i >= zdr_from:
                cov["zdr"] = True
            if i >= calls_from:
                cov["model_calls"] = False
            if tighten_encryption:
                cov["require_encryption"] = True
            if tighten_deletion:
                cov["delete_after_harvest"] = True
            class_overrides[classes[i]] = cov
        override["data_classes"] = class_overrides
    return override


def queries(doc: Mapping[str, Any]) -> st.SearchStrategy[PolicyQuery]:
    """Queries against ``doc``: known job types, with known, unknown or missing classes and approvals."""
    classes: list[str | None] = [*doc["data_class_order"], None, "no-such-class"]
    approvals: list[str | None] = [*doc.get("approvals", {}), None, "NO-SUCH-APPROVAL"]
    tenants: list[str | None] = [*doc.get("tenants", {}), None, "no-such-tenant"]
    return st.builds(
        PolicyQuery,
        job_type=st.sampled_from(sorted(doc["job_types"])),
        data_class=st.sampled_from(classes),
        approval=st.sampled_from(approvals),
        tenant=st.sampled_from(tenants),
        input_chars=st.integers(0, 12_000),
    )


# --- writing TOML -------------------------------------------------------------------------------------


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_toml(doc: Mapping[str, Any], *, rng: random.Random | None = None) -> str:
    """Write a policy document as TOML.

    Args:
        doc: Nested mappings of TOML values (booleans, numbers, strings, dates, arrays).
        rng: When given, shuffle keys within every table and add comments, blank lines and spaces,
            to produce a different text for the same data.

    Returns:
        TOML text that ``tomllib`` parses back to ``doc``.
    """
    lines: list[str] = []

    def noise() -> None:
        if rng is not None and rng.random() < 0.3:
            lines.append(rng.choice(["", "# a comment", "   # indented comment", "\t"]))

    def emit(path: list[str], table: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if rng is not None:
            rng.shuffle(scalars)
            rng.shuffle(tables)
        if path and (scalars or not tables):
            noise()
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for key, value in scalars:
            noise()
            eq = rng.choice([" = ", "=", "   =  "]) if rng is not None else " = "
            tail = rng.choice(["", "  # why", " "]) if rng is not None else ""
            lines.append(f"{_key(key)}{eq}{_value(value)}{tail}")
        for key, value in tables:
            emit([*path, key], value)

    emit([], doc)
    return "\n".join(lines) + "\n"
