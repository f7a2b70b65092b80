"""What the Temporal UI shows for a job: its lane decision, as the workflow's current details.

A reviewer who opens a job in the Temporal UI reads first, above any payload, which lane it took, by
which rule of which policy version, the three answers with the policy keys that gave them, and the
reasons (Temporal's user metadata, ``workflow.set_current_details``). A denied job reads as the policy's
denial: the decision is the whole story, not a stack trace (the failure converter sends none for it,
``lanes/worker/benign_failures.py``).

Only policy vocabulary goes here, never prompt, instructions or output text: the details are metadata
that the UI shows to anyone who may list the namespace's workflows.
"""

from __future__ import annotations

from policy import Lane, PolicyDecision

VERDICTS = {
    Lane.BACKGROUND: "Background lane (stored state at the provider)",
    Lane.STATELESS: "Stateless lane (store=false)",
    Lane.DENIED: "Denied by policy: no model is called",
}


def decision_details(decision: PolicyDecision) -> str:
    """The decision as the UI's current details (Markdown): lane, rule, policy, answers, reasons."""
    where = f"job type `{decision.job_type}`, data class `{decision.data_class}`"
    if decision.declared_data_class not in (None, decision.data_class):
        where += f" (declared `{decision.declared_data_class}`)"
    if decision.tenant:
        where += f", tenant `{decision.tenant}`"
    lines = [
        f"**{VERDICTS[decision.lane]}**",
        f"rule `{decision.rule}` of policy {decision.policy_version} "
        f"(digest `{decision.policy_digest[:16]}`)",
        where,
    ]
    if decision.profile is not None:
        profile = decision.profile
        lines.append(
            f"profile `{profile.name}`: model `{profile.model}`, endpoint `{profile.endpoint}`, "
            f"background={str(profile.background).lower()}, store={str(profile.store).lower()}"
        )
    items = [
        f"- {question}: {'yes' if answer.value else 'no'} (`{answer.source}`)"
        for question, answer in (
            ("long-running", decision.long_running),
            ("needs polling or later retrieval", decision.needs_retrieval),
            ("stored state acceptable", decision.stored_state_acceptable),
        )
    ]
    items += [f"- {reason}" for reason in decision.reasons]
    # Paragraphs for the header lines (Markdown joins adjacent lines), one list for answers and reasons.
    return "\n\n".join(lines) + "\n\n" + "\n".join(items)
