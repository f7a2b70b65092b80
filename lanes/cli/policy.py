"""``lanes policy``: explain a decision, check a policy file, and diff two policies.

These are the reviewer's tools. ``explain`` shows why one job gets its lane (the three questions with
the policy key that answered each), ``check`` validates a file and prints its matrix of job type by data
class (each cell's lane and the endpoint its calls go to, ``stateless@internal``), and ``diff`` shows
which cells change lane between two files, the part of a policy change that needs sign-off. None of
them needs a server.

Exit codes: 0 success, 1 invalid policy file, 2 usage error (a missing file, an unknown job type).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lanes.cli.render import EXIT_JOB_FAILED, EXIT_USAGE, CliError, printable, table, translate_errors
from lanes.settings import Settings
from policy import (
    CompiledPolicy,
    PolicyDecision,
    PolicyFileError,
    PolicyQuery,
    PolicySource,
    UnknownJobTypeError,
    evaluate,
    load_policy,
    unused_approval,
)
from policy.diff import PolicyDiff, diff_policies
from policy.expectations import check_expectations, load_expectations
from policy.matrix import decision_matrix
from policy.rules import DENIED_UNKNOWN_DATA_CLASS, DENIED_UNKNOWN_TENANT
from policy.signatures import (
    SIGNATURE_SUFFIX,
    SignatureFile,
    check_signatures,
    generate_key,
    key_id,
    public_key_text,
    read_signatures,
    sign_digest,
)

__all__ = ["POLICY_ENV", "app"]

POLICY_ENV = "LANES_POLICY"
"""Environment variable naming the policy file when ``--policy`` is not given."""

app = typer.Typer(
    help="Explain lane decisions, validate policy files and review policy changes.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]


def _utc(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date or time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _load(path: str | None, flag: str) -> CompiledPolicy:
    """Load a policy; a path that names no file is bad input (exit 2), an invalid file exits 1."""
    if path is not None and not Path(path).is_file():
        raise CliError(f"{flag}: no policy file at {path}; pass the path of an existing policy TOML file")
    try:
        return load_policy(path)
    except PolicyFileError as exc:
        _report(exc)
        raise typer.Exit(EXIT_JOB_FAILED) from None


def _policy_path(given: str | None) -> str | None:
    """``--policy``, else ``LANES_POLICY`` as the one settings model reads it, else the shipped default."""
    return given or Settings().policy_path or None


@app.command()
@translate_errors("lanes policy status")
def status(
    policy: Annotated[
        str | None, typer.Option(help=f"policy file (default: ${POLICY_ENV} or the shipped default)")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Which policy a worker started here would serve: version, digest, a refused file, the kill switch.

    Exits 1 when the file on disk is refused (a running worker keeps its last good policy, loudly).
    """
    source = PolicySource(_policy_path(policy), trust=Settings().policy_trust())
    try:
        source.current()
    except PolicyFileError as exc:
        _report(exc)
        raise typer.Exit(EXIT_JOB_FAILED) from None
    state = source.status()
    if json:
        _print_json(state.model_dump(mode="json"))
    else:
        print(
            table(
                [
                    ("policy", "in force"),
                    ("file", state.path),
                    ("version", state.version or "-"),
                    ("digest", state.digest or "-"),
                    ("kill switch", state.kill_switch or "off"),
                    ("signed by", ", ".join(state.signed_by) or "-"),
                ]
            )
        )


def _report(exc: PolicyFileError) -> None:
    for error in exc.errors:
        print(printable(error), file=sys.stderr)


