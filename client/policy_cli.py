"""``lanes policy``: explain a decision, check a policy file, and diff two policies.

These are the reviewer's tools. ``explain`` shows why one job gets its lane (the three questions with
the policy key that answered each), ``check`` validates a file and prints its matrix of job type by data
class, and ``diff`` shows which cells change lane between two files, the part of a policy change that
needs sign-off. The lead's ``client/cli.py`` calls ``register(subparsers)``.

Exit codes: 0 success, 1 invalid policy file, 2 usage error (including an unknown job type).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from policy import (
    CompiledPolicy,
    PolicyDecision,
    PolicyFileError,
    PolicyQuery,
    UnknownJobTypeError,
    evaluate,
    load_policy,
)
from policy.diff import PolicyDiff, diff_policies
from policy.matrix import lane_matrix

__all__ = ["POLICY_ENV", "register"]

POLICY_ENV = "LANES_POLICY"
"""Environment variable naming the policy file when ``--policy`` is not given."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``policy`` command and its ``explain``, ``check`` and ``diff`` subcommands.

    Each subcommand sets ``func``, a callable taking the parsed namespace and returning the exit code.

    Args:
        subparsers: The top-level CLI's subparsers.
    """
    parser = subparsers.add_parser(
        "policy",
        help="explain, check and diff lane policies",
        description="Explain lane decisions, validate policy files and review policy changes.",
    )
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    explain = sub.add_parser("explain", help="show the lane decision for one job and why")
    explain.add_argument("--job-type", required=True, help="job type id, e.g. public_research")
    explain.add_argument("--data-class", help="declared data class (default: the job type's floor)")
    explain.add_argument("--approval", help="approval reference, e.g. SEC-1234")
    explain.add_argument("--tenant", help="tenant id whose overrides apply")
    explain.add_argument("--input-chars", type=int, default=0, help="input size in characters")
    explain.add_argument("--now", type=_utc, help="ISO time for approval expiry (default: now, UTC)")
    explain.add_argument("--policy", help=f"policy file (default: ${POLICY_ENV} or the shipped default)")
    explain.add_argument("--json", action="store_true", help="print the decision as one JSON object")
    explain.set_defaults(func=_explain)

    check = sub.add_parser("check", help="validate a policy file and print its lane matrix")
    check.add_argument("file", help="policy TOML file")
    check.add_argument("--json", action="store_true", help="print digest, version and matrix as JSON")
    check.set_defaults(func=_check)

    diff = sub.add_parser("diff", help="show which job type x data class cells change lane")
    diff.add_argument("old", help="the policy in force")
    diff.add_argument("new", help="the proposed policy")
    diff.add_argument("--json", action="store_true", help="print the diff as JSON")
    diff.set_defaults(func=_diff)


def _utc(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _policy_path(given: str | None) -> str | None:
    return given or os.environ.get(POLICY_ENV) or None


def _report(exc: PolicyFileError) -> None:
    for error in exc.errors:
        print(error, file=sys.stderr)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _explain(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(_policy_path(args.policy))
    except PolicyFileError as exc:
        _report(exc)
        return 1
    query = PolicyQuery(
        job_type=args.job_type,
        data_class=args.data_class,
        approval=args.approval,
        tenant=args.tenant,
        input_chars=max(args.input_chars, 0),
    )
    try:
        decision = evaluate(policy, query, now=args.now or datetime.now(UTC))
    except UnknownJobTypeError as exc:
        print(f"lanes policy explain: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(decision.model_dump(mode="json")))
    else:
        print(_describe(policy, decision))
    return 0


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _describe(policy: CompiledPolicy, d: PolicyDecision) -> str:
    declared = d.declared_data_class if d.declared_data_class is not None else "(none)"
    profile = "(none)"
    if d.profile is not None:
        p = d.profile
        profile = (
            f"{p.name} (model {p.model}, background={str(p.background).lower()}, "
            f"store={str(p.store).lower()}, stream={str(p.stream).lower()})"
        )
    head = [
        f"lane:       {d.lane.value}",
        f"rule:       {d.rule}",
        f"policy:     {d.policy_version} {d.policy_digest} ({policy.source})",
        f"job type:   {d.job_type}" + (f"  tenant: {d.tenant}" if d.tenant else ""),
        f"data class: {d.data_class} (declared: {declared})",
        f"profile:    {profile}",
    ]
    if d.approval:
        head.append(f"approval:   {d.approval}")
    questions = _table(
        [
            ("question", "answer", "source"),
            ("needs long-running execution?", _yes(d.long_running.value), d.long_running.source),
            ("needs polling or later retrieval?", _yes(d.needs_retrieval.value), d.needs_retrieval.source),
            (
                "stored state acceptable?",
                _yes(d.stored_state_acceptable.value),
                d.stored_state_acceptable.source,
            ),
        ]
    )
    reasons = "\n".join(f"  - {r}" for r in d.reasons)
    return "\n".join(head) + "\n\n" + questions + "\n\nreasons:\n" + reasons


def _check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.file)
    except PolicyFileError as exc:
        _report(exc)
        if args.json:
            print(json.dumps({"errors": exc.errors}))
        return 1
    matrix = lane_matrix(policy)
    if args.json:
        print(json.dumps({"digest": policy.digest, "version": policy.version, "matrix": matrix}))
        return 0
    rows = [("job type", *policy.class_names)]
    rows += [(job, *(row[c] for c in policy.class_names)) for job, row in matrix.items()]
    print(f"{policy.source}: valid")
    print(f"version: {policy.version}")
    print(f"digest:  {policy.digest}")
    print()
    print(_table(rows))
    return 0


def _diff(args: argparse.Namespace) -> int:
    policies: list[CompiledPolicy] = []
    failed = False
    for path in (args.old, args.new):
        try:
            policies.append(load_policy(path))
        except PolicyFileError as exc:
            _report(exc)
            failed = True
    if failed:
        return 1
    result = diff_policies(policies[0], policies[1], now=datetime.now(UTC))
    if args.json:
        print(json.dumps(result.model_dump(mode="json")))
    else:
        print(_describe_diff(result))
    return 0


def _describe_diff(diff: PolicyDiff) -> str:
    lines = [
        f"old: {diff.old_version} {diff.old_digest}",
        f"new: {diff.new_version} {diff.new_digest}",
    ]
    for label, names in (
        ("job types added", diff.added_job_types),
        ("job types removed", diff.removed_job_types),
        ("data classes added", diff.added_data_classes),
        ("data classes removed", diff.removed_data_classes),
    ):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    if diff.lane_changes:
        lines.append("lane changes:")
        lines += [
            f"  {c.job_type} x {c.data_class}: {c.old_lane.value} -> {c.new_lane.value} "
            f"({c.old_rule} -> {c.new_rule})"
            for c in diff.lane_changes
        ]
    else:
        lines.append("no lane changes")
    if diff.rule_changes:
        lines.append("rule changes (same lane):")
        lines += [
            f"  {c.job_type} x {c.data_class}: {c.new_lane.value} ({c.old_rule} -> {c.new_rule})"
            for c in diff.rule_changes
        ]
    return "\n".join(lines)
