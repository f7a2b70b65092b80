"""Signed webhooks: what the emulator sends when a background response ends, verified by the real SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx2
import openai
import pytest
from openai.types.webhooks import (
    ResponseCancelledWebhookEvent,
    ResponseCompletedWebhookEvent,
    ResponseFailedWebhookEvent,
    ResponseIncompleteWebhookEvent,
)
from pydantic import ValidationError

from responses_emulator import Emulator, EmulatorConfig, ManualClock
from responses_emulator.faults import parse_faults
from responses_emulator.testing import control, in_process_client, wait_until
from responses_emulator.webhooks import new_secret, signature

SECRET = new_secret()
SDK = openai.OpenAI(api_key="unused")


class Receiver:
    """Answers deliveries with scripted statuses (200 once the script runs out) and keeps every request."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[httpx2.Request] = []
        self._statuses = list(statuses or [])

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(self._statuses.pop(0) if self._statuses else 200)


def make(receiver: Receiver, clock: ManualClock, **config: object) -> Emulator:
    settings = EmulatorConfig(
        duration_s=3.0,
        queued_s=1.0,
        webhook_url="http://receiver.local/webhooks/openai",
        webhook_secret=SECRET,
        webhook_retry_s=0.01,
        **config,
    )
    return Emulator(settings, clock=clock, webhook_transport=httpx2.MockTransport(receiver.handle))


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def emulator(receiver: Receiver, clock: ManualClock) -> AsyncIterator[Emulator]:
    emulator = make(receiver, clock)
    yield emulator
    await emulator.aclose()


