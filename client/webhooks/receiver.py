"""The webhook receiver: a provider's "response finished" event becomes a signal to the job's workflow.

A raw ASGI app (as the emulator and the codec server are: one route needs no framework) serving
``POST /webhooks/openai`` and ``GET /healthz``. For each delivery:

1. :class:`~client.webhooks.verification.WebhookVerifier` checks headers, freshness and signature, and the
   replay memory drops a ``webhook-id`` already processed;
2. the event must be one of the four response events; its payload is thin (only ``data.id``), so the
   response is read once from the provider with the OpenAI client (what it says is the truth, not the
   event's type);
3. the response's ``lanes_workflow_id`` metadata names the job; the workflow gets the ``provider_finished``
   signal with the terminal :class:`~activities.outcome.ProviderOutcome`, through the client of
   ``client/connect.py``, so the payload (the output text) is encrypted like every other.

Answers follow what a retry can change. A 2xx tells the provider to stop (OpenAI retries anything else
for up to 72 hours): given for a signal sent and for what no retry can fix (a replayed ``webhook-id``,
an event type lanes does not use, a response unknown to the provider or not started by lanes, a
workflow that no longer runs). 400 and 401 refuse a malformed, stale or forged delivery. 503 asks for a
retry when the provider or Temporal could not be reached, or the response does not read terminal yet.

Every delivery gets one log line with the webhook, event, response and workflow ids and the reason,
never any text of the job.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
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
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.outcome import TERMINAL_STATUSES, ProviderOutcome
from client.webhooks.verification import ReplayMemory, WebhookRejected, WebhookVerifier
from workflows.model_task import ModelTaskWorkflow, ProviderFinishedInput

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_PATH = "/webhooks/openai"
"""Where the provider delivers; the endpoint's URL ends with it."""

MAX_BODY_BYTES = 64 * 1024
"""Response events are a few hundred bytes; anything much larger is not one."""

WORKFLOW_ID_KEY = "lanes_workflow_id"
"""The response metadata key naming the job's workflow (set by ``workflows/model_task.py``)."""

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
        temporal: A client from :func:`client.connect.connect` (lanes' converter and codec).
        provider: The OpenAI client to read responses with (:func:`client.connect.openai_client`).
        verifier: Checks each delivery.
        memory: Recently processed ``webhook-id``s; by default a window of twice the verifier's tolerance.
        path: The delivery route.

    Attributes:
        stats: How many deliveries ended with each reason, served by ``GET /healthz``.
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        if scope["type"] != "http":
            return
        path = "/" + str(scope["path"]).strip("/")
        method = scope["method"]
        if path == "/healthz" and method == "GET":
            await _answer(send, 200, {"status": "ok", "deliveries": dict(self.stats)})
            return
        if path != self._path:
            await _answer(send, 404, {"error": f"no route {path}; deliveries go to POST {self._path}"})
            return
        if method != "POST":
            await _answer(send, 405, {"error": "deliveries are POSTed"}, [(b"allow", b"POST")])
            return
        body = await _body(receive)
        if body is None:
            answer = Answer(413, "too_large")
        else:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            answer = await self.deliver(body, headers)
        await _answer(send, answer.status, {"result": answer.reason})

    async def deliver(self, body: bytes, headers: dict[str, str]) -> Answer:
        """Handle one delivery (the ASGI-independent part, which tests may call directly).

        Args:
            body: The raw body.
            headers: Request headers, names in lower case.

        Returns:
            The status and reason answered (and logged).
        """
        webhook_id = headers.get("webhook-id", "-")
        try:
            self._verifier.verify(body, headers)
        except WebhookRejected as rejected:
            return self._log(Answer(rejected.status, rejected.reason), webhook_id, detail=str(rejected))
        if not self._memory.claim(webhook_id, self._verifier.now()):
            return self._log(Answer(200, "duplicate"), webhook_id)
        try:
            answer = await self._process(webhook_id, body)
        except Exception:
            self._memory.release(webhook_id)
            logger.exception("webhook %s: unexpected error; answered 500 so the provider retries", webhook_id)
            self.stats["error"] += 1
            return Answer(500, "error")
        if answer.status >= 500:
            # Not processed: the provider's retry (same webhook-id) must not be taken for a replay.
            self._memory.release(webhook_id)
        return answer

    async def _process(self, webhook_id: str, body: bytes) -> Answer:
        try:
            payload = json.loads(body)
        except ValueError:
            return self._log(Answer(400, "bad_payload"), webhook_id, detail="body is not JSON")
        raw_type = payload.get("type") if isinstance(payload, dict) else None
        event_type = raw_type if isinstance(raw_type, str) else "-"
        model = EVENT_MODELS.get(event_type)
        if model is None:
            return self._log(Answer(200, "ignored_event_type"), webhook_id, event_type=event_type[:64])
        try:
            event = model.model_validate(payload)
        except ValidationError:
            return self._log(Answer(400, "bad_payload"), webhook_id, event_type=event_type)
        event_id = str(getattr(event, "id", ""))
        response_id = str(event.data.id)  # type: ignore[attr-defined]
        log: dict[str, str] = {"event_type": event_type, "response_id": response_id}

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
        signal = ProviderFinishedInput(
            response_id=response.id,
            outcome=ProviderOutcome.from_response(response),
            event_id=event_id or None,
            event_type=event_type,
        )
        handle = self._temporal.get_workflow_handle(workflow_id)
        try:
            await handle.signal(ModelTaskWorkflow.provider_finished, signal)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                # Unknown id, or the job already ended (by polling, cancel or timeout): nothing to do.
                return self._log(Answer(200, "workflow_not_running"), webhook_id, **log)
            return self._log(Answer(503, "temporal_unavailable"), webhook_id, **log, detail=exc.status.name)
        except RuntimeError as exc:
            return self._log(
                Answer(503, "temporal_unavailable"), webhook_id, **log, detail=type(exc).__name__
            )
        return self._log(Answer(200, "signalled"), webhook_id, **log, detail=f"status {response.status}")

    def _log(self, answer: Answer, webhook_id: str, *, detail: str = "", **ids: str) -> Answer:
        """One line per delivery: ids, status and reason; never text of the job."""
        self.stats[answer.reason] += 1
        level = logging.WARNING if answer.status >= 400 else logging.INFO
        fields = " ".join(f"{key}={value}" for key, value in ids.items())
        logger.log(
            level,
            "webhook %s %s -> %d %s%s",
            webhook_id[:64],
            fields,
            answer.status,
            answer.reason,
            f" ({detail})" if detail else "",
        )
        return answer


async def _body(receive: Receive) -> bytes | None:
    """The request body, or ``None`` once it exceeds :data:`MAX_BODY_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": content, "more_body": False})
