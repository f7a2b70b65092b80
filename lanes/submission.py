"""The checks a job passes before anything starts: the same for the CLI and :class:`lanes.LanesClient`.

A job refused here writes nothing to Temporal. What the worker would deny for reasons the client can see
(an unknown tenant, an input over the job type's limit, a class that requires encryption this client
cannot provide) is refused here too, by evaluating the same policy the worker loads: a newcomer learns it
in one line, not from a denied job minutes later. The stateless lane's task queue travels in the job's
input (the workflow never reads the environment), so it is set here from the client's settings.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import ValidationError

from lanes.errors import InvalidJobError, PolicyConfigError
from lanes.settings import Settings
from policy import CompiledPolicy, PolicyDecision, PolicyFileError, PolicyQuery, evaluate, load_policy
from policy.rules import DENIED_ENCRYPTION_REQUIRED, DENIED_INPUT_TOO_LARGE, DENIED_UNKNOWN_TENANT
from workflows.model_task_io import ExecutionOptions, ModelTaskInput


def policy_file_message(exc: PolicyFileError) -> str:
    """An invalid policy file in one line: the file, its first problem, how many more, and the fix."""
    first = exc.errors[0].removeprefix(f"{exc.source}: ") if exc.errors else "invalid"
    more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
    return f"policy file {exc.source} is invalid: {first}{more}; run `lanes policy check {exc.source}`"


def client_policy(settings: Settings) -> CompiledPolicy:
    """The policy file the settings name (``LANES_POLICY``, else the shipped default), compiled.

    Raises:
        PolicyConfigError: The file is invalid; the message names it, its first problem and
            ``lanes policy check``. The policy engine's own error is the ``__cause__``.
    """
    try:
        return load_policy(settings.policy_path)
    except PolicyFileError as exc:
        raise PolicyConfigError(policy_file_message(exc)) from exc


def expected_decision(settings: Settings, task: ModelTaskInput, policy: CompiledPolicy) -> PolicyDecision:
    """The decision the worker will make for ``task`` with the same policy: what the client can know."""
    return evaluate(
        policy,
        PolicyQuery(
            job_type=task.job_type,
            data_class=task.data_class,
            approval=task.approval,
            tenant=task.tenant,
            input_chars=len(task.input),
            payloads_encrypted=settings.encryption_configured,
        ),
    )


class Submission(NamedTuple):
    """A job that passed the checks: its input, and the decision the worker will make for it."""

    task: ModelTaskInput
    decision: PolicyDecision
    """Evaluated once here; the submit span records it (the worker decides again, and that decision is
    the job's)."""


def build_task(
    settings: Settings,
    policy: CompiledPolicy,
    *,
    job_type: str,
    input: str,
    data_class: str | None = None,
    model: str | None = None,
    instructions: str | None = None,
    max_output_tokens: int | None = None,
    metadata: dict[str, str] | None = None,
    approval: str | None = None,
    tenant: str | None = None,
) -> Submission:
    """Validate a submission against the model and the policy; nothing is started.

    Raises:
        InvalidJobError: A field is invalid (``field`` and ``problems`` name each), the job type or data
            class is unknown to the policy, or the policy would deny the job for a reason the caller
            can fix (tenant, input size, a key this client lacks).
    """
    if job_type not in policy.job_type_names:
        known = ", ".join(policy.job_type_names)
        raise InvalidJobError(f"unknown job type {job_type!r}; known: {known}", field="job_type")
    if data_class is not None and data_class not in policy.class_names:
        known = ", ".join(policy.class_names)
        raise InvalidJobError(f"unknown data class {data_class!r}; known: {known}", field="data_class")
    try:
        task = ModelTaskInput(
            job_type=job_type,
            data_class=data_class,
            input=input,
            model=model,
            instructions=instructions,
            max_output_tokens=max_output_tokens,
            metadata=metadata or {},
            approval=approval,
            tenant=tenant,
            # The workflow reads the stateless lane's queue from its input, never from the environment.
            options=ExecutionOptions(stateless_task_queue=settings.stateless_task_queue),
        )
    except ValidationError as exc:
        problems = [
            (
                ".".join(str(part) for part in item["loc"]) or "input",
                str(item["msg"]).removeprefix("Value error, "),
            )
            for item in exc.errors(include_input=False, include_url=False)
        ]
        message = "invalid job: " + "; ".join(f"{field}: {what}" for field, what in problems)
        raise InvalidJobError(message, field=problems[0][0], problems=problems) from None
    decision = expected_decision(settings, task, policy)
    if decision.rule == DENIED_UNKNOWN_TENANT:
        raise InvalidJobError(decision.reasons[0], field="tenant")
    if decision.rule == DENIED_INPUT_TOO_LARGE:
        limit = decision.limits.max_input_chars
        raise InvalidJobError(
            f"{len(input):,} characters, over job type {job_type!r}'s limit of {limit:,} "
            "(limits.max_input_chars); shorten it or split the job",
            field="input",
        )
    if decision.rule == DENIED_ENCRYPTION_REQUIRED:
        raise InvalidJobError(
            f"class {decision.data_class!r} requires encrypted payloads and no key is configured; set "
            "LANES_ENCRYPTION_KEYS or LANES_ENCRYPTION_KEY_FILE (docs/encryption.md)",
            field="data_class",
        )
    return Submission(task, decision)