@pytest.fixture
async def sdk(emulator: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = in_process_client(emulator)
    yield client
    await client.close()


async def create(sdk: openai.AsyncOpenAI, fault: str | None = None) -> str:
    response = await sdk.responses.create(
        model="gpt-5-mini", input="x", background=True, store=True, metadata=control(fault=fault)
    )
    return response.id


async def test_completed_response_is_announced_with_a_signature_the_sdk_accepts(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    response_id = await create(sdk)
    emulator.advance(2)
    assert emulator.pending_webhooks == 1  # not ended yet: nothing sent
    assert not receiver.requests
    emulator.advance(2)
    await wait_until(lambda: len(receiver.requests) == 1)

    request = receiver.requests[0]
    body = request.content.decode()
    assert str(request.url) == "http://receiver.local/webhooks/openai"
    assert request.headers["user-agent"] == "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["webhook-id"].startswith("wh_")
    event = SDK.webhooks.unwrap(body, dict(request.headers), secret=SECRET)
    assert isinstance(event, ResponseCompletedWebhookEvent)
    assert event.data.id == response_id
    assert event.object == "event"
    assert event.id.startswith("evt_")
    assert event.created_at == int(emulator.clock.now() - 1)  # when it ended (3 s after the create)
    assert list(json.loads(body)) == ["object", "id", "type", "created_at", "data"]
    # The ledger keeps the delivery apart from the requests, without text.
    [delivery] = emulator.ledger.deliveries(response_id)
    assert (delivery.event_type, delivery.attempt, delivery.status_code, delivery.fault) == (
        "response.completed",
        1,
        200,
        None,
    )
    assert delivery.webhook_id == request.headers["webhook-id"]
    assert all(e.method != "POST" or "webhook" not in e.path for e in emulator.ledger.entries())
    await wait_until(lambda: emulator.pending_webhooks == 0)


async def test_each_terminal_status_has_its_event_type(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    failed = await create(sdk, "fail:server_error")
    incomplete = await create(sdk, "incomplete:content_filter")
    cancelled = await create(sdk)
    emulator.advance(1.5)
    await sdk.responses.cancel(cancelled)
    emulator.advance(5)
    await wait_until(lambda: len(receiver.requests) == 3)
    unwrapped = [SDK.webhooks.unwrap(r.content, dict(r.headers), secret=SECRET) for r in receiver.requests]
    events = {
        json.loads(r.content)["data"]["id"]: e for r, e in zip(receiver.requests, unwrapped, strict=True)
    }
    assert isinstance(events[failed], ResponseFailedWebhookEvent)
    assert isinstance(events[incomplete], ResponseIncompleteWebhookEvent)
    assert isinstance(events[cancelled], ResponseCancelledWebhookEvent)


async def test_foreground_and_deleted_responses_send_nothing(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    await sdk.responses.create(model="gpt-5-mini", input="x", store=False)
    deleted = await create(sdk)
    await sdk.responses.delete(deleted)
    emulator.advance(10)
    await wait_until(lambda: emulator.pending_webhooks == 0)
    assert receiver.requests == []


async def test_failed_deliveries_are_retried_with_the_same_id_and_a_fresh_signature(
    clock: ManualClock,
) -> None:
    receiver = Receiver([500, 503])
    emulator = make(receiver, clock)
    sdk = in_process_client(emulator)
    try:
        response_id = await create(sdk)
        emulator.advance(4)
        await wait_until(lambda: len(receiver.requests) == 3)
    finally:
        await sdk.close()
        await emulator.aclose()
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:  # every attempt is signed on its own
        SDK.webhooks.verify_signature(request.content, dict(request.headers), secret=SECRET)
    attempts = [(d.attempt, d.status_code) for d in emulator.ledger.deliveries(response_id)]
    assert attempts == [(1, 500), (2, 503), (3, 200)]


async def test_delivery_gives_up_after_its_attempts(clock: ManualClock) -> None:
    receiver = Receiver([500] * 10)
    emulator = make(receiver, clock, webhook_max_attempts=3)
    sdk = in_process_client(emulator)
    try:
        response_id = await create(sdk)
        emulator.advance(4)
        await wait_until(lambda: emulator.pending_webhooks == 0)
    finally:
        await sdk.close()
        await emulator.aclose()
    assert [d.status_code for d in emulator.ledger.deliveries(response_id)] == [500, 500, 500]


async def test_unreachable_receiver_is_recorded_as_a_transport_error(clock: ManualClock) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    config = EmulatorConfig(
        webhook_url="http://receiver.local/", webhook_secret=SECRET, webhook_retry_s=0, webhook_max_attempts=2
    )
    emulator = Emulator(config, clock=clock, webhook_transport=httpx2.MockTransport(refuse))
    sdk = in_process_client(emulator)
    try:
        response_id = await create(sdk)
        emulator.advance(10)
        await wait_until(lambda: emulator.pending_webhooks == 0)
    finally:
        await sdk.close()
        await emulator.aclose()
    assert [(d.status_code, d.error) for d in emulator.ledger.deliveries(response_id)] == [
        (None, "ConnectError"),
        (None, "ConnectError"),
    ]


async def test_drop_sends_nothing_and_says_so_in_the_ledger(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    response_id = await create(sdk, "webhook_drop")
    emulator.advance(4)
    await wait_until(lambda: emulator.pending_webhooks == 0)
    assert receiver.requests == []
    [delivery] = emulator.ledger.deliveries(response_id)
    assert (delivery.fault, delivery.attempt, delivery.status_code) == ("drop", 0, None)


async def test_duplicate_repeats_the_same_webhook_id(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    response_id = await create(sdk, "webhook_duplicate:2")
    emulator.advance(4)
    await wait_until(lambda: emulator.pending_webhooks == 0)
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({json.loads(r.content)["id"] for r in receiver.requests}) == 1
    assert [d.fault for d in emulator.ledger.deliveries(response_id)] == [None, "duplicate", "duplicate"]


async def test_bad_signature_is_refused_by_the_sdk(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    await create(sdk, "webhook_bad_signature")
    emulator.advance(4)
    await wait_until(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    with pytest.raises(openai.InvalidWebhookSignatureError):
        SDK.webhooks.unwrap(request.content, dict(request.headers), secret=SECRET)


async def test_hold_keeps_the_webhook_until_released(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    held = await create(sdk, "webhook_hold")
    other = await create(sdk)
    emulator.advance(4)
    await wait_until(lambda: emulator.held_webhooks == 1 and len(receiver.requests) == 1)
    assert json.loads(receiver.requests[0].content)["data"]["id"] == other
    assert (await sdk.responses.retrieve(held)).status == "completed"
    assert emulator.release_webhooks(response_id=held) == 1
    await wait_until(lambda: len(receiver.requests) == 2)
    assert json.loads(receiver.requests[1].content)["data"]["id"] == held
    assert emulator.ledger.deliveries(held)[0].fault == "late"
    assert emulator.held_webhooks == 0


async def test_delay_is_applied_before_the_first_attempt(
    sdk: openai.AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    response_id = await create(sdk, "webhook_delay_ms:50")
    emulator.advance(4)
    await wait_until(lambda: emulator.pending_webhooks == 0)
    assert len(receiver.requests) == 1
    assert emulator.ledger.deliveries(response_id)[0].status_code == 200


def test_signature_is_the_standard_webhooks_hmac() -> None:
    # The Standard Webhooks specification's own example (whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw).
    value = signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
    )
    assert value == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"webhook_url": "http://x/"}, "webhook_secret"),
        ({"webhook_url": "http://x/", "webhook_secret": "secret"}, "whsec_"),
        ({"webhook_url": "http://x/", "webhook_secret": "whsec_***"}, "base64"),
        ({"webhook_url": "http://x/", "webhook_secret": "whsec_AAAA"}, "at least 16"),
        ({"webhook_url": "ftp://x/", "webhook_secret": SECRET}, "webhook_url"),
    ],
)
def test_bad_webhook_configuration_names_the_field_and_the_fix(changes: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        EmulatorConfig(**changes)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("webhook_drop", lambda f: f.webhook_drop),
        ("webhook_duplicate", lambda f: f.webhook_duplicates == 1),
        ("webhook_duplicate:3", lambda f: f.webhook_duplicates == 3),
        ("webhook_delay_ms:250", lambda f: f.webhook_delay_ms == 250),
        ("webhook_hold,webhook_bad_signature", lambda f: f.webhook_hold and f.webhook_bad_signature),
    ],
)
def test_webhook_fault_grammar(text: str, check: Callable[..., bool]) -> None:
    assert check(parse_faults(text))


@pytest.mark.parametrize("text", ["webhook_duplicate:0", "webhook_drop:1", "webhook_drop,webhook_hold"])
def test_bad_webhook_faults_are_refused(text: str) -> None:
    with pytest.raises(Exception, match="Invalid emulator fault"):
        parse_faults(text)
