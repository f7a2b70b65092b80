"""Signed webhook deliveries, as OpenAI sends them when a background response ends.

OpenAI posts a thin event to a project's webhook endpoint when a background response reaches
``completed``, ``failed``, ``cancelled`` or ``incomplete``::

    {"object": "event", "id": "evt_…", "type": "response.completed", "created_at": 1760000000,
     "data": {"id": "resp_…"}}

signed per Standard Webhooks: ``webhook-id`` (the same on every retry of one event, so receivers
deduplicate on it), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,`` and the base64 HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.{body}"`` under the key that
follows ``whsec_`` in the secret). A delivery that is not answered 2xx is retried with exponential backoff.
The ``openai`` SDK's ``lanes.servers.webhooks.unwrap`` verifies exactly this, and the emulator's tests check
that it accepts what :class:`WebhookSender` sends.

The emulator adds faults (``webhook_drop``, ``webhook_duplicate``, ``webhook_delay_ms``,
``webhook_hold``, ``webhook_bad_signature``; see :mod:`responses_emulator.faults`) and records every
attempt in the ledger (:class:`~responses_emulator.ledger.WebhookDelivery`), never anything of the
response's text: the event carries only ids.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable

import httpx2

from responses_emulator.faults import Faults
from responses_emulator.ledger import Ledger, WebhookDelivery

USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
"""The ``user-agent`` OpenAI's deliveries carry."""

DELIVERY_TIMEOUT_S = 5.0
"""OpenAI expects a 2xx "within a few seconds"; a receiver slower than this counts as a failed attempt."""

EVENT_TYPES = frozenset(
    {"response.completed", "response.failed", "response.cancelled", "response.incomplete"}
)
"""The response events OpenAI sends; one per background response, named after its terminal status."""


def new_secret() -> str:
    """A fresh signing secret in OpenAI's form: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64 after ``whsec_``, or the raw bytes (as the SDK reads it)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: ``v1,`` and the base64 HMAC-SHA256 of the signed content."""
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secret: str, webhook_id: str, body: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """Every header of one delivery attempt, signed at ``timestamp`` (default: now, in wall time).

    Wall time, not the emulator's clock: the receiver compares it with its own clock to refuse stale
    deliveries, and a test's manual clock may be years away from it.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(secret, webhook_id, stamp, body),
    }


def event_body(event_id: str, event_type: str, response_id: str, created_at: float) -> str:
    """The JSON body of a response event, in OpenAI's key order."""
    return json.dumps(
        {
            "object": "event",
            "id": event_id,
            "type": event_type,
            "created_at": int(created_at),
            "data": {"id": response_id},
        },
        separators=(",", ":"),
    )


class WebhookSender:
    """Delivers response events to one URL with retries, faults and a ledger record per attempt.

    Args:
        url: The receiver's URL.
        secret: The ``whsec_…`` signing secret.
        ledger: Where each attempt is recorded.
        now: The emulator's clock, for the ledger's ``at``.
        max_attempts: Attempts per event before giving up.
        retry_s: Delay before the second attempt; it doubles for each later one.
        transport: An ``httpx2`` transport to deliver through (tests deliver in-process); ``None`` uses
            the network.
    """

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        ledger: Ledger,
        now: Callable[[], float],
        max_attempts: int,
        retry_s: float,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._ledger = ledger
        self._now = now
        self._max_attempts = max_attempts
        self._retry_s = retry_s
        self._transport = transport
        self._http: httpx2.AsyncClient | None = None

    async def send(
        self, event_type: str, response_id: str, created_at: float, faults: Faults, *, late: bool = False
    ) -> str:
        """Deliver one event (with its duplicates, per ``faults``) and return its ``webhook-id``.

        Args:
            event_type: One of :data:`EVENT_TYPES`.
            response_id: The response the event is about.
            created_at: When the response ended, on the emulator's clock.
            faults: The response's faults; only the ``webhook_*`` ones matter here.
            late: The delivery was held back by ``webhook_hold``; recorded as the ``late`` fault.
        """
        webhook_id = "wh_" + uuid.uuid4().hex
        event_id = "evt_" + uuid.uuid4().hex
        body = event_body(event_id, event_type, response_id, created_at)

        def record(attempt: int, status: int | None, fault: str | None, error: str | None = None) -> None:
            self._ledger.record_delivery(
                WebhookDelivery(
                    webhook_id=webhook_id,
                    event_id=event_id,
                    event_type=event_type,
                    response_id=response_id,
                    attempt=attempt,
                    status_code=status,
                    fault=fault,
                    error=error,
                    at=self._now(),
                )
            )

        if faults.webhook_drop:
            record(0, None, "drop")
            return webhook_id
        if faults.webhook_delay_ms > 0:
            await asyncio.sleep(faults.webhook_delay_ms / 1000)
        fault = "bad_signature" if faults.webhook_bad_signature else ("late" if late else None)
        delivered = False
        for attempt in range(1, self._max_attempts + 1):
            status, error = await self._post(webhook_id, body, bad_signature=faults.webhook_bad_signature)
            record(attempt, status, fault, error)
            if status is not None and 200 <= status < 300:
                delivered = True
                break
            if attempt < self._max_attempts:
                await asyncio.sleep(self._retry_s * 2 ** (attempt - 1))
        if delivered:
            for _ in range(faults.webhook_duplicates):
                status, error = await self._post(webhook_id, body, bad_signature=faults.webhook_bad_signature)
                record(1, status, "duplicate", error)
        return webhook_id

    async def _post(
        self, webhook_id: str, body: str, *, bad_signature: bool
    ) -> tuple[int | None, str | None]:
        """One attempt, signed now; returns the status, or ``None`` and the transport error's name."""
        # A forgery: signed, but with a key that is not the secret.
        secret = new_secret() if bad_signature else self._secret
        headers = signed_headers(secret, webhook_id, body)
        if self._http is None:
            self._http = httpx2.AsyncClient(transport=self._transport, timeout=DELIVERY_TIMEOUT_S)
        try:
            answer = await self._http.post(self.url, content=body.encode(), headers=headers)
        except httpx2.HTTPError as exc:
            return None, type(exc).__name__
        return answer.status_code, None

    async def aclose(self) -> None:
        """Close the HTTP client (deliveries in flight must have been cancelled first)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
