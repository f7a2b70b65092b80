"""Is this delivery from the provider, fresh, and new? The three checks before a webhook is believed.

OpenAI signs each delivery per Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` (Unix seconds of
the attempt) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
under the key after ``whsec_`` in the endpoint's secret). :class:`WebhookVerifier` checks, in this order:

1. the three headers are present and the timestamp is an integer (else 400);
2. the timestamp is within ``tolerance_s`` of this receiver's clock, either way (else 400, ``stale``): a
   captured delivery cannot be replayed later, and the replay memory only has to span that window;
3. the signature, by the ``openai`` SDK's own ``webhooks.verify_signature`` (else 401): a forgery never
   reaches the provider or a workflow.

:class:`ReplayMemory` then claims the ``webhook-id`` (OpenAI repeats it on every retry and duplicate),
only once the signature is good, so forged ids cannot fill it or block a real delivery.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import openai

DEFAULT_TOLERANCE_S = 300
"""How far a delivery's timestamp may be from this receiver's clock: the SDK's default (5 minutes)."""

DEFAULT_MEMORY_ENTRIES = 100_000
"""Most ``webhook-id``s remembered at once (about 10 MB), whatever the delivery rate."""

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
"""The Standard Webhooks headers every delivery carries."""

_NO_SDK_TOLERANCE = 10**12
"""Passed to the SDK's check so that it checks the signature only: the timestamp has already been checked
against this receiver's (injectable) clock, with its own status and log reason."""


class WebhookRejected(Exception):
    """A delivery that is not believed.

    Attributes:
        status: The HTTP status to answer: 400 malformed or stale, 401 bad signature.
        reason: A short machine-readable reason for the log line and the answer (``missing_header``,
            ``bad_timestamp``, ``stale``, ``bad_signature``).
    """

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason


def check_secret(secret: str) -> str:
    """Validate a signing secret as read from ``OPENAI_WEBHOOK_SECRET``.

    Returns:
        The secret, unchanged.

    Raises:
        ValueError: Empty, or ``whsec_`` followed by something that is not base64; the message names the
            variable and the fix.
    """
    if not secret.strip():
        raise ValueError(
            "OPENAI_WEBHOOK_SECRET is empty: set it to the endpoint's signing secret (whsec_...) "
            "shown when the webhook endpoint was created"
        )
    if secret.startswith("whsec_"):
        try:
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "OPENAI_WEBHOOK_SECRET: the part after whsec_ is not valid base64; copy the whole secret "
                "the provider showed (or generate one with `lanes webhooks --new-secret` for the emulator)"
            ) from None
    return secret


class ReplayMemory:
    """The ``webhook-id``s processed recently, bounded in time and in count.

    An id is kept for ``window_s`` (twice the timestamp tolerance: a delivery older than that is refused as
    stale before the memory is asked), and at most ``max_entries`` ids are kept (the oldest go first).

    It lives in the receiver's memory only, and that is enough: it saves a provider read and a signal per
    duplicate, but correctness does not rest on it. A duplicate that gets through (after a restart, from
    another replica, or after an eviction) costs one more ``responses.retrieve`` and one more signal, which
    the workflow ignores: it keeps only the first outcome per response, and a finished workflow cannot be
    signalled at all.

    Args:
        window_s: How long an id is remembered.
        max_entries: The most ids remembered at once.
    """

    def __init__(self, *, window_s: float, max_entries: int = DEFAULT_MEMORY_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._window_s = window_s
        self._max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def claim(self, webhook_id: str, now: float) -> bool:
        """Remember ``webhook_id``; return False if it was already remembered (a replay or duplicate)."""
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= self._window_s and len(self._seen) < self._max_entries:
                break
            del self._seen[oldest]
        if webhook_id in self._seen:
            return False
        self._seen[webhook_id] = now
        return True

    def release(self, webhook_id: str) -> None:
        """Forget ``webhook_id``, so that the provider's retry of a delivery that failed here is processed."""
        self._seen.pop(webhook_id, None)

    def __len__(self) -> int:
        return len(self._seen)


class WebhookVerifier:
    """Checks headers, freshness and signature of a delivery (see the module docstring).

    Args:
        provider: An OpenAI client; only its ``webhooks.verify_signature`` is used (no request is made).
        secret: The endpoint's signing secret.
        tolerance_s: Largest distance between a delivery's timestamp and ``clock()``.
        clock: Unix time in seconds; tests pass their own.
    """

    def __init__(
        self,
        provider: openai.AsyncOpenAI,
        secret: str,
        *,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._provider = provider
        self._secret = check_secret(secret)
        self.tolerance_s = tolerance_s
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the delivery's ``webhook-id`` if it is believed.

        Args:
            body: The raw body, exactly as received (the signature covers its bytes).
            headers: The request headers, names in lower case.

        Raises:
            WebhookRejected: With the status to answer and the reason to log.
        """
        missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
        if missing:
            raise WebhookRejected(400, "missing_header", f"missing header(s): {', '.join(missing)}")
        raw = headers["webhook-timestamp"]
        try:
            timestamp = int(raw)
        except ValueError:
            raise WebhookRejected(400, "bad_timestamp", "webhook-timestamp is not Unix seconds") from None
        skew = self._clock() - timestamp
        if abs(skew) > self.tolerance_s:
            raise WebhookRejected(
                400,
                "stale",
                f"webhook-timestamp is {abs(skew):.0f} s {'old' if skew > 0 else 'in the future'} "
                f"(tolerance {self.tolerance_s:g} s)",
            )
        try:
            self._provider.webhooks.verify_signature(
                body, dict(headers), secret=self._secret, tolerance=_NO_SDK_TOLERANCE
            )
        except openai.InvalidWebhookSignatureError:
            raise WebhookRejected(
                401, "bad_signature", "webhook-signature does not match the secret"
            ) from None
        return headers["webhook-id"]

    def now(self) -> float:
        """The verifier's clock, which the replay memory shares."""
        return self._clock()
