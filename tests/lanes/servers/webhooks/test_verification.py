"""Signature, staleness and replay checks of the webhook receiver, on a clock the test controls."""

from __future__ import annotations

import base64
import hashlib
import hmac

import openai
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from lanes.servers.webhooks.verification import ReplayMemory, WebhookRejected, WebhookVerifier, check_secret
from responses_emulator.webhooks import event_body, new_secret, signed_headers

SECRET = new_secret()
NOW = 1_760_000_000
BODY = event_body("evt_1", "response.completed", "resp_1", NOW - 5)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(clock: Clock) -> WebhookVerifier:
    return WebhookVerifier(openai.AsyncOpenAI(api_key="unused"), SECRET, tolerance_s=300, clock=clock)


def signed(
    *, secret: str = SECRET, webhook_id: str = "wh_1", at: int = NOW, body: str = BODY
) -> dict[str, str]:
    return signed_headers(secret, webhook_id, body, timestamp=at)


def rejected(verifier: WebhookVerifier, body: str | bytes, headers: dict[str, str]) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        verifier.verify(body.encode() if isinstance(body, str) else body, headers)
    return info.value


def test_a_delivery_signed_with_the_secret_is_believed(verifier: WebhookVerifier) -> None:
    assert verifier.verify(BODY.encode(), signed()) == "wh_1"


def test_any_of_several_signatures_may_match(verifier: WebhookVerifier) -> None:
    # During a secret rotation the header carries one signature per secret, space-separated.
    headers = signed()
    other = signed(secret=new_secret())["webhook-signature"]
    headers["webhook-signature"] = f"{other} {headers['webhook-signature']}"
    assert verifier.verify(BODY.encode(), headers) == "wh_1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: ({**h, "webhook-signature": signed(secret=new_secret())["webhook-signature"]}, b),
        lambda h, b: (h, b.replace("resp_1", "resp_2")),  # body changed after signing
        lambda h, b: ({**h, "webhook-id": "wh_2"}, b),  # id changed after signing
        lambda h, b: ({**h, "webhook-timestamp": str(NOW - 1)}, b),  # timestamp changed after signing
        lambda h, b: ({**h, "webhook-signature": "v1,"}, b),
    ],
)
def test_forgeries_are_refused_with_401(verifier: WebhookVerifier, tamper) -> None:
    headers, body = tamper(signed(), BODY)
    error = rejected(verifier, body, headers)
    assert (error.status, error.reason) == (401, "bad_signature")


@pytest.mark.parametrize(("offset", "words"), [(-301, "old"), (301, "in the future")])
def test_stale_or_future_timestamps_are_refused_with_400(
    verifier: WebhookVerifier, clock: Clock, offset: int, words: str
) -> None:
    headers = signed(at=NOW + offset)  # correctly signed, but outside the tolerance
    error = rejected(verifier, BODY, headers)
    assert (error.status, error.reason) == (400, "stale")
    assert words in str(error)
    clock.now = NOW + offset  # the same delivery, received in time
    assert verifier.verify(BODY.encode(), headers) == "wh_1"


def test_timestamps_at_the_tolerance_pass(verifier: WebhookVerifier) -> None:
    assert verifier.verify(BODY.encode(), signed(at=NOW - 300)) == "wh_1"
    assert verifier.verify(BODY.encode(), signed(at=NOW + 300)) == "wh_1"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_named(verifier: WebhookVerifier, header: str) -> None:
    headers = signed()
    del headers[header]
    error = rejected(verifier, BODY, headers)
    assert (error.status, error.reason) == (400, "missing_header")
    assert header in str(error)


def test_a_timestamp_that_is_not_a_number_is_refused(verifier: WebhookVerifier) -> None:
    error = rejected(verifier, BODY, {**signed(), "webhook-timestamp": "yesterday"})
    assert (error.status, error.reason) == (400, "bad_timestamp")


def test_replay_memory_refuses_an_id_it_holds_until_the_window_ends() -> None:
    memory = ReplayMemory(window_s=600)
    assert memory.claim("wh_1", NOW)
    assert not memory.claim("wh_1", NOW + 599)
    assert memory.claim("wh_2", NOW + 601)  # wh_1 expired meanwhile
    assert len(memory) == 1
    assert memory.claim("wh_1", NOW + 602)


def test_replay_memory_is_bounded_in_count() -> None:
    memory = ReplayMemory(window_s=600, max_entries=3)
    for i in range(10):
        assert memory.claim(f"wh_{i}", NOW)
    assert len(memory) == 3
    assert not memory.claim("wh_9", NOW)
    assert memory.claim("wh_0", NOW)  # evicted: a replay of it would be processed (and ignored) again


