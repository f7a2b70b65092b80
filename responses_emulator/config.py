"""Emulator configuration.

One pydantic model holds every knob so that the CLI, the in-process fixture and the benchmark build
the emulator the same way, and so that a test can state its whole scenario in one constructor call.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal, get_args, get_origin

from openai.types.shared import ResponsesModel
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_MODELS: tuple[str, ...] = tuple(
    dict.fromkeys(
        name for arg in get_args(ResponsesModel) if get_origin(arg) is Literal for name in get_args(arg)
    )
)
"""Every model id the SDK's ``ResponsesModel`` type names, in its order.

Taken from the installed SDK rather than written out, so the list moves with the SDK lanes runs; a
model the SDK stops naming (shut down upstream) then fails in tests as it would in production.
"""


class EmulatorConfig(BaseModel):
    """Timing, retention, policy and fault-rate settings of one emulator.

    Times are in simulated seconds, measured on the emulator's clock: with a ``ManualClock`` nothing
    moves until a test advances it, so retention and resume windows can be crossed without sleeping.

    Attributes:
        duration_s: Time from ``queued`` to the terminal status of a background response.
        queued_s: Part of ``duration_s`` spent in ``queued`` before ``in_progress``.
        foreground_duration_s: Generation time of a foreground (``background`` false) response under a
            real-time clock; a foreground call is synchronous, so under a ``ManualClock`` it is instant.
        output_tokens: Number of tokens the deterministic generator writes for one response.
        token_rate: Tokens per second while ``in_progress``. When set it replaces the
            ``duration_s - queued_s`` generation time; ``None`` spreads the tokens over that time.
        seed: Mixed into generated text, response ids and random fault draws, so a rerun is identical.
        resume_window_s: Age past which ``GET ?stream=true`` is refused (the real API says 5 minutes).
        retention_s: How long a background response stays retrievable after reaching a terminal status.
        background_store_false: ``reject`` answers 400 to ``background=true, store=false`` (the stricter
            reading of the docs); ``accept`` keeps such a response for ``retention_s`` only.
        require_stream_on_create: Refuse to re-stream a background response not created with
            ``stream=true`` (the first background guide says so; unconfirmed today, so stricter).
        rate_429: Probability that any ``/v1`` request is answered 429 before it is processed.
        rate_500: Probability of a 500 answer.
        rate_503: Probability of a 503 answer.
        latency_ms: Real (not simulated) latency added before every ``/v1`` answer.
        retry_after_s: ``Retry-After`` value sent with 429 and 503 answers.
        max_stream_wait_s: Longest real sleep of a stream between checks for cancellation.
        models: Model ids a create may name; any other gets the API's 400 ``model_not_found``, so a
            typo in a policy fails in tests rather than in production. Empty accepts every model, for
            pointing other tools (with their own model names) at the emulator.
        webhook_url: URL the emulator POSTs ``response.completed``/``failed``/``cancelled``/``incomplete``
            webhooks to when a background response ends, signed per Standard Webhooks as OpenAI signs
            them; ``None`` sends none. Needs ``webhook_secret``.
        webhook_secret: Signing secret of the webhooks, ``whsec_`` followed by base64 (what OpenAI shows
            when an endpoint is created; the receiver's ``OPENAI_WEBHOOK_SECRET``).
        webhook_max_attempts: Delivery attempts per event before the emulator gives up (OpenAI keeps
            trying for 72 hours; a test wants an end).
        webhook_retry_s: Real delay before the second attempt; each later one waits twice as long.
        api_key: The one API key the emulator accepts: a ``/v1`` request without ``Authorization:
            Bearer <api_key>`` is answered 401 ``invalid_api_key``, as the real API answers a wrong key
            (so a client's handling of a refused key can be tested). ``None`` accepts any key, or none.
        zdr_api_keys: Keys of projects under Zero Data Retention, accepted besides ``api_key``. A create
            sent with one is processed as OpenAI processes a ZDR project's: ``store`` "will always be
            treated as false", so the response is not retrievable; a background response is still kept
            for polling, as OpenAI keeps it "for legacy reasons" (which breaks ZDR). The ledger marks
            each such request ``zdr_project``, so a test can prove which project saw a job's data.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: float = Field(default=3.0, ge=0)
    queued_s: float = Field(default=0.5, ge=0)
    foreground_duration_s: float = Field(default=0.2, ge=0)
    output_tokens: int = Field(default=40, ge=1, le=100_000)
    token_rate: float | None = Field(default=None, gt=0)
    seed: int = 0
    resume_window_s: float = Field(default=300.0, ge=0)
    retention_s: float = Field(default=600.0, ge=0)
    background_store_false: Literal["reject", "accept"] = "reject"
    require_stream_on_create: bool = True
    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_503: float = Field(default=0.0, ge=0, le=1)
    latency_ms: float = Field(default=0.0, ge=0)
    retry_after_s: int = Field(default=1, ge=0)
    max_stream_wait_s: float = Field(default=1.0, gt=0)
    models: tuple[str, ...] = DEFAULT_MODELS
    webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    webhook_secret: str | None = None
    webhook_max_attempts: int = Field(default=5, ge=1, le=100)
    webhook_retry_s: float = Field(default=1.0, ge=0)
    api_key: str | None = Field(default=None, min_length=1)
    zdr_api_keys: tuple[str, ...] = ()

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith("whsec_"):
            raise ValueError(
                "must start with whsec_ followed by base64 (`lanes webhooks --new-secret` prints one)"
            )
        try:
            key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the part after whsec_ is not valid base64") from None
        if len(key) < 16:
            raise ValueError(f"the key is {len(key)} bytes; use at least 16 (24 to 64 is usual)")
        return value

    @model_validator(mode="after")
    def _url_needs_secret(self) -> EmulatorConfig:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret (whsec_...), to sign the deliveries")
        return self
