"""The policy's data model: what a policy file says, what a query asks and what a decision answers.

Two families of models live here, on purpose in one place so a reviewer reads the whole vocabulary at once:

* **File models** (``Policy`` and everything it holds) mirror ``policy/default.toml`` key for key. They
  are strict (``true`` is a boolean, ``"true"`` is not) and forbid unknown keys, so a typo such as
  ``long_runing`` is an error instead of a silently ignored setting.
* **Wire models** (``PolicyQuery``, ``PolicyDecision`` and their parts) travel through Temporal history.
  They ignore unknown fields, so an older worker can read a decision written by a newer one, and a
  decision never holds prompt text: only identifiers, answers and reasons.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_ENDPOINT",
    "IMPLICIT_DEFAULT_ENDPOINT",
    "LANE_STRICTNESS",
    "Answer",
    "Approval",
    "DataClass",
    "EndpointSpec",
    "JobLimits",
    "JobType",
    "Lane",
    "LaneProfiles",
    "LimitsSpec",
    "Organisation",
    "Policy",
    "PolicyDecision",
    "PolicyQuery",
    "ProfileSpec",
    "ProviderEndpoint",
    "ProviderProfile",
    "StoredState",
    "TenantClassOverride",
    "TenantJobOverride",
    "TenantOverride",
    "base_url_address",
]


class Lane(StrEnum):
    """The runtime lanes a job's data may take, from least to most strict."""

    BACKGROUND = "background"
    """OpenAI Responses background mode: ``store=true``, provider keeps state ~10 minutes, not ZDR."""
    STATELESS = "stateless"
    """A synchronous ``store=false`` call: nothing retrievable outlives the request."""
    DENIED = "denied"
    """No model call at all."""


LANE_STRICTNESS: dict[Lane, int] = {Lane.BACKGROUND: 0, Lane.STATELESS: 1, Lane.DENIED: 2}
"""Order of strictness used by the "never looser" guarantees: denied > stateless > background."""

RerunCause = Literal["rate_limit_exceeded", "server_error", "stuck_queued", "result_expired"]
"""Background outcomes after which a job type may start a fresh generation (see ``JobLimits.rerun_on``)."""

StoredState = Literal["allow", "review", "deny"]
"""Whether temporary stored provider state is acceptable for a data class (``review`` = with approval)."""

STORED_STATE_STRICTNESS: dict[str, int] = {"allow": 0, "review": 1, "deny": 2}
"""Order of strictness of ``stored_state`` values, used to check classes only get stricter."""

DEFAULT_ENDPOINT = "openai"
"""The endpoint a profile uses when it names none: OpenAI as the worker's settings configure it
(``OPENAI_API_KEY``, and ``OPENAI_BASE_URL`` where set), which is how every job ran before endpoints."""

_BASE_URL = re.compile(r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)(?::(\d{1,5}))?(/\S*)?")


def base_url_address(base_url: str) -> tuple[str, int] | None:
    """Return the host and port an endpoint's ``base_url`` connects to, or ``None`` if it is no URL.

    The policy is pure (no URL or network library), so this reads the URL with a pattern: ``http`` or
    ``https``, a host name or bracketed IPv6 address, an optional port (else 80 or 443) and an optional
    path, no query.
    """
    match = _BASE_URL.fullmatch(base_url)
    if match is None or "?" in base_url or "#" in base_url:
        return None
    scheme, host, port = match.group(1), match.group(2), match.group(3)
    number = int(port) if port else (443 if scheme == "https" else 80)
    if not 0 < number < 65536:
        return None
    return host.strip("[]"), number


_WIRE = ConfigDict(extra="ignore", frozen=True)
_FILE = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- wire models -----------------------------------------------------------------------------------


class Answer(BaseModel):
    """The answer to one of the three questions, with the policy key that gave it.

    ``source`` is a key path into the policy file (``job_types.public_research.long_running``) or an
    approval (``approvals.SEC-1234``), so an auditor can find the line that decided.
    """

    model_config = _WIRE

    value: bool
    source: str


class ProviderProfile(BaseModel):
    """How the Responses API is called on a lane: the request flags the activity must send.

    The background lane's profile always has ``background=true`` and an explicit ``store=true`` (a
    background response is deleted after ~10 minutes otherwise); the stateless lane's always has
    ``store=false``. Both are checked when the policy is loaded.
    """

    model_config = _WIRE

    name: str
    background: bool
    store: bool
    stream: bool = False
    completion_window: Literal["soonest", "2h", "8h"] | None = None
    model: str = "gpt-5-mini"
    endpoint: str = DEFAULT_ENDPOINT
    """The ``[endpoints.<name>]`` the profile's calls go to; the default is OpenAI as configured today."""

    webhooks: bool = False
    """The provider project sends response webhooks to ``lanes webhooks``, which ends the wait at once;
    polling only remains as the safety net, every ``webhook_poll_interval_s`` (background profiles only)."""
    webhook_poll_interval_s: float = Field(default=300.0, gt=0, le=3600)
    """With ``webhooks``: the wait before each safety-net poll (the job type's ``poll_interval_cap_s``
    then no longer applies). A lost webhook costs at most this much latency, never the job."""