def test_a_released_id_is_processed_again() -> None:
    memory = ReplayMemory(window_s=600)
    assert memory.claim("wh_1", NOW)
    memory.release("wh_1")  # processing failed with a 5xx: the provider's retry must get through
    assert memory.claim("wh_1", NOW)


@pytest.mark.parametrize(
    ("secret", "words"), [("", "is empty"), ("   ", "is empty"), ("whsec_***", "not valid base64")]
)
def test_bad_secrets_name_the_variable_and_the_fix(secret: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        check_secret(secret)
    assert "OPENAI_WEBHOOK_SECRET" in str(info.value)


def test_the_sdk_reads_what_the_receiver_believes() -> None:
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(
        BODY, signed_headers(SECRET, "wh_1", BODY), secret=SECRET
    )
    assert event.type == "response.completed"


@pytest.mark.parametrize(
    "secret", ["whsec_", "whsec_YQ==", "a", "x" * 23, "whsec_" + base64.b64encode(b"k" * 23).decode()]
)
def test_secrets_under_24_bytes_of_key_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="under the 24 required") as info:
        check_secret(secret)
    assert "OPENAI_WEBHOOK_SECRET" in str(info.value)
    assert "--new-secret" in str(info.value)


def test_generated_and_long_enough_secrets_pass() -> None:
    assert check_secret(SECRET) == SECRET  # the emulator's: whsec_ and 32 bytes
    assert check_secret("x" * 24) == "x" * 24  # raw bytes, as the SDK reads a secret without whsec_


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        (b"\xff\xfe not UTF-8", "v1,AAAA"),
        (BODY.encode(), "v1,\u00e9t\u00e9"),  # hmac.compare_digest refuses non-ASCII str
        (BODY.encode(), "v1,\ud800"),  # a lone surrogate
    ],
)
def test_any_bytes_and_signature_text_get_a_rejection_not_an_exception(
    verifier: WebhookVerifier, body: bytes, signature: str
) -> None:
    error = rejected(verifier, body, {**signed(), "webhook-signature": signature})
    assert (error.status, error.reason) == (401, "bad_signature")


def test_a_body_that_is_not_utf8_is_verified_over_its_bytes(verifier: WebhookVerifier) -> None:
    body = b'{"type": "response.completed", "data": {"id": "\xff"}}'
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"wh_1.{NOW}.".encode() + body, hashlib.sha256).digest()
    headers = {**signed(), "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    assert verifier.verify(body, headers) == "wh_1"  # believed; the receiver then answers 400 for the body


@pytest.mark.parametrize(
    "timestamp", [" 1760000000", "1_760_000_000", "\u0661\u0667", "9" * 4000, "-5", "+1"]
)
def test_timestamps_are_ascii_digits_only(verifier: WebhookVerifier, timestamp: str) -> None:
    error = rejected(verifier, BODY, {**signed(), "webhook-timestamp": timestamp})
    assert (error.status, error.reason) == (400, "bad_timestamp")


SDK = openai.OpenAI(api_key="unused", webhook_secret=SECRET)
ASCII_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    body=st.text(max_size=300),
    webhook_id=ASCII_TEXT,
    valid=st.booleans(),
    junk=st.lists(ASCII_TEXT, max_size=3),
)
def test_on_utf8_bodies_the_verdict_is_the_sdks(
    body: str, webhook_id: str, valid: bool, junk: list[str]
) -> None:
    # The receiver checks the raw bytes itself (the SDK decodes first); on UTF-8 it must agree with the SDK.
    verifier = WebhookVerifier(None, SECRET, tolerance_s=300, clock=lambda: NOW)
    headers = signed(webhook_id=webhook_id, body=body)
    parts = [f"v1,{j}" for j in junk] + ([headers["webhook-signature"]] if valid else [])
    headers["webhook-signature"] = " ".join(parts) or "v1,"
    sdk = SDK.webhooks
    try:
        sdk.verify_signature(body.encode(), headers, tolerance=10**12)
        sdk_believes = True
    except openai.InvalidWebhookSignatureError:
        sdk_believes = False
    reason = "believed"
    try:
        verifier.verify(body.encode(), headers)
    except WebhookRejected as error:
        reason = error.reason
    assert reason == ("believed" if valid else "bad_signature")
    assert sdk_believes == valid
