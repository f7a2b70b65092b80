"""The webhook receiver: a provider's "response finished" event becomes a signal to the job's workflow.

A Starlette app serving ``POST /webhooks/openai`` and ``GET /healthz``; every answer, errors included, is
JSON. For each delivery:

1. the body is read through Starlette, bounded by :data:`MAX_BODY_BYTES` (413, whether a
   ``content-length`` says so up front or a chunked or lying body grows past it); a body cut off by the
   client's disconnect is never processed;
2. :class:`~lanes.servers.webhooks.verification.WebhookVerifier` checks headers, freshness and the signature
   over the raw bytes (each Standard Webhooks header exactly once), and the replay memory drops a
   ``webhook-id`` already processed. Nothing before this decodes, parses or forwards the body, so an
   unauthenticated caller can make the receiver do no more than one HMAC;
3. the body must be UTF-8 JSON of one of the four response events; its payload is thin (only
   ``data.id``), so the response is read once from the provider with the OpenAI client (what it says is
   the truth, not the event's type);
4. the response's ``lanes_workflow_id`` metadata names the job. Metadata is whatever the response's
   creator wrote, so the workflow is described first: only a running :data:`LANES_WORKFLOW_TYPE` is
   signalled, and the signal goes to the run described (a workflow of another type started under the
   same id since cannot receive it). It gets ``provider_finished`` with the terminal
   :class:`~activities.outcome.ProviderOutcome`, through the client of ``lanes/connect.py``, so the
   payload (the output text) is encrypted like every other.

Answers follow what a retry can change. A 2xx tells the provider to stop (OpenAI retries anything else
for up to 72 hours): given for a signal sent and for what no retry can fix (a replayed ``webhook-id``,
an event type lanes does not use, a response unknown to the provider or not started by lanes, a
workflow of another type or that no longer runs). 400, 401 and 413 refuse a malformed, stale, forged or
oversized delivery. 503 asks for a retry when the provider or Temporal could not be reached, or the
response does not read terminal yet. A 500 (``error``) is a bug here: logged without its message, it
asks for a retry too.

Every answer (and every body cut off by a disconnect) gets one log line and one count in :attr:`stats`,
with the webhook, event, response and workflow ids and the reason, never any text of the job. The ids
are chosen by whoever sends or creates: each is cut to :data:`MAX_LOGGED_CHARS` and its control
characters, spaces and backslashes escaped, so no value can forge a field or a line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import traceback
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.responses import Response
from openai.types.webhooks import (
    ResponseCancelledWebhookEvent,
    ResponseCompletedWebhookEvent,
    ResponseFailedWebhookEvent,
    ResponseIncompleteWebhookEvent,
)
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.outcome import TERMINAL_STATUSES, ProviderOutcome
from lanes.servers.webhooks.verification import (
    REQUIRED_HEADERS,
    ReplayMemory,
    WebhookRejected,
    WebhookVerifier,
)
from workflows.model_task import ModelTaskWorkflow, ProviderFinishedInput

Scope = MutableMapping[str, Any]

DEFAULT_PATH = "/webhooks/openai"
"""Where the provider delivers; the endpoint's URL ends with it."""

MAX_BODY_BYTES = 64 * 1024
"""Response events are a few hundred bytes; anything much larger is not one."""

WORKFLOW_ID_KEY = "lanes_workflow_id"
"""The response metadata key naming the job's workflow (set by ``workflows/model_task.py``)."""

LANES_WORKFLOW_TYPE = ModelTaskWorkflow.__name__
"""The only workflow type the receiver signals: ``@workflow.defn`` without a name registers the class's."""

RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a response id may look like before it goes into a provider URL (``resp_`` and hex at OpenAI): the
SDK raises ``ValueError`` on ``""`` and ``..``, and nothing else has a reason to reach the provider."""

EVENT_ID = re.compile(r"[A-Za-z0-9_-]{0,128}")
"""What an event's ``evt_…`` id may look like; it goes into the signal (whose field allows 256 chars)."""