class ProviderEndpoint(BaseModel):
    """Where a decision sends the job's data: the endpoint's name and the host its ``base_url`` names.

    Recorded in the decision so an auditor reads, next to the lane, which provider configuration saw
    the data. ``host`` and ``port`` are ``None`` in a decision the pure engine made for an endpoint
    without ``base_url`` (its URL is the worker's setting, ``OPENAI_BASE_URL`` or OpenAI's); the
    worker's ``evaluate_policy`` activity fills them in from the client it will call with.
    """

    model_config = _WIRE

    name: str = DEFAULT_ENDPOINT
    host: str | None = None
    port: int | None = None
    zdr_eligible: bool = False
    """The policy's word that a Zero Data Retention agreement covers this endpoint."""


class JobLimits(BaseModel):
    """Resource limits of a job type, enforced by the workflow (input size also by the policy)."""

    model_config = _WIRE

    max_duration_s: float = Field(gt=0)
    max_input_chars: int = Field(ge=0)
    queued_timeout_s: float = Field(gt=0)
    poll_interval_cap_s: float = Field(gt=0)
    max_reruns: int = Field(default=0, ge=0, le=5)
    """How many fresh background generations the workflow may start after a rerunnable outcome. Each
    rerun is a new, billed generation, recorded in the job's result; 0 (the default) never reruns."""
    rerun_on: list[RerunCause] = Field(default_factory=list)
    """Which outcomes may rerun: ``rate_limit_exceeded`` or ``server_error`` (the response ended
    ``failed`` with that code), ``stuck_queued`` (it never left ``queued``), ``result_expired`` (its
    stored state expired before a worker read it)."""


class PolicyQuery(BaseModel):
    """What a caller declares about a job; the policy decides from this alone.

    It is also the input of the worker's ``evaluate_policy`` activity, so it is recorded in workflow
    history: it carries the input's length, never its text, and ignores unknown fields so histories
    written by a newer workflow still load.
    """

    model_config = _WIRE

    job_type: str
    """A job type id of the policy, e.g. ``public_research``."""
    data_class: str | None = None
    """The declared data class; ``None`` means the job type's floor, an unknown id is denied."""
    approval: str | None = None
    """An approval reference (``[approvals.<ref>]``) the caller relies on for background."""
    tenant: str | None = None
    """The tenant whose overrides apply; ``None`` means the base policy, an unknown tenant is denied."""
    input_chars: int = Field(default=0, ge=0)
    """The input's length in characters (limit ``max_input_chars``); the text itself is never sent."""
    payloads_encrypted: bool | None = None
    """Whether the worker deciding stores this job's payloads encrypted (its activity fills it in);
    ``False`` denies a class with ``require_encryption``, ``None`` (not stated) decides as before."""


class PolicyDecision(BaseModel):
    """The lane a job may take, and the evidence: rule, policy version and digest, answers and reasons.

    It is recorded in workflow history and on spans, so it holds identifiers and short sentences only,
    never prompt or output text. ``profile`` is ``None`` exactly when the lane is ``denied``.
    """

    model_config = _WIRE

    lane: Lane
    rule: str
    policy_version: str
    policy_digest: str
    policy_signed_by: list[str] = Field(default_factory=list)
    """Key ids of the trusted reviewers whose signatures over the digest the worker verified
    (``policy.signatures``); empty when the worker requires none."""
    job_type: str
    declared_data_class: str | None
    data_class: str
    long_running: Answer
    needs_retrieval: Answer
    stored_state_acceptable: Answer
    approval: str | None = None
    tenant: str | None = None
    profile: ProviderProfile | None
    limits: JobLimits
    reasons: list[str]
    require_encryption: bool = False
    """The effective class's ``require_encryption``: the job's input and output may only be stored
    (Temporal payloads, results, logs of content) encrypted; the worker must refuse the job otherwise.
    ``True`` on every ``denied.unknown-*`` decision. ``False`` when absent, as in decisions recorded
    before the setting existed, so replaying their histories does not change behaviour."""
    delete_after_harvest: bool = False
    """The effective class's ``delete_after_harvest``: on the background lane, delete the response at
    the provider (``DELETE /v1/responses/{id}``) as soon as its result has been read, shrinking the
    stored window from ~10 minutes to seconds. ``True`` on every ``denied.unknown-*`` decision;
    ``False`` when absent (older decisions)."""
    endpoint: ProviderEndpoint | None = None
    """Where the profile's calls go (see ``ProviderEndpoint``); ``None`` when denied, and in decisions
    recorded before endpoints existed, which all went to the default endpoint (``DEFAULT_ENDPOINT``)."""

    @property
    def endpoint_name(self) -> str:
        """The endpoint the job's calls use: the recorded one, else the default (older decisions)."""
        return self.endpoint.name if self.endpoint is not None else DEFAULT_ENDPOINT


