"""The lanes policy engine: which runtime lane a job's data may take, and why.

A pure engine (no Temporal, no network, no ``openai``) that a security reviewer can read, test and sign
off. A TOML policy file (``policy/default.toml``) states an ordered scale of data classes, the job types
with their data-control stance, provider profiles, approvals, organisation switches and tenant overrides.
``evaluate`` answers the three questions of the seed article for one job, and picks:

* ``background``: OpenAI Responses background mode (``store=true``, state kept ~10 minutes, not ZDR);
* ``stateless``: a synchronous ``store=false`` call;
* ``denied``: no model call.

Usage::

    from policy import PolicyQuery, PolicySource, evaluate

    source = PolicySource()  # policy/default.toml, or a path; current() is a CompiledPolicy
    decision = evaluate(source.current(), PolicyQuery(job_type="public_research"), now=now)
    decision.lane, decision.rule, decision.reasons
"""

from policy.compiled import CompiledPolicy
from policy.errors import PolicyError, PolicyFileError, UnknownJobTypeError
from policy.evaluation import evaluate, unused_approval
from policy.loading import default_policy_path, load_policy, load_policy_text
from policy.models import (
    DEFAULT_ENDPOINT,
    Answer,
    EndpointSpec,
    JobLimits,
    Lane,
    Policy,
    PolicyDecision,
    PolicyQuery,
    ProviderEndpoint,
    ProviderProfile,
)
from policy.source import PolicySource, PolicySourceStatus

__all__ = [
    "DEFAULT_ENDPOINT",
    "Answer",
    "CompiledPolicy",
    "EndpointSpec",
    "JobLimits",
    "Lane",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicyFileError",
    "PolicyQuery",
    "PolicySource",
    "PolicySourceStatus",
    "ProviderEndpoint",
    "ProviderProfile",
    "UnknownJobTypeError",
    "default_policy_path",
    "evaluate",
    "load_policy",
    "load_policy_text",
    "unused_approval",
]
