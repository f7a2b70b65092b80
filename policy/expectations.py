"""Policy tests a security team writes: expected decisions, checked by ``lanes policy test``.

A review signs what a policy *does*, not its text. An expectations file (TOML) lists cases; each names a
query (job type, data class, tenant, approval, input size) and the decision the team expects: the lane,
and optionally the rule, the profile and the endpoint. Run against a policy, every case that does not
hold is reported with what was expected, what the policy decided, and its reasons, so a policy change
that moves a job the team cares about fails CI before it is deployed::

    [[cases]]
    name = "public research may run in the background"
    query = { job_type = "public_research", data_class = "public" }
    expect = { lane = "background", rule = "background.allowed" }

The shipped policy has its own, ``policy/default_expectations.toml`` (every row of the seed's job-type
table, every workload it says fits and every one it says needs caution), which ``make test`` runs.
Pure, like the rest of ``policy``: a file in, results out.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy.compiled import CompiledPolicy
from policy.errors import PolicyFileError
from policy.evaluation import evaluate
from policy.models import Lane, PolicyDecision, PolicyQuery

__all__ = [
    "DEFAULT_EXPECTATIONS",
    "CaseQuery",
    "CaseResult",
    "Expectation",
    "ExpectationCase",
    "Expectations",
    "check_expectations",
    "load_expectations",
]

DEFAULT_EXPECTATIONS = Path(__file__).with_name("default_expectations.toml")
"""The shipped policy's expectations."""


class Expectation(BaseModel):
    """What a case expects: the lane, and where given, the rule, profile and endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lane: Lane
    rule: str | None = None
    profile: str | None = None
    """Profile name; ``"none"`` expects no profile (a denied job)."""
    endpoint: str | None = None


class CaseQuery(BaseModel):
    """A case's query, as a reviewer writes it: unknown keys are refused (a typo must not test nothing).

    :class:`~policy.models.PolicyQuery` ignores unknown fields on purpose (it is a wire model that old
    and new workers share), so the file has its own, turned into one by :meth:`policy_query`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_type: str
    data_class: str | None = None
    approval: str | None = None
    tenant: str | None = None
    input_chars: int = Field(default=0, ge=0)

    def policy_query(self) -> PolicyQuery:
        """The query the engine evaluates."""
        return PolicyQuery(**self.model_dump())


class ExpectationCase(BaseModel):
    """One query and the decision the team expects for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    query: CaseQuery
    expect: Expectation


class Expectations(BaseModel):
    """An expectations file: its cases, and the time approvals are judged at (``now``; default: now)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    now: datetime | None = None
    cases: list[ExpectationCase] = Field(min_length=1)


class CaseResult(BaseModel):
    """How one case fared: the decision, and each expected field that differs (``field: want, got``)."""

    model_config = ConfigDict(frozen=True)

    case: ExpectationCase
    decision: PolicyDecision
    mismatches: list[str]

    @property
    def passed(self) -> bool:
        """True when every expected field matched."""
        return not self.mismatches


def load_expectations(path: str | Path) -> Expectations:
    """Read and validate an expectations file.

    Raises:
        PolicyFileError: The file is missing, not TOML, or a case is malformed; each error names the
            case and field (``cases[3].expect.lane: ...``).
    """
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyFileError([f"{source}: cannot read: {exc.strerror or exc}"], source=source) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyFileError([f"{source}: not valid TOML: {exc}"], source=source) from None
    try:
        return Expectations.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}: {'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise PolicyFileError(problems, source=source) from None


def check_expectations(
    policy: CompiledPolicy, expectations: Expectations, *, now: datetime
) -> list[CaseResult]:
    """Evaluate every case against ``policy``; ``expectations.now`` overrides ``now`` when set."""
    at = expectations.now or now
    results: list[CaseResult] = []
    for case in expectations.cases:
        decision = evaluate(policy, case.query.policy_query(), now=at)
        want = case.expect
        got_profile = decision.profile.name if decision.profile else "none"
        got_endpoint = decision.endpoint_name if decision.profile else "none"
        mismatches = [
            f"{field}: expected {expected}, got {actual}"
            for field, expected, actual in (
                ("lane", want.lane.value, decision.lane.value),
                ("rule", want.rule, decision.rule),
                ("profile", want.profile, got_profile),
                ("endpoint", want.endpoint, got_endpoint),
            )
            if expected is not None and expected != actual
        ]
        results.append(CaseResult(case=case, decision=decision, mismatches=mismatches))
    return results
