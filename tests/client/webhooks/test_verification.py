"""Signature, staleness and replay checks of the webhook receiver, on a clock the test controls."""

from __future__ import annotations

import openai
import pytest

from client.webhooks.verification import ReplayMemory, WebhookRejected, WebhookVerifier, check_secret
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
