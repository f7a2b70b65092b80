"""Is this delivery from the provider, fresh, and new? The three checks before a webhook is believed.

OpenAI signs each delivery per Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` (Unix seconds of
the attempt) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
under the key after ``whsec_`` in the endpoint's secret). :class:`WebhookVerifier` checks, in this order:

1. the three headers are present and the timestamp is Unix seconds in ASCII digits (else 400);
2. the timestamp is within ``tolerance_s`` of this receiver's clock, either way (else 400, ``stale``): a
   captured delivery cannot be replayed later, and the replay memory only has to span that window;
3. the signature (else 401): a forgery never reaches the body's parser, the provider or a workflow.

The signature is checked over the body's raw bytes, with the key the ``openai`` SDK derives from the secret
and its rules for the header (several space-separated ``v1,`` signatures, any may match), compared in
constant time. The SDK's own ``webhooks.verify_signature`` is not called because it decodes the body as
UTF-8 *before* comparing (a body that is not UTF-8 raised ``UnicodeDecodeError``: a 500 and a traceback to
anyone, before any authentication) and compares ``str`` digests (a non-ASCII signature raised
``TypeError``). On every UTF-8 body the two agree (``tests/lanes/webhooks/test_verification.py`` checks
it with hypothesis); on any other body the raw bytes are what Standard Webhooks signs.

:func:`check_secret` refuses a secret with under :data:`MIN_KEY_BYTES` of key material: ``whsec_`` alone
gave an empty key (the SDK then raised on every delivery), ``whsec_YQ==`` a one-byte one anyone can guess.

:class:`ReplayMemory` then claims the ``webhook-id`` (OpenAI repeats it on every retry and duplicate),
only once the signature is good, so forged ids cannot fill it or block a real delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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

MIN_KEY_BYTES = 24
"""The least key material a signing secret may carry (192 bits; OpenAI's and the emulator's have 32 bytes)."""

MAX_TIMESTAMP_DIGITS = 12
"""A ``webhook-timestamp`` has at most this many digits (Unix seconds until the year 33658)."""

SIGNATURE_VERSION = "v1,"
"""The prefix of each Standard Webhooks signature lanes checks (HMAC-SHA256); other versions are ignored."""


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
        ValueError: Empty, ``whsec_`` followed by something that is not base64, or under
            :data:`MIN_KEY_BYTES` of key material; the message names the variable and the fix.
    """
    secret_key(secret)
    return secret


def secret_key(secret: str) -> bytes:
    """The HMAC key of a signing secret, by the SDK's rule: the base64 after ``whsec_``, else the raw bytes.

    Raises:
        ValueError: As :func:`check_secret`.
    """
    if not secret.strip():
        raise ValueError(
            "OPENAI_WEBHOOK_SECRET is empty: set it to the endpoint's signing secret (whsec_...) "
            "shown when the webhook endpoint was created"
        )
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "OPENAI_WEBHOOK_SECRET: the part after whsec_ is not valid base64; copy the whole secret "
                "the provider showed (or generate one with `lanes webhooks --new-secret` for the emulator)"
            ) from None
    else:
        key = secret.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"OPENAI_WEBHOOK_SECRET carries {len(key)} bytes of key material, under the {MIN_KEY_BYTES} "
            "required (a short key can be guessed, an empty one signs anything): copy the whole secret "
            "the provider showed (whsec_ and 32 bytes in base64), or generate one with "
            "`lanes webhooks --new-secret` for the emulator"
        )
    return key


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
        provider: Unused since the signature is checked over the raw bytes here (see the module
            docstring); kept so that callers written for the SDK's check need no change. May be ``None``.
        secret: The endpoint's signing secret, checked by :func:`check_secret`.
        tolerance_s: Largest distance between a delivery's timestamp and ``clock()``.
        clock: Unix time in seconds; tests pass their own.
    """

    def __init__(
        self,
        provider: openai.AsyncOpenAI | None,
        secret: str,
        *,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        del provider
        self._key = secret_key(secret)
        self.tolerance_s = tolerance_s
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the delivery's ``webhook-id`` if it is believed.

        Nothing but :class:`WebhookRejected` is raised, whatever the bytes and headers: the body is not
        decoded or parsed here.

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
        # ASCII digits only (int() would take " 1_7e9" forms and 4,000-digit numbers that overflow a float).
        if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_TIMESTAMP_DIGITS):
            raise WebhookRejected(400, "bad_timestamp", "webhook-timestamp is not Unix seconds")
        skew = self._clock() - int(raw)
        if abs(skew) > self.tolerance_s:
            raise WebhookRejected(
                400,
                "stale",
                f"webhook-timestamp is {abs(skew):.0f} s {'old' if skew > 0 else 'in the future'} "
                f"(tolerance {self.tolerance_s:g} s)",
            )
        if not self._signature_matches(body, headers["webhook-id"], raw, headers["webhook-signature"]):
            raise WebhookRejected(401, "bad_signature", "webhook-signature does not match the secret")
        return headers["webhook-id"]

    def _signature_matches(self, body: bytes, webhook_id: str, timestamp: str, header: str) -> bool:
        """Whether any ``v1,`` signature of ``header`` is the HMAC of ``"{id}.{timestamp}." + body``.

        The id and timestamp are encoded as the SDK encodes them (UTF-8 of the header's text, the
        timestamp as sent), so on a UTF-8 body the verdict is the SDK's. Digests are compared as bytes
        (``hmac.compare_digest`` refuses non-ASCII ``str``).
        """
        signed = f"{webhook_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        matched = False
        for part in header.split():
            if part.startswith(SIGNATURE_VERSION):
                candidate = part.removeprefix(SIGNATURE_VERSION).encode("utf-8", "surrogatepass")
                matched |= hmac.compare_digest(expected, candidate)
        return matched

    def now(self) -> float:
        """The verifier's clock, which the replay memory shares."""
        return self._clock()
