"""The rule ids a decision can carry, and what each one means.

Rule ids are short, stable, dotted strings: the prefix is the lane (``background``, ``stateless``,
``denied``) and the rest names the check that decided it. They go into workflow history, span
attributes and dashboards, so they never change meaning; a new check gets a new id. ``RULES`` is the
single list that ``docs/policy.md`` and the tests are checked against.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BACKGROUND_ALLOWED",
    "DENIED_ENCRYPTION_REQUIRED",
    "DENIED_FALLBACK_DENY",
    "DENIED_INPUT_TOO_LARGE",
    "DENIED_JOB_TYPE_DISABLED",
    "DENIED_MODEL_CALLS_FORBIDDEN",
    "DENIED_UNKNOWN_DATA_CLASS",
    "DENIED_UNKNOWN_TENANT",
    "RULES",
    "STATELESS_APPROVAL_INVALID",
    "STATELESS_APPROVAL_MISSING",
    "STATELESS_KILL_SWITCH",
    "STATELESS_KILL_SWITCH_OVERRIDE",
    "STATELESS_NOT_LONG_RUNNING",
    "STATELESS_NO_RETRIEVAL",
    "STATELESS_PREFERRED",
    "STATELESS_STORED_STATE_DENIED",
    "STATELESS_ZDR_CLASS",
    "STATELESS_ZDR_ONLY",
]

DENIED_UNKNOWN_TENANT: Final = "denied.unknown-tenant"
DENIED_ENCRYPTION_REQUIRED: Final = "denied.encryption-required"
DENIED_UNKNOWN_DATA_CLASS: Final = "denied.unknown-data-class"
DENIED_MODEL_CALLS_FORBIDDEN: Final = "denied.model-calls-forbidden"
DENIED_JOB_TYPE_DISABLED: Final = "denied.job-type-disabled"
DENIED_INPUT_TOO_LARGE: Final = "denied.input-too-large"
STATELESS_PREFERRED: Final = "stateless.preferred"
STATELESS_NOT_LONG_RUNNING: Final = "stateless.not-long-running"
STATELESS_NO_RETRIEVAL: Final = "stateless.no-retrieval"
STATELESS_KILL_SWITCH_OVERRIDE: Final = "stateless.kill-switch-override"
STATELESS_ZDR_ONLY: Final = "stateless.zdr-only"
STATELESS_KILL_SWITCH: Final = "stateless.kill-switch"
STATELESS_ZDR_CLASS: Final = "stateless.zdr-class"
STATELESS_STORED_STATE_DENIED: Final = "stateless.stored-state-denied"
STATELESS_APPROVAL_MISSING: Final = "stateless.approval-missing"
STATELESS_APPROVAL_INVALID: Final = "stateless.approval-invalid"
DENIED_FALLBACK_DENY: Final = "denied.fallback-deny"
BACKGROUND_ALLOWED: Final = "background.allowed"

RULES: Final[dict[str, str]] = {
    DENIED_UNKNOWN_TENANT: "The query names a tenant without a [tenants.<id>] table: refused, never guessed.",
    DENIED_UNKNOWN_DATA_CLASS: "The declared data class is not in data_class_order: refused, never guessed.",
    DENIED_MODEL_CALLS_FORBIDDEN: "The effective data class sets model_calls = false: no model may see it.",
    DENIED_JOB_TYPE_DISABLED: "The job type sets preferred_lane = 'denied': it is switched off.",
    DENIED_INPUT_TOO_LARGE: "input_chars exceeds the job type's limits.max_input_chars.",
    STATELESS_PREFERRED: "The job type sets preferred_lane = 'stateless': it never asks for background.",
    STATELESS_NOT_LONG_RUNNING: "The job type is not long-running, so background mode buys nothing.",
    STATELESS_NO_RETRIEVAL: "The job type needs no polling or later retrieval, so no stored state is needed.",
    STATELESS_KILL_SWITCH_OVERRIDE: (
        "The emergency kill switch outside the file is on (LANES_BACKGROUND_ENABLED or the sentinel file)."
    ),
    STATELESS_ZDR_ONLY: "organisation.zdr_only (or the tenant's) is true: every job runs stateless.",
    STATELESS_KILL_SWITCH: "organisation.background_enabled (or the tenant's) is false: background is off.",
    STATELESS_ZDR_CLASS: "The effective data class sets zdr = true: stateless lane and store=false, always.",
    STATELESS_STORED_STATE_DENIED: "The effective data class sets stored_state = 'deny'.",
    STATELESS_APPROVAL_MISSING: "Background needs an approval (class or job type asks) and none was given.",
    STATELESS_APPROVAL_INVALID: "The approval is unknown, expired, or misses this job type, class or tenant.",
    DENIED_FALLBACK_DENY: "Background was needed but refused, and the job type's fallback is 'deny'.",
    DENIED_ENCRYPTION_REQUIRED: (
        "The effective data class sets require_encryption and the deciding worker has no encryption key."
    ),
    BACKGROUND_ALLOWED: "Long-running, needs retrieval, and stored state is acceptable: all three hold.",
}
"""Every rule id with a one-line description, in the order the checks run."""
