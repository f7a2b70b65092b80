"""The emulator core: an ``httpx2`` handler that answers like OpenAI's Responses API.

``Emulator.handle`` is pure request-in, response-out over an in-memory store, so the same object
serves the real SDK in-process (``httpx2.MockTransport(emulator.handle)``) and over loopback HTTP
(through :mod:`responses_emulator.asgi` and :mod:`lanes.dev.emulator_server`).

Per-request control travels in ``metadata`` (so it passes through the SDK untouched):

- ``emulator_duration``: seconds from ``queued`` to the terminal status of this response.
- ``emulator_tokens``: number of output tokens to generate.
- ``emulator_fault``: a fault string (grammar in :mod:`responses_emulator.faults`), e.g.
  ``stuck_queued``, ``hold``, ``fail:server_error``, ``incomplete:max_output_tokens``,
  ``drop_stream_after:5``, ``stream_error:rate_limit_exceeded:8``, ``reset_mid_body``, ``cancel_race``,
  ``http:429:2``, ``http:503:3``.

The ``X-Emulator-Fault`` header takes the same grammar and applies to the request that carries it.

With ``EmulatorConfig.webhook_url`` set, a background response's end is also announced by a signed
webhook (:mod:`responses_emulator.webhooks`), sent by a task that sleeps until the response ends.

A response created with the ``hold`` fault runs on its schedule but only ends when a test calls
:meth:`Emulator.release`, so integration tests decide when a job's response completes instead of
racing a wall-clock duration. :meth:`Emulator.hold_create_replies` likewise keeps creates from being
answered (their responses exist) until :meth:`Emulator.release_create_replies`, to reproduce a reply
lost with the process that sent the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx2
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import ValidationError

from responses_emulator.clock import AdvanceableClock, Clock, SystemClock
from responses_emulator.completions import Completion, Completions
from responses_emulator.config import EmulatorConfig
from responses_emulator.errors import JSON_HEADERS, EmulatorError, error_response, not_found
from responses_emulator.events import (
    final_snapshot,
    render_step,
    snapshot,
    sse,
    stream_error_event,
    timeline,
)
from responses_emulator.faults import EmulatedDisconnect, Faults, parse_faults
from responses_emulator.ledger import Ledger, LedgerEntry
from responses_emulator.store import TERMINAL, Outcome, ResponseRecord, Store
from responses_emulator.textgen import count_input_tokens, generate_tokens, request_digest
from responses_emulator.webhooks import WebhookSender

NO_ANSWER = 499
"""Ledger status of a request that got no answer: cancelled by its client, or cut by a shutdown."""

FAULT_HEADER = "x-emulator-fault"
"""Header carrying a per-request fault string."""

IDEMPOTENCY_HEADER = "idempotency-key"
"""Header whose reuse returns the original response instead of generating again."""

CREATE_PARAMETERS: frozenset[str] = frozenset().union(
    *(
        t.__required_keys__ | t.__optional_keys__
        for t in (ResponseCreateParamsStreaming, ResponseCreateParamsNonStreaming)
    )
)
"""Every top-level create parameter the SDK can send; anything else is the API's ``unknown_parameter``.