@app.command()
@translate_errors("lanes policy explain")
def explain(
    job_type: Annotated[str, typer.Option(help="job type id, e.g. public_research")],
    data_class: Annotated[
        str | None, typer.Option(help="declared data class (default: the job type's floor)")
    ] = None,
    approval: Annotated[str | None, typer.Option(help="approval reference, e.g. SEC-1234")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant id whose overrides apply")] = None,
    input_chars: Annotated[int, typer.Option(min=0, help="input size in characters")] = 0,
    now: Annotated[
        datetime | None,
        typer.Option(parser=_utc, metavar="ISO", help="time for approval expiry (default: now, UTC)"),
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help=f"policy file (default: ${POLICY_ENV} or the shipped default)")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Show the lane decision for one job and why."""
    flag = "--policy" if policy else POLICY_ENV
    loaded = _load(_policy_path(policy), flag)
    query = PolicyQuery(
        job_type=job_type, data_class=data_class, approval=approval, tenant=tenant, input_chars=input_chars
    )
    try:
        decision = evaluate(loaded, query, now=now or datetime.now(UTC))
    except UnknownJobTypeError as exc:
        raise CliError(f"--job-type: {exc}", code=EXIT_USAGE) from None
    if json:
        _print_json(decision.model_dump(mode="json"))
    else:
        print(_describe(loaded, decision))
    ignored = unused_approval(approval, decision)
    if ignored is not None:
        print(f"lanes policy explain: note: --approval: {printable(ignored)}", file=sys.stderr)
    if decision.rule in (DENIED_UNKNOWN_DATA_CLASS, DENIED_UNKNOWN_TENANT):
        # The decision is shown (it is what a worker would decide), but the question was bad input.
        flag = "--tenant" if decision.rule == DENIED_UNKNOWN_TENANT else "--data-class"
        print(f"lanes policy explain: {flag}: {' '.join(decision.reasons[:1])}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)


def _print_json(value: object) -> None:
    print(json.dumps(value))


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
    if d.endpoint is not None:
        where = f"{d.endpoint.host}:{d.endpoint.port}" if d.endpoint.host else "the worker's OPENAI_BASE_URL"
        zdr = "ZDR-eligible" if d.endpoint.zdr_eligible else "not ZDR-eligible"
        head.append(f"endpoint:   {d.endpoint.name} ({where}, {zdr})")
    if d.approval:
        head.append(f"approval:   {d.approval}")
    questions = table(
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


@app.command()
@translate_errors("lanes policy check")
def check(
    file: Annotated[str, typer.Argument(help="policy TOML file")],
    json: Annotated[bool, typer.Option("--json", help="print digest, version and matrix as JSON")] = False,
) -> None:
    """Validate a policy file and print its digest, version and job type x data class matrix."""
    if not Path(file).is_file():
        raise CliError(f"FILE: no policy file at {file}; pass the path of an existing policy TOML file")
    try:
        policy = load_policy(file)
    except PolicyFileError as exc:
        _report(exc)
        if json:
            _print_json({"errors": exc.errors})
        raise typer.Exit(EXIT_JOB_FAILED) from None
    decisions = decision_matrix(policy)
    matrix = {job: {c: d.lane.value for c, d in row.items()} for job, row in decisions.items()}
    endpoints = {
        job: {c: d.endpoint.name if d.endpoint else None for c, d in row.items()}
        for job, row in decisions.items()
    }
    try:
        signatures = check_signatures(policy, file, Settings().policy_trust())
    except PolicyFileError as exc:
        _report(exc)
        raise typer.Exit(EXIT_JOB_FAILED) from None
    if json:
        _print_json(
            {
                "digest": policy.digest,
                "version": policy.version,
                "matrix": matrix,
                "endpoints": endpoints,
                "signatures": [c.model_dump() for c in signatures],
            }
        )
        return
    rows = [("job type", *policy.class_names)]
    rows += [
        (job, *(_cell(row[c], endpoints[job][c]) for c in policy.class_names)) for job, row in matrix.items()
    ]
    print(f"{policy.source}: valid")
    print(f"version: {policy.version}")
    print(f"digest:  {policy.digest}")
    for name, spec in policy.document.endpoints.items():
        url = spec.base_url or "OPENAI_BASE_URL, else https://api.openai.com/v1"
        print(
            f"endpoint {name}: {url} (key ${spec.api_key_env}; "
            f"zdr_eligible={str(spec.zdr_eligible).lower()}, "
            f"supports_background={str(spec.supports_background).lower()})"
        )
    for item in signatures:
        print(f"signature {item.key_id}: {'verified' if item.valid else 'NOT VALID: ' + item.reason}")
    if not signatures:
        print(f"signatures: none ({file}{SIGNATURE_SUFFIX})")
    print()
    print(table(rows))


def _cell(lane: str, endpoint: str | None) -> str:
    """A matrix cell: the lane, and where its calls go (``stateless@internal``)."""
    return f"{lane}@{endpoint}" if endpoint else lane


@app.command()
@translate_errors("lanes policy keygen")
def keygen(
    key: Annotated[str, typer.Option("--key", help="where to write the private key (created 0600)")],
) -> None:
    """Make an Ed25519 key pair for signing policies; print the public key for LANES_POLICY_TRUSTED_KEYS."""
    path = Path(key)
    if path.exists():
        raise CliError(f"--key: {key} exists; choose a new path (a key is never overwritten)")
    pem, public = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CliError(f"--key: cannot create {key}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    print(f"key id:     {key_id(public)}")
    print(f"public key: {public_key_text(public)}")
    print(f"private key written to {key} (0600); trust it with LANES_POLICY_TRUSTED_KEYS=<public key>")


@app.command()
@translate_errors("lanes policy sign")
def sign(
    file: Annotated[str, typer.Argument(help="policy TOML file")],
    key: Annotated[str, typer.Option("--key", help="private key file from `lanes policy keygen`")],
) -> None:
    """Add a detached signature over the policy's digest to FILE.sig (review first: you sign the rules)."""
    if not Path(file).is_file():
        raise CliError(f"FILE: no policy file at {file}; pass the path of an existing policy TOML file")
    try:
        pem = Path(key).read_bytes()
    except OSError as exc:
        raise CliError(f"--key: cannot read {key}: {exc.strerror or exc}") from None
    try:
        policy = load_policy(file)
    except PolicyFileError as exc:
        _report(exc)
        raise typer.Exit(EXIT_JOB_FAILED) from None
    try:
        signature = sign_digest(policy.digest, pem)
    except (ValueError, TypeError) as exc:
        raise CliError(f"--key: {key}: {str(exc).splitlines()[0]}") from None
    try:
        existing = read_signatures(file)
    except PolicyFileError as exc:
        raise CliError("; ".join(exc.errors) + "; fix or remove it, then sign again") from None
    kept = [s for s in existing.signatures if s.key_id != signature.key_id]
    document = SignatureFile(signatures=[*kept, signature])
    target = Path(file + SIGNATURE_SUFFIX)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(document.model_dump_json(indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)
    print(f"signed {policy.version} {policy.digest} with key {signature.key_id} -> {target}")


@app.command("test")
@translate_errors("lanes policy test")
def run_tests(
    policy_file: Annotated[str, typer.Argument(metavar="POLICY", help="policy TOML file")],
    tests_file: Annotated[
        str, typer.Argument(metavar="TESTS", help="expectations TOML file ([[cases]] with query and expect)")
    ],
    json: Annotated[bool, typer.Option("--json", help="print the results as one JSON object")] = False,
) -> None:
    """Check the decisions a security team expects: every case's lane, and its rule, profile, endpoint.

    Exit 0 when every case holds, 1 when one does not (each failure prints the case, what was
    expected, what the policy decided, and its reasons), 2 when the expectations file is malformed.
    """
    for label, path in (("POLICY", policy_file), ("TESTS", tests_file)):
        if not Path(path).is_file():
            raise CliError(f"{label}: no file at {path}; pass the path of an existing TOML file")
    try:
        expectations = load_expectations(tests_file)
    except PolicyFileError as exc:
        raise CliError("TESTS: " + "; ".join(exc.errors)) from None
    try:
        policy = load_policy(policy_file)
    except PolicyFileError as exc:
        _report(exc)
        raise typer.Exit(EXIT_JOB_FAILED) from None
    results = check_expectations(policy, expectations, now=datetime.now(UTC))
    failed = [r for r in results if not r.passed]
    if json:
        _print_json(
            {
                "policy_version": policy.version,
                "policy_digest": policy.digest,
                "passed": len(results) - len(failed),
                "failed": [
                    {
                        "name": r.case.name,
                        "query": r.case.query.model_dump(mode="json"),
                        "mismatches": r.mismatches,
                        "decision": r.decision.model_dump(mode="json"),
                    }
                    for r in failed
                ],
            }
        )
    else:
        for result in failed:
            query = ", ".join(
                f"{k}={v}" for k, v in result.case.query.model_dump(exclude_defaults=True).items()
            )
            print(f"FAIL {printable(result.case.name)}")
            print(f"  query:    {printable(query)}")
            for mismatch in result.mismatches:
                print(f"  {printable(mismatch)}")
            decision = result.decision
            print(f"  decided:  {decision.lane.value} by {decision.rule} (policy {decision.policy_version})")
            for reason in decision.reasons:
                print(f"  reason:   {printable(reason)}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({policy.version} {policy.digest})")
    if failed:
        raise typer.Exit(EXIT_JOB_FAILED)


class DiffFormat(StrEnum):
    """How ``lanes policy diff`` prints: for a terminal, for a pull-request comment, for a program."""

    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class FailOn(StrEnum):
    """Which changes make ``lanes policy diff`` exit 1, so CI can gate a policy change."""

    LOOSENING = "loosening"
    ANY = "any"


@app.command()
@translate_errors("lanes policy diff")
def diff(
    old: Annotated[str, typer.Argument(help="the policy in force")],
    new: Annotated[str, typer.Argument(help="the proposed policy")],
    format: Annotated[
        DiffFormat, typer.Option("--format", help="text, markdown (a PR comment) or json (one object)")
    ] = DiffFormat.TEXT,
    json: Annotated[bool, typer.Option("--json", help="the same as --format json")] = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on", help="exit 1 when a change loosens data control (loosening) or at all (any)"
        ),
    ] = None,
) -> None:
    """Every setting and decision that differs between two policies, loosening changes first.

    Each setting change is classified loosens, tightens or neutral with its key, old and new value;
    then the job type x data class cells whose lane, rule or endpoint changes. A new digest under an
    unchanged policy_version is a warning.
    """
    for label, path in (("OLD", old), ("NEW", new)):
        if not Path(path).is_file():
            raise CliError(
                f"{label}: no policy file at {path}; pass the path of an existing policy TOML file"
            )
    policies: list[CompiledPolicy] = []
    failed = False
    for path in (old, new):
        try:
            policies.append(load_policy(path))
        except PolicyFileError as exc:
            _report(exc)
            failed = True
    if failed:
        raise typer.Exit(EXIT_JOB_FAILED)
    result = diff_policies(policies[0], policies[1], now=datetime.now(UTC))
    shown = DiffFormat.JSON if json else format
    if shown == DiffFormat.JSON:
        _print_json(
            {
                **result.model_dump(mode="json"),
                "loosens": result.loosens,
                "is_empty": result.is_empty,
                "version_unchanged": result.version_unchanged,
                "cell_directions": {
                    f"{c.job_type}/{c.data_class}": c.direction.value for c in result.cell_changes
                },
            }
        )
    else:
        print(_describe_diff(result, markdown=shown == DiffFormat.MARKDOWN))
    if (fail_on == FailOn.LOOSENING and result.loosens) or (fail_on == FailOn.ANY and not result.is_empty):
        raise typer.Exit(EXIT_JOB_FAILED)


def _describe_diff(diff: PolicyDiff, *, markdown: bool = False) -> str:
    """The diff for a reader: a terminal's text, or Markdown for a pull-request comment."""

    def code(value: object) -> str:
        text = printable(value if isinstance(value, str) else json.dumps(value, default=str))
        return f"`{text}`" if markdown else text

    heading = "### " if markdown else ""
    item = "- " if markdown else "  "
    lines = [
        f"{heading}Policy diff" if markdown else "",
        f"{item}old: {code(diff.old_version)} {code(diff.old_digest)}",
        f"{item}new: {code(diff.new_version)} {code(diff.new_digest)}",
    ]
    lines = [line for line in lines if line]
    if diff.version_unchanged:
        lines.append(
            f"{'**WARNING**' if markdown else 'WARNING'}: the rules changed (new digest) but policy_version "
            "did not: decisions under both would record the same version; raise it"
        )
    verdict = "loosens data control" if diff.loosens else "does not loosen data control"
    lines.append(f"{'**' if markdown else ''}this change {verdict}{'**' if markdown else ''}")
    for label, names in (
        ("job types added", diff.added_job_types),
        ("job types removed", diff.removed_job_types),
        ("data classes added", diff.added_data_classes),
        ("data classes removed", diff.removed_data_classes),
    ):
        if names:
            lines.append(f"{label}: {', '.join(code(n) for n in names)}")
    if diff.setting_changes:
        lines.append(f"{heading}settings ({len(diff.setting_changes)}):")
        lines += [
            f"{item}{c.direction.value.upper()} {code(c.key)}: {code(c.old)} -> {code(c.new)} ({c.why})"
            for c in diff.setting_changes
        ]
    else:
        lines.append("no setting changes")
    if diff.lane_changes:
        lines.append(f"{heading}lane changes:")
        lines += [
            f"{item}{c.direction.value.upper()} {code(c.job_type)} x {code(c.data_class)}: "
            f"{c.old_lane.value} -> {c.new_lane.value} ({code(c.old_rule)} -> {code(c.new_rule)})"
            for c in diff.lane_changes
        ]
    else:
        lines.append("no lane changes")
    if diff.rule_changes:
        lines.append(f"{heading}rule changes (same lane):")
        lines += [
            f"{item}{code(c.job_type)} x {code(c.data_class)}: {c.new_lane.value} "
            f"({code(c.old_rule)} -> {code(c.new_rule)})"
            for c in diff.rule_changes
        ]
    if diff.endpoint_changes:
        lines.append(f"{heading}endpoint changes (same lane and rule; the calls go elsewhere):")
        lines += [
            f"{item}{c.direction.value.upper()} {code(c.job_type)} x {code(c.data_class)}: "
            f"{c.new_lane.value}@{c.old_endpoint} -> {c.new_lane.value}@{c.new_endpoint} ({code(c.new_rule)})"
            for c in diff.endpoint_changes
        ]
    return "\n".join(lines)
