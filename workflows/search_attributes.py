"""Search attributes that make lane decisions queryable in Temporal visibility.

Operators answer "which jobs took the background lane last week?" with a visibility query such as
``LanesLane = 'background'`` rather than by reading histories. The keys are declared once here because
the workflow upserts them and the embedded dev server must register them at start: upserting an
unregistered attribute fails every workflow task and hangs the workflow.

Only policy vocabulary (lane, job type, data class) is ever stored here, never prompt or output text:
search attributes are indexed and shown in clear text by every Temporal UI.
"""

from temporalio.common import SearchAttributeKey

LANE = SearchAttributeKey.for_keyword("LanesLane")
"""The lane the policy decided: ``background``, ``stateless`` or ``denied``."""

JOB_TYPE = SearchAttributeKey.for_keyword("LanesJobType")
"""The job type the client declared (already known to the policy when upserted)."""

DATA_CLASS = SearchAttributeKey.for_keyword("LanesDataClass")
"""The effective data class: the higher of the declared class and the job type's floor."""

RULE = SearchAttributeKey.for_keyword("LanesRule")
"""The policy rule that decided the lane."""

POLICY_DIGEST = SearchAttributeKey.for_keyword("LanesPolicyDigest")
"""Digest of the policy that decided: which jobs a given policy file decided."""

OUTCOME = SearchAttributeKey.for_keyword("LanesOutcome")
"""How the job ended: ``completed``, ``incomplete``, ``failed``, ``cancelled`` or ``denied``."""

ALL: tuple[SearchAttributeKey[str], ...] = (LANE, JOB_TYPE, DATA_CLASS, RULE, POLICY_DIGEST, OUTCOME)
"""Every key, in the order the dev server registers them."""