# --- file models -----------------------------------------------------------------------------------


class DataClass(BaseModel):
    """One step of the sensitivity scale (``[data_classes.<id>]``)."""

    model_config = _FILE

    description: str = ""
    stored_state: StoredState
    zdr: bool = False
    model_calls: bool = True
    require_encryption: bool = False
    """Job data of this class is only stored encrypted. In a file the default is ``true`` for every class
    above the lowest of ``data_class_order`` (``Policy`` fills it in before validation)."""
    delete_after_harvest: bool = False
    """Delete a background response at the provider once its result is read. In a file the default is
    ``true`` for every class whose ``stored_state`` is not ``allow`` (``review``, or ``deny`` where it is
    moot but keeps the scale stricter upward)."""
    stateless_profile: str | None = None
    """The profile every stateless call on data of this class uses, whatever the job type's: how a
    policy routes a class (say a zdr class) to another endpoint. The profile keeps its own model (an
    internal server serves its own models); ``None`` uses the job type's stateless profile."""


class EndpointSpec(BaseModel):
    """A provider endpoint (``[endpoints.<name>]``): an OpenAI-compatible Responses API and its key.

    The seed's answer for data that must not be stored at the provider includes "a separate provider
    configuration": an endpoint covered by a Zero Data Retention agreement, or an internal server. The
    loader refuses a zdr class routed to an endpoint that is not ``zdr_eligible``, and a background
    profile on an endpoint that does not ``supports_background`` (most OpenAI-compatible servers).
    """

    model_config = _FILE

    description: str = ""
    base_url: str | None = None
    """``http(s)://host[:port]/v1``; unset means OpenAI as the worker is configured (``OPENAI_BASE_URL``,
    else ``https://api.openai.com/v1``), e.g. a second OpenAI project with its own key."""
    api_key_env: str
    """The environment variable holding the endpoint's key; the worker refuses to start without it."""
    zdr_eligible: bool
    """A Zero Data Retention agreement covers this endpoint, so zdr classes may be sent to it."""
    supports_background: bool
    """The endpoint implements background mode (``background=true``, retrieve, cancel, stream resume)."""


IMPLICIT_DEFAULT_ENDPOINT: dict[str, Any] = {
    "description": "OpenAI as configured by OPENAI_API_KEY and OPENAI_BASE_URL.",
    "base_url": None,
    "api_key_env": "OPENAI_API_KEY",
    "zdr_eligible": False,
    "supports_background": True,
}
"""The endpoint ``DEFAULT_ENDPOINT`` when a policy does not declare it: OpenAI as the worker is
configured. It is never taken as ZDR-eligible: whether a provider project has Zero Data Retention is a
contract fact, so a policy that sends a zdr class to OpenAI declares the endpoint that has it
(``zdr_eligible = true``, as ``[endpoints.openai-zdr]`` of the default policy does) and the loader
refuses the policy otherwise. Left out of the digest when undeclared or declared as is, so a policy
without zdr classes keeps the digest it had before endpoints existed."""


class ProfileSpec(ProviderProfile):
    """A provider profile as written in the file (``[profiles.<name>]``); the name is the table key."""

    model_config = _FILE


class LimitsSpec(JobLimits):
    """A job type's limits as written in the file (``[job_types.<id>.limits]``); every key is required."""

    model_config = _FILE


class LaneProfiles(BaseModel):
    """Which provider profile a job type uses on each lane it can take."""

    model_config = _FILE

    background: str | None = None
    stateless: str | None = None


class JobType(BaseModel):
    """A kind of job and its data-control stance (``[job_types.<id>]``): the unit of review."""

    model_config = _FILE

    description: str
    min_data_class: str
    long_running: bool
    needs_retrieval: bool
    preferred_lane: Literal["background", "stateless", "denied"]
    fallback: Literal["stateless", "deny"]
    background_requires_approval: bool = False
    model: str | None = None
    profiles: LaneProfiles
    limits: LimitsSpec


class Organisation(BaseModel):
    """Organisation-wide switches (``[organisation]``) that override every job type."""

    model_config = _FILE

    zdr_only: bool = False
    background_enabled: bool = True


