"""The policy digest: one hash that names a set of rules, however the file is laid out.

Decisions record ``policy_digest`` so an auditor can tell exactly which rules decided, and
``policy diff`` reviewers can tell a reformatting from a rule change. The digest is the sha256 of the
canonical JSON of the *validated* policy: keys sorted, no whitespace, defaults filled in, dates in UTC
ISO form, order-free lists (approval job types and tenants) sorted. Key order, whitespace, comments,
``1`` vs ``1.0`` in limits, and writing a default explicitly all leave it unchanged; any change of value
changes it.
"""

from __future__ import annotations

import hashlib
import json

from policy.models import Policy

__all__ = ["canonical_json", "policy_digest"]


def canonical_json(policy: Policy) -> str:
    """Return the canonical JSON text the digest is computed over.

    Args:
        policy: A validated policy.

    Returns:
        Compact JSON with sorted keys of every validated value of the file.
    """
    return json.dumps(
        policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def policy_digest(policy: Policy) -> str:
    """Return ``sha256:<hex>`` of the policy's canonical JSON.

    Args:
        policy: A validated policy.

    Returns:
        The digest, prefixed with its algorithm so the format can evolve.
    """
    return "sha256:" + hashlib.sha256(canonical_json(policy).encode("utf-8")).hexdigest()