Read from the SDK's own ``TypedDict``s, so a parameter the SDK adds is accepted without an edit here,
and a misspelt one (``backgroud``) fails in tests as it does against the real API.
"""

STATEFUL_FIELDS = ("previous_response_id", "conversation")
"""Create fields that need stored provider state; the ledger names them so tests can prove a
stateless job never sends them."""

COMPLETION_WINDOWS = ("soonest", "2h", "8h")
"""Accepted ``background_options.completion_window`` values."""

_ECHOED = (
    "instructions",
    "max_output_tokens",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "service_tier",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
    "prompt_cache_key",
    "safety_identifier",
    "max_tool_calls",
    "top_logprobs",
)


@dataclass(frozen=True, slots=True)
class _StreamError:
    """A ``stream_error`` armed on one stream.

    Attributes:
        code: ``error.code`` of the event.
        after: Events the stream sends before it.
        counted: Whether it uses up one of the response's ``stream_error`` times (a header fault
            belongs to its request only).
    """

    code: str
    after: int
    counted: bool


@dataclass(slots=True)
class _Call:
    """What the ledger will say about the request being handled."""

    method: str
    path: str
    at: float
    background: bool | None = None
    store: bool | None = None
    stream: bool | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    response_id: str | None = None
    model: str | None = None
    generated: bool = False
    starting_after: int | None = None
    fault: str | None = None
    stateful: list[str] = field(default_factory=list)
    zdr_project: bool = False

    def entry(self, status_code: int) -> LedgerEntry:
        return LedgerEntry(
            method=self.method,
            path=self.path,
            background=self.background,
            store=self.store,
            stream=self.stream,
            metadata=self.metadata,
            idempotency_key=self.idempotency_key,
            response_id=self.response_id,
            status_code=status_code,
            model=self.model,
            generated=self.generated,
            starting_after=self.starting_after,
            fault=self.fault,
            stateful=self.stateful,
            zdr_project=self.zdr_project,
            at=self.at,
        )


class Emulator:
    """A fault-injecting, in-memory emulator of the Responses API.

    Args:
        config: Timing, retention, policy and fault settings; defaults to ``EmulatorConfig()``.
        clock: Where "now" comes from; a ``ManualClock`` lets tests cross windows without sleeping.
        webhook_transport: Delivers webhooks through this ``httpx2`` transport instead of the network
            (in-process tests); used only when ``config.webhook_url`` is set.

    Attributes:
        config: The settings in force.
        clock: The clock in use.
        ledger: Every answered request and webhook delivery, without any prompt or output text.
        store: The retrievable responses.
        webhooks: The webhook sender, ``None`` without ``config.webhook_url``.
        completions: Every generated response (retrievable or not) and when it ended.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        webhook_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ledger = Ledger()
        self.store = Store(retention_s=self.config.retention_s)
        self.completions = Completions()
        self._rng = random.Random(self.config.seed)
        self._models = frozenset(self.config.models)
        self._waiters: set[asyncio.Future[None]] = set()
        self._epoch = 0
        self._held: dict[str, ResponseRecord] = {}
        self._holding_creates = False
        self._held_creates = 0
        self.open_streams = 0
        self.stream_events_sent = 0
        """Server-sent events written to every stream so far: a benchmark's measure of stream work."""
        self.webhooks: WebhookSender | None = None
        if self.config.webhook_url is not None and self.config.webhook_secret is not None:
            self.webhooks = WebhookSender(
                url=self.config.webhook_url,
                secret=self.config.webhook_secret,
                ledger=self.ledger,
                now=self.clock.now,
                max_attempts=self.config.webhook_max_attempts,
                retry_s=self.config.webhook_retry_s,
                transport=webhook_transport,
            )
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        self._held_webhooks: dict[str, ResponseRecord] = {}

    # ------------------------------------------------------------------ entry point

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one HTTP request (API or ``/_emulator`` admin).

        Returns:
            The answer; streamed answers carry an async body that paces itself on the clock.
        """
        path = request.url.path
        if path.startswith("/_emulator"):
            return self._admin(request, path)
        call = _Call(method=request.method, path=path, at=self.clock.now())
        request_id = f"req_{uuid.uuid4().hex}"
        status = NO_ANSWER
        # Recorded even when the request is cancelled (its client went away while a reply was held or
        # a foreground response generated): the generation happened and "one generation per job"
        # must count it.
        try:
            try:
                response = await self._api(request, call)
            except EmulatorError as error:
                response = error_response(
                    error, retry_after_s=self.config.retry_after_s, request_id=request_id
                )
            else:
                response.headers["x-request-id"] = request_id
            status = response.status_code
            return response
        finally:
            self.ledger.record(call.entry(status))

    def end_streams(self) -> None:
        """Cut every open stream abruptly, e.g. because the server is shutting down."""
        self._epoch += 1
        self._pulse()

    def advance(self, seconds: float) -> float:
        """Move an advanceable clock forward and wake every waiting stream and call.

        On a :class:`~responses_emulator.clock.ShiftedClock` the open streams then emit at once what
        became due and stay open for the rest, so a test fast-forwards a quiet stream without
        resuming it; on a ``ManualClock`` it is the same as advancing the clock.

        Returns:
            The new time.

        Raises:
            TypeError: If the clock cannot be advanced (``SystemClock``).
            ValueError: If ``seconds`` is negative.
        """
        if not isinstance(self.clock, AdvanceableClock):
            raise TypeError(f"a {type(self.clock).__name__} cannot be advanced")
        now = self.clock.advance(seconds)
        self._pulse()
        return now

    def hold_create_replies(self) -> None:
        """Stop answering creates until :meth:`release_create_replies`.

        A create made meanwhile is processed as usual (its response exists, is stored, generates and
        is found by its ``Idempotency-Key``) but its reply waits, so a test can kill the process that
        sent it and prove that the retry gets the same response instead of a second generation.
        """
        self._holding_creates = True

    def release_create_replies(self) -> int:
        """Answer the creates held by :meth:`hold_create_replies`, and every later create at once.

        Returns:
            How many replies were waiting.
        """
        waiting = self._held_creates
        self._holding_creates = False
        self._pulse()
        return waiting

    @property
    def held_create_replies(self) -> int:
        """Number of creates whose reply is being held; tests wait on it to know the creates arrived."""
        return self._held_creates

    def release(self, *, response_id: str | None = None, metadata: dict[str, str] | None = None) -> int:
        """Let responses created with the ``hold`` fault reach their terminal status.

        A released response ends at its natural end, or now if that has passed; its open streams wake
        at once. The filters combine: with both, a response must match the id and every metadata pair;
        with neither, every held response is released. A response that was cancelled or deleted
        while held is dropped without counting, since releasing it changes nothing.

        Args:
            response_id: Release only this response.
            metadata: Release only responses whose metadata contains every one of these pairs (lanes
                tags its jobs, so a test can release one job's response without knowing its id).

        Returns:
            How many responses were released.
        """
        now = self.clock.now()
        released = 0
        for record in list(self._held.values()):
            if record.gone or record.cancelled:
                del self._held[record.id]
                continue
            if response_id is not None and record.id != response_id:
                continue
            if metadata and any(record.metadata.get(k) != v for k, v in metadata.items()):
                continue
            del self._held[record.id]
            record.released_at = now
            record.version += 1
            released += 1
        if released:
            self._pulse()
        return released

    def release_webhooks(self, *, response_id: str | None = None) -> int:
        """Let the webhooks held by the ``webhook_hold`` fault go (only ``response_id``'s, if given).

        A test holds a webhook to deliver it when it chooses: after the job already ended by polling (a
        late delivery), or before the job has read its create's reply (out of order).

        Returns:
            How many webhooks were released.
        """
        released = 0
        for record in list(self._held_webhooks.values()):
            if response_id is None or record.id == response_id:
                record.webhook_released = True
                released += 1
        if released:
            self._pulse()
        return released

    @property
    def held_webhooks(self) -> int:
        """Number of ended responses whose webhook a ``webhook_hold`` fault keeps back."""
        return len(self._held_webhooks)

    @property
    def pending_webhooks(self) -> int:
        """Number of background responses whose webhook is not yet sent (or still being retried)."""
        return len(self._webhook_tasks)

    async def aclose(self) -> None:
        """Stop every webhook task (waiting or delivering) and close the webhook sender's client."""
        tasks = list(self._webhook_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.webhooks is not None:
            await self.webhooks.aclose()

    def completed(self) -> list[Completion]:
        """Every generated response with the time it reached its terminal status (if it has).

        Served as ``GET /_emulator/completions``; a benchmark subtracts these times from the moment a
        caller noticed the end to get its completion-detection lag.
        """
        return self.completions.at(self.clock.now())

    @property
    def held_responses(self) -> int:
        """Number of responses a ``hold`` fault still keeps from ending (cancelled ones excluded)."""
        return sum(1 for r in self._held.values() if not (r.gone or r.cancelled))

    # ------------------------------------------------------------------ admin

    def _admin(self, request: httpx2.Request, path: str) -> httpx2.Response:
        route = path.removeprefix("/_emulator").strip("/")
        query = parse_qs(request.url.query.decode(), keep_blank_values=True)
        if route == "health" and request.method == "GET":
            body: Any = {
                "status": "ok",
                "responses": len(self.store),
                "open_streams": self.open_streams,
                "stream_events_sent": self.stream_events_sent,
                "requests": len(self.ledger),
                "held_responses": self.held_responses,
                "held_create_replies": self.held_create_replies,
                "pending_webhooks": self.pending_webhooks,
                "held_webhooks": self.held_webhooks,
            }
        elif route == "ledger" and request.method == "GET":
            body = [entry.model_dump(mode="json") for entry in self.ledger.entries()]
        elif route == "webhooks" and request.method == "GET":
            body = [delivery.model_dump(mode="json") for delivery in self.ledger.deliveries()]
        elif route == "webhooks/release" and request.method == "POST":
            body = {"released": self.release_webhooks(response_id=query.get("response_id", [None])[0])}
        elif route == "completions" and request.method == "GET":
            body = [completion.model_dump(mode="json") for completion in self.completed()]
        elif route == "ledger" and request.method == "DELETE":
            body = {"cleared": len(self.ledger)}
            self.ledger.clear()
        elif route == "clock/advance" and request.method == "POST":
            try:
                body = {"now": self.advance(float(query.get("seconds", ["0"])[0]))}
            except TypeError as error:
                return _json(409, {"error": {"message": f"{error}: the emulator runs on the system clock"}})
            except ValueError as error:
                return _json(400, {"error": {"message": str(error)}})
        elif route == "create-replies/hold" and request.method == "POST":
            self.hold_create_replies()
            body = {"held_create_replies": self.held_create_replies}
        elif route == "create-replies/release" and request.method == "POST":
            body = {"released": self.release_create_replies()}
        elif route == "release" and request.method == "POST":
            response_id = query.get("response_id", [None])[0]
            metadata = {
                k.removeprefix("metadata."): v[0] for k, v in query.items() if k.startswith("metadata.")
            }
            body = {"released": self.release(response_id=response_id, metadata=metadata)}
        else:
            return _json(404, {"error": {"message": f"no admin route {request.method} {path}"}})
        return _json(200, body)

    # ------------------------------------------------------------------ API routing

    async def _api(self, request: httpx2.Request, call: _Call) -> httpx2.Response:
        header_faults = parse_faults(request.headers.get(FAULT_HEADER))
        if not header_faults.empty:
            call.fault = header_faults.source
        delay_s = (self.config.latency_ms + header_faults.delay_ms) / 1000
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if header_faults.http_status is not None:
            raise EmulatorError(header_faults.http_status)
        self._check_key(request, call)
        self._random_fault(call)

        parts = call.path.strip("/").split("/")
        if parts[:2] != ["v1", "responses"]:
            raise EmulatorError(404, f"Invalid URL ({call.method} {call.path})")
        method = call.method
        if len(parts) == 2 and method == "POST":
            return await self._create(request, call, header_faults)
        if len(parts) == 3 and method == "GET":
            return await self._retrieve(request, call, parts[2], header_faults)
        if len(parts) == 3 and method == "DELETE":
            return await self._delete(call, parts[2])
        if len(parts) == 4 and parts[3] == "cancel" and method == "POST":
            return await self._cancel(call, parts[2], header_faults)
        raise EmulatorError(404, f"Invalid URL ({call.method} {call.path})")

    def _check_key(self, request: httpx2.Request, call: _Call) -> None:
        """Refuse a request without a key the emulator takes, as the API does; note a ZDR project's.

        Taken: ``EmulatorConfig.api_key`` (any key when it is ``None``) and every ``zdr_api_keys``.
        """
        sent = request.headers.get("authorization", "").encode()
        # Compared with every key, not only until the first match: the time taken says nothing of which.
        zdr = [hmac.compare_digest(sent, f"Bearer {key}".encode()) for key in self.config.zdr_api_keys]
        call.zdr_project = any(zdr)
        key = self.config.api_key
        if key is None or call.zdr_project:
            return
        if not hmac.compare_digest(sent, f"Bearer {key}".encode()):
            raise EmulatorError(401)

    def _random_fault(self, call: _Call) -> None:
        config = self.config
        if not (config.rate_429 or config.rate_500 or config.rate_503):
            return
        draw = self._rng.random()
        for status, rate in ((429, config.rate_429), (500, config.rate_500), (503, config.rate_503)):
            if draw < rate:
                call.fault = f"random:{status}"
                raise EmulatorError(status)
            draw -= rate

    async def _touch(self, call: _Call, response_id: str) -> ResponseRecord:
        """Look up a live record and apply the faults attached to it."""
        call.response_id = response_id
        record = self.store.get(response_id, self.clock.now())
        if record is None:
            raise not_found(response_id)
        if record.faults.delay_ms > 0:
            await asyncio.sleep(record.faults.delay_ms / 1000)
        if record.http_left > 0 and record.faults.http_status is not None:
            record.http_left -= 1
            call.fault = f"http:{record.faults.http_status}"
            raise EmulatorError(record.faults.http_status)
        return record

    # ------------------------------------------------------------------ create

    async def _create(self, request: httpx2.Request, call: _Call, header_faults: Faults) -> httpx2.Response:
        body = _parse_body(request)
        call.model = body.get("model") if isinstance(body.get("model"), str) else None
        call.idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
        call.stateful = [k for k in STATEFUL_FIELDS if body.get(k) is not None]
        _check_known_parameters(body)
        call.background = _opt_bool(body, "background")
        call.store = _opt_bool(body, "store")
        call.stream = _opt_bool(body, "stream")
        metadata = _metadata(body)
        call.metadata = metadata
        model = body.get("model")
        if model is None:
            raise EmulatorError(
                400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
            )
        if not isinstance(model, str):
            raise _invalid_type("model", "a string", model)
        background = bool(call.background)
        store = call.store is not False
        stream = bool(call.stream)
        max_output_tokens = body.get("max_output_tokens")
        if max_output_tokens is not None:
            if not isinstance(max_output_tokens, int) or isinstance(max_output_tokens, bool):
                raise EmulatorError(
                    400,
                    "Invalid type for 'max_output_tokens': expected an integer.",
                    param="max_output_tokens",
                    code="invalid_type",
                )
            if max_output_tokens < 16:
                raise EmulatorError(
                    400,
                    "Invalid 'max_output_tokens': integer below minimum value. "
                    f"Expected a value >= 16, but got {max_output_tokens} instead.",
                    param="max_output_tokens",
                    code="integer_below_min_value",
                )
        _check_decimal(body, "temperature", maximum=2)
        _check_decimal(body, "top_p", maximum=1)
        if self._models and model not in self._models:
            raise EmulatorError(
                400, f"The requested model '{model}' does not exist.", param="model", code="model_not_found"
            )
        _check_background_options(body, background=background, stream=stream)
        if background and not store and self.config.background_store_false == "reject":
            raise EmulatorError(
                400,
                "Background sampling requires store=true; stateless requests are rejected.",
                param="store",
            )

        if call.zdr_project:
            # "store ... will always be treated as false" for a ZDR project, even when the request asks.
            store = False

        metadata_faults = parse_faults(metadata.get("emulator_fault"))
        response_faults = Faults(
            stuck_queued=header_faults.stuck_queued,
            hold=header_faults.hold,
            fail_code=header_faults.fail_code,
            incomplete_reason=header_faults.incomplete_reason,
            cancel_race=header_faults.cancel_race,
            webhook_drop=header_faults.webhook_drop,
            webhook_duplicates=header_faults.webhook_duplicates,
            webhook_delay_ms=header_faults.webhook_delay_ms,
            webhook_hold=header_faults.webhook_hold,
            webhook_bad_signature=header_faults.webhook_bad_signature,
        )
        faults = metadata_faults.merged(response_faults)
        if faults.source:
            call.fault = ",".join(s for s in (metadata_faults.source, header_faults.source) if s)

        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        now = self.clock.now()
        # Nothing is awaited between this lookup and the ``put`` below, so of concurrent creates with
        # one key exactly one generates and the others (held at the reply gate or not) replay it.
        if call.idempotency_key is not None:
            previous = self.store.by_idempotency_key(call.idempotency_key, now)
            if previous is not None:
                call.response_id = previous.id
                if previous.body_digest != digest:
                    raise EmulatorError(
                        400,
                        f"Idempotency-Key '{call.idempotency_key}' was already used with another body.",
                        param="Idempotency-Key",
                        code="idempotency_key_reused",
                    )
                return await self._answer_create(previous, stream=stream, request_faults=header_faults)

        record = self._new_record(body, metadata, faults, background=background, store=store, stream=stream)
        record.idempotency_key = call.idempotency_key if store else None
        record.body_digest = digest
        try:
            final_snapshot(record)
        except ValidationError as error:
            first = error.errors()[0]
            param = ".".join(str(p) for p in first["loc"][:2])
            raise EmulatorError(400, f"Invalid value for '{param}': {first['msg']}.", param=param) from None
        if store or background:
            self.store.put(record)
        if faults.hold:
            # Kept apart from the store: a held foreground store=false response must be releasable too.
            self._held[record.id] = record
        if background and self.webhooks is not None:
            task = asyncio.get_running_loop().create_task(self._webhook_when_ended(record, self.webhooks))
            self._webhook_tasks.add(task)
            task.add_done_callback(self._webhook_tasks.discard)
        self.store.sweep(now)
        self.completions.track(record)
        call.response_id = record.id
        call.generated = True
        return await self._answer_create(record, stream=stream, request_faults=header_faults)

    async def _answer_create(
        self, record: ResponseRecord, *, stream: bool, request_faults: Faults
    ) -> httpx2.Response:
        await self._create_reply_gate()
        if stream:
            return self._stream_response(record, starting_after=None, request_faults=request_faults)
        if record.background:
            return self._plain(record, snapshot(record, self.clock.now()), request_faults, touch=False)
        # A foreground call is synchronous: answer once generation has finished. The end is read again
        # after every wait because a release gives a held response its end, and an advance of the
        # clock brings it closer.
        while True:
            end = record.terminal_at
            now = self.clock.now()
            if end is not None and (now >= end or not self.clock.realtime):
                return self._plain(record, final_snapshot(record), request_faults, touch=False)
            if end is None and (record.gone or (not record.held and not self.clock.realtime)):
                # Deleted, or stuck in queued under a manual clock: nothing will end it, answer what exists.
                return self._plain(record, snapshot(record, now), request_faults, touch=False)
            delay = self.config.max_stream_wait_s
            await self._wait(delay if end is None else min(delay, end - now))

    def _new_record(
        self,
        body: dict[str, Any],
        metadata: dict[str, str],
        faults: Faults,
        *,
        background: bool,
        store: bool,
        stream: bool,
    ) -> ResponseRecord:
        config = self.config
        now = self.clock.now()
        count = _metadata_number(metadata, "emulator_tokens", int, config.output_tokens)
        if count < 1:
            raise EmulatorError(400, "emulator_tokens must be >= 1.", param="metadata.emulator_tokens")
        if background:
            duration = _metadata_number(metadata, "emulator_duration", float, config.duration_s)
            queued = min(config.queued_s, duration)
        else:
            # Foreground calls are synchronous; with a manual clock they complete instantly.
            default = config.foreground_duration_s
            duration = _metadata_number(metadata, "emulator_duration", float, default)
            duration = duration if self.clock.realtime else 0.0
            queued = 0.0
        if duration < 0:
            raise EmulatorError(400, "emulator_duration must be >= 0.", param="metadata.emulator_duration")
        gen_s = count / config.token_rate if config.token_rate else duration - queued
        max_output_tokens = body.get("max_output_tokens")
        model = str(body["model"])
        digest = request_digest(
            seed=config.seed,
            model=model,
            input_=body.get("input"),
            instructions=body.get("instructions"),
            max_output_tokens=max_output_tokens,
        )
        tokens = generate_tokens(digest, count)
        outcome: Outcome = "completed"
        limit = count
        reason: str | None = None
        if faults.fail_code:
            outcome, limit = "failed", count // 2
        elif faults.incomplete_reason:
            outcome, limit, reason = "incomplete", count // 2, faults.incomplete_reason
        elif isinstance(max_output_tokens, int) and max_output_tokens < count:
            outcome, limit, reason = "incomplete", max_output_tokens, "max_output_tokens"
        response_id = "resp_" + uuid.uuid4().hex + uuid.uuid4().hex[:16]
        return ResponseRecord(
            id=response_id,
            message_id="msg_" + hashlib.sha256(response_id.encode()).hexdigest()[:48],
            created_at=now,
            model=model,
            background=background,
            store=store,
            streamed=stream,
            metadata=metadata,
            echo={k: body[k] for k in _ECHOED if k in body},
            tokens=tokens,
            limit=limit,
            outcome=outcome,
            fail_code=faults.fail_code,
            incomplete_reason=reason,
            input_tokens=count_input_tokens(body.get("input"), body.get("instructions")),
            start_at=None if faults.stuck_queued else now + queued,
            gen_s=max(0.0, gen_s),
            faults=faults,
            drops_left=faults.drop_stream_times if faults.drop_stream_after is not None else 0,
            stream_errors_left=faults.stream_error_times if faults.stream_error_code is not None else 0,
            resets_left=faults.reset_mid_body,
            http_left=faults.http_count if faults.http_status is not None else 0,
        )

    # ------------------------------------------------------------------ retrieve / cancel / delete

    async def _retrieve(
        self, request: httpx2.Request, call: _Call, response_id: str, request_faults: Faults
    ) -> httpx2.Response:
        query = parse_qs(request.url.query.decode())
        stream = query.get("stream", ["false"])[0].lower() == "true"
        call.stream = stream or None
        raw_after = query.get("starting_after", [None])[0]
        starting_after: int | None = None
        if raw_after is not None:
            try:
                starting_after = int(raw_after)
            except ValueError:
                raise EmulatorError(
                    400,
                    f"Invalid 'starting_after': expected an integer, got '{raw_after}'.",
                    param="starting_after",
                ) from None
            call.starting_after = starting_after
        record = await self._touch(call, response_id)
        now = self.clock.now()
        if not stream:
            return self._plain(record, snapshot(record, now), request_faults)
        if not record.background:
            raise EmulatorError(
                400,
                "This response cannot be streamed because it was not created with background=true.",
                param="stream",
            )
        if self.config.require_stream_on_create and not record.streamed:
            raise EmulatorError(
                400,
                "This response cannot be streamed because it was not created with stream=true.",
                param="stream",
            )
        if now - record.created_at > self.config.resume_window_s:
            raise EmulatorError(
                400,
                "This response can no longer be streamed because it is more than "
                f"{_window_text(self.config.resume_window_s)} old",
                param="stream",
            )
        return self._stream_response(record, starting_after=starting_after, request_faults=request_faults)

    async def _cancel(self, call: _Call, response_id: str, request_faults: Faults) -> httpx2.Response:
        record = await self._touch(call, response_id)
        if not record.background:
            raise EmulatorError(
                400, "Only responses created with background=true can be cancelled.", param="response_id"
            )
        now = self.clock.now()
        if record.cancelled_at is None and record.status(now) not in TERMINAL:
            record.cancelled_at = now
            record.version += 1
            self._pulse()
        return self._plain(record, snapshot(record, now), request_faults)

    async def _delete(self, call: _Call, response_id: str) -> httpx2.Response:
        await self._touch(call, response_id)
        self.store.delete(response_id, self.clock.now())
        self._pulse()
        return _json(200, {"id": response_id, "object": "response", "deleted": True})

    # ------------------------------------------------------------------ answers

    def _plain(
        self, record: ResponseRecord, body: dict[str, Any], request_faults: Faults, *, touch: bool = True
    ) -> httpx2.Response:
        """A JSON answer, cut half-way when a ``reset_mid_body`` fault is due.

        ``touch`` is false for the create itself: faults attached to a response apply to the
        requests that come after the one that created it.
        """
        content = json.dumps(body, ensure_ascii=False).encode()
        reset = request_faults.reset_mid_body > 0
        if not reset and touch and record.resets_left > 0:
            record.resets_left -= 1
            reset = True
        if not reset:
            return httpx2.Response(200, headers=JSON_HEADERS, content=content)

        async def cut() -> AsyncIterator[bytes]:
            yield content[: len(content) // 2]
            raise EmulatedDisconnect("peer closed connection without sending complete message body")

        headers = {**JSON_HEADERS, "content-length": str(len(content))}
        return httpx2.Response(200, headers=headers, content=cut())

    def _stream_response(
        self, record: ResponseRecord, *, starting_after: int | None, request_faults: Faults
    ) -> httpx2.Response:
        drop_after = request_faults.drop_stream_after
        if drop_after is None and record.drops_left > 0:
            record.drops_left -= 1
            drop_after = record.faults.drop_stream_after
        error: _StreamError | None = None
        if request_faults.stream_error_code is not None and request_faults.stream_error_after is not None:
            error = _StreamError(request_faults.stream_error_code, request_faults.stream_error_after, False)
        elif record.stream_errors_left > 0 and record.faults.stream_error_code is not None:
            after = record.faults.stream_error_after or 0
            error = _StreamError(record.faults.stream_error_code, after, True)
        first = 0 if starting_after is None else max(0, starting_after + 1)
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        return httpx2.Response(200, headers=headers, content=self._events(record, first, drop_after, error))

    async def _events(
        self, record: ResponseRecord, first: int, drop_after: int | None, error: _StreamError | None
    ) -> AsyncIterator[bytes]:
        """Emit the timeline from ``first`` as it happens on the clock, then end at a terminal status.

        A due ``stream_error`` ends the stream cleanly after its event instead, unless the stream has
        already carried the response to its end (the live API sends no error after the last event).
        The error event carries the ``sequence_number`` the next event would have had without using
        it up, so resuming after the last event received yields exactly the rest of the timeline.
        """
        epoch = self._epoch
        version = -1
        steps = timeline(record)
        seq = first
        sent = 0
        self.open_streams += 1
        try:
            while True:
                if self._epoch != epoch:
                    raise EmulatedDisconnect("server shutting down")
                if record.version != version:
                    version = record.version
                    steps = timeline(record)
                now = self.clock.now()
                chunk: list[bytes] = []
                while seq < len(steps) and steps[seq].at <= now:
                    if error is not None and sent >= error.after:
                        break
                    if drop_after is not None and sent >= drop_after:
                        if chunk:
                            yield b"".join(chunk)
                        raise EmulatedDisconnect(
                            "peer closed connection without sending complete message body"
                        )
                    chunk.append(sse(*render_step(record, steps[seq], seq)))
                    seq += 1
                    sent += 1
                    self.stream_events_sent += 1
                ended_at = record.ended_at()
                finished = record.gone or (seq >= len(steps) and ended_at is not None and now >= ended_at)
                if error is not None and sent >= error.after and not finished:
                    if error.counted:
                        # Counted when it fires, not when the stream opens: a stream that ends before
                        # reaching <after> events (a manual clock's) leaves the fault for the next one.
                        if record.stream_errors_left <= 0:
                            error = None
                            if chunk:
                                yield b"".join(chunk)
                            continue
                        record.stream_errors_left -= 1
                    chunk.append(sse(*stream_error_event(record, error.code, seq)))
                    yield b"".join(chunk)
                    return
                if chunk:
                    yield b"".join(chunk)
                if finished:
                    return
                if not self.clock.realtime:
                    return
                delay = self.config.max_stream_wait_s
                if seq < len(steps):
                    delay = min(delay, steps[seq].at - now)
                await self._wait(delay)
        finally:
            self.open_streams -= 1

    # ------------------------------------------------------------------ webhooks

    async def _webhook_when_ended(self, record: ResponseRecord, sender: WebhookSender) -> None:
        """Sleep until ``record`` ends (woken by cancels, releases and clock advances), then announce it.

        One task per background response, only when webhooks are configured: nothing else in the
        emulator ticks. A response deleted before it ends gets no webhook; a shutdown ends the wait.
        """
        epoch = self._epoch
        while True:
            if self._epoch != epoch or record.gone:
                return
            now = self.clock.now()
            ended = record.ended_at()
            if ended is not None and now >= ended:
                break
            delay = self.config.max_stream_wait_s
            if ended is not None and self.clock.realtime:
                delay = min(delay, ended - now)
            await self._wait(delay)
        status = record.status(now)
        if status not in TERMINAL:
            return
        held = record.faults.webhook_hold
        if held:
            self._held_webhooks[record.id] = record
            try:
                while not record.webhook_released:
                    if self._epoch != epoch:
                        return
                    await self._wait(self.config.max_stream_wait_s)
            finally:
                self._held_webhooks.pop(record.id, None)
        await sender.send(f"response.{status}", record.id, ended, record.faults, late=held)

    # ------------------------------------------------------------------ waiting

    async def _create_reply_gate(self) -> None:
        """Wait while create replies are held; a shutdown cuts the wait like it cuts a stream.

        Raises:
            EmulatedDisconnect: The server is shutting down; the reply is lost, as it was meant to be.
        """
        if not self._holding_creates:
            return
        epoch = self._epoch
        self._held_creates += 1
        try:
            while self._holding_creates:
                if self._epoch != epoch:
                    raise EmulatedDisconnect("server shutting down")
                await self._wait(self.config.max_stream_wait_s)
        finally:
            self._held_creates -= 1

    async def _wait(self, delay: float) -> None:
        """Sleep ``delay`` real seconds, or less if a cancel, delete, release or shutdown happens."""
        if delay <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay, _resolve, future)
        self._waiters.add(future)
        try:
            await future
        finally:
            handle.cancel()
            self._waiters.discard(future)

    def _pulse(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for future in waiters:
            _resolve(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _json(status: int, body: Any) -> httpx2.Response:
    return httpx2.Response(status, headers=JSON_HEADERS, content=json.dumps(body).encode())


def _parse_body(request: httpx2.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        raise EmulatorError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly.)",
        ) from None
    if not isinstance(body, dict):
        raise EmulatorError(400, "The request body must be a JSON object.")
    return body


def _opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise EmulatorError(400, f"Invalid type for '{key}': expected a boolean.", param=key, code="invalid_type")


def _check_known_parameters(body: dict[str, Any]) -> None:
    for key in body:
        if key not in CREATE_PARAMETERS:
            raise EmulatorError(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")


def _json_type(value: Any) -> str:
    """Name a JSON value's type the way the API's ``invalid_type`` messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid_type(param: str, expected: str, value: Any) -> EmulatorError:
    return EmulatorError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _check_decimal(body: dict[str, Any], key: str, *, maximum: float, minimum: float = 0.0) -> None:
    """Refuse a sampling parameter outside its range, as the API does (``null`` means the default)."""
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid_type(key, "a decimal", value)
    if value > maximum:
        raise EmulatorError(
            400,
            f"Invalid '{key}': decimal above maximum value. Expected a value <= {maximum:g}, "
            f"but got {value:g} instead.",
            param=key,
            code="decimal_above_max_value",
        )
    if value < minimum:
        raise EmulatorError(
            400,
            f"Invalid '{key}': decimal below minimum value. Expected a value >= {minimum:g}, "
            f"but got {value:g} instead.",
            param=key,
            code="decimal_below_min_value",
        )


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise EmulatorError(400, "Invalid type for 'metadata': expected an object.", param="metadata")
    if len(metadata) > 16:
        raise EmulatorError(
            400, "Invalid 'metadata': too many properties. Expected at most 16.", param="metadata"
        )
    for key, value in metadata.items():
        if len(key) > 64:
            raise EmulatorError(
                400, f"Invalid 'metadata': key '{key[:64]}…' is longer than 64 characters.", param="metadata"
            )
        if not isinstance(value, str):
            raise EmulatorError(
                400, f"Invalid type for 'metadata.{key}': expected a string.", param=f"metadata.{key}"
            )
        if len(value) > 512:
            raise EmulatorError(
                400, f"Invalid 'metadata.{key}': string longer than 512 characters.", param=f"metadata.{key}"
            )
    return dict(metadata)


def _metadata_number(
    metadata: dict[str, str], key: str, kind: type[int] | type[float], default: float
) -> Any:
    raw = metadata.get(key)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise EmulatorError(
            400, f"Invalid '{key}': {raw!r} is not a number.", param=f"metadata.{key}"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise EmulatorError(400, f"Invalid '{key}': {raw!r} is not finite.", param=f"metadata.{key}")
    return value


def _check_background_options(body: dict[str, Any], *, background: bool, stream: bool) -> None:
    options = body.get("background_options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise EmulatorError(
            400, "Invalid type for 'background_options': expected an object.", param="background_options"
        )
    window = options.get("completion_window", "soonest")
    if window not in COMPLETION_WINDOWS:
        raise EmulatorError(
            400,
            f"Invalid value for 'background_options.completion_window': '{window}'. "
            "Supported values are: 'soonest', '2h' and '8h'.",
            param="background_options.completion_window",
            code="invalid_value",
        )
    if window != "soonest" and (not background or stream):
        raise EmulatorError(
            400,
            f"completion_window '{window}' requires background=true and stream=false.",
            param="background_options.completion_window",
        )


def _window_text(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"