class Approval(BaseModel):
    """A security review's sign-off letting named job types use background up to a data class."""

    model_config = _FILE

    description: str = ""
    job_types: list[str] = Field(min_length=1)
    max_data_class: str
    expires: datetime
    tenants: list[str] = Field(default_factory=list)

    @field_validator("expires", mode="before")
    @classmethod
    def _utc_expiry(cls, value: object) -> object:
        """Accept TOML dates, datetimes and ISO strings; a date expires at 00:00 UTC that day."""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("job_types", "tenants")
    @classmethod
    def _as_set(cls, value: list[str]) -> list[str]:
        """Order is meaningless in these lists; sort them so the digest ignores it."""
        return sorted(set(value))


class TenantJobOverride(BaseModel):
    """A tenant's stricter settings for one job type; every key may only tighten the base."""

    model_config = _FILE

    min_data_class: str | None = None
    preferred_lane: Literal["background", "stateless", "denied"] | None = None
    fallback: Literal["stateless", "deny"] | None = None
    background_requires_approval: bool | None = None


class TenantClassOverride(BaseModel):
    """A tenant's stricter settings for one data class; every key may only tighten the base."""

    model_config = _FILE

    stored_state: StoredState | None = None
    zdr: bool | None = None
    model_calls: bool | None = None
    require_encryption: bool | None = None
    delete_after_harvest: bool | None = None


class TenantOverride(BaseModel):
    """Per-tenant overrides (``[tenants.<id>]``), validated at load to be no looser than the base."""

    model_config = _FILE

    description: str = ""
    zdr_only: bool | None = None
    background_enabled: bool | None = None
    min_data_class: str | None = None
    job_types: dict[str, TenantJobOverride] = Field(default_factory=dict)
    data_classes: dict[str, TenantClassOverride] = Field(default_factory=dict)


class Policy(BaseModel):
    """The data of a policy file, with each table's keys and types validated, and nothing more.

    A ``Policy`` has not been cross-checked (references between tables, the sensitivity scale, tenant
    overrides), so the engine does not decide with it: ``load_policy`` validates, cross-checks and
    compiles it into a ``CompiledPolicy``, which carries the digest and is what ``evaluate`` takes.
    ``data_classes`` is kept in sensitivity order (``data_class_order``).
    """

    model_config = _FILE

    policy_version: str = Field(min_length=1)
    description: str = ""
    data_class_order: list[str]
    data_classes: dict[str, DataClass]
    organisation: Organisation = Field(default_factory=Organisation)
    endpoints: dict[str, EndpointSpec] = Field(default_factory=dict)
    """Provider endpoints by name; ``DEFAULT_ENDPOINT`` is always present (``IMPLICIT_DEFAULT_ENDPOINT``
    unless the file declares it)."""
    profiles: dict[str, ProfileSpec]
    job_types: dict[str, JobType]
    approvals: dict[str, Approval] = Field(default_factory=dict)
    tenants: dict[str, TenantOverride] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Name profiles after their keys, order data classes, add the default endpoint if undeclared."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        endpoints = data.get("endpoints", {})
        if isinstance(endpoints, dict) and DEFAULT_ENDPOINT not in endpoints:
            data["endpoints"] = {DEFAULT_ENDPOINT: dict(IMPLICIT_DEFAULT_ENDPOINT), **endpoints}
        profiles = data.get("profiles")
        if isinstance(profiles, dict):
            data["profiles"] = {
                name: {"name": name, **spec} if isinstance(spec, dict) and "name" not in spec else spec
                for name, spec in profiles.items()
            }
        order = data.get("data_class_order")
        classes = data.get("data_classes")
        if isinstance(order, list) and isinstance(classes, dict):
            rank = {name: i for i, name in enumerate(order) if isinstance(name, str)}
            # Defaults that depend on the class's place in the scale and its stored_state; written
            # explicitly or filled in here, the validated document (and so the digest) is the same.
            classes = {
                name: {
                    "require_encryption": rank.get(name, 0) > 0,
                    "delete_after_harvest": spec.get("stored_state", "allow") != "allow",
                    **spec,
                }
                if isinstance(spec, dict)
                else spec
                for name, spec in classes.items()
            }
            data["data_classes"] = dict(
                sorted(classes.items(), key=lambda item: rank.get(item[0], len(rank)))
            )
        return data

    @property
    def version(self) -> str:
        """The ``policy_version`` the file declares; decisions carry it next to the digest."""
        return self.policy_version

    @property
    def class_names(self) -> list[str]:
        """Data class ids from least to most sensitive."""
        return list(self.data_class_order)

    @property
    def job_type_names(self) -> list[str]:
        """Job type ids, sorted."""
        return sorted(self.job_types)