MAX_LOGGED_CHARS = 96
"""The most characters of one attacker-chosen value (an id, an event or workflow type) in a log line."""

DISCONNECTED = 499
"""The status logged for a body cut off by the client (nginx's "client closed request"); never sent."""

EVENT_MODELS: dict[str, type[BaseModel]] = {
    "response.completed": ResponseCompletedWebhookEvent,
    "response.failed": ResponseFailedWebhookEvent,
    "response.cancelled": ResponseCancelledWebhookEvent,
    "response.incomplete": ResponseIncompleteWebhookEvent,
}
"""The SDK's type of each response event lanes acts on."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a delivery got: an HTTP status and a reason (also the log line's and the stats' key)."""

    status: int
    reason: str


class WebhookReceiver:
    """ASGI app turning verified response webhooks into ``provider_finished`` signals.

    Args:
        temporal: A client from :func:`lanes.connect.connect` (lanes' converter and codec).
        provider: The OpenAI client to read responses with (:func:`lanes.connect.openai_client`).
        verifier: Checks each delivery.
        memory: Recently processed ``webhook-id``s; by default a window of twice the verifier's tolerance.
        path: The delivery route.

    Attributes:
        stats: How many answers (and disconnects) ended with each reason, served by ``GET /healthz``.
        app: The Starlette app this receiver serves through.
    """

    def __init__(
        self,
        temporal: Client,
        provider: openai.AsyncOpenAI,
        verifier: WebhookVerifier,
        *,
        memory: ReplayMemory | None = None,
        path: str = DEFAULT_PATH,
    ) -> None:
        self._temporal = temporal
        self._provider = provider
        self._verifier = verifier
        self._memory = memory if memory is not None else ReplayMemory(window_s=2 * verifier.tolerance_s)
        self._path = "/" + path.strip("/")
        self.stats: Counter[str] = Counter()
        self.app = Starlette(
            routes=[
                Route(self._path, self._delivery, methods=["POST"]),
                Route("/healthz", self._health, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_error, Exception: self._server_error},
        )
        # A POST to "/webhooks/openai/" gets a 404 naming the route, not a redirect the provider won't follow.
        self.app.router.redirect_slashes = False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Serve one ASGI connection."""
        await self.app(scope, receive, send)

    async def deliver(self, body: bytes, headers: dict[str, str]) -> Answer:
        """Handle one delivery (the ASGI-independent part, which tests may call directly).

        Args:
            body: The raw body, complete.
            headers: Request headers, names in lower case.

        Returns:
            The status and reason answered (and logged).
        """
        webhook_id = headers.get("webhook-id") or "-"
        try:
            self._verifier.verify(body, headers)
        except WebhookRejected as rejected:
            return self._log(Answer(rejected.status, rejected.reason), webhook_id, detail=str(rejected))
        if not self._memory.claim(webhook_id, self._verifier.now()):
            return self._log(Answer(200, "duplicate"), webhook_id)
        try:
            answer = await self._process(webhook_id, body)
        except Exception as exc:
            self._memory.release(webhook_id)
            # The type and the place only: an exception's message may quote the response it was handling.
            where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            place = f" at {where.filename}:{where.lineno}" if where else ""
            return self._log(Answer(500, "error"), webhook_id, detail=f"{type(exc).__name__}{place}")
        if answer.status >= 500:
            # Not processed: the provider's retry (same webhook-id) must not be taken for a replay.
            self._memory.release(webhook_id)
        return answer

    async def _delivery(self, request: Request) -> JSONResponse:
        """``POST <path>``: read the body within bounds, then :meth:`deliver` it."""
        webhook_id = request.headers.get("webhook-id") or "-"
        repeated = [name for name in REQUIRED_HEADERS if len(request.headers.getlist(name)) > 1]
        if repeated:
            # Which copy would a proxy or the SDK believe? None: the provider sends each once.
            answer = self._log(Answer(400, "repeated_header"), webhook_id, detail=" ".join(repeated))
        else:
            body = await self._body(request, webhook_id)
            answer = body if isinstance(body, Answer) else await self.deliver(body, dict(request.headers))
        return JSONResponse({"result": answer.reason}, status_code=answer.status)

    async def _body(self, request: Request, webhook_id: str) -> bytes | Answer:
        """The whole body, or the (logged) answer when it is too large or cut off by a disconnect."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return self._log(
                Answer(413, "too_large"), webhook_id, detail=f"content-length over {MAX_BODY_BYTES}"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            async with contextlib.aclosing(request.stream()) as stream:
                async for chunk in stream:
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        return self._log(
                            Answer(413, "too_large"), webhook_id, detail=f"over {MAX_BODY_BYTES} bytes"
                        )
                    chunks.append(chunk)
        except ClientDisconnect:
            # Starlette raises on http.disconnect: what arrived is a prefix, whatever it would verify as.
            return self._log(
                Answer(DISCONNECTED, "disconnected"),
                webhook_id,
                detail=f"body incomplete after {size} bytes: client gone or too slow",
            )
        return b"".join(chunks)

    async def _health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "deliveries": dict(self.stats)})

    async def _http_error(self, request: Request, exc: Exception) -> JSONResponse:
        """404 and 405 from the router, as JSON and counted like every answer."""
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        path = request.url.path
        if status == 404:
            answer, error = Answer(404, "no_route"), f"no route {path}; deliveries go to POST {self._path}"
        elif status == 405:
            answer, error = Answer(405, "method_not_allowed"), f"{request.method} is not allowed on {path}"
        else:
            answer, error = Answer(status, "refused"), "request refused"
        self._log(answer, request.headers.get("webhook-id") or "-", path=path, method=request.method)
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return JSONResponse(
            {"error": error[:200], "result": answer.reason}, status_code=status, headers=headers
        )

    async def _server_error(self, request: Request, exc: Exception) -> JSONResponse:
        """A bug outside :meth:`deliver`: JSON, no traceback in the answer (Starlette still logs one)."""
        return JSONResponse({"result": "error"}, status_code=500)

    async def _process(self, webhook_id: str, body: bytes) -> Answer:
        try:
            payload = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            return self._log(Answer(400, "bad_payload"), webhook_id, detail="body is not UTF-8")
        except (ValueError, RecursionError):
            return self._log(Answer(400, "bad_payload"), webhook_id, detail="body is not JSON")
        raw_type = payload.get("type") if isinstance(payload, dict) else None
        event_type = raw_type if isinstance(raw_type, str) else "-"
        model = EVENT_MODELS.get(event_type)
        if model is None:
            return self._log(Answer(200, "ignored_event_type"), webhook_id, event_type=event_type)
        try:
            event = model.model_validate(payload)
        except ValidationError:
            return self._log(Answer(400, "bad_payload"), webhook_id, event_type=event_type)
        event_id = str(getattr(event, "id", ""))
        response_id = str(event.data.id)  # type: ignore[attr-defined]
        log: dict[str, str] = {"event_type": event_type, "response_id": response_id}
        if not RESPONSE_ID.fullmatch(response_id):
            return self._log(
                Answer(400, "bad_payload"), webhook_id, **log, detail="data.id is not a response id"
            )

        try:
            response = await self._provider.responses.retrieve(response_id)
        except openai.NotFoundError:
            return self._log(Answer(200, "unknown_response"), webhook_id, **log)
        except openai.OpenAIError as exc:
            return self._log(
                Answer(503, "provider_unavailable"), webhook_id, **log, detail=type(exc).__name__
            )
        if response.status not in TERMINAL_STATUSES:
            # The event said it ended but the read does not (yet): let the provider retry.
            return self._log(Answer(503, "not_terminal"), webhook_id, **log, detail=str(response.status))
        workflow_id = (response.metadata or {}).get(WORKFLOW_ID_KEY)
        if not workflow_id:
            return self._log(Answer(200, "not_a_lanes_job"), webhook_id, **log)
        log["workflow_id"] = workflow_id
        return await self._signal(webhook_id, workflow_id, event_id, event_type, response, log)

    async def _signal(
        self,
        webhook_id: str,
        workflow_id: str,
        event_id: str,
        event_type: str,
        response: Response,
        log: dict[str, str],
    ) -> Answer:
        try:
            description = await self._temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return self._log(Answer(200, "workflow_not_running"), webhook_id, **log)
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                # An id Temporal refuses (too long, say): no workflow lanes started has it.
                return self._log(Answer(200, "not_a_lanes_workflow"), webhook_id, **log, detail="invalid id")
            return self._log(Answer(503, "temporal_unavailable"), webhook_id, **log, detail=exc.status.name)
        except RuntimeError as exc:
            return self._log(
                Answer(503, "temporal_unavailable"), webhook_id, **log, detail=type(exc).__name__
            )
        if description.workflow_type != LANES_WORKFLOW_TYPE:
            # Metadata is the response creator's word: anyone with the project's key can name any workflow.
            return self._log(
                Answer(200, "not_a_lanes_workflow"),
                webhook_id,
                **log,
                workflow_type=description.workflow_type,
            )
        if description.status != WorkflowExecutionStatus.RUNNING:
            return self._log(Answer(200, "workflow_not_running"), webhook_id, **log)
        signal = ProviderFinishedInput(
            response_id=response.id,
            outcome=ProviderOutcome.from_response(response),
            event_id=event_id or None,
            event_type=event_type,
        )
        # The run described, not the id's latest run: a new run of another type cannot get the signal.
        handle = self._temporal.get_workflow_handle_for(
            ModelTaskWorkflow.run, workflow_id, run_id=description.run_id
        )
        try:
            await handle.signal(ModelTaskWorkflow.provider_finished, signal)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                # The job ended since it was described (by polling, cancel or timeout): nothing to do.
                return self._log(Answer(200, "workflow_not_running"), webhook_id, **log)
            return self._log(Answer(503, "temporal_unavailable"), webhook_id, **log, detail=exc.status.name)
        except RuntimeError as exc:
            return self._log(
                Answer(503, "temporal_unavailable"), webhook_id, **log, detail=type(exc).__name__
            )
        return self._log(Answer(200, "signalled"), webhook_id, **log, detail=f"status {response.status}")

    def _log(self, answer: Answer, webhook_id: str, *, detail: str = "", **ids: str) -> Answer:
        """One line per answer: ids, status and reason; never text of the job."""
        self.stats[answer.reason] += 1
        level = logging.WARNING if answer.status >= 400 else logging.INFO
        fields = "".join(f" {key}={loggable(value)}" for key, value in ids.items())
        logger.log(
            level,
            "webhook %s%s -> %d %s%s",
            loggable(webhook_id),
            fields,
            answer.status,
            answer.reason,
            f" ({detail})" if detail else "",
        )
        return answer


def loggable(value: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``value`` made safe for one field of one log line.

    It is cut to ``limit`` characters, and every character that is not printable (control characters, line
    breaks, bidi overrides), a space or a backslash is escaped: no value can end a line or forge a field.

    Returns:
        The escaped value, with ``...`` and the original length when it was cut.
    """
    escaped = "".join(c if c.isprintable() and c not in " \\" else _escape(c) for c in value[:limit])
    return escaped if len(value) <= limit else f"{escaped}...({len(value)} chars)"


def _escape(character: str) -> str:
    return "\\x20" if character == " " else character.encode("unicode_escape").decode("ascii")
