"""Process configuration, read from the environment in one place.

Every entry point (worker, CLI, demo) builds one :class:`Settings` so that an operator configures lanes
the same way everywhere. The names are the ones Temporal and OpenAI tooling already use
(``TEMPORAL_ADDRESS``, ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) plus ``LANES_*`` for our own; OpenTelemetry
is configured by its standard ``OTEL_*`` variables, which the OpenTelemetry SDK reads itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lanes.dev_env import dev_defaults
from lanes.errors import SettingsError
from lanes.worker.tuning import ENV_PREFIX, WorkerTuning
from policy.signatures import PolicyTrust

DEFAULT_TASK_QUEUE = "lanes"
"""The task queue workers poll and clients start workflows on when ``LANES_TASK_QUEUE`` is unset."""


class Settings(BaseSettings):
    """Configuration shared by the worker, the CLI and the demo.

    Secrets are :class:`~pydantic.SecretStr` so that printing or logging a ``Settings`` never shows the key.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "temporal_address")
    )
    """``host:port`` of the Temporal frontend; ``None`` takes the Temporal profile's (``localhost:7233``
    without one). API key, TLS and the profile itself come from Temporal's own configuration: see
    ``lanes/temporal_config.py``."""

    temporal_namespace: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "temporal_namespace")
    )
    """Namespace the workflows run in; ``None`` takes the Temporal profile's (``default`` without one)."""

    task_queue: str = Field(
        default=DEFAULT_TASK_QUEUE, validation_alias=AliasChoices("LANES_TASK_QUEUE", "task_queue")
    )
    """Task queue of the lanes worker."""

    stateless_task_queue: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LANES_STATELESS_TASK_QUEUE", "stateless_task_queue"),
    )
    """Task queue of the stateless lane's activity (restricted data), so that its workers can run in a
    stricter network zone; ``None`` runs it on ``task_queue``. Clients put it in the job's input
    (``ExecutionOptions.stateless_task_queue``): the workflow never reads the environment."""

    worker: WorkerTuning = Field(default_factory=WorkerTuning)
    """Worker sizing and served lanes, from ``LANES_WORKER_*`` (``lanes/worker/tuning.py``)."""

    policy_path: str | None = Field(
        default=None, validation_alias=AliasChoices("LANES_POLICY", "policy_path")
    )
    """Policy file; ``None`` selects the default policy shipped in ``policy/default.toml``."""

    policy_trusted_keys: str | None = Field(
        default=None, validation_alias=AliasChoices("LANES_POLICY_TRUSTED_KEYS", "policy_trusted_keys")
    )
    """Comma-separated Ed25519 public keys (base64, as ``lanes policy keygen`` prints them): when set,
    the worker accepts only a policy signed by enough of them (``policy.signatures``)."""

    policy_required_signatures: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("LANES_POLICY_REQUIRED_SIGNATURES", "policy_required_signatures"),
    )
    """How many distinct trusted keys must have signed the policy (with ``LANES_POLICY_TRUSTED_KEYS``)."""

    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    """API key. Without ``OPENAI_BASE_URL`` it makes the worker talk to OpenAI itself."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=AliasChoices("LANES_LOG_LEVEL", "log_level")
    )
    """Worker log level. Payload-logging libraries stay at INFO or above even at DEBUG (see
    ``lanes/telemetry.py``), so no prompt or output text reaches a log."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    trace_queries: bool = Field(
        default=False, validation_alias=AliasChoices("LANES_TRACE_QUERIES", "trace_queries")
    )
    """Keep traces that start with a status query. Off by default: ``lanes status`` (or a client polling a
    job's phase) would otherwise add a one-span trace per call to the trace list (``lanes/telemetry.py``)."""

    prometheus_bind: str | None = Field(
        default=None, validation_alias=AliasChoices("LANES_PROMETHEUS_BIND", "prometheus_bind")
    )
    """``host:port`` where the worker serves ``/metrics`` for Prometheus (lanes' and Temporal's metrics,
    ``lanes/worker/metrics.py``); ``None`` serves nothing. ``127.0.0.1:9464`` is loopback only."""

    @field_validator("prometheus_bind")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"LANES_PROMETHEUS_BIND={value!r}: expected HOST:PORT with a port from 1 to 65535, "
                "e.g. 127.0.0.1:9464 (or 0.0.0.0:9464 to be scraped from other hosts)"
            )
        return value

    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    """Override of the provider's URL; the embedded stack points it at the local Responses emulator."""

    openai_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_WEBHOOK_SECRET", "openai_webhook_secret")
    )
    """Signing secret (``whsec_…``) of the webhook endpoint ``lanes webhooks`` serves; the name is the
    ``openai`` SDK's own. Only the receiver needs it (see ``docs/webhooks.md``)."""

    encryption_keys: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LANES_ENCRYPTION_KEYS", "encryption_keys")
    )
    """``id=base64key[,id2=base64key2]``: AES-256 keys for payloads in Temporal history; the first one
    encrypts, all of them decrypt (see ``docs/encryption.md``). Unset with no key file: clear text."""

    encryption_key_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("LANES_ENCRYPTION_KEY_FILE", "encryption_key_file")
    )
    """A file of keys in the ``LANES_ENCRYPTION_KEYS`` format (one per line or comma separated), mode 0600."""

    encryption_allow_plaintext: bool = Field(
        default=False,
        validation_alias=AliasChoices("LANES_ENCRYPTION_ALLOW_PLAINTEXT", "encryption_allow_plaintext"),
    )
    """With keys configured, also accept payloads that are not encrypted, for histories recorded before
    encryption was turned on. Off: anyone who can signal a workflow in Temporal could forge its input."""

    blob_dir: Path = Field(
        default=Path(".lanes/blobs"), validation_alias=AliasChoices("LANES_BLOB_DIR", "blob_dir")
    )
    """Where payloads above ``claim_check_threshold`` are kept (encrypted) instead of in history."""

    claim_check_threshold: int = Field(
        default=256 * 1024,
        gt=0,
        validation_alias=AliasChoices("LANES_CLAIM_CHECK_THRESHOLD", "claim_check_threshold"),
    )
    """Encoded payload size in bytes above which the payload goes to the blob store."""

    codec_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LANES_CODEC_TOKEN", "codec_token")
    )
    """Bearer token the codec server requires when set (the UI sends it with "pass access token")."""

    codec_cors_origins: str = Field(
        default="http://127.0.0.1:8233,http://localhost:8233",
        validation_alias=AliasChoices("LANES_CODEC_CORS_ORIGINS", "codec_cors_origins"),
    )
    """Comma-separated browser origins (the Temporal UI's) allowed to call the codec server."""

    codec_url: str | None = Field(default=None, validation_alias=AliasChoices("LANES_CODEC_URL", "codec_url"))
    """Where the codec server the Temporal UI decodes with answers (``http://127.0.0.1:8081``), so that
    ``lanes doctor`` can check it allows the UI's origins (``LANES_CODEC_CORS_ORIGINS``); ``lanes dev``
    records its own. ``None``: no codec server to check. The codec server itself does not read it."""

    codec_token_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("LANES_CODEC_TOKEN_FILE", "codec_token_file")
    )
    """A file holding the codec server's bearer token instead of ``LANES_CODEC_TOKEN`` (a compose or
    Kubernetes secret), mode 0600. Both are checked by ``lanes/servers/codec_server.py``: empty, whitespace or
    under 32 bytes is refused, never read as "no token"."""

    codec_allowed_hosts: str | None = Field(
        default=None, validation_alias=AliasChoices("LANES_CODEC_ALLOWED_HOSTS", "codec_allowed_hosts")
    )
    """Comma-separated host names the codec server answers to (its ``Host`` header, against DNS
    rebinding); ``None``: ``localhost``, ``127.0.0.1``, ``[::1]`` and the bound host if it is a name."""

    codec_claim_check: bool = Field(
        default=False, validation_alias=AliasChoices("LANES_CODEC_CLAIM_CHECK", "codec_claim_check")
    )
    """Let the codec server's ``/encode`` move large payloads to the blob store, as workers do. Off by
    default: a caller of ``/encode`` then never writes a file on the server."""

    def policy_trust(self) -> PolicyTrust | None:
        """The keys the worker trusts to sign policies, or ``None`` when signatures are not required.

        Raises:
            SettingsError: ``LANES_POLICY_TRUSTED_KEYS`` holds a malformed key, or
                ``LANES_POLICY_REQUIRED_SIGNATURES`` asks for more signatures than there are keys.
        """
        if not self.policy_trusted_keys:
            return None
        try:
            return PolicyTrust.parse(self.policy_trusted_keys, self.policy_required_signatures)
        except ValueError as exc:
            raise SettingsError(
                f"LANES_POLICY_TRUSTED_KEYS / LANES_POLICY_REQUIRED_SIGNATURES: {exc}"
            ) from None

    @property
    def encryption_configured(self) -> bool:
        """Whether keys are configured, so clients and workers built from these settings encrypt."""
        return self.encryption_keys is not None or self.encryption_key_file is not None

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables that reproduce them in a child process.

        The embedded stack and the tests start workers as processes; deriving their environment from the
        model (each field's first alias) keeps one list of names, so a new setting cannot be forgotten.
        Unset (``None``) fields are left out, so the child falls back to its own defaults.
        """
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None or isinstance(value, BaseModel):
                # Nested groups (worker tuning) read their own prefixed variables from the environment.
                continue
            alias = field.validation_alias
            variable = alias.choices[0] if isinstance(alias, AliasChoices) else name.upper()
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[str(variable)] = str(value)
        return env


def env_name(model: str, field: str) -> str:
    """The environment variable of a settings field, for error messages."""
    if model == WorkerTuning.__name__:
        return ENV_PREFIX + field.upper()
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else field.upper()


def configuration_message(exc: ValidationError) -> str:
    """One line for every error of a settings model, naming the environment variable.

    The input is left out: pydantic's own message would show it, and it may be a secret.
    """
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        name = env_name(exc.title, loc[0]) if loc else exc.title
        parts.append(f"{name}: {error['msg']}" if loc else str(error["msg"]))
    return "; ".join(parts)


def client_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus a running ``lanes dev`` stack's values for what it leaves unset.

    What :func:`load_settings` reads, for the variables that are not settings: the key variables that a
    policy's endpoints name (``endpoints.<name>.api_key_env``), which ``lanes watch`` needs to build the
    provider clients beside a dev stack (:func:`lanes.connect.endpoint_clients`).
    """
    env = os.environ if environ is None else environ
    return {**env, **dev_defaults(env)}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process: its environment, then a running ``lanes dev`` stack's for the rest.

    Every entry point that talks to Temporal as a client (the CLI, :meth:`lanes.LanesClient.connect`)
    loads its settings here, so a shell beside ``lanes dev`` needs nothing exported (:mod:`lanes.dev_env`).

    Raises:
        SettingsError: A variable is malformed; the message names each one, never its value.
    """
    try:
        defaults: dict[str, Any] = dict(dev_defaults(environ))
        return Settings(**defaults)
    except ValidationError as exc:
        raise SettingsError(configuration_message(exc)) from None
